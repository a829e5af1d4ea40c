//! Commerce's settings: the plans (`[plans.NAME]`) and Stripe billing (`[billing]`).

use std::collections::BTreeMap;

use base::config::Secret;
use base::{Error, Result};
use serde::{Deserialize, Serialize};

/// Stripe billing. Each paid plan names its Stripe prices; a subscription's price decides its
/// user's plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingConfig {
    /// `sk_live_…` / `sk_test_…`: turns billing on.
    pub stripe_secret_key: Option<Secret>,
    /// The webhook endpoint's signing secrets (`whsec_…`); several while one is rotated out.
    pub webhook_secrets: Vec<Secret>,
    /// Stripe's API (a test server in the tests).
    pub api_base: String,
    /// Per paid plan: its monthly and yearly price ids.
    pub prices: BTreeMap<String, PlanPrices>,
    /// The plan users fall back to (no or ended subscription).
    pub free_plan: String,
    /// How long a subscription whose payment failed (`past_due`) keeps its plan.
    pub grace_days: u32,
    /// Each Stripe call's timeout; calls are tried up to three times.
    pub timeout_secs: u64,
    /// How far a webhook's signed timestamp may be from now.
    pub tolerance_secs: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanPrices {
    pub monthly: Option<String>,
    pub yearly: Option<String>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            stripe_secret_key: None,
            webhook_secrets: Vec::new(),
            api_base: "https://api.stripe.com".into(),
            prices: BTreeMap::new(),
            free_plan: "free".into(),
            grace_days: 7,
            timeout_secs: 20,
            tolerance_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PlanConfig {
    /// Answers per calendar month (UTC).
    pub monthly_messages: u64,
    /// Model tokens (prompt + completion) per calendar month (UTC).
    pub monthly_tokens: u64,
    /// Requests per minute, per user and per API key.
    pub requests_per_minute: u32,
    /// Requests per hour (refilling steadily), per user and per API key (0: no hourly limit).
    pub requests_per_hour: u32,
    /// Requests per day (any 24 hours, refilling steadily), per user and per API key (0: no
    /// daily limit).
    pub requests_per_day: u32,
    /// Days a conversation is kept after its last message (0: kept until its user deletes it);
    /// the retention job deletes older ones.
    pub conversation_retention_days: u32,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            monthly_messages: 200,
            monthly_tokens: 400_000,
            requests_per_minute: 20,
            requests_per_hour: 0,
            requests_per_day: 0,
            conversation_retention_days: 0,
        }
    }
}

pub fn default_plans() -> BTreeMap<String, PlanConfig> {
    let plan = |monthly_messages, monthly_tokens, requests_per_minute| PlanConfig {
        monthly_messages,
        monthly_tokens,
        requests_per_minute,
        ..PlanConfig::default()
    };
    BTreeMap::from([
        ("free".to_owned(), plan(200, 400_000, 20)),
        ("pro".to_owned(), plan(5_000, 10_000_000, 120)),
        ("team".to_owned(), plan(50_000, 100_000_000, 600)),
    ])
}

/// Checks each plan's limits.
pub fn validate_plans(plans: &BTreeMap<String, PlanConfig>) -> Result<()> {
    if let Some((name, _)) = plans.iter().find(|(_, p)| p.requests_per_minute == 0) {
        return Err(Error::InvalidInput(format!(
            "plans.{name}.requests_per_minute must be positive"
        )));
    }
    if let Some((name, _)) = plans
        .iter()
        .find(|(_, p)| p.conversation_retention_days > base::types::MAX_RETENTION_DAYS)
    {
        return Err(Error::InvalidInput(format!(
            "plans.{name}.conversation_retention_days is at most {}",
            base::types::MAX_RETENTION_DAYS
        )));
    }
    Ok(())
}

impl BillingConfig {
    /// Checks the billing section against the plans it sells.
    pub fn validate(&self, plans: &BTreeMap<String, PlanConfig>) -> Result<()> {
        let b = self;
        let bad = |why: String| Err(Error::InvalidInput(format!("billing: {why}")));
        if !plans.contains_key(&b.free_plan) {
            return bad(format!(
                "free_plan {:?} is not one of the plans",
                b.free_plan
            ));
        }
        if !(b.api_base.starts_with("https://") || b.api_base.starts_with("http://")) {
            return bad("api_base must be an http(s) URL".into());
        }
        if b.timeout_secs == 0 || b.tolerance_secs == 0 {
            return bad("timeout_secs and tolerance_secs must be positive".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (plan, prices) in &b.prices {
            if !plans.contains_key(plan) || *plan == b.free_plan {
                return bad(format!("prices.{plan}: not a paid plan of [plans]"));
            }
            for price in prices.monthly.iter().chain(&prices.yearly) {
                if !price.starts_with("price_") || !seen.insert(price.clone()) {
                    return bad(format!(
                        "prices.{plan}: {price:?} is not a price id (price_…) or names two plans"
                    ));
                }
            }
        }
        if b.stripe_secret_key.is_some() && b.webhook_secrets.is_empty() {
            return bad("webhook_secrets: Stripe's events cannot be checked without one".into());
        }
        if b.webhook_secrets
            .iter()
            .any(|s| s.expose().trim().is_empty())
        {
            return bad("webhook_secrets: an empty secret".into());
        }
        Ok(())
    }
}
