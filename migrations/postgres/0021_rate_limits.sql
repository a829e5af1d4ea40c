-- Issue 35. Rate limits one for every server of a shared deployment: each live bucket as its GCRA
-- "theoretical arrival time" (milliseconds since the epoch), keyed by a SHA-256 of the limit's
-- name and the key. A row whose time has passed is a full bucket, and is pruned.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);
