//! Sites' rows: the writes agents made on external sites, claimed before they are sent.

use async_trait::async_trait;
use base::Result;

/// Where a write on a site stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    /// Claimed, and being sent.
    Pending,
    Done,
    /// The site refused it.
    Failed,
    /// It may have reached the site; nobody knows.
    Uncertain,
}

base::words!(ActionStatus, "site action status", {
    Pending => "pending",
    Done => "done",
    Failed => "failed",
    Uncertain => "uncertain",
});

/// A write made on an external site on a user's behalf.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SiteAction {
    /// The confirm token's hash: one action per confirmation.
    pub key: String,
    pub site: String,
    pub user_id: String,
    pub action: String,
    pub request: serde_json::Value,
    pub status: ActionStatus,
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
    /// Records the outcome (done, failed or uncertain) of a claimed action.
    async fn finish_site_action(
        &self,
        key: &str,
        status: ActionStatus,
        outcome: &serde_json::Value,
    ) -> Result<()>;
    /// Forgets a pending claim whose request provably never left, so it may be retried.
    async fn release_site_action(&self, key: &str) -> Result<()>;
    /// A user's actions on a site, newest first.
    async fn site_actions(&self, user_id: &str, site: &str) -> Result<Vec<SiteAction>>;
}
