//! Paid plans through Stripe. A user buys a plan on Stripe's hosted Checkout and manages it in
//! the Customer Portal; Stripe's signed webhooks tell what became of the subscription, and the
//! subscription's status and price decide the user's plan (and so its quotas).
//!
//! Webhooks are idempotent and order-proof: each event id is recorded in the transaction that
//! applies its effect (a replay changes nothing; two deliveries at once make one effect), a
//! subscription event older than the last one applied to that subscription is ignored, and one
//! as old (Stripe's timestamps are seconds) makes the subscription be fetched and applied as it
//! is now. Time-driven changes (a grace period running out, a cancelled subscription's period
//! ending) are applied by [`Billing::expire`], which the `billing` job runs every minute.

pub mod signature;
pub mod stripe;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{BillingConfig, PlanConfig};
use base::error::{Error, Result};
use base::principal::Principal;
use base::types::now_ms;
use identity::mail::{Mail, Template};
pub use stripe::{BillingProvider, StripeApi, Subscription};

/// A price's billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }
}

/// A subscription as Lariat keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionRow {
    pub id: String,
    pub user_id: String,
    pub customer_id: String,
    pub status: String,
    pub price_id: String,
    /// The paid plan its price is for (empty: a price no plan names).
    pub plan: String,
    pub interval: String,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    /// When it became `past_due` (kept while it stays so), ms.
    pub past_due_since: Option<i64>,
    /// The Stripe `created` time (seconds) of the last event applied to it.
    pub last_event_at: i64,
    /// The plan it last gave its user.
    pub applied_plan: String,
}

/// An invoice as Lariat keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Invoice {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    pub subscription_id: String,
    /// `paid` or `payment_failed`.
    pub status: String,
    pub plan: String,
    /// In the currency's smallest unit (cents).
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    /// Stripe's page for it.
    pub hosted_invoice_url: String,
    /// ms since the epoch.
    pub created: i64,
}

/// What a webhook event changes.
#[derive(Debug, Clone)]
pub enum Effect {
    Subscription(SubscriptionRow),
    Invoice(Invoice),
    /// Nothing, for this reason (kept with the event).
    Nothing(String),
}

/// An event received, as recorded.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: String,
    pub kind: String,
    /// Stripe's `created`, seconds.
    pub created: i64,
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Its effect is in place.
    Applied,
    /// It had been received before: nothing changed.
    Duplicate,
    /// Older than what its subscription already shows: nothing changed.
    Stale,
    /// Nothing to do (an event type or customer Lariat does not act on).
    Ignored,
}

/// How subscriptions turn into plans at a moment: active and trialing ones give their plan;
/// past-due ones keep it for the grace period; cancelled and unpaid ones until their period
/// ends; anything else gives nothing.
#[derive(Debug, Clone)]
pub struct PlanRule {
    pub free_plan: String,
    pub grace_ms: i64,
    pub now: i64,
}

impl PlanRule {
    /// The plan one subscription gives now.
    pub fn effective(&self, row: &SubscriptionRow) -> String {
        let paid = !row.plan.is_empty()
            && match row.status.as_str() {
                "active" | "trialing" => true,
                "past_due" => row.past_due_since.unwrap_or(self.now) + self.grace_ms > self.now,
                "canceled" | "unpaid" => row.current_period_end.is_some_and(|end| end > self.now),
                _ => false,
            };
        if paid {
            row.plan.clone()
        } else {
            self.free_plan.clone()
        }
    }

    /// The plan a user's subscriptions give: the most recently changed paid one, else free.
    pub fn plan_for(&self, rows: &[SubscriptionRow]) -> String {
        rows.iter()
            .filter(|r| self.effective(r) != self.free_plan)
            .max_by_key(|r| r.last_event_at)
            .map_or_else(|| self.free_plan.clone(), |r| r.plan.clone())
    }
}

/// A plan on offer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlanOffer {
    pub name: String,
    pub limits: PlanConfig,
    /// Whether it can be bought monthly / yearly.
    pub monthly: bool,
    pub yearly: bool,
}

