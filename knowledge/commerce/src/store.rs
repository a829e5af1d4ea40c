//! Commerce's rows: each answer's usage and its daily rollups, Stripe customers,
//! subscriptions, invoices and webhook events, and the reports summed from them.

use async_trait::async_trait;
use base::Result;

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
