//! Plans: monthly message and token quotas, and requests-per-minute limits per user and per
//! API key (token buckets from `governor`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::accounts::Principal;
use crate::config::{Config, PlanConfig};
use crate::error::{Error, Result};
use crate::ratelimit::{KeyedLimit, per_minute};
use crate::store::{AccountStore, DailyUsage, UsageRecord};
use crate::types::now_ms;

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
    store: Arc<dyn AccountStore>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("plans", &self.plans)
            .finish()
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil-from-days).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Today's date (UTC) as YYYY-MM-DD.
pub fn today_utc() -> String {
    let (y, m, d) = civil_from_days(crate::types::now_ms().div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The first millisecond of the UTC month holding `ms`.
pub fn month_start(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(86_400_000));
    days_from_civil(y, m, 1) * 86_400_000
}

impl Limits {
    pub fn new(config: &Config, store: Arc<dyn AccountStore>) -> Self {
        let buckets = config
            .plans
            .iter()
            .map(|(name, plan)| {
                let quota = per_minute(plan.requests_per_minute);
                let users = KeyedLimit::new(quota, "your request rate is over your plan's limit");
                let keys = KeyedLimit::new(
                    quota,
                    "this API key's request rate is over its plan's limit",
                );
                (name.clone(), (users, keys))
            })
            .collect();
        Self {
            plans: config.plans.clone(),
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
    pub fn check_rate(&self, principal: &Principal) -> Result<()> {
        self.plan(principal)?;
        // Buckets are made from the same plans, so a known plan has one.
        let (users, keys) = self
            .buckets
            .get(&principal.user.plan)
            .ok_or_else(|| Error::Internal("plan without a rate limiter".into()))?;
        if let Some(key) = &principal.api_key_id {
            keys.check(key)?;
        }
        users.check(&principal.user.id)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_starts() {
        // 2026-11-22T03:45:00Z → 2026-11-01T00:00:00Z
        assert_eq!(month_start(1_795_319_100_000), 1_793_491_200_000);
        assert_eq!(month_start(0), 0);
        // 2024-03-01 is after a leap day: 2024-02-29T12:00Z → 2024-02-01
        assert_eq!(month_start(1_709_208_000_000), 1_706_745_600_000);
        assert_eq!(month_start(1_706_745_600_000), 1_706_745_600_000);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(today_utc().len(), 10);
    }
}
