//! Copying a deployment's rows from its SQLite database into an empty PostgreSQL one, table by
//! table (`lariat migrate-store`): every table both migrations made, parents before the tables
//! that reference them, in batches of rows taken in the source's `rowid` order.
//!
//! Each batch is one transaction on the target that also records how far its table has come (in
//! `store_copy`), so a copy killed at any moment resumes after the last batch it committed, and a
//! row is never copied twice. The source is only read. Derived rows (the lexical index's term
//! tables) are not copied: the indexes are rebuilt from the chunks afterwards.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::{AssertSqlSafe, Row, TypeInfo, ValueRef};

use crate::error::{Error, Result};
use crate::sql::{Dialect, SqlStore};

/// Rows per batch (and per transaction on the target).
const BATCH: i64 = 500;

/// Tables never copied: the migrations' own bookkeeping and what is derived from the chunks.
const SKIPPED: &[&str] = &[
    "_sqlx_migrations",
    "store_copy",
    "lexical_entries",
    "lexical_postings",
    "lexical_sizes",
    "lexical_format",
];

/// How far one table has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableProgress {
    pub table: String,
    pub copied: i64,
    pub total: i64,
}

/// The tables to copy, parents first (by the target's foreign keys), with the target's column
/// types.
async fn plan(
    source: &SqlStore,
    target: &SqlStore,
) -> Result<Vec<(String, Vec<(String, String)>)>> {
    let mut columns: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for row in sqlx::query(
        "SELECT CAST(table_name AS TEXT) AS table_name, CAST(column_name AS TEXT) AS column_name,
                CAST(data_type AS TEXT) AS data_type FROM information_schema.columns
         WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
    )
    .fetch_all(&target.pool)
    .await?
    {
        let table: String = row.try_get("table_name")?;
        if SKIPPED.contains(&table.as_str()) || table == "chunk_vectors" {
            continue;
        }
        columns
            .entry(table)
            .or_default()
            .push((row.try_get("column_name")?, row.try_get("data_type")?));
    }
    let in_source: BTreeSet<String> =
        sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&source.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("name"))
            .collect::<std::result::Result<_, _>>()?;
    if let Some(missing) = columns.keys().find(|t| !in_source.contains(*t)) {
        return Err(Error::Conflict(format!(
            "the source database has no table {missing}: migrate it with this version of lariat first (open it once)"
        )));
    }
    let mut parents: HashMap<String, BTreeSet<String>> = HashMap::new();
    for row in sqlx::query(
        "SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent
         FROM pg_constraint c WHERE c.contype = 'f'",
    )
    .fetch_all(&target.pool)
    .await?
    {
        let child: String = row.try_get("child")?;
        let parent: String = row.try_get("parent")?;
        if child != parent {
            parents.entry(child).or_default().insert(parent);
        }
    }
    // parents first: repeatedly take the tables whose parents are all placed
    let mut order = Vec::new();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    while placed.len() < columns.len() {
        let ready: Vec<String> = columns
            .keys()
            .filter(|t| !placed.contains(*t))
            .filter(|t| {
                parents.get(*t).is_none_or(|p| {
                    p.iter()
                        .all(|p| placed.contains(p) || !columns.contains_key(p))
                })
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(Error::Internal(
                "the tables' foreign keys form a loop".into(),
            ));
        }
        for t in ready {
            placed.insert(t.clone());
            order.push(t);
        }
    }
    Ok(order
        .into_iter()
        .map(|t| {
            let c = columns.remove(&t).unwrap_or_default();
            (t, c)
        })
        .collect())
}

/// Whether `target` holds rows that no earlier copy wrote: a copy goes only into an empty
/// deployment (or one this copy began).
async fn check_target(target: &SqlStore, tables: &[(String, Vec<(String, String)>)]) -> Result<()> {
    let started: BTreeSet<String> = sqlx::query("SELECT table_name FROM store_copy")
        .fetch_all(&target.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("table_name"))
        .collect::<std::result::Result<_, _>>()?;
    for (table, _) in tables {
        if started.contains(table) {
            continue;
        }
        let any = sqlx::query(AssertSqlSafe(format!(
            "SELECT 1 AS one FROM {table} LIMIT 1"
        )))
        .fetch_optional(&target.pool)
        .await?;
        if any.is_some() {
            return Err(Error::Conflict(format!(
                "the target database already holds rows in {table}: a deployment moves only into an empty database"
            )));
        }
    }
    Ok(())
}

