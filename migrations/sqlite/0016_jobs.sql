-- Scheduled jobs (issue 15). Each occurrence of a job is one row, unique by (job, slot): the
-- slot is the occurrence's scheduled time (ms), or the moment of a manual run. Whoever inserts
-- the row runs it; the holder renews its lease while it runs, and a holder whose lease ran out
-- (it crashed) loses the row to the next runner, which counts another attempt. A result is only
-- written by the row's current owner and attempt, so a stale holder cannot overwrite it.
-- status: running, retry (failed, tried again at next_attempt_at), succeeded, failed.
CREATE TABLE job_runs (
    id               TEXT PRIMARY KEY,
    job              TEXT NOT NULL,
    slot             INTEGER NOT NULL,
    trigger_kind     TEXT NOT NULL,
    status           TEXT NOT NULL,
    owner            TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    lease_until      INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    duration_ms      INTEGER,
    outcome          TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL DEFAULT '',
    UNIQUE (job, slot)
);
CREATE INDEX job_runs_open ON job_runs(status, lease_until);
CREATE INDEX job_runs_recent ON job_runs(created_at);
