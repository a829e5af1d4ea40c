//! Usage analytics: what users asked of the assistant (messages, tokens, cost, latency, errors,
//! fallbacks) by day, plan, model and collection, read from the daily rollups the chat keeps
//! current as it records each answer; revenue from the invoices Stripe reported paid. Users see
//! their own; admins see everyone's. Both read as JSON or CSV.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use base::error::{Error, Result};
use base::principal::{Principal, Role};
use base::time::{civil_from_days, format_day, month_start};
use base::types::now_ms;

/// The longest range one report covers.
pub const MAX_DAYS: i64 = 366;

/// What usage rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageGroup {
    Day,
    Model,
    Collection,
    Plan,
}

impl UsageGroup {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageGroup::Day => "day",
            UsageGroup::Model => "model",
            UsageGroup::Collection => "collection",
            UsageGroup::Plan => "plan",
        }
    }
}

/// A range of whole UTC days, both ends included (days since 1970-01-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: i64,
    pub to: i64,
}

/// The day number of a `YYYY-MM-DD` date (a real one: 2026-02-30 is refused).
pub fn parse_day(text: &str) -> Result<i64> {
    let bad = || Error::InvalidInput(format!("{text:?} is not a date as YYYY-MM-DD"));
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let number = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<i64>().ok())
            .flatten()
            .ok_or_else(bad)
    };
    let (y, m, d) = (number(y)?, number(m)?, number(d)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // a day past the month's end comes back as another date
    let day = base::time::days_from_civil(y, m, d);
    if civil_from_days(day) != (y, m, d) {
        return Err(bad());
    }
    Ok(day)
}

impl DayRange {
    /// From `from` to `to` (YYYY-MM-DD, UTC); by default the first of this month to today.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self> {
        let today = now_ms().div_euclid(86_400_000);
        let to = to.map(parse_day).transpose()?.unwrap_or(today);
        let from = match from {
            Some(from) => parse_day(from)?,
            None => month_start(to * 86_400_000) / 86_400_000,
        };
        if from > to {
            return Err(Error::InvalidInput(format!(
                "from ({}) is after to ({})",
                format_day(from),
                format_day(to)
            )));
        }
        if to - from + 1 > MAX_DAYS {
            return Err(Error::InvalidInput(format!(
                "a report covers at most {MAX_DAYS} days; ask for a shorter range"
            )));
        }
        Ok(Self { from, to })
    }

    /// The range in ms: [start of `from`, end of `to`).
    pub fn millis(&self) -> (i64, i64) {
        (self.from * 86_400_000, (self.to + 1) * 86_400_000)
    }
}

/// Use in one group (or in all, `key` "total").
#[derive(Debug, Clone, PartialEq, Default, Serialize, schemars::JsonSchema)]
pub struct UsageRow {
    /// The day (YYYY-MM-DD), model, collection or plan.
    pub key: String,
    pub messages: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub tokens: i64,
    pub cost_usd: f64,
    pub avg_latency_ms: i64,
    /// Answers that ended in an error.
    pub errors: i64,
    /// Answers a fallback provider gave.
    pub fallbacks: i64,
    /// Distinct users.
    pub users: i64,
}

/// Money received in one group and currency.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RevenueRow {
    /// The day (YYYY-MM-DD) or plan.
    pub key: String,
    pub currency: String,
    /// In the currency's smallest unit (cents).
    pub amount: i64,
    pub invoices: i64,
}

/// A user's own usage.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UsageReport {
    pub from: String,
    pub to: String,
    pub group_by: UsageGroup,
    pub rows: Vec<UsageRow>,
    pub totals: UsageRow,
}

