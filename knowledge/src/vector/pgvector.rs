//! [`VectorStore`] on PostgreSQL with pgvector, in the deployment's own database: one table,
//! `chunk_vectors`, whose `vector(DIMENSION)` column has an HNSW index for cosine distance. Any
//! number of servers share it; a write is one transaction, so a returned write is what every
//! server's next search sees.
//!
//! The table is not in the migrations: its column type carries the model's dimension, and a
//! deployment that keeps its vectors elsewhere needs no pgvector on its server. [`PgVectorStore::open`]
//! creates it (and the extension) under an advisory lock, so replicas starting together do not
//! race, and refuses one holding vectors of another dimension, as the embedded store does.
//!
//! Searches follow the embedded store's rule: exact below `retrieval.exact_search_below` points
//! (a sequential scan: no index is used), HNSW above it with `hnsw.ef_search = retrieval.hnsw_ef`
//! and an iterative scan, so a collection filter that rejects most of the nearest points still
//! fills the list, in exact distance order.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::{Neighbour, VectorPoint, VectorStore, vector_err};
use crate::config::RetrievalConfig;
use base::error::{Error, Result};
use base::sql::{Dialect, SqlStore, advisory_xact_lock, placeholders};

/// Taken while the table is made or remade (`pg_advisory_xact_lock`): "lariat vectors".
const SCHEMA_LOCK: i64 = 0x6c61_7269_6174_7663;
/// Rows per INSERT: four parameters each, well under PostgreSQL's 65,535.
const INSERT_BATCH: usize = 500;
/// How long the point count that chooses exact or HNSW search is trusted: other servers write
/// too.
const COUNT_TTL: Duration = Duration::from_secs(30);

