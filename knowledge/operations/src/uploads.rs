//! Uploads: a file sent by a curator, ingested while the request waits, or, past
//! `ingest.background_upload_bytes`, by a job of the server that received it. The curator gets the
//! job at once (`202`) and reads its progress; anyone who curates the collection may cancel it,
//! from any server (the runner reads the request back with each heartbeat).
//!
//! The runner writes its counts every [`HEARTBEAT`]; a running job whose heartbeat is older than
//! [`STALE_MS`] was lost with its server and is shown `interrupted`. Stopping a job drops its
//! ingestion: what was written stays whole, nothing more is embedded. A server shutting down
//! interrupts its jobs ([`Uploads::interrupt`]) and records them ([`Uploads::stopped`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use base::error::{Error, Result};
use base::principal::Principal;
use base::types::{CollectionName, now_ms};
use knowledge::Knowledge;
use knowledge::collections::{Collections, WriteAccess};

use crate::sources::{IngestReport, Ingestor, Input, ProgressCounts, ProgressSnapshot};
use crate::store::{UploadJob, UploadStatus, UploadStore};

/// How often a running job writes its progress and reads whether it was cancelled.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// A running job not heard from for this long is lost (its server stopped).
pub const STALE_MS: i64 = 30_000;

/// Jobs a collection's page and listing show.
const LISTED: usize = 50;

/// What an upload did: ingested while the caller waited, or handed to a job.
#[derive(Debug)]
pub enum Uploaded {
    Ingested(IngestReport),
    Started(UploadJob),
}

/// A job this server runs: how to stop it, and the task that records how it ended.
struct Running {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

pub struct Uploads {
    knowledge: Arc<Knowledge>,
    collections: Collections,
    store: Arc<dyn UploadStore>,
    ingestor: Arc<dyn Ingestor>,
    background_bytes: u64,
    running: Mutex<HashMap<String, Running>>,
    /// Cancelled when the server stops: its jobs end `interrupted`, not `cancelled`.
    stopping: CancellationToken,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads").finish_non_exhaustive()
    }
}

fn unknown(id: &str) -> Error {
    Error::NotFound(format!("no upload job {id:?}"))
}

impl Uploads {
    pub fn new(
        knowledge: Arc<Knowledge>,
        collections: Collections,
        store: Arc<dyn UploadStore>,
        ingestor: Arc<dyn Ingestor>,
        background_bytes: u64,
    ) -> Self {
        Self {
            knowledge,
            collections,
            store,
            ingestor,
            background_bytes,
            running: Mutex::default(),
            stopping: CancellationToken::new(),
        }
    }

    /// Ingests `bytes` as the file `filename` into a collection `principal` may write to: while
    /// the caller waits when it is small (or `background` is false), else by a job (or when
    /// `background` is true). A file that cannot be read is refused with its reason.
    pub async fn upload(
        self: &Arc<Self>,
        principal: &Principal,
        collection: &CollectionName,
        filename: &str,
        bytes: Vec<u8>,
        background: Option<bool>,
    ) -> Result<Uploaded> {
        let filename = filename.trim();
        if filename.is_empty()
            || filename.contains(['/', '\\'])
            || filename.len() > 200
            || filename.chars().any(char::is_control)
        {
            return Err(Error::InvalidInput(
                "?filename= must be a plain file name such as rules.md".into(),
            ));
        }
        if bytes.is_empty() {
            return Err(Error::InvalidInput(
                "the body is empty: send the file's bytes".into(),
            ));
        }
        let access = self
            .collections
            .authorize_write(principal, collection)
            .await?;
        let size = bytes.len() as u64;
        let input = Input::Upload {
            name: format!("upload:{filename}"),
            bytes,
        };
        if background.unwrap_or(size > self.background_bytes) {
            // an admin's upload to a new collection makes it now, not when the job gets to it:
            // the job is read through its collection from the first moment
            if access == WriteAccess::Create {
                self.knowledge.ensure_collection(collection).await?;
            }
            return self
                .start(principal, collection, filename, size, input)
                .await
                .map(Uploaded::Started);
        }
        let report = self
            .ingestor
            .ingest(self.knowledge.clone(), collection, vec![input], &())
            .await?;
        match report.failures.first() {
            Some(f) => Err(Error::InvalidInput(format!("{filename}: {}", f.reason))),
            None => Ok(Uploaded::Ingested(report)),
        }
    }

    async fn start(
        self: &Arc<Self>,
        principal: &Principal,
        collection: &CollectionName,
        filename: &str,
        size: u64,
        input: Input,
    ) -> Result<UploadJob> {
        if self.stopping.is_cancelled() {
            return Err(Error::Unavailable(
                "the server is shutting down: upload again in a moment".into(),
            ));
        }
        let now = now_ms();
        let job = UploadJob {
            id: uuid::Uuid::now_v7().to_string(),
            collection: collection.to_string(),
            user_id: principal.user.id.clone(),
            filename: filename.to_owned(),
            bytes: i64::try_from(size).unwrap_or(i64::MAX),
            status: UploadStatus::Running,
            progress: ProgressSnapshot::default(),
            report: serde_json::Value::Null,
            error: String::new(),
            cancel_requested: false,
            created_at: now,
            updated_at: now,
            finished_at: None,
        };
        self.store.insert_upload(&job).await?;
        let cancel = CancellationToken::new();
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let task = tokio::spawn(self.clone().run(
            job.id.clone(),
            collection.clone(),
            input,
            cancel.clone(),
        ));
        running.insert(job.id.clone(), Running { cancel, task });
        Ok(job)
    }

