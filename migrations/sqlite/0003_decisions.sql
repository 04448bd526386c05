-- The audit log: every credit decision, append-only, with what it was made from (feature values,
-- per-feature points, model version and checksum, policy version) so that it can be reproduced
-- and defended. `record` is the full decision as JSON; the other columns are for finding it.
CREATE TABLE decisions (
    decision_id     TEXT    NOT NULL PRIMARY KEY,
    merchant        INTEGER REFERENCES merchants (id),   -- NULL for stateless scoring
    model_version   TEXT    NOT NULL,
    policy_version  TEXT    NOT NULL,
    decision        TEXT    NOT NULL CHECK (decision IN ('approve', 'refer', 'decline')),
    caller          TEXT    NOT NULL,
    request_id      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    record          TEXT    NOT NULL
);

CREATE INDEX decisions_by_merchant ON decisions (merchant, created_at);

-- Service-wide settings that must survive a restart, such as the active model version.
CREATE TABLE settings (
    key         TEXT    NOT NULL PRIMARY KEY,
    value       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);