/// pgvector's text form of a vector: `[x,y,…]`, each float written so it reads back exactly.
fn literal(vector: &[f32]) -> String {
    let mut s = String::with_capacity(vector.len() * 12 + 2);
    s.push('[');
    for (i, x) in vector.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

/// A vector from pgvector's text form (the inverse of [`literal`]).
/// A vector from pgvector's binary form (`vector_send`): its dimension and an unused word, two
/// bytes each, then each component as a big-endian `f32`.
fn from_binary(bytes: &[u8]) -> Result<Vec<f32>> {
    let bad = || vector_err(format!("not a binary vector ({} bytes)", bytes.len()));
    let (head, components) = bytes.split_at_checked(4).ok_or_else(bad)?;
    let dimension = usize::from(u16::from_be_bytes([head[0], head[1]]));
    if components.len() != dimension * 4 {
        return Err(bad());
    }
    Ok(components
        .chunks_exact(4)
        .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[derive(Debug)]
pub struct PgVectorStore {
    pool: AnyPool,
    exact_below: usize,
    hnsw_ef: usize,
    /// When the points were last counted, and how many there were; `None` after this server
    /// wrote.
    counted: Mutex<Option<(Instant, usize)>>,
}

/// Creates the extension and the table for `dimension`-d vectors (and their indexes) unless they
/// exist; with `replace`, drops the table first.
async fn create_table(pool: &AnyPool, dimension: usize, replace: bool) -> Result<()> {
    let mut tx = pool.begin().await?;
    advisory_xact_lock(&mut tx, SCHEMA_LOCK).await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS vector")
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            Error::Unavailable(format!(
                "PostgreSQL cannot load pgvector ({e}): install the server's pgvector package, or run `CREATE EXTENSION vector` as a superuser"
            ))
        })?;
    if replace {
        sqlx::query("DROP TABLE IF EXISTS chunk_vectors")
            .execute(&mut *tx)
            .await?;
    }
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS chunk_vectors (
                chunk_id uuid PRIMARY KEY,
                document_id text NOT NULL,
                collection text NOT NULL,
                embedding vector({dimension}) NOT NULL
            )"
        ),
        "CREATE INDEX IF NOT EXISTS chunk_vectors_document ON chunk_vectors (document_id)".into(),
        "CREATE INDEX IF NOT EXISTS chunk_vectors_collection ON chunk_vectors (collection)".into(),
        "CREATE INDEX IF NOT EXISTS chunk_vectors_hnsw ON chunk_vectors USING hnsw (embedding vector_cosine_ops)".into(),
    ];
    for statement in statements {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The dimension the table's vectors have, if the table exists.
async fn stored_dimension(pool: &AnyPool) -> Result<Option<usize>> {
    let row = sqlx::query(
        "SELECT a.atttypmod AS dimension FROM pg_attribute a
         WHERE a.attrelid = to_regclass('chunk_vectors') AND a.attname = 'embedding'",
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| r.try_get::<i32, _>("dimension"))
        .transpose()
        .map(|d| d.map(|d| d.max(0) as usize))
        .map_err(Error::from)
}

impl PgVectorStore {
    /// The store in `sql`'s PostgreSQL database, made for `dimension`-d vectors if it is not
    /// there. A table of another dimension is a conflict (`lariat reindex` remakes it).
    pub async fn open(
        sql: &SqlStore,
        dimension: usize,
        retrieval: &RetrievalConfig,
    ) -> Result<Self> {
        if sql.dialect != Dialect::Postgres {
            return Err(Error::InvalidInput(
                "retrieval.vector_store = \"pgvector\" needs database_url to name a PostgreSQL database".into(),
            ));
        }
        let pool = sql.pool.clone();
        match stored_dimension(&pool).await? {
            Some(stored) if stored != dimension => {
                return Err(Error::Conflict(format!(
                    "the vector table holds {stored}-d vectors but the model gives {dimension}-d; run `lariat reindex`"
                )));
            }
            Some(_) => {}
            None => create_table(&pool, dimension, false).await?,
        }
        Ok(Self {
            pool,
            exact_below: retrieval.exact_search_below,
            hnsw_ef: retrieval.hnsw_ef,
            counted: Mutex::new(None),
        })
    }

    /// Counts the points: PostgreSQL's own estimate when the table is far past the threshold
    /// (counting a million rows on every search would cost more than it decides), else exactly.
    async fn count(&self) -> Result<usize> {
        let estimate: f64 = sqlx::query(
            "SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass('chunk_vectors')",
        )
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get("n"))
        .transpose()?
        .unwrap_or(-1.0);
        let n = if estimate > 10.0 * self.exact_below as f64 {
            estimate as usize
        } else {
            let n: i64 = sqlx::query("SELECT count(*) AS n FROM chunk_vectors")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
            n.max(0) as usize
        };
        *self.counted() = Some((Instant::now(), n));
        Ok(n)
    }

    fn counted(&self) -> std::sync::MutexGuard<'_, Option<(Instant, usize)>> {
        self.counted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The points held, counted again after this server wrote and when the last count is older
    /// than [`COUNT_TTL`].
    async fn points(&self) -> Result<usize> {
        let known = self.counted().filter(|(at, _)| at.elapsed() < COUNT_TTL);
        match known {
            Some((_, n)) => Ok(n),
            None => self.count().await,
        }
    }
}

