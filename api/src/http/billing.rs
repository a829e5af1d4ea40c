//! Billing over HTTP: the caller's plan and invoices, Checkout and Customer Portal links, and
//! Stripe's webhook (its raw body, as signed).

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with};
use aide::transform::TransformOperation;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use commerce::billing::{BillingStatus, Interval, WebhookOutcome};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Auth, Body};

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/billing",
            get_with(status, |op| {
                op.summary("The caller's plan, subscription, invoices and the plans on offer")
            }),
        )
        .api_route(
            "/api/billing/checkout",
            post_with(checkout, |op| {
                op.summary("A Stripe Checkout page subscribing the caller to a plan")
            }),
        )
        .api_route(
            "/api/billing/portal",
            post_with(portal, |op| {
                op.summary("A Stripe Customer Portal page for the caller's subscription")
            }),
        )
        .api_route("/api/billing/webhook", post_with(webhook, webhook_docs))
}

fn webhook_docs(op: TransformOperation<'_>) -> TransformOperation<'_> {
    op.summary("Stripe's events, signed (Stripe-Signature) over the raw body")
        .description(
            "Idempotent and order-proof: a replayed event answers 200 and changes nothing; an \
             event older than what its subscription shows is ignored.",
        )
}

async fn status(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<BillingStatus>, ApiError> {
    Ok(Json(state.service.billing.status(&principal).await?))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    /// A paid plan with a price for the interval.
    plan: String,
    /// `month` (the default) or `year`.
    #[serde(default)]
    interval: Option<Interval>,
}

/// Where to send the browser.
#[derive(Serialize, JsonSchema)]
struct Link {
    url: String,
}

async fn checkout(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Body(body): Body<CheckoutBody>,
) -> Result<Json<Link>, ApiError> {
    let interval = body.interval.unwrap_or(Interval::Month);
    let url = state
        .service
        .billing
        .checkout(&principal, &body.plan, interval)
        .await?;
    Ok(Json(Link { url }))
}

async fn portal(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Link>, ApiError> {
    let url = state.service.billing.portal(&principal).await?;
    Ok(Json(Link { url }))
}

async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookOutcome>, ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    Ok(Json(state.service.billing.webhook(signature, &body).await?))
}
