-- Conversation search matches letters whatever their case in every script (issue 10): the
-- application stores a Unicode-lower-cased copy of each title and message, and search compares
-- against it. Rows from before are folded by the database's LOWER (on SQLite, ASCII only).
ALTER TABLE conversations ADD COLUMN title_folded TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN content_folded TEXT NOT NULL DEFAULT '';
UPDATE conversations SET title_folded = LOWER(title);
UPDATE messages SET content_folded = LOWER(content);