    /// Runs one job: the ingestion beside a heartbeat that writes its progress and stops it when
    /// a cancel was asked for (here or on another server) or the server stops.
    async fn run(
        self: Arc<Self>,
        id: String,
        collection: CollectionName,
        input: Input,
        cancel: CancellationToken,
    ) {
        let counts = ProgressCounts::default();
        let filename = input.name();
        let ended = {
            let ingest =
                self.ingestor
                    .ingest(self.knowledge.clone(), &collection, vec![input], &counts);
            tokio::pin!(ingest);
            let mut heartbeat = tokio::time::interval(HEARTBEAT);
            heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    done = &mut ingest => break Some(done),
                    () = cancel.cancelled() => break None,
                    () = self.stopping.cancelled() => break None,
                    _ = heartbeat.tick() => {
                        match self.store.upload_progress(&id, &counts.snapshot(), now_ms()).await {
                            Ok(true) => break None,
                            Ok(false) => {}
                            Err(e) => tracing::warn!(job = %id, error = %e, "upload progress not written"),
                        }
                    }
                }
            }
            // the ingestion is dropped here: its embedding stops after the batch under way
        };
        let failed = |error: String| (UploadStatus::Failed, serde_json::Value::Null, error);
        let (status, report, error) = match ended {
            Some(Ok(report)) => {
                let error = report
                    .failures
                    .first()
                    .map(|f| format!("{}: {}", f.path.trim_start_matches("upload:"), f.reason))
                    .unwrap_or_default();
                let status = if error.is_empty() {
                    UploadStatus::Succeeded
                } else {
                    UploadStatus::Failed
                };
                let report = serde_json::to_value(&report).unwrap_or_default();
                (status, report, error)
            }
            Some(Err(e)) => failed(e.to_string()),
            None if self.stopping.is_cancelled() => (
                UploadStatus::Interrupted,
                serde_json::Value::Null,
                "the server stopped before it finished; upload the file again".to_owned(),
            ),
            None => (
                UploadStatus::Cancelled,
                serde_json::Value::Null,
                "cancelled".to_owned(),
            ),
        };
        if let Err(e) = self
            .store
            .finish_upload(&id, status, &counts.snapshot(), &report, &error, now_ms())
            .await
        {
            tracing::error!(job = %id, error = %e, "upload job's end not recorded");
        }
        tracing::info!(job = %id, file = %filename, status = %status, "upload job ended");
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// One job of a collection `principal` curates.
    pub async fn job(
        &self,
        principal: &Principal,
        collection: &CollectionName,
        id: &str,
    ) -> Result<UploadJob> {
        self.collections
            .require_curator(principal, collection)
            .await?;
        self.mark_lost().await?;
        match self.store.upload(id).await? {
            Some(job) if job.collection == collection.as_str() => Ok(job),
            _ => Err(unknown(id)),
        }
    }

    /// The latest jobs of a collection `principal` curates, newest first.
    pub async fn jobs(
        &self,
        principal: &Principal,
        collection: &CollectionName,
    ) -> Result<Vec<UploadJob>> {
        self.collections
            .require_curator(principal, collection)
            .await?;
        self.mark_lost().await?;
        self.store.uploads(collection.as_str(), LISTED).await
    }

    /// Asks a running job to stop (on this server at once, on another at its next heartbeat);
    /// the job as it stands. A job that has ended is a conflict.
    pub async fn cancel(
        &self,
        principal: &Principal,
        collection: &CollectionName,
        id: &str,
    ) -> Result<UploadJob> {
        let job = self.job(principal, collection, id).await?;
        if !self.store.cancel_upload(&job.id).await? {
            return Err(Error::Conflict(format!(
                "the upload job {id:?} has already ended ({})",
                job.status
            )));
        }
        let local = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&job.id)
            .map(|r| r.cancel.clone());
        if let Some(cancel) = local {
            cancel.cancel();
        }
        self.job(principal, collection, id).await
    }

    /// Running jobs whose server went silent are recorded as interrupted.
    async fn mark_lost(&self) -> Result<()> {
        let now = now_ms();
        self.store
            .interrupt_stale_uploads(now - STALE_MS, now)
            .await?;
        Ok(())
    }

    /// Stops this server's jobs (the server is shutting down): each ends `interrupted`. New
    /// uploads that would need a job are refused from now on.
    pub fn interrupt(&self) {
        self.stopping.cancel();
    }

    /// Waits, at most `within`, for this server's interrupted jobs to record how they ended.
    pub async fn stopped(&self, within: Duration) {
        self.interrupt();
        let tasks: Vec<JoinHandle<()>> = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, r)| r.task)
            .collect();
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("upload jobs still recording their end when the server stopped");
        }
    }
}
