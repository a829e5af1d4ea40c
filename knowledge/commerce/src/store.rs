//! Commerce's rows: each answer's usage and its daily rollups, Stripe customers,
//! subscriptions, invoices and webhook events, and the reports summed from them.

use async_trait::async_trait;
use base::Result;

pub use crate::analytics::AnalyticsStore;
pub use crate::billing::BillingStore;

/// A period's use of the assistant by one user.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct UsageTotals {
    pub messages: i64,
    pub tokens: i64,
    pub cost_usd: f64,
}

/// One answer's use of the assistant, as recorded.
#[derive(Debug, Clone, PartialEq)]
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
    pub outcome: base::types::AnswerStatus,
    /// A provider after the first answered.
    pub fallback: bool,
}

/// One UTC day's use of the assistant by one user.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct DailyUsage {
    /// The day's start, ms since the epoch.
    pub day: i64,
    pub messages: i64,
    pub tokens: i64,
}

/// Each answer's use of the assistant and its per-user daily rollup.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Keeps one answer's usage and adds it to the day's rollup, in one transaction.
    async fn record_usage(&self, usage: &UsageRecord) -> Result<()>;
    /// What the user used since `since_ms`.
    async fn usage_since(&self, user_id: &str, since_ms: i64) -> Result<UsageTotals>;
    /// The same, per UTC day that saw any use, oldest first.
    async fn usage_by_day(&self, user_id: &str, since_ms: i64) -> Result<Vec<DailyUsage>>;
}
