-- The audit log of security events (issue 12): who did what to whose account, from where. Rows
-- outlive the accounts they name (an erased account's rows keep its id, never its address) and
-- are purged after `audit.retention_days`.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    at          INTEGER NOT NULL,
    event       TEXT NOT NULL,
    actor_id    TEXT,
    subject_id  TEXT,
    address     TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_subject ON audit_log(subject_id, at);
CREATE INDEX audit_log_actor ON audit_log(actor_id, at);
