-- Single sign-on (issue 12). An identity is an account at an OpenID provider, known by the
-- provider's issuer and its subject for the user, linked to one Lariat account. A sign-in in
-- progress is kept server-side by the sha256 of its state until its callback takes it (once) or
-- it expires; the browser holds the state itself in a cookie, so a callback reaches only the
-- browser that started it.
CREATE TABLE identities (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    email         TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    UNIQUE (issuer, subject)
);
CREATE INDEX identities_user ON identities(user_id);

CREATE TABLE sso_states (
    state_hash     TEXT PRIMARY KEY,
    provider       TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    pkce_verifier  TEXT NOT NULL,
    -- set when a signed-in user links an identity to their account
    user_id        TEXT REFERENCES users(id) ON DELETE CASCADE,
    next_path      TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX sso_states_expiry ON sso_states(expires_at);
