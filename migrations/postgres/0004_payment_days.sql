-- Per merchant and UTC calendar day (`day` = days since 1970-01-01), what the features need of
-- that day's payments, so that features as of a midnight read a year of days, not a year of
-- payments. Maintained in the same transaction as the payments it summarises (only newly stored
-- payments are added; a batch with duplicates or conflicts recomputes its days from the stored
-- payments), so it always equals a summary of `payments`. Money in integer minor units.
-- `sale_payers` is 16 bytes per sale: the payer key (FNV-1a of payer_ref, u64) and the amount
-- (i64), both little-endian. Filled for existing payments by the service at start-up.
CREATE TABLE payment_days (
    merchant          BIGINT  NOT NULL REFERENCES merchants (id),
    day               BIGINT  NOT NULL,
    payments          BIGINT  NOT NULL,           -- payments of any kind
    sales             BIGINT  NOT NULL,
    gross_minor       BIGINT  NOT NULL,
    refunds_minor     BIGINT  NOT NULL,
    chargebacks_minor BIGINT  NOT NULL,
    chargebacks       BIGINT  NOT NULL,
    qr_code_minor     BIGINT  NOT NULL,
    in_app_minor      BIGINT  NOT NULL,
    mini_program_minor BIGINT  NOT NULL,
    pos_minor         BIGINT  NOT NULL,
    other_minor       BIGINT  NOT NULL,
    first_at          BIGINT  NOT NULL,           -- earliest and latest payment (micros)
    last_at           BIGINT  NOT NULL,
    last_sale_at      BIGINT,
    sale_payers       BYTEA   NOT NULL,
    PRIMARY KEY (merchant, day)
);