/// Everyone's usage and the revenue, for admins.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AdminAnalytics {
    pub from: String,
    pub to: String,
    /// All usage in the range; `users` is the number of active users.
    pub totals: UsageRow,
    /// Errors and fallbacks per answer.
    pub error_rate: f64,
    pub fallback_rate: f64,
    pub by_day: Vec<UsageRow>,
    pub by_plan: Vec<UsageRow>,
    pub by_model: Vec<UsageRow>,
    /// The ten collections most answered from.
    pub top_collections: Vec<UsageRow>,
    pub revenue_by_day: Vec<RevenueRow>,
    pub revenue_by_plan: Vec<RevenueRow>,
}

/// A CSV field (RFC 4180), defused for spreadsheets: a value starting with `=`, `+`, `-`, `@`
/// (a formula) is prefixed with `'`.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// The revenue of one group, each currency's sum: `29.00 USD + 5.00 EUR`.
pub fn revenue_of(rows: &[RevenueRow], key: &str) -> String {
    rows.iter()
        .filter(|r| r.key == key)
        .map(|r| crate::billing::format_money(r.amount, &r.currency))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// `rows` as CSV under `group`, with a revenue column when `revenue` is given.
fn usage_csv(group: UsageGroup, rows: &[UsageRow], revenue: Option<&[RevenueRow]>) -> String {
    let mut out = format!(
        "{},messages,prompt_tokens,completion_tokens,tokens,cost_usd,avg_latency_ms,errors,fallbacks,users{}\r\n",
        group.as_str(),
        if revenue.is_some() { ",revenue" } else { "" }
    );
    // a group with revenue and no use still gets its row
    let mut rows = rows.to_vec();
    for r in revenue.unwrap_or_default() {
        if !rows.iter().any(|u| u.key == r.key) {
            rows.push(UsageRow {
                key: r.key.clone(),
                ..UsageRow::default()
            });
        }
    }
    if group == UsageGroup::Day {
        rows.sort_by(|a, b| a.key.cmp(&b.key));
    }
    for r in &rows {
        out.push_str(&format!(
            "{},{},{},{},{},{:.6},{},{},{},{}",
            csv_field(&r.key),
            r.messages,
            r.prompt_tokens,
            r.completion_tokens,
            r.tokens,
            r.cost_usd,
            r.avg_latency_ms,
            r.errors,
            r.fallbacks,
            r.users
        ));
        if let Some(revenue) = revenue {
            out.push(',');
            out.push_str(&csv_field(&revenue_of(revenue, &r.key)));
        }
        out.push_str("\r\n");
    }
    out
}

impl UsageReport {
    pub fn to_csv(&self) -> String {
        usage_csv(self.group_by, &self.rows, None)
    }
}

impl AdminAnalytics {
    /// One of the tables as CSV: by day and by plan carry the revenue.
    pub fn to_csv(&self, group: UsageGroup) -> String {
        match group {
            UsageGroup::Day => usage_csv(group, &self.by_day, Some(&self.revenue_by_day)),
            UsageGroup::Plan => usage_csv(group, &self.by_plan, Some(&self.revenue_by_plan)),
            UsageGroup::Model => usage_csv(group, &self.by_model, None),
            UsageGroup::Collection => usage_csv(group, &self.top_collections, None),
        }
    }
}

pub struct Analytics {
    store: Arc<dyn AnalyticsStore>,
}

impl std::fmt::Debug for Analytics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analytics").finish_non_exhaustive()
    }
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Analytics {
    pub fn new(store: Arc<dyn AnalyticsStore>) -> Self {
        Self { store }
    }

    fn total(rows: Vec<UsageRow>) -> UsageRow {
        rows.into_iter().next().unwrap_or_else(|| UsageRow {
            key: "total".into(),
            ..UsageRow::default()
        })
    }

    /// The caller's own usage in `range`, grouped.
    pub async fn usage(
        &self,
        principal: &Principal,
        range: DayRange,
        group: UsageGroup,
    ) -> Result<UsageReport> {
        let user = Some(principal.user.id.as_str());
        Ok(UsageReport {
            from: format_day(range.from),
            to: format_day(range.to),
            group_by: group,
            rows: self
                .store
                .usage_rows(user, range, Some(group), None)
                .await?,
            totals: Self::total(self.store.usage_rows(user, range, None, None).await?),
        })
    }

    /// Everyone's usage and the revenue in `range` (admins).
    pub async fn admin(&self, principal: &Principal, range: DayRange) -> Result<AdminAnalytics> {
        principal.require(Role::Admin)?;
        let rows = |group| self.store.usage_rows(None, range, Some(group), None);
        let totals = Self::total(self.store.usage_rows(None, range, None, None).await?);
        Ok(AdminAnalytics {
            from: format_day(range.from),
            to: format_day(range.to),
            error_rate: ratio(totals.errors, totals.messages),
            fallback_rate: ratio(totals.fallbacks, totals.messages),
            totals,
            by_day: rows(UsageGroup::Day).await?,
            by_plan: rows(UsageGroup::Plan).await?,
            by_model: rows(UsageGroup::Model).await?,
            top_collections: self
                .store
                .usage_rows(None, range, Some(UsageGroup::Collection), Some(10))
                .await?,
            revenue_by_day: self.store.revenue_rows(range, UsageGroup::Day).await?,
            revenue_by_plan: self.store.revenue_rows(range, UsageGroup::Plan).await?,
        })
    }
}

