//! Operations' rows: the runs of scheduled jobs, collections' sources and what their syncs found,
//! users' exports, and the deletions by age and by erasure that span every concern.

use async_trait::async_trait;
use base::Result;

use crate::sources::Source;

/// One occurrence of a job as its holder holds it: the row, and the attempt that fences its
/// writes (a holder whose lease was taken over writes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobClaim {
    pub id: String,
    pub job: String,
    pub slot: i64,
    pub owner: String,
    pub attempt: i64,
}

/// How a held run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    Succeeded {
        outcome: String,
    },
    /// Failed; tried again from `at`.
    Retry {
        error: String,
        at: i64,
    },
    /// Failed for good.
    Failed {
        error: String,
    },
}

/// What started a run: its schedule came round, or someone asked for it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Manual,
}

base::words!(Trigger, "trigger", { Schedule => "schedule", Manual => "manual" });

/// Where a run stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Held by a runner (until its lease runs out).
    Running,
    /// Failed, to be tried again at `next_attempt_at`.
    Retry,
    Succeeded,
    /// Failed for good.
    Failed,
}

base::words!(RunStatus, "run status", {
    Running => "running",
    Retry => "retry",
    Succeeded => "succeeded",
    Failed => "failed",
});

/// One occurrence of a job as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct JobRun {
    pub id: String,
    pub job: String,
    /// When it was due (ms): the schedule's occurrence, or the moment it was asked for.
    pub slot: i64,
    pub trigger: Trigger,
    pub status: RunStatus,
    /// The runner holding or last holding it.
    pub owner: String,
    pub attempt: i64,
    pub lease_until: i64,
    pub next_attempt_at: Option<i64>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    /// What it did (JSON, the job's own counts), once it succeeded.
    pub outcome: serde_json::Value,
    pub error: String,
}

/// The runs of scheduled jobs, claimed so each occurrence runs once however many runners share
/// the database (see `jobs`).
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Claims occurrence `slot` of `job` for `owner` until `lease_until`; `None` when it was
    /// claimed before (by anyone).
    async fn claim_job_slot(
        &self,
        job: &str,
        slot: i64,
        trigger: Trigger,
        owner: &str,
        lease_until: i64,
    ) -> Result<Option<JobClaim>>;
    /// Takes over runs of `jobs` whose holder's lease ran out before `now` and failed runs whose
    /// retry is due: each claimed for `owner` until `lease_until` with its attempt counted; at
    /// most `limit`, oldest first. Runs of other jobs wait for a runner that has them. A run
    /// whose holder vanished on its `max_attempts`th attempt is marked failed instead: a job
    /// that takes its runner down must not take every server down in turn.
    async fn claim_stalled_jobs(
        &self,
        jobs: &[&str],
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
        max_attempts: i64,
    ) -> Result<Vec<JobClaim>>;
    /// Extends a held lease; false when the run is no longer this claim's.
    async fn renew_job_lease(&self, claim: &JobClaim, lease_until: i64) -> Result<bool>;
    /// Records how the run ended; false (nothing written) when it is no longer this claim's.
    async fn finish_job(&self, claim: &JobClaim, end: &JobEnd, duration_ms: i64) -> Result<bool>;
    /// Runs, newest first, of one job or all.
    async fn job_runs(&self, job: Option<&str>, limit: usize) -> Result<Vec<JobRun>>;
    /// Forgets finished runs created before `before`.
    async fn purge_job_runs(&self, before: i64) -> Result<u64>;
}

/// A page or file a source's syncs found, with what makes its next check cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceItem {
    /// The page's URL, or the file's path.
    pub item: String,
    /// The source its documents are stored under (records inside it as `source#record`).
    pub document_source: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Consecutive syncs that did not find it.
    pub misses: u32,
    pub seen_at: i64,
}

/// Collections' sources and what their syncs found.
#[async_trait]
pub trait SourceStore: Send + Sync {
    async fn insert_source(&self, source: &Source) -> Result<()>;
    /// Sources of one collection, or every source, oldest first.
    async fn sources(&self, collection: Option<&str>) -> Result<Vec<Source>>;
    async fn source(&self, id: &str) -> Result<Option<Source>>;
    /// Writes targets, schedule and max_misses; false when it is gone.
    async fn update_source(&self, source: &Source) -> Result<bool>;
    /// Removes a source and its items; false when it was not there.
    async fn delete_source(&self, id: &str) -> Result<bool>;
    async fn source_items(&self, id: &str) -> Result<Vec<SourceItem>>;
    /// Replaces a source's items with `items`, in one transaction; false when the source is
    /// gone (removed while it synced), in which case nothing is written.
    async fn save_source_items(&self, id: &str, items: &[SourceItem]) -> Result<bool>;
}

/// What the retention job removes, counted.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Purged {
    pub conversations: u64,
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub auth_tokens: u64,
    pub sso_states: u64,
    pub exports: u64,
    /// Outbox rows sent or given up more than [`MAIL_KEPT_MS`] ago.
    pub mail: u64,
    /// Upload jobs ended and made more than [`UPLOADS_KEPT_MS`] ago.
    pub uploads: u64,
}

