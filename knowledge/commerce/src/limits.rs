//! Plans: monthly message and token quotas, and requests-per-minute limits per user and per
//! API key (token buckets from `governor`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::config::PlanConfig;
use base::error::{Error, Result};
use base::principal::Principal;
use base::ratelimit::{KeyedLimit, RateStore, per_minute};

use crate::store::{DailyUsage, UsageRecord, UsageStore};
use base::time::month_start;
use base::types::now_ms;

/// What a user has used this period and what remains.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Usage {
    pub plan: String,
    /// Start of the period (the first day of the UTC month), ms since the epoch.
    pub period_start: i64,
    pub messages: i64,
    pub tokens: i64,
    pub cost_usd: f64,
    pub limits: PlanConfig,
    pub remaining_messages: i64,
    pub remaining_tokens: i64,
}

pub struct Limits {
    plans: BTreeMap<String, PlanConfig>,
    /// Per plan: one limit for users' requests, one for API keys'.
    buckets: HashMap<String, (KeyedLimit, KeyedLimit)>,
    store: Arc<dyn UsageStore>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("plans", &self.plans)
            .finish()
    }
}

impl Limits {
    /// Limits of `plans`, counted in `store`; with `rates`, the request rates are kept there,
    /// one for every server of a shared deployment.
    pub fn new(
        plans: &BTreeMap<String, PlanConfig>,
        store: Arc<dyn UsageStore>,
        rates: Option<&Arc<dyn RateStore>>,
    ) -> Self {
        let buckets = plans
            .iter()
            .map(|(name, plan)| {
                let quota = per_minute(plan.requests_per_minute);
                let users = KeyedLimit::new(quota, "your request rate is over your plan's limit")
                    .shared(rates, "requests_user");
                let keys = KeyedLimit::new(
                    quota,
                    "this API key's request rate is over its plan's limit",
                )
                .shared(rates, "requests_key");
                (name.clone(), (users, keys))
            })
            .collect();
        Self {
            plans: plans.clone(),
            buckets,
            store,
        }
    }

    fn plan(&self, principal: &Principal) -> Result<&PlanConfig> {
        self.plans.get(&principal.user.plan).ok_or_else(|| {
            Error::Internal(format!(
                "user {} is on the plan {:?}, which the configuration no longer has",
                principal.user.email, principal.user.plan
            ))
        })
    }

    /// Takes one request from the user's bucket and, for an API key, from the key's own.
    pub async fn check_rate(&self, principal: &Principal) -> Result<()> {
        self.plan(principal)?;
        // Buckets are made from the same plans, so a known plan has one.
        let (users, keys) = self
            .buckets
            .get(&principal.user.plan)
            .ok_or_else(|| Error::Internal("plan without a rate limiter".into()))?;
        if let Some(key) = &principal.api_key_id {
            keys.check(key).await?;
        }
        users.check(&principal.user.id).await
    }

    pub async fn usage(&self, principal: &Principal) -> Result<Usage> {
        let plan = self.plan(principal)?.clone();
        let period_start = month_start(now_ms());
        let used = self
            .store
            .usage_since(&principal.user.id, period_start)
            .await?;
        Ok(Usage {
            plan: principal.user.plan.clone(),
            period_start,
            messages: used.messages,
            tokens: used.tokens,
            cost_usd: used.cost_usd,
            remaining_messages: (plan.monthly_messages as i64 - used.messages).max(0),
            remaining_tokens: (plan.monthly_tokens as i64 - used.tokens).max(0),
            limits: plan,
        })
    }

    /// This period's use, per day that saw any.
    pub async fn daily_usage(&self, principal: &Principal) -> Result<Vec<DailyUsage>> {
        self.store
            .usage_by_day(&principal.user.id, month_start(now_ms()))
            .await
    }

    /// Refuses when the period's messages or tokens are used up.
    pub async fn ensure_quota(&self, principal: &Principal) -> Result<()> {
        let usage = self.usage(principal).await?;
        if usage.remaining_messages == 0 || usage.remaining_tokens == 0 {
            return Err(Error::QuotaExceeded(format!(
                "the {} plan's monthly allowance is used up ({} of {} messages, {} of {} tokens); it renews on the first of next month",
                usage.plan,
                usage.messages,
                usage.limits.monthly_messages,
                usage.tokens,
                usage.limits.monthly_tokens
            )));
        }
        Ok(())
    }

    /// Counts one answer against the caller's plan.
    pub async fn record(&self, usage: &UsageRecord) -> Result<()> {
        self.store.record_usage(usage).await
    }
}
