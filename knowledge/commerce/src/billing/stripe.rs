//! The payment provider's calls Lariat makes, behind [`BillingProvider`], and Stripe's API over
//! reqwest: form-encoded requests, a timeout per call, up to three tries on network errors, 429
//! and 5xx, each POST with one `Idempotency-Key` across its tries.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use crate::config::BillingConfig;

use base::config::Secret;
use base::error::{Error, Result};

/// A customer to create: linked to our user by id (never by e-mail).
#[derive(Debug, Clone)]
pub struct NewCustomer<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
}

#[derive(Debug, Clone)]
pub struct CheckoutRequest<'a> {
    pub customer: &'a str,
    pub user_id: &'a str,
    pub price: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

/// A subscription as the provider keeps it, reduced to what decides a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub price: String,
    /// `month` or `year` (empty when the price has none).
    pub interval: String,
    /// End of the paid period, ms since the epoch.
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
}

/// An id field that may be a bare id or the expanded object.
pub(super) fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

impl Subscription {
    /// Reads Stripe's subscription object. Since API version 2025-03-31 the period lives on
    /// the items; older versions keep it on the subscription.
    pub fn from_stripe(object: &Value) -> Result<Self> {
        let bad = |what: &str| Error::InvalidInput(format!("a subscription without {what}"));
        let item = object
            .pointer("/items/data/0")
            .ok_or_else(|| bad("items"))?;
        let period_end = item
            .get("current_period_end")
            .or_else(|| object.get("current_period_end"))
            .and_then(Value::as_i64)
            .map(|s| s.saturating_mul(1000));
        Ok(Self {
            id: object
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("an id"))?
                .to_owned(),
            customer: object
                .get("customer")
                .and_then(id_of)
                .ok_or_else(|| bad("a customer"))?,
            status: object
                .get("status")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("a status"))?
                .to_owned(),
            price: item
                .pointer("/price/id")
                .or_else(|| item.pointer("/plan/id"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("a price"))?
                .to_owned(),
            interval: item
                .pointer("/price/recurring/interval")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            current_period_end: period_end,
            cancel_at_period_end: object
                .get("cancel_at_period_end")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// What Lariat asks of the payment provider.
#[async_trait]
pub trait BillingProvider: Send + Sync {
    /// Creates the customer for a user; `idempotency_key` makes a repeat return the same one.
    async fn create_customer(
        &self,
        customer: NewCustomer<'_>,
        idempotency_key: &str,
    ) -> Result<String>;
    /// A hosted checkout page for a subscription to `price`; its URL.
    async fn checkout(&self, request: CheckoutRequest<'_>, idempotency_key: &str)
    -> Result<String>;
    /// A hosted page where the customer manages what they pay for; its URL.
    async fn portal(&self, customer: &str, return_url: &str) -> Result<String>;
    /// The subscription as it is now.
    async fn subscription(&self, id: &str) -> Result<Subscription>;
    /// Ends the subscription at once, nothing more charged (one already gone is fine).
    async fn cancel_subscription(&self, id: &str) -> Result<()>;
    /// Deletes the customer: nothing more is charged to them, and Stripe keeps of them only
    /// what its books need (one already gone is fine).
    async fn delete_customer(&self, id: &str) -> Result<()>;
}

/// Refuses what cannot be one of Stripe's ids (a path segment is built from it).
fn checked_id<'a>(id: &'a str, what: &str) -> Result<&'a str> {
    if id.is_empty() || id.len() > 255 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::InvalidInput(format!("{id:?} is not a {what} id")));
    }
    Ok(id)
}

pub struct StripeApi {
    client: reqwest::Client,
    base: String,
    key: Secret,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct StripeError {
    error: StripeErrorDetail,
}

#[derive(Deserialize)]
struct StripeErrorDetail {
    #[serde(default)]
    message: String,
}

const TRIES: u32 = 3;

impl StripeApi {
    pub fn new(config: &BillingConfig, key: Secret) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("the Stripe client: {e}")))?;
        Ok(Self {
            client,
            base: config.api_base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    /// One call, tried again on network errors, 429 and 5xx (with the same idempotency key).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        self.call_or_gone(method, path, form, idempotency_key)
            .await?
            .ok_or_else(|| Error::Upstream(format!("Stripe has no {path}")))
    }

    /// The same, with a 404 (the object does not exist, or no longer) as `None`.
    async fn call_or_gone(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Result<Option<Value>> {
        let url = format!("{}{path}", self.base);
        let mut last = String::new();
        for attempt in 0..TRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            let mut request = self
                .client
                .request(method.clone(), &url)
                .bearer_auth(self.key.expose())
                .header("Stripe-Version", "2025-03-31.basil");
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            if !form.is_empty() {
                request = request.form(form);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("Stripe could not be reached: {e}");
                    continue;
                }
            };
            let status = response.status();
            let body = response.bytes().await;
            if status == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if status.is_success() {
                let body =
                    body.map_err(|e| Error::Upstream(format!("reading Stripe's answer: {e}")))?;
                return serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| Error::Upstream(format!("Stripe answered something else: {e}")));
            }
            let message = body
                .ok()
                .and_then(|b| serde_json::from_slice::<StripeError>(&b).ok())
                .map(|e| e.error.message)
                .unwrap_or_default();
            last = format!("Stripe answered {status}: {message}");
            if !(status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS) {
                break;
            }
        }
        tracing::warn!(path, "{last}");
        Err(Error::Upstream(last))
    }

    fn field(value: &Value, name: &str) -> Result<String> {
        value
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Upstream(format!("Stripe's answer has no {name}")))
    }
}