#[async_trait]
impl VectorStore for PgVectorStore {
    async fn replace(&self, delete_documents: &[String], points: Vec<VectorPoint>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for ids in delete_documents.chunks(INSERT_BATCH) {
            let sql = format!(
                "DELETE FROM chunk_vectors WHERE document_id IN ({})",
                placeholders(1, ids.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in ids {
                query = query.bind(id);
            }
            query.execute(&mut *tx).await?;
        }
        for batch in points.chunks(INSERT_BATCH) {
            let rows = (0..batch.len())
                .map(|i| {
                    let n = i * 4;
                    format!(
                        "(${}::uuid, ${}, ${}, ${}::vector)",
                        n + 1,
                        n + 2,
                        n + 3,
                        n + 4
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!(
                "INSERT INTO chunk_vectors (chunk_id, document_id, collection, embedding) VALUES {rows}
                 ON CONFLICT (chunk_id) DO UPDATE SET document_id = excluded.document_id,
                 collection = excluded.collection, embedding = excluded.embedding"
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for p in batch {
                query = query
                    .bind(p.chunk_id.to_string())
                    .bind(&p.document_id)
                    .bind(&p.collection)
                    .bind(literal(&p.vector));
            }
            query.execute(&mut *tx).await.map_err(vector_err)?;
        }
        tx.commit().await?;
        *self.counted() = None;
        Ok(())
    }

    async fn nearest(
        &self,
        vector: Vec<f32>,
        collections: &[String],
        limit: usize,
        with_vectors: bool,
    ) -> Result<Vec<Neighbour>> {
        if collections.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let exact = self.points().await? < self.exact_below;
        let mut tx = self.pool.begin().await?;
        let settings: &[(&str, String)] = if exact {
            &[("enable_indexscan", "off".into())]
        } else {
            &[
                ("hnsw.ef_search", self.hnsw_ef.min(1000).to_string()),
                ("hnsw.iterative_scan", "strict_order".into()),
            ]
        };
        for (name, value) in settings {
            sqlx::query("SELECT set_config($1, $2, true)")
                .bind(*name)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        let sql = format!(
            "SELECT chunk_id::text AS id, 1 - (embedding <=> $1::vector) AS score{}
             FROM chunk_vectors WHERE collection IN ({})
             ORDER BY embedding <=> $1::vector LIMIT $2",
            if with_vectors {
                // pgvector's binary form: far cheaper to write and read than its text
                ", vector_send(embedding) AS vector"
            } else {
                ""
            },
            placeholders(3, collections.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(literal(&vector))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        for c in collections {
            query = query.bind(c);
        }
        let rows = query.fetch_all(&mut *tx).await.map_err(vector_err)?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(Neighbour {
                    chunk_id: r.try_get("id")?,
                    score: r.try_get::<f64, _>("score")? as f32,
                    vector: match with_vectors {
                        true => from_binary(&r.try_get::<Vec<u8>, _>("vector")?)?,
                        false => Vec::new(),
                    },
                })
            })
            .collect()
    }

    async fn chunk_ids(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT chunk_id::text AS id FROM chunk_vectors")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(Error::from))
            .collect()
    }

    async fn reset(&self, dimension: usize) -> Result<()> {
        create_table(&self.pool, dimension, true).await?;
        *self.counted() = None;
        Ok(())
    }

    /// A committed write is already durable.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{from_binary, literal};

    #[test]
    fn binary_vectors_read_as_pgvector_sends_them() {
        // SELECT vector_send('[1,2.5,-3]'::vector) on pgvector 0.8
        let sent = [
            0x00, 0x03, 0x00, 0x00, 0x3f, 0x80, 0x00, 0x00, 0x40, 0x20, 0x00, 0x00, 0xc0, 0x40,
            0x00, 0x00,
        ];
        assert_eq!(from_binary(&sent).unwrap(), vec![1.0, 2.5, -3.0]);
        assert_eq!(from_binary(&[0, 0, 0, 0]).unwrap(), Vec::<f32>::new());
        for bad in [&sent[..15], &sent[..3], &[][..], &[0, 9, 0, 0][..]] {
            assert!(from_binary(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn vectors_are_written_as_pgvector_reads_them() {
        assert_eq!(literal(&[]), "[]");
        assert_eq!(literal(&[1.0, -0.5, 0.1]), "[1,-0.5,0.1]");
        let tiny = f32::MIN_POSITIVE;
        assert_eq!(
            literal(&[tiny])
                .trim_matches(['[', ']'])
                .parse::<f32>()
                .unwrap(),
            tiny
        );
    }
}
