-- Per merchant and UTC calendar day (`day` = days since 1970-01-01), what the features need of
-- that day's payments, so that features as of a midnight read a year of days, not a year of
-- payments. Maintained in the same transaction as the payments it summarises (only newly stored
-- payments are added; a batch with duplicates or conflicts recomputes its days from the stored
-- payments), so it always equals a summary of `payments`. Money in integer minor units.
-- `sale_payers` is 16 bytes per sale: the payer key (FNV-1a of payer_ref, u64) and the amount
-- (i64), both little-endian. Filled for existing payments by the service at start-up.
CREATE TABLE payment_days (
    merchant          INTEGER NOT NULL REFERENCES merchants (id),
    day               INTEGER NOT NULL,
    payments          INTEGER NOT NULL,           -- payments of any kind
    sales             INTEGER NOT NULL,
    gross_minor       INTEGER NOT NULL,
    refunds_minor     INTEGER NOT NULL,
    chargebacks_minor INTEGER NOT NULL,
    chargebacks       INTEGER NOT NULL,
    qr_code_minor     INTEGER NOT NULL,
    in_app_minor      INTEGER NOT NULL,
    mini_program_minor INTEGER NOT NULL,
    pos_minor         INTEGER NOT NULL,
    other_minor       INTEGER NOT NULL,
    first_at          INTEGER NOT NULL,           -- earliest and latest payment (micros)
    last_at           INTEGER NOT NULL,
    last_sale_at      INTEGER,
    sale_payers       BLOB    NOT NULL,
    PRIMARY KEY (merchant, day)
) WITHOUT ROWID;
