-- Loans and what became of them: the labels the data team retrains on. Principal is in integer
-- minor units of the merchant's settlement currency; dates are YYYY-MM-DD.

-- A loan as disbursed. Append-only: a loan id always means the same loan.
CREATE TABLE loans (
    id               BIGSERIAL PRIMARY KEY,
    loan_id          TEXT    COLLATE "C" NOT NULL UNIQUE,
    merchant         BIGINT  NOT NULL REFERENCES merchants (id),
    disbursed_on     TEXT    NOT NULL,
    principal_minor  BIGINT  NOT NULL CHECK (principal_minor > 0),
    term_days        BIGINT  NOT NULL CHECK (term_days > 0),
    created_at       BIGINT  NOT NULL
);

CREATE INDEX loans_by_merchant ON loans (merchant, disbursed_on);

-- The outcome of a loan, once known. `defaulted_on` is set for defaulted and written-off loans;
-- a training set as of a date uses only outcomes recorded by then.
CREATE TABLE loan_outcomes (
    loan          BIGINT  PRIMARY KEY REFERENCES loans (id),
    outcome       TEXT    NOT NULL CHECK (outcome IN ('repaid', 'defaulted', 'written_off')),
    defaulted_on  TEXT,
    recorded_at   BIGINT  NOT NULL,
    CHECK ((outcome = 'repaid') = (defaulted_on IS NULL))
);
