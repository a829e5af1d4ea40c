-- Writes agents made on external sites (entries, withdrawals), keyed by the confirm token's hash:
-- a retried call finds the first outcome here instead of acting twice, and the operator has a
-- record of what was sent on whose behalf.
CREATE TABLE site_actions (
    key          TEXT PRIMARY KEY,
    site         TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    action       TEXT NOT NULL,
    request      TEXT NOT NULL,
    -- pending (being sent), done (the site answered), failed (the site refused)
    status       TEXT NOT NULL,
    outcome      TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX site_actions_user ON site_actions(user_id, created_at);
