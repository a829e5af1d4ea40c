-- Usage analytics (issue 14). Each answer's event now says on which plan, with which model, from
-- which collection, its prompt and completion tokens, latency and outcome (complete, error,
-- cancelled) and whether a fallback provider answered. `usage_daily` rolls events up per UTC day
-- (days since the epoch), user, plan, model and collection, updated in the transaction that
-- records each event; the events before this migration are rolled up here.
ALTER TABLE usage_events ADD COLUMN plan TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_events ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_events ADD COLUMN collection TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_events ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN completion_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN latency_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN outcome TEXT NOT NULL DEFAULT 'complete';
ALTER TABLE usage_events ADD COLUMN fallback INTEGER NOT NULL DEFAULT 0;

CREATE TABLE usage_daily (
    day                INTEGER NOT NULL,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    plan               TEXT NOT NULL,
    model              TEXT NOT NULL,
    collection         TEXT NOT NULL,
    messages           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    tokens             INTEGER NOT NULL,
    cost_usd           REAL NOT NULL,
    latency_ms         INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    fallbacks          INTEGER NOT NULL,
    PRIMARY KEY (day, user_id, plan, model, collection)
);
CREATE INDEX usage_daily_user ON usage_daily(user_id, day);

INSERT INTO usage_daily (day, user_id, plan, model, collection, messages, prompt_tokens,
                         completion_tokens, tokens, cost_usd, latency_ms, errors, fallbacks)
SELECT e.created_at / 86400000, e.user_id, u.plan, '', '', COUNT(*), 0, 0, SUM(e.tokens),
       SUM(e.cost_usd), 0, 0, 0
FROM usage_events e JOIN users u ON u.id = e.user_id
GROUP BY e.created_at / 86400000, e.user_id, u.plan;
