//! Usage over HTTP: the caller's (this month's allowance and a report over any range) and, for
//! admins, everyone's with the revenue; as JSON or, with `format=csv`, CSV.

use aide::axum::ApiRouter;
use aide::axum::routing::get_with;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use commerce::analytics::{AdminAnalytics, DayRange, UsageGroup, UsageReport};
use commerce::limits::Usage;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::openapi::with_csv;
use super::{ApiError, AppState, Auth, Params};

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/usage",
            get_with(usage, |op| {
                with_csv(
                    op.summary(
                        "This month's usage and what remains of the plan, and a report of the \
                         caller's usage from..to grouped by day, model, collection or plan",
                    )
                    .response::<200, Json<UsageAnswer>>(),
                )
            }),
        )
        .api_route(
            "/api/admin/analytics",
            get_with(admin, |op| {
                with_csv(
                    op.summary(
                        "Everyone's usage (active users, messages, tokens, cost, errors, \
                         fallbacks) by day, plan, model and top collections, and revenue by \
                         day and plan (admins); CSV: the group_by table",
                    )
                    .response::<200, Json<AdminAnalytics>>(),
                )
            }),
        )
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Format {
    #[default]
    Json,
    Csv,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// First day, YYYY-MM-DD (UTC); default the first of `to`'s month.
    from: Option<String>,
    /// Last day, YYYY-MM-DD (UTC), included; default today.
    to: Option<String>,
    /// Default `day`.
    group_by: Option<UsageGroup>,
    /// `json` (default) or `csv`.
    format: Option<Format>,
}

impl ReportQuery {
    fn range(&self) -> Result<DayRange, ApiError> {
        Ok(DayRange::parse(self.from.as_deref(), self.to.as_deref())?)
    }
}

#[derive(Serialize, JsonSchema)]
struct UsageAnswer {
    #[serde(flatten)]
    usage: Usage,
    report: UsageReport,
}

fn csv(name: &str, range: DayRange, body: String) -> Response {
    let file = format!(
        "attachment; filename=\"{name}-{}-{}.csv\"",
        base::time::format_day(range.from),
        base::time::format_day(range.to)
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, file),
        ],
        body,
    )
        .into_response()
}

async fn usage(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Params(query): Params<ReportQuery>,
) -> Result<Response, ApiError> {
    let range = query.range()?;
    let group = query.group_by.unwrap_or(UsageGroup::Day);
    let report = state
        .service
        .analytics
        .usage(&principal, range, group)
        .await?;
    if query.format.unwrap_or_default() == Format::Csv {
        return Ok(csv("usage", range, report.to_csv()));
    }
    let usage = state.service.limits.usage(&principal).await?;
    Ok(Json(UsageAnswer { usage, report }).into_response())
}

async fn admin(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Params(query): Params<ReportQuery>,
) -> Result<Response, ApiError> {
    let range = query.range()?;
    let analytics = state.service.analytics.admin(&principal, range).await?;
    if query.format.unwrap_or_default() == Format::Csv {
        let group = query.group_by.unwrap_or(UsageGroup::Day);
        return Ok(csv("analytics", range, analytics.to_csv(group)));
    }
    Ok(Json(analytics).into_response())
}
