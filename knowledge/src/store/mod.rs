//! The SQL source of truth: collections, documents and chunks (with their embeddings, so the
//! derived indexes can be rebuilt without re-embedding).

mod sql;
mod sql_accounts;
mod sql_analytics;
mod sql_audit;
mod sql_billing;
mod sql_chat;
mod sql_identity;
mod sql_jobs;
mod sql_mail;
mod sql_privacy;
mod sql_sites;
mod sql_sources;

use std::collections::HashMap;

use async_trait::async_trait;

pub use sql::SqlStore;

use crate::accounts::{ApiKeyInfo, NewUser, User, UserUpdate};
use crate::error::Result;
use crate::sources::Source;
use crate::types::{
    Collection, CollectionName, CollectionUpdate, DocumentSummary, DocumentWrite, Location,
    MemberRole, StoredChunk,
};

/// A document's stored hash and whether the derived indexes are known to hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentState {
    pub content_hash: String,
    pub indexed: bool,
}

/// A chunk joined with its document, as search hits show it.
#[derive(Debug, Clone)]
pub struct ChunkView {
    pub chunk_id: String,
    pub document_id: String,
    pub collection: String,
    pub title: String,
    pub source: String,
    pub location: Location,
    pub text: String,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Creates the collection for this model, or checks that an existing one was built with it.
    async fn ensure_collection(
        &self,
        name: &CollectionName,
        model: &str,
        dimension: usize,
    ) -> Result<()>;
    async fn collection(&self, name: &CollectionName) -> Result<Option<Collection>>;
    async fn collections(&self) -> Result<Vec<Collection>>;
    /// Records that a collection's vectors now come from another model (after a re-embedding).
    async fn set_collection_model(&self, name: &str, model: &str, dimension: usize) -> Result<()>;

    async fn document_states(&self, ids: &[String]) -> Result<HashMap<String, DocumentState>>;
    /// Replaces each document and all its chunks in one transaction; the documents are left
    /// `pending` until [`Store::mark_indexed`].
    async fn write_documents(&self, docs: &[DocumentWrite]) -> Result<()>;
    async fn mark_indexed(&self, ids: &[String]) -> Result<()>;
    async fn pending_documents(&self) -> Result<Vec<String>>;
    /// Deletes documents and their chunks, leaving a tombstone for each so the derived indexes
    /// are cleaned even after a crash. Returns how many existed.
    async fn delete_documents(&self, ids: &[String]) -> Result<usize>;
    async fn tombstones(&self) -> Result<Vec<String>>;
    async fn clear_tombstones(&self, ids: &[String]) -> Result<()>;

    async fn documents(&self, collection: Option<&CollectionName>) -> Result<Vec<DocumentSummary>>;
    /// Documents whose source is `source`, or a record inside it (`source#id` for JSONL lines),
    /// in one collection or any.
    async fn documents_by_source(
        &self,
        collection: Option<&CollectionName>,
        source: &str,
    ) -> Result<Vec<String>>;
    /// Every chunk of these documents, each document's chunks together and in position order.
    async fn chunks_of_documents(&self, ids: &[String]) -> Result<Vec<StoredChunk>>;
    /// Every chunk of the first `documents` documents (that have chunks) whose ids follow
    /// `after`, ordered by document id and position: a page of whole documents, for rebuilding
    /// the derived indexes.
    async fn document_chunks_page(
        &self,
        after: Option<&str>,
        documents: usize,
    ) -> Result<Vec<StoredChunk>>;
    /// Replaces stored embeddings (after re-embedding with another model).
    async fn update_embeddings(&self, embeddings: &[(String, Vec<f32>)]) -> Result<()>;
    /// Records that the derived indexes were rebuilt from SQL: nothing pending, no tombstones.
    async fn mark_all_indexed(&self) -> Result<()>;
    async fn chunk_ids(&self) -> Result<Vec<String>>;
    /// The chunks with these ids that exist, in no particular order.
    async fn chunk_views(&self, ids: &[String]) -> Result<Vec<ChunkView>>;
    /// The stored embeddings of the chunks with these ids that exist, in no particular order.
    async fn chunk_embeddings(&self, ids: &[String]) -> Result<Vec<(String, Vec<f32>)>>;

    // ---- access ------------------------------------------------------------------------------

