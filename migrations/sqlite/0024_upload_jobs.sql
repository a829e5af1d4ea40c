-- Issue 36. An upload larger than ingest.background_upload_bytes is ingested by a job of the
-- server that received it: the curator gets its id at once and reads its progress here. The
-- runner writes its counts every few seconds (updated_at is its heartbeat: a running job whose
-- heartbeat stopped was lost with its server); a cancel is asked for through cancel_requested,
-- which the runner reads back with each write, whichever server asked.
-- status: running, succeeded, failed, cancelled, interrupted.
CREATE TABLE upload_jobs (
    id               TEXT PRIMARY KEY,
    collection       TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    filename         TEXT NOT NULL,
    bytes            INTEGER NOT NULL,
    status           TEXT NOT NULL,
    documents_total  INTEGER NOT NULL DEFAULT 0,
    documents_done   INTEGER NOT NULL DEFAULT 0,
    passages_total   INTEGER NOT NULL DEFAULT 0,
    passages_done    INTEGER NOT NULL DEFAULT 0,
    report           TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX upload_jobs_collection ON upload_jobs(collection, created_at);
CREATE INDEX upload_jobs_user ON upload_jobs(user_id);
