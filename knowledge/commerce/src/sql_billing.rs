//! [`BillingStore`] on the SQL store. An event's id is inserted first in the transaction that
//! applies it: a second delivery, even one racing the first, finds it and changes nothing (on
//! PostgreSQL the second insert waits for the first transaction; SQLite's write transactions
//! take the lock up front).

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use base::sql::SqlStore;

use crate::billing::{Applied, Effect, EventRecord, Invoice, PlanRule, SubscriptionRow};
use crate::store::BillingStore;
use base::error::Result;
use base::types::now_ms;

const SUBSCRIPTION: &str = "id, user_id, customer_id, status, price_id, plan, billing_interval, \
     current_period_end, cancel_at_period_end, past_due_since, last_event_at, applied_plan";

const INVOICE: &str = "id, user_id, subscription_id, status, plan, amount_due, amount_paid, \
     currency, hosted_invoice_url, created";

fn subscription(row: &AnyRow) -> Result<SubscriptionRow> {
    Ok(SubscriptionRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        customer_id: row.try_get("customer_id")?,
        status: row.try_get("status")?,
        price_id: row.try_get("price_id")?,
        plan: row.try_get("plan")?,
        interval: row.try_get("billing_interval")?,
        current_period_end: row.try_get("current_period_end")?,
        cancel_at_period_end: row.try_get::<i64, _>("cancel_at_period_end")? != 0,
        past_due_since: row.try_get("past_due_since")?,
        last_event_at: row.try_get("last_event_at")?,
        applied_plan: row.try_get("applied_plan")?,
    })
}

fn invoice(row: &AnyRow) -> Result<Invoice> {
    Ok(Invoice {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        subscription_id: row.try_get("subscription_id")?,
        status: row.try_get("status")?,
        plan: row.try_get("plan")?,
        amount_due: row.try_get("amount_due")?,
        amount_paid: row.try_get("amount_paid")?,
        currency: row.try_get("currency")?,
        hosted_invoice_url: row.try_get("hosted_invoice_url")?,
        created: row.try_get("created")?,
    })
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Sets the user's plan from their subscriptions, and what each now gives; whether the user's
/// plan changed.
async fn apply_plan(tx: &mut Tx, user_id: &str, rule: &PlanRule) -> Result<bool> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SUBSCRIPTION} FROM billing_subscriptions WHERE user_id = $1"
    )))
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(subscription)
    .collect::<Result<Vec<_>>>()?;
    for row in &rows {
        sqlx::query("UPDATE billing_subscriptions SET applied_plan = $1 WHERE id = $2")
            .bind(rule.effective(row))
            .bind(&row.id)
            .execute(&mut **tx)
            .await?;
    }
    let plan = rule.plan_for(&rows);
    let changed = sqlx::query("UPDATE users SET plan = $1 WHERE id = $2 AND plan <> $1")
        .bind(&plan)
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(changed > 0)
}