    /// The collections `user_id` may read (the public ones and those it is a member of), by
    /// name; `None` reads every collection.
    async fn readable_collections(&self, user_id: Option<&str>) -> Result<Vec<CollectionHead>>;
    async fn member_role(&self, collection: &str, user_id: &str) -> Result<Option<MemberRole>>;
    /// Adds, changes or (with `None`) removes a member.
    async fn set_member(
        &self,
        collection: &str,
        user_id: &str,
        role: Option<MemberRole>,
    ) -> Result<()>;
    /// Writes the settings `update` gives, keeping the others, in one statement.
    async fn update_collection(&self, collection: &str, update: &CollectionUpdate) -> Result<()>;
    /// The collection's domain instructions for the assistant's prompt.
    async fn instructions(&self, collection: &str) -> Result<String>;
    /// The collection's members with their emails, curators first, then by email.
    async fn members(&self, collection: &str) -> Result<Vec<Member>>;
}

/// A member of a collection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: MemberRole,
}

/// What search needs to know of a collection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct CollectionHead {
    pub name: String,
    pub model: String,
    pub version: i64,
}

/// What trading in a refresh token did.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshOutcome {
    /// The token was valid and unused: it is now used and its successor stored.
    Rotated { user: User, session_id: String },
    /// The token had been used before: its session is now revoked.
    Reused,
    /// Unknown, expired, or its session was revoked.
    Invalid,
}

/// A period's use of the assistant by one user.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct UsageTotals {
    pub messages: i64,
    pub tokens: i64,
    pub cost_usd: f64,
}

/// One answer's use of the assistant, as recorded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsageRecord {
    pub user_id: String,
    pub api_key_id: Option<String>,
    /// The user's plan when it was used.
    pub plan: String,
    /// The model that answered (`extractive` without one).
    pub model: String,
    /// The collection of the passages it cited first (empty: none).
    pub collection: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    /// `complete`, `error` or `cancelled`.
    pub outcome: String,
    /// A provider after the first answered.
    pub fallback: bool,
}

/// A signed-in session: where it was opened, when last renewed, when it ends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct StoredSession {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    /// The browser or program that signed in, as it named itself (capped).
    pub user_agent: String,
    /// The address it signed in from (empty when unknown).
    pub address: String,
    pub created_at: i64,
    /// When its tokens were last renewed (or it was opened).
    pub last_used_at: Option<i64>,
    /// When it ends whatever its refresh tokens say.
    pub expires_at: Option<i64>,
}

/// The usage rollups and paid invoices, summed for reports.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Usage in `range` (of one user, or everyone's) per `group` (`None`: one row, "total"),
    /// days in order, anything else by messages, most first; at most `limit` rows.
    async fn usage_rows(
        &self,
        user_id: Option<&str>,
        range: crate::analytics::DayRange,
        group: Option<crate::analytics::UsageGroup>,
        limit: Option<usize>,
    ) -> Result<Vec<crate::analytics::UsageRow>>;
    /// Paid invoices in `range` per day or plan and currency.
    async fn revenue_rows(
        &self,
        range: crate::analytics::DayRange,
        group: crate::analytics::UsageGroup,
    ) -> Result<Vec<crate::analytics::RevenueRow>>;
}

/// Stripe customers, subscriptions, invoices and the webhook events received.
#[async_trait]
pub trait BillingStore: Send + Sync {
    async fn billing_customer(&self, user_id: &str) -> Result<Option<String>>;
    /// Links a customer to a user (a user keeps the first one linked).
    async fn link_billing_customer(&self, user_id: &str, customer_id: &str) -> Result<()>;
    async fn billing_customer_user(&self, customer_id: &str) -> Result<Option<String>>;
    async fn billing_user_email(&self, user_id: &str) -> Result<Option<String>>;
    /// Whether an event was received before (its effect, if any, is in place).
    async fn billing_event_seen(&self, event_id: &str) -> Result<bool>;
    /// The `created` time of the last event applied to a subscription.
    async fn subscription_stamp(&self, subscription_id: &str) -> Result<Option<i64>>;
    async fn subscriptions(&self, user_id: &str) -> Result<Vec<crate::billing::SubscriptionRow>>;
    /// Newest first.
    async fn invoices(&self, user_id: &str, limit: usize) -> Result<Vec<crate::billing::Invoice>>;
    /// Records `event` and applies `effect` in one transaction: an event seen before changes
    /// nothing; a subscription change older than the one applied is left; the user's plan
    /// follows their subscriptions by `rule`.
    async fn apply_billing_event(
        &self,
        event: &crate::billing::EventRecord,
        effect: &crate::billing::Effect,
        rule: &crate::billing::PlanRule,
    ) -> Result<crate::billing::Applied>;
    /// Sets the plan of each user whose subscriptions give another plan than they last gave
    /// (periods that ended since); how many users changed.
    async fn refresh_plans(&self, rule: &crate::billing::PlanRule) -> Result<u64>;
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: String,
    /// The account it is about (its erasure takes the message too, whatever address it went
    /// to), when known.
    pub user_id: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub attempts: i64,
    /// When it is due; a sender claims it by moving this forward.
    pub next_attempt_at: i64,
}

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

