//! The billing page (plan, subscription, upgrade through Checkout, manage through the Portal,
//! invoices) and the admins' analytics page. Both call the services the API calls.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use commerce::analytics::{AdminAnalytics, DayRange, RevenueRow, UsageRow, parse_day};
use commerce::billing::{BillingStatus, Interval};
use serde::Deserialize;

use super::account::Chart;
use super::pages::{Layout, Viewer, error_page, page};
use crate::http::AppState;

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    layout: Layout,
    billing: BillingStatus,
    notice: Option<&'static str>,
}

impl BillingPage {
    /// Whether a plan can be bought now (no live subscription, a price for it).
    fn may_buy(&self) -> bool {
        self.billing.configured
            && self
                .billing
                .subscription
                .as_ref()
                .is_none_or(|s| !matches!(s.status.as_str(), "active" | "trialing" | "past_due"))
    }
}

/// Cents as money: `29.00 USD` (for the templates, which pass references).
pub fn money(amount: &i64, currency: &str) -> String {
    commerce::billing::format_money(*amount, currency)
}

#[derive(Deserialize)]
pub struct BillingQuery {
    checkout: Option<String>,
}

pub async fn billing(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Query(query): Query<BillingQuery>,
) -> Response {
    match state.service.billing.status(&principal).await {
        Ok(billing) => page(
            &BillingPage {
                layout: Layout::of(&state, &principal).await,
                billing,
                notice: match query.checkout.as_deref() {
                    Some("done") => Some(
                        "Thank you. Your plan changes as soon as Stripe confirms the payment, \
                         usually within seconds: reload this page to see it.",
                    ),
                    Some("cancelled") => Some("Checkout was cancelled; nothing was charged."),
                    _ => None,
                },
            },
            StatusCode::OK,
        ),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Deserialize)]
pub struct CheckoutForm {
    plan: String,
    interval: Interval,
}

/// Sends the browser to Stripe's Checkout for the chosen plan.
pub async fn checkout(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Form(form): Form<CheckoutForm>,
) -> Response {
    match state
        .service
        .billing
        .checkout(&principal, &form.plan, form.interval)
        .await
    {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

/// Sends the browser to Stripe's Customer Portal.
pub async fn portal(State(state): State<AppState>, Viewer(principal): Viewer) -> Response {
    match state.service.billing.portal(&principal).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Template)]
#[template(path = "analytics.html")]
struct AnalyticsPage {
    layout: Layout,
    a: AdminAnalytics,
    chart: Chart,
}

impl AnalyticsPage {
    fn revenue(rows: &[RevenueRow], key: &str) -> String {
        commerce::analytics::revenue_of(rows, key)
    }

    /// Revenue of plans nobody used in the range (their rows are not in `by_plan`).
    fn revenue_only(&self) -> Vec<&RevenueRow> {
        self.a
            .revenue_by_plan
            .iter()
            .filter(|r| !self.a.by_plan.iter().any(|p| p.key == r.key))
            .collect()
    }

    fn percent(rate: &f64) -> String {
        format!("{:.1} %", rate * 100.0)
    }

    fn csv(&self, group: &str) -> String {
        format!(
            "/api/admin/analytics?format=csv&group_by={group}&from={}&to={}",
            self.a.from, self.a.to
        )
    }
}

#[derive(Deserialize)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

/// Messages per day of the range, as a chart.
fn day_chart(range: DayRange, days: &[UsageRow]) -> Chart {
    let points: Vec<_> = days
        .iter()
        .filter_map(|d| {
            let day = parse_day(&d.key).ok()?;
            Some((
                (day - range.from) as u32,
                d.messages,
                format!("{}: {} messages, {} users", d.key, d.messages, d.users),
            ))
        })
        .collect();
    let peak = points.iter().map(|p| p.1).max().unwrap_or(0);
    let summary = match points.len() {
        0 => "No messages in this range.".to_owned(),
        n => format!("Messages per day: {n} days with use, at most {peak} in a day."),
    };
    Chart::new(&points, (range.to - range.from + 1) as u32, summary)
}

pub async fn analytics(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Query(query): Query<RangeQuery>,
) -> Response {
    let empty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let result = async {
        let range = DayRange::parse(empty(&query.from).as_deref(), empty(&query.to).as_deref())?;
        let a = state.service.analytics.admin(&principal, range).await?;
        Ok::<_, base::Error>((range, a))
    }
    .await;
    match result {
        Ok((range, a)) => page(
            &AnalyticsPage {
                layout: Layout::of(&state, &principal).await,
                chart: day_chart(range, &a.by_day),
                a,
            },
            StatusCode::OK,
        ),
        Err(e) => error_page(Some(principal.user), &e),
    }
}
