//! The built-in jobs: retention (old conversations per plan and per collection, expired
//! credentials and exports, old audit rows, old job runs), the mail queue's sweep, and billing's
//! ended periods.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::Task;
use crate::store::{JobStore, RetentionStore};
use base::error::Result;
use base::types::now_ms;
use chat::Chat;
use commerce::billing::Billing;
use identity::audit::Audit;
use identity::mail::Mail;
use knowledge::Knowledge;

const DAY_MS: i64 = 86_400_000;

/// Deletes what is kept no longer: each plan's conversations untouched for its
/// `conversation_retention_days` and each collection's (those scoped to it or citing it) for its
/// own (0 keeps them; the shortest that applies wins), with what the answer cache holds of their
/// users; expired sessions, single-use tokens, sign-on attempts and data exports; the outbox's
/// messages 30 days after they were sent or given up (their bodies are blanked at once); audit
/// rows past their retention; finished job runs past `jobs.history_days`.
pub struct Retention {
    pub store: Arc<dyn RetentionStore>,
    pub runs: Arc<dyn JobStore>,
    pub audit: Arc<Audit>,
    pub chat: Arc<Chat>,
    pub knowledge: Arc<Knowledge>,
    /// Days each plan keeps conversations (0: forever).
    pub plans: BTreeMap<String, u32>,
    pub history_days: u32,
}

#[async_trait]
impl Task for Retention {
    async fn run(&self) -> Result<serde_json::Value> {
        let now = now_ms();
        let mut by_plan = BTreeMap::new();
        for (plan, days) in self.plans.iter().filter(|(_, d)| **d > 0) {
            let purged = self
                .store
                .purge_conversations(plan, now - i64::from(*days) * DAY_MS)
                .await?;
            by_plan.insert(plan.clone(), self.forget(purged).await?);
        }
        let mut by_collection = BTreeMap::new();
        for c in self.knowledge.collections().await? {
            let days = c.conversation_retention_days;
            if days > 0 {
                let purged = self
                    .store
                    .purge_conversations_of(&c.name, now - i64::from(days) * DAY_MS)
                    .await?;
                by_collection.insert(c.name, self.forget(purged).await?);
            }
        }
        let expired = self.store.purge_expired(now).await?;
        let audit_rows = self.audit.purge().await?;
        let job_runs = self
            .runs
            .purge_job_runs(now - i64::from(self.history_days) * DAY_MS)
            .await?;
        Ok(json!({
            "conversations_by_plan": by_plan,
            "conversations_by_collection": by_collection,
            "expired": expired,
            "audit_rows": audit_rows,
            "job_runs": job_runs,
        }))
    }
}

impl Retention {
    /// Drops what the answer cache holds of the users who lost conversations; how many went.
    async fn forget(&self, (purged, users): (u64, Vec<String>)) -> Result<u64> {
        self.chat.forget_users(&users).await?;
        Ok(purged)
    }
}

/// Delivers what the outbox holds due (the sender also runs on its own; this catches what a
/// stopped server left).
pub struct MailSweep(pub Arc<Mail>);

#[async_trait]
impl Task for MailSweep {
    async fn run(&self) -> Result<serde_json::Value> {
        Ok(json!({ "delivered": self.0.deliver_due().await? }))
    }
}

/// Applies ended grace and paid periods to users' plans.
pub struct BillingSweep(pub Arc<Billing>);

#[async_trait]
impl Task for BillingSweep {
    async fn run(&self) -> Result<serde_json::Value> {
        Ok(json!({ "plans_changed": self.0.expire().await? }))
    }
}
