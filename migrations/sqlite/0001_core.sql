CREATE TABLE collections (
    name        TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    dimension   INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- state: 'pending' while the derived indexes may lag the SQL rows, 'indexed' once they match.
CREATE TABLE documents (
    id            TEXT PRIMARY KEY,
    collection    TEXT NOT NULL REFERENCES collections(name),
    source        TEXT NOT NULL,
    title         TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    state         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (collection, source)
);
CREATE INDEX documents_state ON documents(state);

CREATE TABLE chunks (
    id            TEXT PRIMARY KEY,
    document_id   TEXT NOT NULL REFERENCES documents(id),
    collection    TEXT NOT NULL,
    ordinal       INTEGER NOT NULL,
    text          TEXT NOT NULL,
    location      TEXT NOT NULL,
    token_count   INTEGER NOT NULL,
    content_hash  TEXT NOT NULL,
    embedding     BLOB NOT NULL
);
CREATE INDEX chunks_document ON chunks(document_id);
CREATE INDEX chunks_collection ON chunks(collection);

-- Documents deleted from SQL whose chunks may still sit in the derived indexes.
CREATE TABLE index_tombstones (
    document_id  TEXT PRIMARY KEY,
    created_at   INTEGER NOT NULL
);
