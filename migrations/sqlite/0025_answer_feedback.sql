-- Issue 37. A reader's rating of an answer (up or down, with an optional comment), kept with what
-- it rated: the question, the model and the passages the answer cited, so `lariat eval feedback`
-- can turn well-rated answers into retrieval judgements after the conversation has moved on. One
-- rating per answer (its conversation's owner's); it goes with the message (a deleted or purged
-- conversation, an erased user).
CREATE TABLE answer_feedback (
    message_id       TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    conversation_id  TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    rating           TEXT NOT NULL,
    comment          TEXT NOT NULL DEFAULT '',
    question         TEXT NOT NULL,
    model            TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX answer_feedback_user ON answer_feedback(user_id);

-- The passages the rated answer cited, in citation order.
CREATE TABLE answer_feedback_passages (
    message_id  TEXT NOT NULL REFERENCES answer_feedback(message_id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    chunk_id    TEXT NOT NULL,
    document_id TEXT NOT NULL,
    collection  TEXT NOT NULL,
    PRIMARY KEY (message_id, n)
);
CREATE INDEX answer_feedback_passages_collection ON answer_feedback_passages(collection);