#[async_trait]
impl BillingStore for SqlStore {
    async fn billing_customer(&self, user_id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT customer_id FROM billing_customers WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn link_billing_customer(&self, user_id: &str, customer_id: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO billing_customers (user_id, customer_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(customer_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn billing_customer_user(&self, customer_id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT user_id FROM billing_customers WHERE customer_id = $1")
                .bind(customer_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn billing_user_email(&self, user_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn billing_event_seen(&self, event_id: &str) -> Result<bool> {
        let seen: Option<String> =
            sqlx::query_scalar("SELECT id FROM billing_events WHERE id = $1")
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(seen.is_some())
    }

    async fn subscription_stamp(&self, subscription_id: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT last_event_at FROM billing_subscriptions WHERE id = $1")
                .bind(subscription_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<SubscriptionRow>> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION} FROM billing_subscriptions WHERE user_id = $1 ORDER BY id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(subscription)
        .collect()
    }

    async fn invoices(&self, user_id: &str, limit: usize) -> Result<Vec<Invoice>> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {INVOICE} FROM billing_invoices WHERE user_id = $1 \
             ORDER BY created DESC, updated_at DESC, id LIMIT $2"
        )))
        .bind(user_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(invoice)
        .collect()
    }

    async fn apply_billing_event(
        &self,
        event: &EventRecord,
        effect: &Effect,
        rule: &PlanRule,
    ) -> Result<Applied> {
        let mut tx = self.begin_write().await?;
        let outcome = match effect {
            Effect::Nothing(why) => format!("ignored: {why}"),
            _ => "applied".to_owned(),
        };
        let fresh = sqlx::query(
            "INSERT INTO billing_events (id, kind, created, received_at, outcome) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(&event.kind)
        .bind(event.created)
        .bind(now_ms())
        .bind(&outcome)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if fresh == 0 {
            tx.rollback().await?;
            return Ok(Applied::Duplicate);
        }
        let applied = match effect {
            Effect::Nothing(_) => Applied::Ignored,
            Effect::Subscription(row) => {
                // only a change at least as new as the one applied
                let written = sqlx::query(
                    "INSERT INTO billing_subscriptions (id, user_id, customer_id, status, \
                     price_id, plan, billing_interval, current_period_end, cancel_at_period_end, \
                     past_due_since, last_event_at, applied_plan, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', $12) \
                     ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
                     price_id = excluded.price_id, plan = excluded.plan, \
                     billing_interval = excluded.billing_interval, \
                     current_period_end = excluded.current_period_end, \
                     cancel_at_period_end = excluded.cancel_at_period_end, \
                     past_due_since = CASE WHEN excluded.status = 'past_due' \
                       THEN COALESCE(billing_subscriptions.past_due_since, excluded.past_due_since) \
                       ELSE NULL END, \
                     last_event_at = excluded.last_event_at, updated_at = excluded.updated_at \
                     WHERE billing_subscriptions.last_event_at <= excluded.last_event_at",
                )
                .bind(&row.id)
                .bind(&row.user_id)
                .bind(&row.customer_id)
                .bind(&row.status)
                .bind(&row.price_id)
                .bind(&row.plan)
                .bind(&row.interval)
                .bind(row.current_period_end)
                .bind(i64::from(row.cancel_at_period_end))
                .bind(row.past_due_since)
                .bind(row.last_event_at)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if written == 0 {
                    Applied::Stale
                } else {
                    apply_plan(&mut tx, &row.user_id, rule).await?;
                    Applied::Applied
                }
            }
            Effect::Invoice(inv) => {
                // a payment made is final: a late failure notice does not undo it
                sqlx::query(
                    "INSERT INTO billing_invoices (id, user_id, subscription_id, status, plan, \
                     amount_due, amount_paid, currency, hosted_invoice_url, created, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
                     amount_due = excluded.amount_due, amount_paid = excluded.amount_paid, \
                     hosted_invoice_url = excluded.hosted_invoice_url, \
                     updated_at = excluded.updated_at \
                     WHERE billing_invoices.status <> 'paid'",
                )
                .bind(&inv.id)
                .bind(&inv.user_id)
                .bind(&inv.subscription_id)
                .bind(&inv.status)
                .bind(&inv.plan)
                .bind(inv.amount_due)
                .bind(inv.amount_paid)
                .bind(&inv.currency)
                .bind(&inv.hosted_invoice_url)
                .bind(inv.created)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                Applied::Applied
            }
        };
        if applied == Applied::Stale {
            sqlx::query("UPDATE billing_events SET outcome = 'stale' WHERE id = $1")
                .bind(&event.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    async fn refresh_plans(&self, rule: &PlanRule) -> Result<u64> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION} FROM billing_subscriptions"
        )))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(subscription)
        .collect::<Result<Vec<_>>>()?;
        let mut users: Vec<&str> = rows
            .iter()
            .filter(|r| rule.effective(r) != r.applied_plan)
            .map(|r| r.user_id.as_str())
            .collect();
        users.sort_unstable();
        users.dedup();
        let mut changed = 0;
        for user in users {
            let mut tx = self.begin_write().await?;
            changed += u64::from(apply_plan(&mut tx, user, rule).await?);
            tx.commit().await?;
        }
        Ok(changed)
    }
}