/// One occurrence of a job as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct JobRun {
    pub id: String,
    pub job: String,
    /// When it was due (ms): the schedule's occurrence, or the moment it was asked for.
    pub slot: i64,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// `running`, `retry` (failed, to be tried again at `next_attempt_at`), `succeeded`, `failed`.
    pub status: String,
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
        trigger: &str,
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
}

/// How long the outbox keeps a message's envelope and status after it was sent or given up.
pub const MAIL_KEPT_MS: i64 = 30 * 86_400_000;

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
    /// tokens), single-use tokens, sign-on attempts, and users' data exports.
    async fn purge_expired(&self, now: i64) -> Result<Purged>;
}

/// The mail outbox: messages are queued in SQL and delivered by a background sender, which
/// claims each due message before sending it (so several servers never send one twice).
#[async_trait]
pub trait MailStore: Send + Sync {
    async fn enqueue_mail(&self, mail: &QueuedMail) -> Result<()>;
    /// Unsent, not given up, due at `now`: oldest first, at most `limit`.
    async fn due_mail(&self, now: i64, limit: usize) -> Result<Vec<QueuedMail>>;
    /// Claims a due message (still due as `seen` says) until `lease_until`, counting the
    /// attempt; false when another sender has it.
    async fn claim_mail(&self, mail: &QueuedMail, lease_until: i64) -> Result<bool>;
    async fn mail_sent(&self, id: &str) -> Result<()>;
    /// Records a failed attempt: retried at `retry_at`, or given up when `None`.
    async fn mail_failed(&self, id: &str, error: &str, retry_at: Option<i64>) -> Result<()>;
}

/// One UTC day's use of the assistant by one user.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct DailyUsage {
    /// The day's start, ms since the epoch.
    pub day: i64,
    pub messages: i64,
    pub tokens: i64,
}

/// A single-use token as stored: by the sha256 of its value, for one purpose, with what it was
/// issued for (an address, say).
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub hash: String,
    pub user_id: String,
    pub purpose: &'static str,
    pub payload: String,
    pub expires_at: i64,
}

/// Users' exports, and erasure.
#[async_trait]
pub trait PrivacyStore: Send + Sync {
    async fn create_export(&self, user_id: &str, export: &crate::privacy::ExportInfo)
    -> Result<()>;
    /// Marks an export ready with its content, or failed with the error.
    async fn finish_export(&self, id: &str, outcome: std::result::Result<&str, &str>)
    -> Result<()>;
    /// The user's exports that have not expired by `now`, newest first.
    async fn exports(&self, user_id: &str, now: i64) -> Result<Vec<crate::privacy::ExportInfo>>;
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

/// A single sign-on in progress, kept until its callback takes it or it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoState {
    /// The sha256 of the `state` sent to the provider (the browser holds the value).
    pub state_hash: String,
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The signed-in user linking an identity; `None` for a sign-in.
    pub user_id: Option<String>,
    /// Where the browser goes afterwards.
    pub next_path: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What asking to unlink an identity came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlinked {
    Done,
    /// No such identity of this user.
    NotFound,
    /// Refused: the account has no password and no other identity.
    LastWayIn,
}

/// OpenID identities linked to accounts, and single sign-ons in progress.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Keeps a started sign-in (dropping expired ones on the way).
    async fn save_sso_state(&self, state: &SsoState) -> Result<()>;
    /// Removes and returns the sign-in started with this state: it can be taken once.
    async fn take_sso_state(&self, state_hash: &str) -> Result<Option<SsoState>>;
    async fn identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<crate::accounts::sso::Identity>>;
    /// The user's identities, oldest first.
    async fn identities(&self, user_id: &str) -> Result<Vec<crate::accounts::sso::Identity>>;
    /// A conflict when this (issuer, subject) is linked already. Spends the user's outstanding
    /// reset and address-change links, as unlinking does.
    async fn link_identity(&self, identity: &crate::accounts::sso::Identity) -> Result<()>;
    /// Opens an account and links its first identity, both or neither.
    async fn create_user_with_identity(
        &self,
        user: &NewUser,
        identity: &crate::accounts::sso::Identity,
    ) -> Result<()>;
    /// Records a sign-in with the identity, and the address the provider gave this time.
    async fn touch_identity(&self, id: &str, email: &str, at: i64) -> Result<()>;
    /// Unlinks the identity unless it is the account's last way to sign in, atomically.
    async fn unlink_identity(&self, user_id: &str, id: &str) -> Result<Unlinked>;
}

