-- Money is stored as a whole number of the currency's minor unit (fen for CNY) in INTEGER
-- columns: exact, and the same representation as in PostgreSQL. Times are INTEGER microseconds
-- since the Unix epoch, UTC, so ordering and range filters are plain integer comparisons.

-- Merchants as the payment platform describes them. `id` is an internal key so that the far
-- larger payments table stores eight bytes per row instead of the platform's text id.
CREATE TABLE merchants (
    id            INTEGER PRIMARY KEY,
    merchant_id   TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    category      TEXT    NOT NULL,
    region_type   TEXT    NOT NULL CHECK (region_type IN ('urban', 'county', 'rural')),
    region_code   TEXT    NOT NULL,
    currency      TEXT    NOT NULL,           -- settlement currency; every payment is in it
    onboarded_on  TEXT    NOT NULL,           -- YYYY-MM-DD
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Every payment exactly once: append-only, unique per (merchant, payment_id). Clustered by that
-- key (WITHOUT ROWID) so one merchant's history is contiguous on disk.
CREATE TABLE payments (
    merchant      INTEGER NOT NULL REFERENCES merchants (id),
    payment_id    TEXT    NOT NULL,
    occurred_at   INTEGER NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    kind          TEXT    NOT NULL CHECK (kind IN ('sale', 'refund', 'chargeback')),
    channel       TEXT    NOT NULL CHECK (channel IN ('qr_code', 'in_app', 'mini_program', 'pos', 'other')),
    payer_ref     TEXT    NOT NULL,
    PRIMARY KEY (merchant, payment_id)
) WITHOUT ROWID;

-- Listing a merchant's payments in time order, paged by (occurred_at, payment_id).
CREATE INDEX payments_by_time ON payments (merchant, occurred_at, payment_id);
