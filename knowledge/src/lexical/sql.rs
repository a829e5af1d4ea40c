//! [`LexicalIndex`] in the deployment's database (`retrieval.lexical_store = "database"`), so any
//! number of servers share one index: the same analyzer, the same entries (each passage, and
//! each document whole) and the same BM25 as [`super::TantivyIndex`], scored in SQL with the
//! searched collections' own statistics. Term tables (`migrations/*/0020_lexical.sql`), not
//! PostgreSQL's `ts_rank`, which is not BM25.
//!
//! A write is one transaction: the entries, their postings and the collection statistics
//! (`lexical_sizes`) change together, so every server's next search sees all of it or none.
//! A search is two queries: the statistics of the searched collections and each query term's
//! document frequencies, then the scores, summed per entry in SQL, a passage's mixed with its
//! document's. It runs on PostgreSQL and SQLite alike (one suite tests both).

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use super::entries::{BODY, Entry, SizeDelta, TITLE, kind_code, replacing, term_id};
use super::{INDEX_FORMAT, Kind, LexicalDocument, LexicalIndex, Ranking, query_terms};
use base::error::{Error, Result};
use base::sql::{SqlStore, placeholders, rows};

/// Rows per INSERT: at most eight parameters each, under SQLite's 32,766 and PostgreSQL's 65,535.
const INSERT_BATCH: usize = 1000;

#[derive(Debug)]
pub struct SqlLexicalIndex {
    sql: SqlStore,
    current: std::sync::atomic::AtomicBool,
}

