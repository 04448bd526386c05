-- The audit log moves to a file of its own, attached as `audit` on every connection
-- (`smecredit.db` → `smecredit-audit.db`, see src/store/sqlite.rs).
--
-- Why: in WAL mode a SQLite connection drops its page cache and its memory map of the database
-- whenever another connection has committed to that file since its last read. With the audit log
-- in the main file, every decision's commit made every reader start cold (unmap, fault the pages
-- in again), which cost about a third of a score's time under load. Decisions are appended on
-- every score; the main file now changes only when merchants, payments, loans or keys do.
--
-- `merchant` no longer references `merchants (id)`: SQLite keeps foreign keys within one file.
-- Merchants are never deleted, and the key is the one just read for the decision.
-- Written to be safe to re-run: a migration that stopped between the two files' commits (they
-- are atomic per file in WAL mode) completes the next time.
CREATE TABLE IF NOT EXISTS audit.decisions (
    decision_id     TEXT    NOT NULL PRIMARY KEY,
    merchant        INTEGER,                              -- merchants.id; NULL for stateless scoring
    model_version   TEXT    NOT NULL,
    policy_version  TEXT    NOT NULL,
    decision        TEXT    NOT NULL CHECK (decision IN ('approve', 'refer', 'decline')),
    caller          TEXT    NOT NULL,
    request_id      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    record          TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS audit.decisions_by_merchant ON decisions (merchant, created_at);

INSERT OR IGNORE INTO audit.decisions
    (decision_id, merchant, model_version, policy_version, decision, caller, request_id, created_at, record)
SELECT decision_id, merchant, model_version, policy_version, decision, caller, request_id, created_at, record
FROM main.decisions;

DROP TABLE main.decisions;
