-- A conversation's messages are numbered 1, 2, 3… with no two alike, even when two answers to
-- the same conversation are stored at the same moment (issue 10). Rows an earlier version
-- numbered twice are renumbered in their order first.
UPDATE messages SET seq = r.rn
FROM (
    SELECT id, ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY seq, created_at, id) AS rn
    FROM messages
) r
WHERE messages.id = r.id AND messages.seq <> r.rn;
DROP INDEX messages_conversation;
CREATE UNIQUE INDEX messages_conversation_seq ON messages(conversation_id, seq);
