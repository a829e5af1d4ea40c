-- Issue 35. `lariat migrate-store` copies a SQLite deployment's rows into PostgreSQL table by
-- table; each batch commits with how far its table has come, so a killed copy resumes after the
-- last batch it committed. (Never written on SQLite: the table exists in both so the schemas
-- stay alike.)
CREATE TABLE store_copy (
    table_name TEXT PRIMARY KEY,
    last_rowid BIGINT NOT NULL,
    copied BIGINT NOT NULL
);
