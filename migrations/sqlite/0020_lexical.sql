-- Issue 35. The lexical index kept in the database (retrieval.lexical_store = "database"), so any
-- number of servers share it: BM25 scored in SQL with the searched collections' own statistics,
-- as the embedded tantivy index scores it. Derived from the chunks, like the embedded index:
-- rebuilt by `lariat reindex`.

-- Each passage, and each whole document, as an entry. Ids are hashes of the chunk or document id
-- (so a writer needs no round trip to learn them); lengths are tokens after the analyzer,
-- quantised as tantivy's field norms.
CREATE TABLE lexical_entries (
    id BIGINT PRIMARY KEY,
    document_id TEXT NOT NULL,
    collection TEXT NOT NULL,
    kind INTEGER NOT NULL,        -- 0 a passage, 1 a whole document
    chunk_id TEXT,                -- passages only
    title_len INTEGER NOT NULL,
    body_len INTEGER NOT NULL
);
CREATE INDEX lexical_entries_document ON lexical_entries (document_id);
CREATE INDEX lexical_entries_chunk ON lexical_entries (chunk_id);

-- One row per analysed term of an entry's field (0 title, 1 body), with what scoring needs, so a
-- search reads the index alone.
CREATE TABLE lexical_postings (
    term BIGINT NOT NULL,         -- a hash of the analysed term
    kind INTEGER NOT NULL,
    collection TEXT NOT NULL,
    field INTEGER NOT NULL,
    entry_id BIGINT NOT NULL,
    document_entry BIGINT NOT NULL, -- the entry of the whole document
    tf INTEGER NOT NULL,
    len INTEGER NOT NULL
);
CREATE INDEX lexical_postings_term ON lexical_postings
    (term, kind, collection, field, entry_id, document_entry, tf, len);
CREATE INDEX lexical_postings_entry ON lexical_postings (entry_id);

-- Entries and tokens per collection and kind: BM25's collection statistics, kept in step by the
-- transaction that writes the entries.
CREATE TABLE lexical_sizes (
    collection TEXT NOT NULL,
    kind INTEGER NOT NULL,
    entries BIGINT NOT NULL,
    title_tokens BIGINT NOT NULL,
    body_tokens BIGINT NOT NULL,
    PRIMARY KEY (collection, kind)
);

-- How the entries were analysed: one written another way is rebuilt when a server opens it.
CREATE TABLE lexical_format (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    format TEXT NOT NULL
);