#[async_trait]
impl BillingProvider for StripeApi {
    async fn create_customer(
        &self,
        customer: NewCustomer<'_>,
        idempotency_key: &str,
    ) -> Result<String> {
        let form = [
            ("email", customer.email),
            ("metadata[user_id]", customer.user_id),
        ];
        let value = self
            .call(
                reqwest::Method::POST,
                "/v1/customers",
                &form,
                Some(idempotency_key),
            )
            .await?;
        Self::field(&value, "id")
    }

    async fn checkout(
        &self,
        request: CheckoutRequest<'_>,
        idempotency_key: &str,
    ) -> Result<String> {
        let form = [
            ("mode", "subscription"),
            ("customer", request.customer),
            ("client_reference_id", request.user_id),
            ("metadata[user_id]", request.user_id),
            ("subscription_data[metadata][user_id]", request.user_id),
            ("line_items[0][price]", request.price),
            ("line_items[0][quantity]", "1"),
            ("success_url", request.success_url),
            ("cancel_url", request.cancel_url),
        ];
        let value = self
            .call(
                reqwest::Method::POST,
                "/v1/checkout/sessions",
                &form,
                Some(idempotency_key),
            )
            .await?;
        Self::field(&value, "url")
    }

    async fn portal(&self, customer: &str, return_url: &str) -> Result<String> {
        let form = [("customer", customer), ("return_url", return_url)];
        let key = uuid::Uuid::new_v4().to_string();
        let value = self
            .call(
                reqwest::Method::POST,
                "/v1/billing_portal/sessions",
                &form,
                Some(&key),
            )
            .await?;
        Self::field(&value, "url")
    }

    async fn subscription(&self, id: &str) -> Result<Subscription> {
        let id = checked_id(id, "subscription")?;
        let value = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/subscriptions/{id}"),
                &[],
                None,
            )
            .await?;
        Subscription::from_stripe(&value).map_err(|e| Error::Upstream(e.to_string()))
    }

    async fn cancel_subscription(&self, id: &str) -> Result<()> {
        let path = format!("/v1/subscriptions/{}", checked_id(id, "subscription")?);
        self.call_or_gone(reqwest::Method::DELETE, &path, &[], None)
            .await?;
        Ok(())
    }

    async fn delete_customer(&self, id: &str) -> Result<()> {
        let path = format!("/v1/customers/{}", checked_id(id, "customer")?);
        self.call_or_gone(reqwest::Method::DELETE, &path, &[], None)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subscriptions_read_old_and_new_api_shapes() {
        let new = json!({
            "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active",
            "cancel_at_period_end": false,
            "items": {"data": [{"current_period_end": 1_800_000_000,
                "price": {"id": "price_pro_m", "recurring": {"interval": "month"}}}]}
        });
        let s = Subscription::from_stripe(&new).unwrap();
        assert_eq!(s.current_period_end, Some(1_800_000_000_000));
        assert_eq!(
            (s.price.as_str(), s.interval.as_str()),
            ("price_pro_m", "month")
        );
        let old = json!({
            "id": "sub_1", "customer": {"id": "cus_1"}, "status": "past_due",
            "current_period_end": 1_700_000_000, "cancel_at_period_end": true,
            "items": {"data": [{"price": {"id": "price_pro_m"}}]}
        });
        let s = Subscription::from_stripe(&old).unwrap();
        assert_eq!(s.customer, "cus_1");
        assert_eq!(s.current_period_end, Some(1_700_000_000_000));
        assert!(s.cancel_at_period_end);
        let err = Subscription::from_stripe(&json!({"id": "sub_1"})).unwrap_err();
        assert!(err.to_string().contains("without items"), "{err}");
    }
}
