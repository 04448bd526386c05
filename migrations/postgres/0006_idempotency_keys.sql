-- Idempotency keys: a client that sends `Idempotency-Key` with a POST that creates something (a
-- score, a payment batch, a loan) gets the first answer again when it retries, instead of a second
-- decision or a different count. The database, not a replica's memory, decides who owns a key:
-- the primary key makes the first claim win, so replicas sharing the database agree.
--
-- A row is claimed (`status` NULL) while its request runs, under a lease (`lease_until`) so that
-- a key whose owner died can be taken over; it then holds the response to replay, until
-- `expires_at`. Rows past `expires_at` are ignored and purged lazily. Times are microseconds since
-- the epoch; `request_hash` is the SHA-256 of method, path and body, never the body itself.
CREATE TABLE idempotency_keys (
    scope         TEXT    COLLATE "C" NOT NULL,   -- whose key: a hash of the caller's credentials
    key           TEXT    COLLATE "C" NOT NULL,   -- the client's Idempotency-Key
    request_hash  TEXT    NOT NULL,
    owner         TEXT    NOT NULL,   -- the claim's random token, so only its owner completes it
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    lease_until   BIGINT  NOT NULL,
    status        INTEGER,            -- the response, once there is one worth replaying
    headers       TEXT,               -- JSON object of the replayed headers (content-type, location)
    body          BYTEA,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