/// The audit log, newest first.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, entry: &crate::audit::AuditEntry) -> Result<()>;
    /// At most `limit` entries, newest first: of one event and about (or by) one user when
    /// given, older than the cursor when given.
    async fn audit_entries(
        &self,
        event: Option<crate::audit::AuditEvent>,
        user_id: Option<&str>,
        after: Option<&crate::audit::AuditCursor>,
        limit: usize,
    ) -> Result<Vec<crate::audit::AuditEntry>>;
    /// Deletes the entries older than `before`; how many went.
    async fn purge_audit(&self, before: i64) -> Result<u64>;
}

/// Users, sessions, refresh tokens, API keys and usage. Tokens and keys arrive hashed.
/// What [`AccountStore::secure_account`] changes. Sessions (but `keep_session`) always end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Securing<'a> {
    /// The new password's hash, when the password changes.
    pub password_hash: Option<&'a str>,
    /// The address proven: marked verified if the account still uses it.
    pub verify: Option<&'a str>,
    /// The caller's own session, which stays.
    pub keep_session: Option<&'a str>,
    pub revoke_keys: bool,
    pub remove_identities: bool,
}

/// What a change of credentials took away.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Revoked {
    pub sessions: u64,
    pub keys: u64,
    /// The providers whose linked identities were removed.
    pub identities: Vec<String>,
}

impl Revoked {
    pub fn is_empty(&self) -> bool {
        self.sessions == 0 && self.keys == 0 && self.identities.is_empty()
    }
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Fails with a conflict when the email is taken.
    async fn create_user(&self, user: &NewUser) -> Result<()>;
    async fn user(&self, id: &str) -> Result<Option<User>>;
    /// The user and password hash for a normalised email.
    async fn user_credentials(&self, email: &str) -> Result<Option<(User, String)>>;
    async fn users(&self) -> Result<Vec<User>>;
    /// Applies the change; disabling a user revokes every session and API key it has, in the
    /// same transaction (enabling it again brings none back).
    async fn update_user(&self, id: &str, update: &UserUpdate) -> Result<Option<User>>;

    /// Opens a session (ending at `session.expires_at` whatever its refresh tokens say) with its
    /// first refresh token.
    async fn create_session(
        &self,
        session: &StoredSession,
        refresh_hash: &str,
        refresh_expires_at: i64,
    ) -> Result<()>;
    /// The session's user, if the session exists, is not revoked and has not reached its end.
    async fn session_user(&self, session_id: &str) -> Result<Option<User>>;
    /// The user's live sessions, most recently used first.
    async fn sessions(&self, user_id: &str) -> Result<Vec<StoredSession>>;
    /// Revokes the user's sessions: one (`Some(id)`; false when the user has no such live
    /// session) or all of them but `keep`.
    async fn revoke_sessions(
        &self,
        user_id: &str,
        only: Option<&str>,
        keep: Option<&str>,
    ) -> Result<bool>;
    /// A change of the account's credentials, atomically: the new password (if any), the
    /// address marked verified (if asked and still the account's; else nothing changes and
    /// `None` comes back), every session but `keep_session` revoked, the API keys and linked
    /// identities removed as asked, and every outstanding reset and address-change link spent.
    async fn secure_account(&self, user_id: &str, change: &Securing<'_>)
    -> Result<Option<Revoked>>;
    /// Marks the refresh token used and stores its successor, atomically.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
    ) -> Result<RefreshOutcome>;
    async fn revoke_session(&self, session_id: &str) -> Result<()>;

    async fn create_api_key(&self, user_id: &str, key: &ApiKeyInfo, key_hash: &str) -> Result<()>;
    /// The user's keys that are not revoked, newest first.
    async fn api_keys(&self, user_id: &str) -> Result<Vec<ApiKeyInfo>>;
    /// Revokes a key of this user, and every key made with it (and theirs), atomically; false
    /// when the user has no such live key.
    async fn revoke_api_key(&self, user_id: &str, key_id: &str) -> Result<bool>;
    /// A live key and its user, by the key's hash.
    async fn api_key_user(&self, key_hash: &str) -> Result<Option<(ApiKeyInfo, User)>>;
    async fn touch_api_key(&self, key_id: &str, at: i64) -> Result<()>;

