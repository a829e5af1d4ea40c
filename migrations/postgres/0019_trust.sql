-- Issue 33. A key made with another key (its `keys` scope) records that parent (issue 33): it is revoked
-- with it, and it never outlives it (its end is capped at the parent's when it is made).
ALTER TABLE api_keys ADD COLUMN parent_id TEXT;
CREATE INDEX api_keys_parent ON api_keys(parent_id);

-- A source names who added it by user id, not by e-mail (issue 33: an erased user's address
-- must not stay behind in rows kept for the collection).
UPDATE sources SET created_by = (SELECT u.id FROM users u WHERE u.email = sources.created_by)
WHERE created_by IN (SELECT email FROM users);

-- An outbox message names the account it is about, so an erasure takes every message about it,
-- whatever address it went to (an old one, before an address change).
ALTER TABLE mail_outbox ADD COLUMN user_id TEXT;
CREATE INDEX mail_outbox_user ON mail_outbox(user_id);
