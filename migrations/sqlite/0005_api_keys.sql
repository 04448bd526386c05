-- API keys: who may call the service, in which role. Only the SHA-256 of a key is kept: keys are
-- 256 random bits, so the hash cannot be reversed or guessed, and a copy of this table grants
-- nothing. A key is never deleted, only revoked, so that the audit log's callers stay resolvable.
CREATE TABLE api_keys (
    key_id       TEXT    NOT NULL PRIMARY KEY,          -- public: listed, logged, in the audit log
    key_hash     TEXT    NOT NULL UNIQUE,               -- hex SHA-256 of the secret key
    -- The key this one continues after a rotation (its own id for a first key): a lender's
    -- decisions stay readable by the key that replaces the one that made them.
    principal    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('platform', 'lender', 'merchant', 'admin')),
    merchant_id  TEXT,                                  -- the merchant a merchant key speaks for
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    CHECK ((role = 'merchant') = (merchant_id IS NOT NULL))
);