/// The subscription a user has, as shown to them.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SubscriptionInfo {
    pub id: String,
    pub status: String,
    pub plan: String,
    pub interval: String,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    /// While past due: when the plan falls back to free, ms.
    pub grace_until: Option<i64>,
}

/// A user's billing: plan, subscription, whether a payment needs attention, invoices.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BillingStatus {
    /// Whether plans can be bought here (Stripe configured).
    pub configured: bool,
    pub plan: String,
    pub subscription: Option<SubscriptionInfo>,
    /// A payment failed and is not yet made good.
    pub payment_problem: bool,
    pub plans: Vec<PlanOffer>,
    /// Newest first.
    pub invoices: Vec<Invoice>,
}

/// What the webhook endpoint answers Stripe.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WebhookOutcome {
    pub received: bool,
    pub event: String,
    pub outcome: Applied,
}

pub struct Billing {
    config: BillingConfig,
    plans: BTreeMap<String, PlanConfig>,
    provider: Option<Arc<dyn BillingProvider>>,
    store: Arc<dyn BillingStore>,
    mail: Arc<Mail>,
}

impl std::fmt::Debug for Billing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Billing")
            .field("configured", &self.provider.is_some())
            .finish_non_exhaustive()
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// An id field at `pointer`: a bare id or the expanded object.
fn id_at(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer).and_then(stripe::id_of)
}

/// An amount in a currency's smallest unit, as people read it: `29.00 USD`.
pub fn format_money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let cents = amount.unsigned_abs();
    format!(
        "{sign}{}.{:02} {}",
        cents / 100,
        cents % 100,
        currency.to_uppercase()
    )
}

impl Billing {
    /// Billing through Stripe when `config` has its key, else none (plans set by admins).
    pub fn new(
        config: &BillingConfig,
        plans: &BTreeMap<String, PlanConfig>,
        store: Arc<dyn BillingStore>,
        mail: Arc<Mail>,
    ) -> Result<Self> {
        let provider = match &config.stripe_secret_key {
            Some(key) => {
                Some(Arc::new(StripeApi::new(config, key.clone())?) as Arc<dyn BillingProvider>)
            }
            None => None,
        };
        Ok(Self {
            config: config.clone(),
            plans: plans.clone(),
            provider,
            store,
            mail,
        })
    }

    pub fn configured(&self) -> bool {
        self.provider.is_some()
    }

    fn provider(&self) -> Result<&Arc<dyn BillingProvider>> {
        self.provider.as_ref().ok_or_else(|| {
            Error::NotFound(
                "this server sells no plans (billing is not configured): an admin sets plans"
                    .into(),
            )
        })
    }

    /// A user's subscriptions and invoices, all of them (for their data export).
    pub async fn records(&self, user_id: &str) -> Result<(Vec<SubscriptionRow>, Vec<Invoice>)> {
        Ok((
            self.store.subscriptions(user_id).await?,
            self.store.invoices(user_id, usize::MAX >> 1).await?,
        ))
    }

    /// Before an account is erased: every subscription it still pays for is cancelled and its
    /// Stripe customer deleted, so an account that no longer exists is charged nothing more.
    /// Fails (and so stops the erasure) when Stripe cannot be told.
    pub async fn forget_customer(&self, user_id: &str) -> Result<()> {
        let Some(customer) = self.store.billing_customer(user_id).await? else {
            return Ok(());
        };
        let provider = self.provider.as_ref().ok_or_else(|| {
            Error::Unavailable(
                "this account has a Stripe customer but billing is not configured here: \
                 configure it so the subscription can be cancelled, then erase again"
                    .into(),
            )
        })?;
        for subscription in self.store.subscriptions(user_id).await? {
            if !matches!(
                subscription.status.as_str(),
                "canceled" | "incomplete_expired"
            ) {
                provider.cancel_subscription(&subscription.id).await?;
            }
        }
        provider.delete_customer(&customer).await
    }

    fn rule(&self) -> PlanRule {
        PlanRule {
            free_plan: self.config.free_plan.clone(),
            grace_ms: i64::from(self.config.grace_days) * 86_400_000,
            now: now_ms(),
        }
    }

