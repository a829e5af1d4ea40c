//! [`UsageStore`] on the shared `SqlStore`: usage events and their daily rollups.

use async_trait::async_trait;
use base::Result;
use base::sql::SqlStore;
use base::types::{AnswerStatus, now_ms};
use sqlx::Row;

use crate::store::{DailyUsage, UsageRecord, UsageStore, UsageTotals};

const DAY_MS: i64 = 86_400_000;

#[async_trait]
impl UsageStore for SqlStore {
    async fn record_usage(&self, u: &UsageRecord) -> Result<()> {
        let now = now_ms();
        let tokens = u.prompt_tokens + u.completion_tokens;
        let error = i64::from(u.outcome == AnswerStatus::Error);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO usage_events (id, user_id, api_key_id, tokens, cost_usd, created_at, \
             plan, model, collection, prompt_tokens, completion_tokens, latency_ms, outcome, \
             fallback) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&u.user_id)
        .bind(u.api_key_id.as_deref())
        .bind(tokens)
        .bind(u.cost_usd)
        .bind(now)
        .bind(&u.plan)
        .bind(&u.model)
        .bind(&u.collection)
        .bind(u.prompt_tokens)
        .bind(u.completion_tokens)
        .bind(u.latency_ms)
        .bind(u.outcome.as_str())
        .bind(i64::from(u.fallback))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO usage_daily (day, user_id, plan, model, collection, messages, \
             prompt_tokens, completion_tokens, tokens, cost_usd, latency_ms, errors, fallbacks) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (day, user_id, plan, model, collection) DO UPDATE SET \
             messages = usage_daily.messages + 1, \
             prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens, \
             tokens = usage_daily.tokens + excluded.tokens, \
             cost_usd = usage_daily.cost_usd + excluded.cost_usd, \
             latency_ms = usage_daily.latency_ms + excluded.latency_ms, \
             errors = usage_daily.errors + excluded.errors, \
             fallbacks = usage_daily.fallbacks + excluded.fallbacks",
        )
        .bind(now.div_euclid(DAY_MS))
        .bind(&u.user_id)
        .bind(&u.plan)
        .bind(&u.model)
        .bind(&u.collection)
        .bind(u.prompt_tokens)
        .bind(u.completion_tokens)
        .bind(tokens)
        .bind(u.cost_usd)
        .bind(u.latency_ms)
        .bind(error)
        .bind(i64::from(u.fallback))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every quota check reads it, so it must not grow with the user's history: the whole days
    /// after the first come from the daily rollups (one row per day, plan, model and
    /// collection), and only the rest of the first day from the events themselves.
    async fn usage_since(&self, user_id: &str, since_ms: i64) -> Result<UsageTotals> {
        let first_day = since_ms.div_euclid(DAY_MS);
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(messages), 0) AS BIGINT) AS messages, \
             CAST(COALESCE(SUM(tokens), 0) AS BIGINT) AS tokens, \
             CAST(COALESCE(SUM(cost), 0) AS DOUBLE PRECISION) AS cost FROM ( \
               SELECT COUNT(*) AS messages, COALESCE(SUM(tokens), 0) AS tokens, \
                      COALESCE(SUM(cost_usd), 0) AS cost \
               FROM usage_events WHERE user_id = $1 AND created_at >= $2 AND created_at < $3 \
               UNION ALL \
               SELECT COALESCE(SUM(messages), 0), COALESCE(SUM(tokens), 0), \
                      COALESCE(SUM(cost_usd), 0) \
               FROM usage_daily WHERE user_id = $1 AND day > $4 \
             ) AS parts",
        )
        .bind(user_id)
        .bind(since_ms)
        .bind((first_day + 1).saturating_mul(DAY_MS))
        .bind(first_day)
        .fetch_one(&self.pool)
        .await?;
        Ok(UsageTotals {
            messages: row.try_get("messages")?,
            tokens: row.try_get("tokens")?,
            cost_usd: row.try_get("cost")?,
        })
    }

    async fn usage_by_day(&self, user_id: &str, since_ms: i64) -> Result<Vec<DailyUsage>> {
        let rows = sqlx::query(
            "SELECT CAST(created_at / 86400000 AS BIGINT) AS day, COUNT(*) AS messages, \
             CAST(COALESCE(SUM(tokens), 0) AS BIGINT) AS tokens \
             FROM usage_events WHERE user_id = $1 AND created_at >= $2 \
             GROUP BY CAST(created_at / 86400000 AS BIGINT) ORDER BY day",
        )
        .bind(user_id)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyUsage {
                    day: r.try_get::<i64, _>("day")? * 86_400_000,
                    messages: r.try_get("messages")?,
                    tokens: r.try_get("tokens")?,
                })
            })
            .collect()
    }
}
