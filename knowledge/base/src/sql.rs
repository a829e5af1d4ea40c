//! The one database every concern keeps its rows in, on sqlx's `Any` driver: one body of SQL for
//! SQLite and PostgreSQL (both accept `$n` parameters and `ON CONFLICT … DO UPDATE`), each with
//! its own migrations folder. Each concern's crate implements its own store trait on
//! [`SqlStore`]; this module only opens, migrates and lends transactions.

use std::path::Path;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};

use crate::config::Secret;
use crate::error::{Error, Result};

/// Rows per `IN (…)` list, well under both databases' parameter limits.
const IN_BATCH: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct SqlStore {
    pub pool: AnyPool,
    pub dialect: Dialect,
}

/// A column holding one of an enum's words ([`crate::words!`]), parsed. A word this build does
/// not know is the database's fault, not the caller's: an internal error naming the column.
pub fn word<T>(row: &AnyRow, column: &str, parse: fn(&str) -> Result<T>) -> Result<T> {
    let text: String = row.try_get(column)?;
    parse(&text).map_err(|e| Error::Internal(format!("column {column}: {e}")))
}

pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `($1,…,$width),($width+1,…),…`: the VALUES of a `count`-row INSERT.
pub fn rows(count: usize, width: usize) -> String {
    (0..count)
        .map(|i| format!("({})", placeholders(i * width + 1, width)))
        .collect::<Vec<_>>()
        .join(",")
}

fn sqlite_url(path: &Path) -> String {
    let mut encoded = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => encoded.push_str("%25"),
            ' ' => encoded.push_str("%20"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            c => encoded.push(c),
        }
    }
    format!("sqlite://{encoded}?mode=rwc")
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite database at `path`, in WAL mode, and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        sqlx::any::install_default_drivers();
        // Created owner-only before SQLite opens it: SQLite gives its -wal and -shm files the
        // database file's permissions.
        crate::files::create_private_file(path)?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // deleted content is overwritten, so an erased user's text leaves the file
                    conn.execute("PRAGMA secure_delete = ON").await?;
                    Ok(())
                })
            })
            .connect(&sqlite_url(path))
            .await?;
        sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            dialect: Dialect::Sqlite,
        })
    }

    /// Connects to PostgreSQL at `url` and migrates it.
    pub async fn open_postgres(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await?;
        Ok(Self {
            pool,
            dialect: Dialect::Postgres,
        })
    }

    /// The store the configuration names: PostgreSQL when `database_url` is set, else SQLite
    /// in the data dir.
    pub async fn open_config(data_dir: &Path, database_url: Option<&Secret>) -> Result<Self> {
        match database_url {
            Some(url) if url.expose().starts_with("postgres") => {
                Self::open_postgres(url.expose()).await
            }
            Some(_) => Err(Error::InvalidInput(
                "database_url must be a postgres:// URL (SQLite lives in the data dir)".into(),
            )),
            None => Self::open_sqlite(&data_dir.join("lariat.db")).await,
        }
    }

    /// A transaction that writes. SQLite's takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads and then writes cannot wait for the lock, and fails
    /// with "database is locked" under concurrent writers instead.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.pool.begin().await?,
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// `sql_prefix (…ids…) sql_suffix`, bound, once per batch of ids.
    pub fn in_queries<'q>(
        sql_prefix: &str,
        sql_suffix: &str,
        ids: &'q [String],
    ) -> impl Iterator<Item = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>> {
        ids.chunks(IN_BATCH).map(move |batch| {
            let sql = format!(
                "{sql_prefix} ({}) {sql_suffix}",
                placeholders(1, batch.len())
            );
            batch
                .iter()
                .fold(sqlx::query(AssertSqlSafe(sql)), |q, id| q.bind(id))
        })
    }

    pub async fn fetch_in(
        &self,
        sql_prefix: &str,
        sql_suffix: &str,
        ids: &[String],
    ) -> Result<Vec<AnyRow>> {
        let mut rows = Vec::new();
        for q in Self::in_queries(sql_prefix, sql_suffix, ids) {
            rows.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(rows)
    }

    pub async fn execute_in(&self, sql_prefix: &str, ids: &[String]) -> Result<()> {
        for q in Self::in_queries(sql_prefix, "", ids) {
            q.execute(&self.pool).await?;
        }
        Ok(())
    }
}

/// Takes PostgreSQL's advisory lock `key` for the rest of `tx` (its end releases it).
pub async fn advisory_xact_lock(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: i64,
) -> Result<()> {
    // the lock's own result is `void`, a type sqlx's `Any` driver cannot read
    sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Takes between two prunings of the buckets that are full again.
const RATE_PRUNE_EVERY: u64 = 1024;
static RATE_TAKES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Rate limits' buckets in `rate_limits`, as GCRA: a bucket is the time its next cell would be
/// due were it empty (`tat`); a take moves it one interval on, and is refused when that would put
/// it more than `burst` intervals ahead of now. One conditional upsert, so concurrent takes on
/// any number of servers never both get the last cell.
#[async_trait::async_trait]
impl crate::ratelimit::RateStore for SqlStore {
    async fn take(
        &self,
        key: &str,
        interval_ms: i64,
        burst: u32,
        now_ms: i64,
    ) -> Result<Option<u64>> {
        if RATE_TAKES
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(RATE_PRUNE_EVERY)
        {
            sqlx::query("DELETE FROM rate_limits WHERE tat < $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
        }
        let tolerance = interval_ms.saturating_mul(i64::from(burst));
        let taken = sqlx::query(
            "INSERT INTO rate_limits (key, tat) VALUES ($1, $2 + $3)
             ON CONFLICT (key) DO UPDATE
                SET tat = (CASE WHEN rate_limits.tat > $2 THEN rate_limits.tat ELSE $2 END) + $3
                WHERE (CASE WHEN rate_limits.tat > $2 THEN rate_limits.tat ELSE $2 END) + $3 - $4 <= $2
             RETURNING tat",
        )
        .bind(key)
        .bind(now_ms)
        .bind(interval_ms)
        .bind(tolerance)
        .fetch_optional(&self.pool)
        .await?;
        if taken.is_some() {
            return Ok(None);
        }
        let tat: i64 = sqlx::query("SELECT tat FROM rate_limits WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("tat"))
            .transpose()?
            .unwrap_or(now_ms);
        let due = tat.max(now_ms) + interval_ms - tolerance;
        Ok(Some(u64::try_from(due - now_ms).unwrap_or(0).max(1)))
    }
}

/// `text` for a LIKE pattern: its wildcard characters escaped (with `ESCAPE '\'`).
pub fn like_escaped(text: &str) -> String {
    let mut p = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p
}
