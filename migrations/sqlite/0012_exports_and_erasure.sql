-- A user's data, taken out and erased (issue 12). An export is built in the background and kept
-- (as JSON text) until it expires; an erased account keeps its row, without anything personal,
-- so the usage its plan was billed for stays counted.
CREATE TABLE exports (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    expires_at   INTEGER NOT NULL,
    content      TEXT NOT NULL DEFAULT '',
    error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX exports_user ON exports(user_id, created_at);
ALTER TABLE users ADD COLUMN erased_at INTEGER;