/// How long the outbox keeps a message's envelope and status after it was sent or given up.
pub const MAIL_KEPT_MS: i64 = 30 * 86_400_000;

/// How long an ended upload job is kept for its curators to read.
pub const UPLOADS_KEPT_MS: i64 = 30 * 86_400_000;

/// Deletions by age, for the retention job.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes the conversations (and their messages) of users on `plan` last active before
    /// `before`; returns the users who lost any, so what is cached of them can go too.
    async fn purge_conversations(&self, plan: &str, before: i64) -> Result<(u64, Vec<String>)>;
    /// Deletes the conversations (and their messages) scoped to `collection` or citing it,
    /// last active before `before`; returns the users who lost any.
    async fn purge_conversations_of(
        &self,
        collection: &str,
        before: i64,
    ) -> Result<(u64, Vec<String>)>;
    /// Deletes what expired before `now`: ended or revoked sessions (with their refresh
    /// tokens), single-use tokens, sign-on attempts, users' data exports, sent mail and ended
    /// upload jobs past their keeping.
    async fn purge_expired(&self, now: i64) -> Result<Purged>;
}

/// Users' exports, and erasure.
#[async_trait]
pub trait PrivacyStore: Send + Sync {
    async fn create_export(&self, user_id: &str, export: &ExportInfo) -> Result<()>;
    /// Marks an export ready with its content, or failed with the error.
    async fn finish_export(&self, id: &str, outcome: std::result::Result<&str, &str>)
    -> Result<()>;
    /// The user's exports that have not expired by `now`, newest first.
    async fn exports(&self, user_id: &str, now: i64) -> Result<Vec<ExportInfo>>;
    /// A ready, unexpired export's content, if it is the user's.
    async fn export_content(&self, user_id: &str, id: &str, now: i64) -> Result<Option<String>>;
    /// In one transaction: deletes the user's conversations (and messages), sessions (and
    /// refresh tokens), API keys, identities, tokens, memberships, exports, site actions,
    /// subscriptions, payment-account link and every outbox message about them or to their
    /// address; detaches their usage from keys; keeps their invoices (without Stripe's page);
    /// blanks the audit entries about them and by them; gives the row the `placeholder`
    /// address and no password, disabled.
    async fn erase_user(&self, user_id: &str, placeholder: &str) -> Result<()>;
    /// Has the database drop the content of deleted rows from its files (SQLite: a truncating
    /// checkpoint of the write-ahead log, pages zeroed by `secure_delete`; PostgreSQL: VACUUM).
    async fn drop_deleted(&self) -> Result<()>;
}

/// Where an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    Building,
    Ready,
    Failed,
}

base::words!(ExportStatus, "export status", {
    Building => "building",
    Ready => "ready",
    Failed => "failed",
});

/// An export as its owner sees it (the archive itself is downloaded separately).
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ExportInfo {
    pub id: String,
    pub status: ExportStatus,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// After this it can no longer be downloaded.
    pub expires_at: i64,
    /// The archive's size in bytes, once ready.
    pub size_bytes: i64,
}

/// Where an upload's job stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum UploadStatus {
    Running,
    Succeeded,
    /// Ended by an error, or the file could not be read.
    Failed,
    /// Stopped at someone's request.
    Cancelled,
    /// Its server stopped (shut down, or lost) before it finished: upload the file again.
    Interrupted,
}

base::words!(UploadStatus, "upload status", {
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
    Interrupted => "interrupted",
});

/// An upload ingested by a job, as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct UploadJob {
    pub id: String,
    pub collection: String,
    /// Who uploaded it.
    pub user_id: String,
    pub filename: String,
    pub bytes: i64,
    pub status: UploadStatus,
    #[serde(flatten)]
    pub progress: crate::sources::ProgressSnapshot,
    /// What the ingestion did, once it ended (JSON; null before).
    pub report: serde_json::Value,
    pub error: String,
    pub cancel_requested: bool,
    pub created_at: i64,
    /// The runner's last report (its heartbeat while it runs).
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// Upload jobs.
#[async_trait]
pub trait UploadStore: Send + Sync {
    async fn insert_upload(&self, job: &UploadJob) -> Result<()>;
    async fn upload(&self, id: &str) -> Result<Option<UploadJob>>;
    /// A collection's jobs, newest first.
    async fn uploads(&self, collection: &str, limit: usize) -> Result<Vec<UploadJob>>;
    /// Writes a running job's progress and heartbeat; whether a cancel was asked for (also when
    /// the job is no longer running: its runner should stop).
    async fn upload_progress(
        &self,
        id: &str,
        progress: &crate::sources::ProgressSnapshot,
        now: i64,
    ) -> Result<bool>;
    /// Asks a running job to stop; false when it is not running.
    async fn cancel_upload(&self, id: &str) -> Result<bool>;
    /// Records how a running job ended (nothing when it had ended already).
    async fn finish_upload(
        &self,
        id: &str,
        status: UploadStatus,
        progress: &crate::sources::ProgressSnapshot,
        report: &serde_json::Value,
        error: &str,
        now: i64,
    ) -> Result<()>;
    /// Marks running jobs whose heartbeat is older than `before` interrupted; how many.
    async fn interrupt_stale_uploads(&self, before: i64, now: i64) -> Result<u64>;
}
