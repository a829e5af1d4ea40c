-- Accounts, access to collections, conversations and usage (issue 4).
-- Booleans are 0/1 integers and times milliseconds since the epoch, as in 0001.

ALTER TABLE collections ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';
ALTER TABLE collections ADD COLUMN instructions TEXT NOT NULL DEFAULT '';

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    plan           TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

-- One row per sign-in; access tokens name their session so sign-out revokes them at once.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Refresh tokens by the sha256 of their value; each is used once (rotation).
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_user ON api_keys(user_id);

-- role: 'reader' or 'curator'.
CREATE TABLE collection_members (
    collection  TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    PRIMARY KEY (collection, user_id)
);
CREATE INDEX collection_members_user ON collection_members(user_id);

CREATE TABLE conversations (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title        TEXT NOT NULL,
    collections  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX conversations_user ON conversations(user_id, updated_at);

CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,
    conversation_id    TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq                INTEGER NOT NULL,
    role               TEXT NOT NULL,
    content            TEXT NOT NULL,
    citations          TEXT NOT NULL,
    standalone_query   TEXT,
    model              TEXT,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd           REAL NOT NULL DEFAULT 0,
    latency_ms         INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id, seq);

-- Every answer counts against its user's plan, whichever surface asked.
CREATE TABLE usage_events (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    api_key_id         TEXT,
    tokens             INTEGER NOT NULL,
    cost_usd           REAL NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX usage_events_user ON usage_events(user_id, created_at);
