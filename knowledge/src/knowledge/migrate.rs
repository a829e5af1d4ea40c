//! Moving an embedded deployment onto shared engines (`lariat migrate-store`): its rows copied
//! from SQLite into PostgreSQL, then the target's vector and lexical indexes built from the
//! copied chunks and their stored embeddings — nothing is embedded again. The source is read
//! under its data-dir lock and never written; a move killed at any moment resumes where it
//! stopped (see [`base::copy`]).

use super::*;
use base::copy::{TableProgress, copy_rows};

/// What a move did.
#[derive(Debug, Clone, Serialize)]
pub struct MoveReport {
    /// Rows per table, copied over all runs of the move.
    pub tables: Vec<(String, i64)>,
    /// Chunks indexed in the target's vector and lexical stores.
    pub chunks: usize,
    /// The target checked afterwards: every store holds the same chunks.
    pub check: CheckReport,
}

/// What a move reports while it runs.
pub trait MoveProgress: Send + Sync {
    /// A batch of `table` was copied.
    fn copied(&self, progress: &TableProgress);
    /// The rows are copied; the indexes are being built.
    fn indexing(&self);
}

impl Knowledge {
    /// Moves the embedded deployment `from` (SQLite and the indexes in its data dir) to `to`
    /// (PostgreSQL, with its vector and lexical backends), which must be empty or hold an
    /// unfinished move of the same deployment.
    pub async fn move_store(
        from: &Setup<'_>,
        to: &Setup<'_>,
        progress: &dyn MoveProgress,
    ) -> Result<MoveReport> {
        if from.database_url.is_some() {
            return Err(Error::InvalidInput(
                "only an embedded deployment (SQLite in the data dir) is moved; this one already uses database_url".into(),
            ));
        }
        let Some(url) = to.database_url else {
            return Err(Error::InvalidInput(
                "the target needs a PostgreSQL database (--to postgres://…)".into(),
            ));
        };
        if !to.shared() {
            return Err(Error::InvalidInput(
                "the target's vectors and lexical index must be shared engines: pgvector or qdrant, and database or qdrant".into(),
            ));
        }
        let _lock = lock_data_dir(from)?;
        let source = SqlStore::open_sqlite(&from.data_dir.join("lariat.db")).await?;
        let target = Arc::new(SqlStore::open_config(from.data_dir, Some(url)).await?);
        let copied = copy_rows(&source, &target, |p| progress.copied(p)).await;
        source.close().await;
        let tables = copied?.into_iter().map(|t| (t.table, t.copied)).collect();
        progress.indexing();
        // built once, from SQL: not first by the opening's own recovery and stale-index rebuild
        let knowledge = Self::open_stores(to, target.clone(), None).await?;
        let chunks = knowledge.reindex().await?;
        knowledge.recover().await?;
        let check = knowledge.check().await?;
        Ok(MoveReport {
            tables,
            chunks,
            check,
        })
    }
}