impl SqlLexicalIndex {
    /// The index in `sql`'s database (its tables come with the migrations).
    pub async fn open(sql: &SqlStore) -> Result<Self> {
        let format: Option<String> = sqlx::query("SELECT format FROM lexical_format WHERE id = 1")
            .fetch_optional(&sql.pool)
            .await?
            .map(|r| r.try_get("format"))
            .transpose()?;
        Ok(Self {
            sql: sql.clone(),
            current: (format.as_deref() == Some(INDEX_FORMAT)).into(),
        })
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Removes the entries of `documents` with their postings, returning what they took from the
/// statistics.
async fn delete_entries(
    tx: &mut Tx,
    documents: &[String],
    sizes: &mut HashMap<(String, i64), SizeDelta>,
) -> Result<()> {
    let mut ids: Vec<i64> = Vec::new();
    for q in SqlStore::in_queries(
        "SELECT id, collection, CAST(kind AS BIGINT) AS kind,
                CAST(title_len AS BIGINT) AS title_len, CAST(body_len AS BIGINT) AS body_len
         FROM lexical_entries WHERE document_id IN",
        "",
        documents,
    ) {
        for row in q.fetch_all(&mut **tx).await? {
            let delta = sizes
                .entry((row.try_get("collection")?, row.try_get("kind")?))
                .or_default();
            delta.add(
                -1,
                row.try_get::<i64, _>("title_len")?,
                row.try_get::<i64, _>("body_len")?,
            );
            ids.push(row.try_get("id")?);
        }
    }
    for batch in ids.chunks(INSERT_BATCH) {
        let sql = format!(
            "DELETE FROM lexical_postings WHERE entry_id IN ({})",
            placeholders(1, batch.len())
        );
        batch
            .iter()
            .fold(sqlx::query(AssertSqlSafe(sql)), |q, id| q.bind(*id))
            .execute(&mut **tx)
            .await?;
    }
    for q in SqlStore::in_queries(
        "DELETE FROM lexical_entries WHERE document_id IN",
        "",
        documents,
    ) {
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts `entries` and their postings, adding them to the statistics.
async fn insert_entries(
    tx: &mut Tx,
    entries: &[Entry],
    sizes: &mut HashMap<(String, i64), SizeDelta>,
) -> Result<()> {
    for batch in entries.chunks(INSERT_BATCH) {
        let sql = format!(
            "INSERT INTO lexical_entries (id, document_id, collection, kind, chunk_id, title_len, body_len) VALUES {}",
            rows(batch.len(), 7)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for e in batch {
            query = query
                .bind(e.id)
                .bind(&e.document_id)
                .bind(&e.collection)
                .bind(kind_code(e.kind))
                .bind(e.chunk_id.as_deref())
                .bind(e.title.1)
                .bind(e.body.1);
            let delta = sizes
                .entry((e.collection.clone(), kind_code(e.kind)))
                .or_default();
            delta.add(1, e.title.1, e.body.1);
        }
        query.execute(&mut **tx).await?;
    }
    let postings: Vec<(&Entry, i64, &str, i64, i64)> = entries
        .iter()
        .flat_map(|e| {
            [(TITLE, &e.title), (BODY, &e.body)]
                .into_iter()
                .flat_map(move |(field, (tf, len))| {
                    tf.iter()
                        .map(move |(term, n)| (e, field, term.as_str(), *n, *len))
                })
        })
        .collect();
    for batch in postings.chunks(INSERT_BATCH) {
        let sql = format!(
            "INSERT INTO lexical_postings (term, kind, collection, field, entry_id, document_entry, tf, len) VALUES {}",
            rows(batch.len(), 8)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (e, field, term, tf, len) in batch {
            query = query
                .bind(term_id(term))
                .bind(kind_code(e.kind))
                .bind(&e.collection)
                .bind(*field)
                .bind(e.id)
                .bind(e.document_entry)
                .bind(*tf)
                .bind(*len);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Applies the statistics' changes, in key order (two writers never wait for each other's rows
/// in opposite orders).
async fn apply_sizes(tx: &mut Tx, sizes: HashMap<(String, i64), SizeDelta>) -> Result<()> {
    let mut sizes: Vec<_> = sizes.into_iter().collect();
    sizes.sort_by(|a, b| a.0.cmp(&b.0));
    for ((collection, kind), d) in sizes {
        sqlx::query(
            "INSERT INTO lexical_sizes (collection, kind, entries, title_tokens, body_tokens)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (collection, kind) DO UPDATE SET
                entries = lexical_sizes.entries + excluded.entries,
                title_tokens = lexical_sizes.title_tokens + excluded.title_tokens,
                body_tokens = lexical_sizes.body_tokens + excluded.body_tokens",
        )
        .bind(collection)
        .bind(kind)
        .bind(d.entries)
        .bind(d.title_tokens)
        .bind(d.body_tokens)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Entries and tokens per field of one kind in the searched collections.
#[derive(Debug, Default, Clone, Copy)]
struct Sizes {
    entries: f64,
    title_tokens: f64,
    body_tokens: f64,
}

impl SqlLexicalIndex {
    async fn sizes(&self, collections: &[String]) -> Result<HashMap<i64, Sizes>> {
        let sql = format!(
            "SELECT CAST(kind AS BIGINT) AS kind, CAST(SUM(entries) AS BIGINT) AS entries,
                    CAST(SUM(title_tokens) AS BIGINT) AS title_tokens,
                    CAST(SUM(body_tokens) AS BIGINT) AS body_tokens
             FROM lexical_sizes WHERE collection IN ({}) GROUP BY kind",
            placeholders(1, collections.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for c in collections {
            query = query.bind(c);
        }
        let mut sizes = HashMap::new();
        for row in query.fetch_all(&self.sql.pool).await? {
            sizes.insert(
                row.try_get::<i64, _>("kind")?,
                Sizes {
                    entries: row.try_get::<i64, _>("entries")? as f64,
                    title_tokens: row.try_get::<i64, _>("title_tokens")? as f64,
                    body_tokens: row.try_get::<i64, _>("body_tokens")? as f64,
                },
            );
        }
        Ok(sizes)
    }

    /// How many entries of each kind in the searched collections hold each term in each field.
    async fn document_frequencies(
        &self,
        terms: &[i64],
        collections: &[String],
    ) -> Result<HashMap<(i64, i64, i64), f64>> {
        let sql = format!(
            "SELECT term, CAST(kind AS BIGINT) AS kind, CAST(field AS BIGINT) AS field, COUNT(*) AS df
             FROM lexical_postings WHERE term IN ({}) AND collection IN ({})
             GROUP BY term, kind, field",
            placeholders(1, terms.len()),
            placeholders(terms.len() + 1, collections.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for t in terms {
            query = query.bind(*t);
        }
        for c in collections {
            query = query.bind(c);
        }
        let mut df = HashMap::new();
        for row in query.fetch_all(&self.sql.pool).await? {
            df.insert(
                (
                    row.try_get::<i64, _>("term")?,
                    row.try_get::<i64, _>("kind")?,
                    row.try_get::<i64, _>("field")?,
                ),
                row.try_get::<i64, _>("df")? as f64,
            );
        }
        Ok(df)
    }
}

/// A query term's weight in one kind and field: `boost · idf · (k1 + 1)`, with the length its
/// field averages.
struct TermWeight {
    term: i64,
    kind: i64,
    field: i64,
    weight: f64,
    average_length: f64,
}

#[async_trait]
impl LexicalIndex for SqlLexicalIndex {
    async fn replace(&self, delete_documents: &[String], docs: Vec<LexicalDocument>) -> Result<()> {
        let (delete, entries) = replacing(delete_documents, docs).await?;
        let mut sizes = HashMap::new();
        let mut tx = self.sql.begin_write().await?;
        delete_entries(&mut tx, &delete, &mut sizes).await?;
        insert_entries(&mut tx, &entries, &mut sizes).await?;
        apply_sizes(&mut tx, sizes).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn search(
        &self,
        query: &str,
        collections: &[String],
        limit: usize,
        ranking: Ranking,
    ) -> Result<Vec<(String, f32)>> {
        let terms = query_terms(query);
        if terms.is_empty() || collections.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = terms.iter().map(|(t, _)| term_id(t)).collect();
        let sizes = self.sizes(collections).await?;
        let df = self.document_frequencies(&ids, collections).await?;
        let mut kinds = vec![Kind::Passage];
        if ranking.document_weight > 0.0 {
            kinds.push(Kind::Document);
        }
        let (k1, b) = (f64::from(ranking.bm25.k1), f64::from(ranking.bm25.b));
        let mut weights = Vec::new();
        for kind in kinds {
            let kind = kind_code(kind);
            let s = sizes.get(&kind).copied().unwrap_or_default();
            for ((_, n), &term) in terms.iter().zip(&ids) {
                let q = f64::from(ranking.bm25.query_weight(*n));
                for (field, boost, tokens) in [
                    (TITLE, f64::from(ranking.title_boost) * q, s.title_tokens),
                    (BODY, q, s.body_tokens),
                ] {
                    let Some(&df) = df.get(&(term, kind, field)) else {
                        continue;
                    };
                    let idf = (1.0 + (s.entries - df + 0.5) / (df + 0.5)).ln();
                    let average = if s.entries > 0.0 {
                        tokens / s.entries
                    } else {
                        1.0
                    };
                    weights.push(TermWeight {
                        term,
                        kind,
                        field,
                        weight: boost * idf * (k1 + 1.0),
                        average_length: average.max(f64::from(f32::EPSILON)),
                    });
                }
            }
        }
        if weights.is_empty() {
            return Ok(Vec::new());
        }
        let values = (0..weights.len())
            .map(|i| {
                let n = i * 5;
                format!(
                    "(CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS DOUBLE PRECISION), CAST(${} AS DOUBLE PRECISION))",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        let p = weights.len() * 5;
        // Each entry's score, summed over its postings; a passage's mixed with its document's by
        // a window over the document (no self-join: on a list of hits the planner cannot size,
        // a join of the hits with themselves ran as a nested loop, quadratic in the hits); the
        // entries read for their chunk ids only at the top (ties at the last place kept, so the
        // order is score, then chunk id, as in the embedded index).
        let sql = format!(
            "WITH q (term, kind, field, weight, average_length) AS (VALUES {values}),
             hits AS (
                SELECT p.document_entry, p.entry_id, p.kind,
                       SUM(q.weight * p.tf / (p.tf + ${k1} * (1 - ${b} + ${b} * p.len / q.average_length))) AS score
                FROM lexical_postings p
                JOIN q ON p.term = q.term AND p.kind = q.kind AND p.field = q.field
                WHERE p.term IN ({term_list}) AND p.collection IN ({collections})
                GROUP BY p.document_entry, p.entry_id, p.kind
             ),
             mixed AS (
                SELECT entry_id, kind,
                       (1 - ${w}) * score + ${w} * COALESCE(
                           MAX(CASE WHEN kind = 1 THEN score END) OVER (PARTITION BY document_entry), 0
                       ) AS score
                FROM hits
             ),
             passages AS (SELECT entry_id, score FROM mixed WHERE kind = 0)
             SELECT e.chunk_id, CAST(s.score AS DOUBLE PRECISION) AS score
             FROM passages s
             JOIN lexical_entries e ON e.id = s.entry_id
             WHERE s.score >= COALESCE(
                 (SELECT score FROM passages ORDER BY score DESC LIMIT 1 OFFSET ${last}), -1)
             ORDER BY score DESC, e.chunk_id
             LIMIT ${limit}",
            k1 = p + 1,
            b = p + 2,
            w = p + 3,
            limit = p + 4,
            last = p + 5,
            collections = placeholders(p + 6, collections.len()),
            term_list = placeholders(p + 6 + collections.len(), ids.len()),
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for w in &weights {
            query = query
                .bind(w.term)
                .bind(w.kind)
                .bind(w.field)
                .bind(w.weight)
                .bind(w.average_length);
        }
        query = query
            .bind(k1)
            .bind(b)
            .bind(f64::from(ranking.document_weight))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit - 1).unwrap_or(i64::MAX));
        for c in collections {
            query = query.bind(c);
        }
        // the terms again, as a list the postings' index can be searched by (a join on the
        // weights alone let PostgreSQL scan every posting)
        for t in &ids {
            query = query.bind(*t);
        }
        query
            .fetch_all(&self.sql.pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("chunk_id")?,
                    r.try_get::<f64, _>("score")? as f32,
                ))
            })
            .collect()
    }

    async fn chunk_ids(&self) -> Result<Vec<String>> {
        sqlx::query("SELECT chunk_id FROM lexical_entries WHERE kind = 0")
            .fetch_all(&self.sql.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("chunk_id").map_err(Error::from))
            .collect()
    }

    async fn reset(&self) -> Result<()> {
        let mut tx = self.sql.begin_write().await?;
        for table in ["lexical_postings", "lexical_entries", "lexical_sizes"] {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    fn is_current(&self) -> bool {
        self.current.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn mark_current(&self) -> Result<()> {
        sqlx::query(
            "INSERT INTO lexical_format (id, format) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET format = excluded.format",
        )
        .bind(INDEX_FORMAT)
        .execute(&self.sql.pool)
        .await?;
        self.current
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }
}
