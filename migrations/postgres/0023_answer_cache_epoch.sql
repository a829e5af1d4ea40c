-- Issue 35. The answer cache lives in each server's memory; an erasure (or the retention job's
-- deletions) on any server moves this one counter on, and every server drops the answers it
-- cached before the move at its next lookup. One row (id 1), made by the first move.
CREATE TABLE answer_cache_epoch (
    id INTEGER PRIMARY KEY,
    epoch BIGINT NOT NULL
);
