//! Plans: monthly message and token quotas, and request-rate limits (per minute, and per hour
//! and per day where a plan sets them) per user and per API key (token buckets from `governor`,
//! or in a [`RateStore`] every server of a deployment shares).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::config::PlanConfig;
use base::error::{Error, Result};
use base::principal::Principal;
use base::ratelimit::{KeyedLimit, Quota, RateStore, per_day, per_hour, per_minute};

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

/// One window of a plan's request rate: a limit for users' requests, one for API keys'.
struct Window {
    users: KeyedLimit,
    keys: KeyedLimit,
}

/// A window's quota, its error messages and the names its shared buckets go under.
struct WindowKind {
    quota: fn(&PlanConfig) -> Option<Quota>,
    user_message: &'static str,
    key_message: &'static str,
    user_rows: &'static str,
    key_rows: &'static str,
}

/// The windows, shortest first: a burst is refused by the minute before it spends the hour's
/// or the day's cells.
const WINDOWS: [WindowKind; 3] = [
    WindowKind {
        quota: |p| Some(per_minute(p.requests_per_minute)),
        user_message: "your request rate is over your plan's limit per minute",
        key_message: "this API key's request rate is over its plan's limit per minute",
        user_rows: "requests_user",
        key_rows: "requests_key",
    },
    WindowKind {
        quota: |p| (p.requests_per_hour > 0).then(|| per_hour(p.requests_per_hour)),
        user_message: "your requests are over your plan's limit per hour",
        key_message: "this API key's requests are over its plan's limit per hour",
        user_rows: "requests_user_hour",
        key_rows: "requests_key_hour",
    },
    WindowKind {
        quota: |p| (p.requests_per_day > 0).then(|| per_day(p.requests_per_day)),
        user_message: "your requests are over your plan's limit per day",
        key_message: "this API key's requests are over its plan's limit per day",
        user_rows: "requests_user_day",
        key_rows: "requests_key_day",
    },
];

pub struct Limits {
    plans: BTreeMap<String, PlanConfig>,
    /// Per plan: the windows it limits, shortest first.
    windows: HashMap<String, Vec<Window>>,
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
        let windows = plans
            .iter()
            .map(|(name, plan)| {
                let windows = WINDOWS
                    .iter()
                    .filter_map(|kind| {
                        let quota = (kind.quota)(plan)?;
                        Some(Window {
                            users: KeyedLimit::new(quota, kind.user_message)
                                .shared(rates, kind.user_rows),
                            keys: KeyedLimit::new(quota, kind.key_message)
                                .shared(rates, kind.key_rows),
                        })
                    })
                    .collect();
                (name.clone(), windows)
            })
            .collect();
        Self {
            plans: plans.clone(),
            windows,
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

    /// Takes one request from each of the user's buckets and, for an API key, from each of the
    /// key's own.
    pub async fn check_rate(&self, principal: &Principal) -> Result<()> {
        self.plan(principal)?;
        // Windows are made from the same plans, so a known plan has them.
        let windows = self
            .windows
            .get(&principal.user.plan)
            .ok_or_else(|| Error::Internal("plan without a rate limiter".into()))?;
        for window in windows {
            if let Some(key) = &principal.api_key_id {
                window.keys.check(key).await?;
            }
            window.users.check(&principal.user.id).await?;
        }
        Ok(())
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
    use base::principal::{Role, User};
    use base::sql::SqlStore;

    fn principal(id: &str, plan: &str, api_key_id: Option<&str>) -> Principal {
        Principal {
            user: User {
                id: id.into(),
                email: format!("{id}@example.com"),
                email_verified: true,
                role: Role::User,
                plan: plan.into(),
                disabled: false,
                created_at: 0,
            },
            api_key_id: api_key_id.map(Into::into),
            session_id: None,
            may_chat: true,
            scopes: None,
            address: None,
        }
    }

    async fn limits(plan: PlanConfig) -> (Limits, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(&dir.path().join("lariat.db"))
            .await
            .unwrap();
        let plans = BTreeMap::from([("p".to_owned(), plan)]);
        (Limits::new(&plans, Arc::new(store), None), dir)
    }

    async fn refusal(limits: &Limits, who: &Principal) -> String {
        match limits.check_rate(who).await {
            Err(Error::RateLimited { message, .. }) => message,
            other => panic!("not refused: {other:?}"),
        }
    }

    /// A plan's hour and day windows each hold, per user and per key, beside the minute's.
    #[tokio::test]
    async fn hourly_and_daily_windows_hold() {
        let (hourly, _d) = limits(PlanConfig {
            requests_per_minute: 100,
            requests_per_hour: 3,
            ..PlanConfig::default()
        })
        .await;
        let ann = principal("ann", "p", None);
        for _ in 0..3 {
            hourly.check_rate(&ann).await.unwrap();
        }
        let message = refusal(&hourly, &ann).await;
        assert!(message.contains("per hour"), "{message}");
        // another user has their own hour
        hourly
            .check_rate(&principal("bob", "p", None))
            .await
            .unwrap();

        let (daily, _d) = limits(PlanConfig {
            requests_per_minute: 100,
            requests_per_hour: 100,
            requests_per_day: 2,
            ..PlanConfig::default()
        })
        .await;
        // a key's requests count against the key's day and its owner's
        let key = principal("ann", "p", Some("k1"));
        daily.check_rate(&key).await.unwrap();
        daily.check_rate(&ann).await.unwrap();
        let message = refusal(&daily, &key).await;
        assert!(
            message.contains("your requests are over your plan's limit per day"),
            "{message}"
        );
        let message = refusal(&daily, &ann).await;
        assert!(message.contains("per day"), "{message}");
        // the retry hint is most of a day's share of one request away, not a minute
        match daily.check_rate(&ann).await {
            Err(Error::RateLimited {
                retry_after_secs, ..
            }) => assert!(retry_after_secs > 3_600, "{retry_after_secs}"),
            other => panic!("{other:?}"),
        }
    }

    /// Without hour and day limits, only the minute's holds.
    #[tokio::test]
    async fn a_plan_without_hour_or_day_limits_has_only_the_minute() {
        let (limits, _d) = limits(PlanConfig {
            requests_per_minute: 2,
            ..PlanConfig::default()
        })
        .await;
        let ann = principal("ann", "p", None);
        limits.check_rate(&ann).await.unwrap();
        limits.check_rate(&ann).await.unwrap();
        let message = refusal(&limits, &ann).await;
        assert!(message.contains("per minute"), "{message}");
        assert_eq!(limits.windows["p"].len(), 1);
    }
}
