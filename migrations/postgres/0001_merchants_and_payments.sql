-- Money is stored as a whole number of the currency's minor unit (fen for CNY) in BIGINT
-- columns: exact, and the same representation as in SQLite. Times are BIGINT microseconds since
-- the Unix epoch, UTC, so both backends share their queries. Ids are ASCII and compared
-- byte by byte (COLLATE "C"), as SQLite does: the same paging order on both backends, and no
-- locale-aware comparison in the largest indexes.

-- Merchants as the payment platform describes them. `id` is an internal key so that the far
-- larger payments table stores eight bytes per row instead of the platform's text id.
CREATE TABLE merchants (
    id            BIGSERIAL PRIMARY KEY,
    merchant_id   TEXT      COLLATE "C" NOT NULL UNIQUE,
    name          TEXT      NOT NULL,
    category      TEXT      NOT NULL,
    region_type   TEXT      NOT NULL CHECK (region_type IN ('urban', 'county', 'rural')),
    region_code   TEXT      NOT NULL,
    currency      TEXT      NOT NULL,         -- settlement currency; every payment is in it
    onboarded_on  TEXT      NOT NULL,         -- YYYY-MM-DD
    created_at    BIGINT    NOT NULL,
    updated_at    BIGINT    NOT NULL
);

-- Every payment exactly once: append-only, unique per (merchant, payment_id).
CREATE TABLE payments (
    merchant      BIGINT    NOT NULL REFERENCES merchants (id),
    payment_id    TEXT      COLLATE "C" NOT NULL,
    occurred_at   BIGINT    NOT NULL,
    amount_minor  BIGINT    NOT NULL CHECK (amount_minor > 0),
    kind          TEXT      NOT NULL CHECK (kind IN ('sale', 'refund', 'chargeback')),
    channel       TEXT      NOT NULL CHECK (channel IN ('qr_code', 'in_app', 'mini_program', 'pos', 'other')),
    payer_ref     TEXT      NOT NULL,
    PRIMARY KEY (merchant, payment_id)
);

-- Listing a merchant's payments in time order, paged by (occurred_at, payment_id).
CREATE INDEX payments_by_time ON payments (merchant, occurred_at, payment_id);