    /// Keeps one answer's usage and adds it to the day's rollup, in one transaction.
    async fn record_usage(&self, usage: &UsageRecord) -> Result<()>;
    /// Keeps a single-use token (by hash).
    async fn create_token(&self, token: &IssuedToken) -> Result<()>;
    /// The user and payload of a token for `purpose` that is unused and unexpired (it stays
    /// unused).
    async fn token_user(&self, token_hash: &str, purpose: &str) -> Result<Option<(User, String)>>;
    /// Gives the user a new (verified) address and spends the user's other outstanding reset and
    /// address-change links; a conflict when another account has the address.
    async fn change_email(&self, user_id: &str, email: &str) -> Result<()>;
    /// Marks such a token used; false when it was not usable (one of two racing uses wins).
    async fn consume_token(&self, token_hash: &str, purpose: &str) -> Result<bool>;

    async fn usage_since(&self, user_id: &str, since_ms: i64) -> Result<UsageTotals>;
    /// The same, per UTC day that saw any use, oldest first.
    async fn usage_by_day(&self, user_id: &str, since_ms: i64) -> Result<Vec<DailyUsage>>;
}

/// A conversation as lists show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ConversationSummary {
    pub id: String,
    pub title: String,
    /// The collections it searches (empty: every readable one).
    pub collections: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One message of a conversation, with what produced it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct StoredMessage {
    pub id: String,
    pub seq: i64,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// The sources an assistant message cites (JSON array).
    pub citations: serde_json::Value,
    /// Cited sentences the citation check found unsupported by their passages.
    #[serde(default)]
    pub unsupported: Vec<crate::chat::answer::Unsupported>,
    /// The query retrieval ran for this turn (the question condensed with the history).
    pub standalone_query: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    /// `complete`, `cancelled` (the client left) or `error`.
    pub status: String,
    pub created_at: i64,
}

impl StoredMessage {
    /// A message with a fresh id, stamped now, citing nothing and costing nothing: the fields
    /// a caller needs set differently it sets with struct update syntax.
    pub fn new(role: &str, content: &str, status: &str) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            seq: 0,
            role: role.into(),
            content: content.into(),
            citations: serde_json::Value::Array(Vec::new()),
            unsupported: Vec::new(),
            standalone_query: None,
            model: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_usd: 0.0,
            latency_ms: 0,
            status: status.into(),
            created_at: crate::types::now_ms(),
        }
    }
}

/// Conversations and their messages. Every call names the owner: another user's conversation is
/// simply not there.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn create_conversation(&self, user_id: &str, c: &ConversationSummary) -> Result<()>;
    /// Newest first.
    async fn conversations(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ConversationSummary>>;
    async fn conversation(&self, user_id: &str, id: &str) -> Result<Option<ConversationSummary>>;
    async fn messages(&self, conversation_id: &str) -> Result<Vec<StoredMessage>>;
    async fn rename_conversation(&self, user_id: &str, id: &str, title: &str) -> Result<bool>;
    async fn delete_conversation(&self, user_id: &str, id: &str) -> Result<bool>;
    /// Conversations whose title or any message contains `query` (case-insensitive), newest first.
    async fn search_conversations(
        &self,
        user_id: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>>;
    /// Appends messages after the last one (their `seq` is assigned here) and touches the
    /// conversation.
    async fn append_messages(
        &self,
        conversation_id: &str,
        messages: &[StoredMessage],
    ) -> Result<()>;
}

/// A write made on an external site on a user's behalf.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SiteAction {
    /// The confirm token's hash: one action per confirmation.
    pub key: String,
    pub site: String,
    pub user_id: String,
    pub action: String,
    pub request: serde_json::Value,
    /// `pending`, `done`, `failed`, or `uncertain` (it may have reached the site; nobody knows).
    pub status: String,
    pub outcome: Option<serde_json::Value>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// The record of site writes that makes them idempotent: an action is claimed before it is sent,
/// and a second claim of the same key gets the first one back instead.
#[async_trait]
pub trait SiteActionStore: Send + Sync {
    /// Claims `action.key` as pending; `Some(existing)` when it was claimed before.
    async fn claim_site_action(&self, action: &SiteAction) -> Result<Option<SiteAction>>;
    /// Records the outcome (`done`, `failed` or `uncertain`) of a claimed action.
    async fn finish_site_action(
        &self,
        key: &str,
        status: &str,
        outcome: &serde_json::Value,
    ) -> Result<()>;
    /// Forgets a pending claim whose request provably never left, so it may be retried.
    async fn release_site_action(&self, key: &str) -> Result<()>;
    /// A user's actions on a site, newest first.
    async fn site_actions(&self, user_id: &str, site: &str) -> Result<Vec<SiteAction>>;
}
