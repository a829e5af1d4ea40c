-- Sources (issue 15): where a collection's documents come from, synced on a schedule. kind is
-- folder (targets: one folder on the server), urls (one or more pages) or sitemap (its URL);
-- targets is a JSON array of strings. Each sync is a run of the job "source:<id>" in job_runs.
CREATE TABLE sources (
    id          TEXT PRIMARY KEY,
    collection  TEXT NOT NULL REFERENCES collections(name),
    kind        TEXT NOT NULL,
    targets     TEXT NOT NULL,
    schedule    TEXT NOT NULL,
    max_misses  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX sources_collection ON sources(collection);

-- What a source's last syncs found: each page (by URL) or file (by path), what it was stored as
-- (documents whose source is document_source, or document_source#record), the validators that
-- make the next fetch conditional (a file's are its size and modification time), and how many
-- consecutive syncs missed it (at the source's max_misses its documents are deleted).
CREATE TABLE source_items (
    source_id        TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    item             TEXT NOT NULL,
    document_source  TEXT NOT NULL,
    etag             TEXT,
    last_modified    TEXT,
    misses           BIGINT NOT NULL DEFAULT 0,
    seen_at          BIGINT NOT NULL,
    PRIMARY KEY (source_id, item)
);