/// One SQLite value, bound as what it is; the target casts it to its column's type.
fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    row: &sqlx::any::AnyRow,
    i: usize,
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(query.bind(None::<String>));
    }
    let kind = raw.type_info().name().to_ascii_uppercase();
    Ok(match kind.as_str() {
        "INTEGER" | "BIGINT" | "INT" | "SMALLINT" | "BOOLEAN" => {
            query.bind(row.try_get::<i64, _>(i)?)
        }
        "REAL" | "DOUBLE" | "FLOAT" => query.bind(row.try_get::<f64, _>(i)?),
        "BLOB" => query.bind(row.try_get::<Vec<u8>, _>(i)?),
        _ => query.bind(row.try_get::<String, _>(i)?),
    })
}

/// Copies every table of `source` (SQLite) into `target` (PostgreSQL), resuming where an earlier
/// copy stopped; `progress` hears of each batch.
pub async fn copy_rows(
    source: &SqlStore,
    target: &SqlStore,
    mut progress: impl FnMut(&TableProgress),
) -> Result<Vec<TableProgress>> {
    if source.dialect != Dialect::Sqlite || target.dialect != Dialect::Postgres {
        return Err(Error::InvalidInput(
            "rows are copied from a SQLite deployment into PostgreSQL".into(),
        ));
    }
    let tables = plan(source, target).await?;
    check_target(target, &tables).await?;
    let mut done = Vec::new();
    for (table, columns) in tables {
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        let list = names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let total: i64 = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(&source.pool)
            .await?
            .try_get("n")?;
        let (mut after, mut copied): (i64, i64) =
            match sqlx::query("SELECT last_rowid, copied FROM store_copy WHERE table_name = $1")
                .bind(&table)
                .fetch_optional(&target.pool)
                .await?
            {
                Some(r) => (r.try_get("last_rowid")?, r.try_get("copied")?),
                None => (i64::MIN, 0),
            };
        let select = format!(
            "SELECT rowid AS lariat_rowid, {list} FROM {table} WHERE rowid > $1 ORDER BY rowid LIMIT {BATCH}"
        );
        loop {
            let rows = sqlx::query(AssertSqlSafe(select.clone()))
                .bind(after)
                .fetch_all(&source.pool)
                .await?;
            let Some(last) = rows.last() else { break };
            let last_rowid: i64 = last.try_get("lariat_rowid")?;
            let values = (0..rows.len())
                .map(|r| {
                    let n = r * columns.len();
                    let cells = columns
                        .iter()
                        .enumerate()
                        .map(|(c, (_, ty))| format!("CAST(${} AS {ty})", n + c + 1))
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!("({cells})")
                })
                .collect::<Vec<_>>()
                .join(", ");
            let insert = format!("INSERT INTO {table} ({list}) VALUES {values}");
            let mut query = sqlx::query(AssertSqlSafe(insert));
            for row in &rows {
                for c in 0..columns.len() {
                    query = bind(query, row, c + 1)?;
                }
            }
            copied += rows.len() as i64;
            let mut tx = target.begin_write().await?;
            query.execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO store_copy (table_name, last_rowid, copied) VALUES ($1, $2, $3)
                 ON CONFLICT (table_name) DO UPDATE SET last_rowid = excluded.last_rowid, copied = excluded.copied",
            )
            .bind(&table)
            .bind(last_rowid)
            .bind(copied)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            crate::crashpoint::reached(crate::crashpoint::COPY_BATCH);
            after = last_rowid;
            progress(&TableProgress {
                table: table.clone(),
                copied,
                total,
            });
        }
        done.push(TableProgress {
            table,
            copied,
            total,
        });
    }
    Ok(done)
}