    /// The paid plan a price is for.
    fn plan_of_price(&self, price: &str) -> Option<(&str, Interval)> {
        self.config.prices.iter().find_map(|(plan, p)| {
            if p.monthly.as_deref() == Some(price) {
                Some((plan.as_str(), Interval::Month))
            } else if p.yearly.as_deref() == Some(price) {
                Some((plan.as_str(), Interval::Year))
            } else {
                None
            }
        })
    }

    fn price_of(&self, plan: &str, interval: Interval) -> Result<&str> {
        if !self.plans.contains_key(plan) {
            return Err(Error::InvalidInput(format!(
                "there is no plan {plan:?}: the plans are {}",
                self.plans.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let prices = self.config.prices.get(plan);
        let price = match interval {
            Interval::Month => prices.and_then(|p| p.monthly.as_deref()),
            Interval::Year => prices.and_then(|p| p.yearly.as_deref()),
        };
        price.ok_or_else(|| {
            Error::InvalidInput(format!(
                "the {plan} plan cannot be bought {}ly here (it has no Stripe price for it)",
                interval.as_str()
            ))
        })
    }

    /// A payment needs attention: the latest invoice failed, or the subscription that decides
    /// the plan is past due or unpaid.
    fn problem(shown: Option<&SubscriptionRow>, invoices: &[Invoice]) -> bool {
        invoices
            .first()
            .is_some_and(|i| i.status == "payment_failed")
            || shown.is_some_and(|r| r.status == "past_due" || r.status == "unpaid")
    }

    /// The subscription shown to its user: the one deciding the plan, else the latest.
    fn shown<'a>(rule: &PlanRule, rows: &'a [SubscriptionRow]) -> Option<&'a SubscriptionRow> {
        rows.iter()
            .filter(|r| rule.effective(r) != rule.free_plan)
            .max_by_key(|r| r.last_event_at)
            .or_else(|| rows.iter().max_by_key(|r| r.last_event_at))
    }

    /// Whether a user's payment needs attention (the web app's banner).
    pub async fn payment_problem(&self, user_id: &str) -> Result<bool> {
        if !self.configured() {
            return Ok(false);
        }
        let rows = self.store.subscriptions(user_id).await?;
        let invoices = self.store.invoices(user_id, 1).await?;
        Ok(Self::problem(Self::shown(&self.rule(), &rows), &invoices))
    }

    /// The origins of the provider's hosted pages a form may be sent on to.
    pub fn page_origins(&self) -> Vec<String> {
        if !self.configured() {
            return Vec::new();
        }
        let mut origins = vec![
            "https://checkout.stripe.com".to_owned(),
            "https://billing.stripe.com".to_owned(),
        ];
        // a test server's pages are its own
        if let Ok(url) = reqwest::Url::parse(&self.config.api_base)
            && url.host_str() != Some("api.stripe.com")
        {
            origins.push(url.origin().ascii_serialization());
        }
        origins
    }

    /// The caller's plan, subscription and invoices, and the plans on offer: from a session, or
    /// with a key that has the `billing` scope (invoices carry Stripe's hosted links).
    pub async fn status(&self, principal: &Principal) -> Result<BillingStatus> {
        principal.require_scope(base::principal::Scope::Billing)?;
        let user = &principal.user;
        let rule = self.rule();
        let rows = self.store.subscriptions(&user.id).await?;
        let invoices = self.store.invoices(&user.id, 24).await?;
        let shown = Self::shown(&rule, &rows);
        let payment_problem = Self::problem(shown, &invoices);
        Ok(BillingStatus {
            configured: self.configured(),
            plan: user.plan.clone(),
            subscription: shown.map(|r| SubscriptionInfo {
                id: r.id.clone(),
                status: r.status.clone(),
                plan: r.plan.clone(),
                interval: r.interval.clone(),
                current_period_end: r.current_period_end,
                cancel_at_period_end: r.cancel_at_period_end,
                grace_until: (r.status == "past_due")
                    .then(|| r.past_due_since.map(|s| s + rule.grace_ms))
                    .flatten(),
            }),
            payment_problem,
            plans: self
                .plans
                .iter()
                .map(|(name, limits)| {
                    let prices = self.config.prices.get(name);
                    PlanOffer {
                        name: name.clone(),
                        limits: limits.clone(),
                        monthly: prices.is_some_and(|p| p.monthly.is_some()),
                        yearly: prices.is_some_and(|p| p.yearly.is_some()),
                    }
                })
                .collect(),
            invoices,
        })
    }

    /// A Checkout page where the caller subscribes to `plan`; its URL. The Stripe customer is
    /// made once per user (linked by our user id) and kept only once the page exists.
    pub async fn checkout(
        &self,
        principal: &Principal,
        plan: &str,
        interval: Interval,
    ) -> Result<String> {
        // buying is done in a signed-in session: a leaked key cannot spend the owner's money
        principal.require_session()?;
        let provider = self.provider()?;
        let price = self.price_of(plan, interval)?;
        let user = &principal.user;
        let rule = self.rule();
        let rows = self.store.subscriptions(&user.id).await?;
        if let Some(live) = rows
            .iter()
            .find(|r| matches!(r.status.as_str(), "active" | "trialing" | "past_due"))
        {
            return Err(Error::Conflict(format!(
                "you already subscribe to the {} plan: change or cancel it in the billing portal",
                if live.plan.is_empty() {
                    &rule.free_plan
                } else {
                    &live.plan
                }
            )));
        }
        let customer = match self.store.billing_customer(&user.id).await? {
            Some(customer) => customer,
            None => {
                provider
                    .create_customer(
                        stripe::NewCustomer {
                            user_id: &user.id,
                            email: &user.email,
                        },
                        &format!("lariat-customer-{}", user.id),
                    )
                    .await?
            }
        };
        let success = self.mail.link("/billing?checkout=done");
        let cancel = self.mail.link("/billing?checkout=cancelled");
        let url = provider
            .checkout(
                stripe::CheckoutRequest {
                    customer: &customer,
                    user_id: &user.id,
                    price,
                    success_url: &success,
                    cancel_url: &cancel,
                },
                &uuid::Uuid::new_v4().to_string(),
            )
            .await?;
        self.store
            .link_billing_customer(&user.id, &customer)
            .await?;
        Ok(url)
    }

    /// A Customer Portal page for the caller; its URL.
    pub async fn portal(&self, principal: &Principal) -> Result<String> {
        principal.require_session()?;
        let provider = self.provider()?;
        let customer = self
            .store
            .billing_customer(&principal.user.id)
            .await?
            .ok_or_else(|| {
                Error::NotFound("you have no billing account yet: choose a plan first".into())
            })?;
        provider
            .portal(&customer, &self.mail.link("/billing"))
            .await
    }

    /// A delivery to the webhook endpoint: `signature` is the `Stripe-Signature` header, `body`
    /// the raw bytes it signs.
    pub async fn webhook(&self, signature: Option<&str>, body: &[u8]) -> Result<WebhookOutcome> {
        if !self.configured() {
            // no secret to check a signature with: nothing sent here can be believed
            return Err(Error::InvalidInput(
                "webhook signature: this server has no webhook secret (billing is not configured)"
                    .into(),
            ));
        }
        let signature = signature.ok_or_else(|| {
            Error::InvalidInput("webhook signature: no Stripe-Signature header".into())
        })?;
        let secrets: Vec<&str> = self
            .config
            .webhook_secrets
            .iter()
            .map(|s| s.expose())
            .collect();
        signature::verify(
            signature,
            body,
            &secrets,
            now_ms() / 1000,
            self.config.tolerance_secs,
        )?;
        let event: Value = serde_json::from_slice(body)
            .map_err(|e| Error::InvalidInput(format!("the event is not JSON: {e}")))?;
        let record = EventRecord {
            id: str_at(&event, "/id")
                .filter(|id| !id.is_empty() && id.len() <= 255)
                .ok_or_else(|| Error::InvalidInput("the event has no id".into()))?
                .to_owned(),
            kind: str_at(&event, "/type")
                .ok_or_else(|| Error::InvalidInput("the event has no type".into()))?
                .chars()
                .take(100)
                .collect(),
            created: event
                .get("created")
                .and_then(Value::as_i64)
                .ok_or_else(|| Error::InvalidInput("the event has no created time".into()))?,
        };
        let object = event
            .pointer("/data/object")
            .ok_or_else(|| Error::InvalidInput("the event has no data.object".into()))?;
        // a replay is answered before anything is asked of Stripe (the transaction below still
        // decides between deliveries racing each other)
        if self.store.billing_event_seen(&record.id).await? {
            return Ok(WebhookOutcome {
                received: true,
                event: record.id,
                outcome: Applied::Duplicate,
            });
        }
        let effect = self.effect(&record, object).await?;
        if let Effect::Nothing(why) = &effect {
            tracing::info!(event = %record.id, kind = %record.kind, "billing event ignored: {why}");
        }
        let outcome = self
            .store
            .apply_billing_event(&record, &effect, &self.rule())
            .await?;
        if outcome == Applied::Applied
            && let Effect::Invoice(invoice) = &effect
            && invoice.status == "payment_failed"
        {
            self.mail_payment_failed(invoice).await;
        }
        tracing::info!(event = %record.id, kind = %record.kind, ?outcome, "billing event");
        Ok(WebhookOutcome {
            received: true,
            event: record.id,
            outcome,
        })
    }

    async fn mail_payment_failed(&self, invoice: &Invoice) {
        let Ok(Some(email)) = self.store.billing_user_email(&invoice.user_id).await else {
            return;
        };
        let amount = format_money(invoice.amount_due, &invoice.currency);
        let days = self.config.grace_days.to_string();
        let link = self.mail.link("/billing");
        let values = [
            ("plan", invoice.plan.as_str()),
            ("amount", amount.as_str()),
            ("days", days.as_str()),
            ("link", link.as_str()),
        ];
        if let Err(e) = self
            .mail
            .send(
                Some(&invoice.user_id),
                &email,
                Template::PaymentFailed,
                &values,
            )
            .await
        {
            tracing::warn!(user = %invoice.user_id, "could not queue the payment-failed mail: {e}");
        }
    }

    /// The user a customer id belongs to.
    async fn customer_user(&self, object: &Value, pointer: &str) -> Result<Option<String>> {
        match id_at(object, pointer) {
            Some(customer) => self.store.billing_customer_user(&customer).await,
            None => Ok(None),
        }
    }

    fn row_of(&self, sub: &Subscription, user_id: String, as_of: i64) -> SubscriptionRow {
        let plan = match self.plan_of_price(&sub.price) {
            Some((plan, _)) => plan.to_owned(),
            None => {
                tracing::warn!(subscription = %sub.id, price = %sub.price,
                    "a subscription to a price no plan names: it gives no plan");
                String::new()
            }
        };
        SubscriptionRow {
            id: sub.id.clone(),
            user_id,
            customer_id: sub.customer.clone(),
            status: sub.status.clone(),
            price_id: sub.price.clone(),
            plan,
            interval: sub.interval.clone(),
            current_period_end: sub.current_period_end,
            cancel_at_period_end: sub.cancel_at_period_end,
            past_due_since: (sub.status == "past_due").then(now_ms),
            last_event_at: as_of,
            applied_plan: String::new(),
        }
    }

    /// The subscription as Stripe has it now, to apply as of `as_of`.
    async fn fetched(&self, id: &str, user_id: String, as_of: i64) -> Result<Effect> {
        let sub = self.provider()?.subscription(id).await?;
        Ok(Effect::Subscription(self.row_of(&sub, user_id, as_of)))
    }

    async fn effect(&self, event: &EventRecord, object: &Value) -> Result<Effect> {
        let nothing = |why: &str| Ok(Effect::Nothing(why.to_owned()));
        match event.kind.as_str() {
            "checkout.session.completed" => {
                let Some(user) = self.customer_user(object, "/customer").await? else {
                    return nothing("a checkout by a customer Lariat does not know");
                };
                if str_at(object, "/client_reference_id") != Some(user.as_str()) {
                    return nothing(
                        "the checkout's client_reference_id is not its customer's user",
                    );
                }
                let Some(sub) = id_at(object, "/subscription") else {
                    return nothing("a checkout without a subscription");
                };
                let stamp = self.store.subscription_stamp(&sub).await?.unwrap_or(0);
                self.fetched(&sub, user, event.created.max(stamp)).await
            }
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => {
                let sub = Subscription::from_stripe(object)?;
                let Some(user) = self.customer_user(object, "/customer").await? else {
                    return nothing("a subscription of a customer Lariat does not know");
                };
                match self.store.subscription_stamp(&sub.id).await? {
                    // older than what is applied: the store leaves it
                    Some(stamp) if event.created < stamp => {
                        Ok(Effect::Subscription(self.row_of(&sub, user, event.created)))
                    }
                    // as old: which came last is not known, so ask Stripe; unless it is this
                    // very event, applied by a delivery racing this one (the store then finds
                    // it recorded and changes nothing)
                    Some(stamp) if event.created == stamp => {
                        if self.store.billing_event_seen(&event.id).await? {
                            return nothing("a replay");
                        }
                        self.fetched(&sub.id, user, event.created).await
                    }
                    _ => Ok(Effect::Subscription(self.row_of(&sub, user, event.created))),
                }
            }
            "invoice.paid" | "invoice.payment_failed" => {
                let Some(user) = self.customer_user(object, "/customer").await? else {
                    return nothing("an invoice of a customer Lariat does not know");
                };
                let subscription = id_at(object, "/subscription")
                    .or_else(|| id_at(object, "/parent/subscription_details/subscription"))
                    .unwrap_or_default();
                let price = str_at(object, "/lines/data/0/pricing/price_details/price")
                    .or_else(|| str_at(object, "/lines/data/0/price/id"))
                    .unwrap_or_default();
                let plan = match self.plan_of_price(price) {
                    Some((plan, _)) => plan.to_owned(),
                    None => self
                        .store
                        .subscriptions(&user)
                        .await?
                        .into_iter()
                        .find(|r| r.id == subscription)
                        .map(|r| r.plan)
                        .unwrap_or_default(),
                };
                let amount = |name: &str| object.get(name).and_then(Value::as_i64).unwrap_or(0);
                Ok(Effect::Invoice(Invoice {
                    id: str_at(object, "/id")
                        .ok_or_else(|| Error::InvalidInput("an invoice without an id".into()))?
                        .to_owned(),
                    user_id: user,
                    subscription_id: subscription,
                    status: if event.kind == "invoice.paid" {
                        "paid".into()
                    } else {
                        "payment_failed".into()
                    },
                    plan,
                    amount_due: amount("amount_due"),
                    amount_paid: amount("amount_paid"),
                    currency: str_at(object, "/currency").unwrap_or("usd").to_owned(),
                    hosted_invoice_url: str_at(object, "/hosted_invoice_url")
                        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                        .unwrap_or_default()
                        .to_owned(),
                    created: object
                        .get("created")
                        .and_then(Value::as_i64)
                        .unwrap_or(event.created)
                        .saturating_mul(1000),
                }))
            }
            _ => nothing("not an event Lariat acts on"),
        }
    }

    /// Applies what time changed: grace periods run out, cancelled periods end. Returns how many
    /// users' plans changed.
    pub async fn expire(&self) -> Result<u64> {
        self.store.refresh_plans(&self.rule()).await
    }
}

/// Stripe customers, subscriptions, invoices and the webhook events received.
#[async_trait::async_trait]
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
    async fn subscriptions(&self, user_id: &str) -> Result<Vec<SubscriptionRow>>;
    /// Newest first.
    async fn invoices(&self, user_id: &str, limit: usize) -> Result<Vec<Invoice>>;
    /// Records `event` and applies `effect` in one transaction: an event seen before changes
    /// nothing; a subscription change older than the one applied is left; the user's plan
    /// follows their subscriptions by `rule`.
    async fn apply_billing_event(
        &self,
        event: &EventRecord,
        effect: &Effect,
        rule: &PlanRule,
    ) -> Result<Applied>;
    /// Sets the plan of each user whose subscriptions give another plan than they last gave
    /// (periods that ended since); how many users changed.
    async fn refresh_plans(&self, rule: &PlanRule) -> Result<u64>;
}

#[cfg(test)]
mod tests;
