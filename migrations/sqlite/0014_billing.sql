-- Billing (issue 14). A user's Stripe customer (made once, linked by our user id); their
-- subscriptions as the last applied webhook event left them (`last_event_at`: that event's
-- Stripe `created`, seconds, so older events are recognised); invoices paid or failed; and every
-- webhook event received, recorded in the transaction that applies it, so a replay changes
-- nothing.
CREATE TABLE billing_customers (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    customer_id  TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
);

CREATE TABLE billing_subscriptions (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    customer_id           TEXT NOT NULL,
    status                TEXT NOT NULL,
    price_id              TEXT NOT NULL,
    plan                  TEXT NOT NULL,
    billing_interval      TEXT NOT NULL,
    current_period_end    INTEGER,
    cancel_at_period_end  INTEGER NOT NULL,
    past_due_since        INTEGER,
    last_event_at         INTEGER NOT NULL,
    applied_plan          TEXT NOT NULL DEFAULT '',
    updated_at            INTEGER NOT NULL
);
CREATE INDEX billing_subscriptions_user ON billing_subscriptions(user_id);

CREATE TABLE billing_invoices (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    subscription_id     TEXT NOT NULL,
    status              TEXT NOT NULL,
    plan                TEXT NOT NULL,
    amount_due          INTEGER NOT NULL,
    amount_paid         INTEGER NOT NULL,
    currency            TEXT NOT NULL,
    hosted_invoice_url  TEXT NOT NULL,
    created             INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX billing_invoices_user ON billing_invoices(user_id, created);

CREATE TABLE billing_events (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    created      INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    outcome      TEXT NOT NULL
);
