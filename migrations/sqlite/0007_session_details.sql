-- Sessions remember the device that opened them and when they were last renewed, and end at an
-- absolute lifetime whatever their refresh tokens say (issue 12). Older rows have none recorded
-- (and no absolute end).
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN last_used_at INTEGER;
ALTER TABLE sessions ADD COLUMN expires_at INTEGER;