/// The usage rollups and paid invoices, summed for reports.
#[async_trait::async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Usage in `range` (of one user, or everyone's) per `group` (`None`: one row, "total"),
    /// days in order, anything else by messages, most first; at most `limit` rows.
    async fn usage_rows(
        &self,
        user_id: Option<&str>,
        range: DayRange,
        group: Option<UsageGroup>,
        limit: Option<usize>,
    ) -> Result<Vec<UsageRow>>;
    /// Paid invoices in `range` per day or plan and currency.
    async fn revenue_rows(&self, range: DayRange, group: UsageGroup) -> Result<Vec<RevenueRow>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_strictly() {
        assert_eq!(parse_day("1970-01-01").unwrap(), 0);
        assert_eq!(parse_day("2026-11-22").unwrap(), 20_779);
        assert_eq!(parse_day("2024-02-29").unwrap(), 19_782);
        for bad in [
            "2026-02-30",
            "2025-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "26-01-01",
            "2026/01/01",
            "2026-01-01T00",
            "+026-01-01",
            "2026-01-0x",
            "",
            "2026-04-31",
        ] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
        assert_eq!(format_day(20_779), "2026-11-22");
        let range = DayRange::parse(Some("2026-01-01"), Some("2026-12-31")).unwrap();
        assert_eq!(range.to - range.from, 364);
        assert!(DayRange::parse(Some("2026-02-01"), Some("2026-01-01")).is_err());
        let err = DayRange::parse(Some("2024-01-01"), Some("2026-01-01")).unwrap_err();
        assert!(err.to_string().contains("at most 366 days"), "{err}");
        let month = DayRange::parse(None, Some("2026-11-22")).unwrap();
        assert_eq!(format_day(month.from), "2026-11-01");
    }

    #[test]
    fn csv_is_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1+2"), "'-1+2");
        let rows = [UsageRow {
            key: "2026-11-22".into(),
            messages: 2,
            tokens: 30,
            cost_usd: 0.5,
            users: 1,
            ..UsageRow::default()
        }];
        let revenue = [RevenueRow {
            key: "2026-11-22".into(),
            currency: "usd".into(),
            amount: 2900,
            invoices: 1,
        }];
        let csv = usage_csv(UsageGroup::Day, &rows, Some(&revenue));
        assert_eq!(
            csv,
            "day,messages,prompt_tokens,completion_tokens,tokens,cost_usd,avg_latency_ms,errors,fallbacks,users,revenue\r\n\
             2026-11-22,2,0,0,30,0.500000,0,0,0,1,29.00 USD\r\n"
        );
    }
}
