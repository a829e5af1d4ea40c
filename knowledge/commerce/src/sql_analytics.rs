//! [`AnalyticsStore`] on the SQL store: sums over `usage_daily` and `billing_invoices`.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use base::sql::SqlStore;

use crate::analytics::{DayRange, RevenueRow, UsageGroup, UsageRow};
use crate::store::AnalyticsStore;
use base::error::Result;
use base::time::format_day;

/// The column a group reads (`day` is a number, the others text).
fn column(group: Option<UsageGroup>) -> &'static str {
    match group {
        None => "'total'",
        Some(UsageGroup::Day) => "day",
        Some(UsageGroup::Model) => "model",
        Some(UsageGroup::Collection) => "collection",
        Some(UsageGroup::Plan) => "plan",
    }
}

#[async_trait]
impl AnalyticsStore for SqlStore {
    async fn usage_rows(
        &self,
        user_id: Option<&str>,
        range: DayRange,
        group: Option<UsageGroup>,
        limit: Option<usize>,
    ) -> Result<Vec<UsageRow>> {
        let key = column(group);
        let order = if group == Some(UsageGroup::Day) {
            "k"
        } else {
            "messages DESC, k"
        };
        let sql = format!(
            "SELECT {key} AS k, CAST(SUM(messages) AS BIGINT) AS messages, \
             CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
             CAST(SUM(tokens) AS BIGINT) AS tokens, \
             CAST(SUM(cost_usd) AS DOUBLE PRECISION) AS cost_usd, \
             CAST(SUM(latency_ms) AS BIGINT) AS latency_ms, \
             CAST(SUM(errors) AS BIGINT) AS errors, CAST(SUM(fallbacks) AS BIGINT) AS fallbacks, \
             CAST(COUNT(DISTINCT user_id) AS BIGINT) AS users \
             FROM usage_daily WHERE day >= $1 AND day <= $2 AND ($3 = '' OR user_id = $3) \
             {} ORDER BY {order} LIMIT $4",
            if group.is_some() { "GROUP BY k" } else { "" }
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(range.from)
            .bind(range.to)
            .bind(user_id.unwrap_or_default())
            .bind(limit.map_or(i64::MAX, |l| l as i64))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .filter_map(|r| {
                // a total over no rows is one row of nulls
                let messages: Option<i64> = r.try_get("messages").ok()?;
                Some((r, messages?))
            })
            .map(|(r, messages)| {
                let key = match group {
                    Some(UsageGroup::Day) => format_day(r.try_get("k")?),
                    _ => r.try_get("k")?,
                };
                Ok(UsageRow {
                    key,
                    messages,
                    prompt_tokens: r.try_get("prompt_tokens")?,
                    completion_tokens: r.try_get("completion_tokens")?,
                    tokens: r.try_get("tokens")?,
                    cost_usd: r.try_get("cost_usd")?,
                    avg_latency_ms: r.try_get::<i64, _>("latency_ms")? / messages.max(1),
                    errors: r.try_get("errors")?,
                    fallbacks: r.try_get("fallbacks")?,
                    users: r.try_get("users")?,
                })
            })
            .collect()
    }

    async fn revenue_rows(&self, range: DayRange, group: UsageGroup) -> Result<Vec<RevenueRow>> {
        let key = match group {
            UsageGroup::Day => "created / 86400000",
            _ => "plan",
        };
        let (start, end) = range.millis();
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {key} AS k, currency, CAST(SUM(amount_paid) AS BIGINT) AS amount, \
             CAST(COUNT(*) AS BIGINT) AS invoices FROM billing_invoices \
             WHERE status = 'paid' AND created >= $1 AND created < $2 \
             GROUP BY {key}, currency ORDER BY {key}, currency"
        )))
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RevenueRow {
                    key: match group {
                        UsageGroup::Day => format_day(r.try_get("k")?),
                        _ => r.try_get("k")?,
                    },
                    currency: r.try_get("currency")?,
                    amount: r.try_get("amount")?,
                    invoices: r.try_get("invoices")?,
                })
            })
            .collect()
    }
}
