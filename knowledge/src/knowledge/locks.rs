//! One writer per document: writes and deletions of a document hold its lock through SQL and
//! both derived indexes. Within a server, stripes of async mutexes (by id hash, taken in order,
//! so two writers never deadlock); on a shared deployment, where other servers write the same
//! stores, also PostgreSQL advisory locks, one per document, taken in key order inside a
//! transaction whose end (commit, rollback, or the connection's return to the pool when the
//! guard is dropped) releases them.

use std::collections::BTreeSet;

use tokio::sync::{MutexGuard, Semaphore, SemaphorePermit};

use super::{DOCUMENT_LOCK_STRIPES, Knowledge};
use base::error::{Error, Result};
use base::sql::{SqlStore, advisory_xact_lock};
use base::types::hash64;

/// Connections a server holds locks on at once: the rest of the pool stays free for the writes
/// the locks guard (a writer waiting for a connection while every connection waits for it would
/// never wake).
const LOCK_HOLDERS: usize = 3;

/// The advisory locks of a shared deployment.
pub(super) struct SharedLocks {
    sql: SqlStore,
    holders: Semaphore,
}

impl SharedLocks {
    pub(super) fn new(sql: &SqlStore) -> Self {
        Self {
            sql: sql.clone(),
            holders: Semaphore::new(LOCK_HOLDERS),
        }
    }
}

/// Held while documents are written or deleted; dropping it lets the next writer in.
pub(super) struct DocumentLock<'a> {
    _local: Vec<MutexGuard<'a, ()>>,
    _shared: Option<(SemaphorePermit<'a>, sqlx::Transaction<'static, sqlx::Any>)>,
}

impl Knowledge {
    /// Holds the write lock of each document in `ids`: two uploads of one document, or an
    /// upload racing its deletion, run one after the other through SQL and both derived
    /// indexes, on one server or on several.
    pub(super) async fn lock_documents(&self, ids: &[String]) -> Result<DocumentLock<'_>> {
        let stripes: BTreeSet<usize> = ids
            .iter()
            .map(|id| {
                let head = id.as_bytes().iter().take(8).fold(0usize, |h, b| {
                    h.wrapping_mul(31).wrapping_add(usize::from(*b))
                });
                head % DOCUMENT_LOCK_STRIPES
            })
            .collect();
        let mut local = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            local.push(self.document_locks[stripe].lock().await);
        }
        let shared = match &self.shared_locks {
            Some(locks) => {
                let permit = locks
                    .holders
                    .acquire()
                    .await
                    .map_err(|_| Error::Unavailable("shutting down".into()))?;
                let keys: BTreeSet<i64> = ids
                    .iter()
                    .map(|id| hash64(&["lariat document", id]))
                    .collect();
                let mut tx = locks.sql.pool.begin().await?;
                for key in keys {
                    advisory_xact_lock(&mut tx, key).await?;
                }
                Some((permit, tx))
            }
            None => None,
        };
        Ok(DocumentLock {
            _local: local,
            _shared: shared,
        })
    }
}
