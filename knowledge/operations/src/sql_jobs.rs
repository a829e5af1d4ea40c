//! Scheduled jobs' runs and the retention job's deletions on the SQL store. A run is claimed by
//! inserting its (job, slot) row; a takeover or a retry is claimed by a compare-and-set on the
//! attempt it saw, so of several runners exactly one wins on SQLite and PostgreSQL alike.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use base::sql::like_escaped;
use base::sql::{SqlStore, placeholders, word};

use crate::store::{
    JobClaim, JobEnd, JobRun, JobStore, MAIL_KEPT_MS, Purged, RetentionStore, RunStatus, Trigger,
    UPLOADS_KEPT_MS,
};
use base::error::Result;
use base::types::now_ms;

/// A stalled run: its holder's lease ran out, or its retry is due.
const STALLED: &str = "((status = 'running' AND lease_until < $1) \
                       OR (status = 'retry' AND next_attempt_at <= $1))";

const RUN_COLUMNS: &str = "id, job, slot, trigger_kind, status, owner, attempt, lease_until, \
                           next_attempt_at, started_at, finished_at, duration_ms, outcome, error";

fn run_of(r: &sqlx::any::AnyRow) -> Result<JobRun> {
    let outcome: String = r.try_get("outcome")?;
    Ok(JobRun {
        id: r.try_get("id")?,
        job: r.try_get("job")?,
        slot: r.try_get("slot")?,
        trigger: word(r, "trigger_kind", Trigger::parse)?,
        status: word(r, "status", RunStatus::parse)?,
        owner: r.try_get("owner")?,
        attempt: r.try_get("attempt")?,
        lease_until: r.try_get("lease_until")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        duration_ms: r.try_get("duration_ms")?,
        outcome: serde_json::from_str(&outcome).unwrap_or(serde_json::Value::Null),
        error: r.try_get("error")?,
    })
}

#[async_trait]
impl JobStore for SqlStore {
    async fn claim_job_slot(
        &self,
        job: &str,
        slot: i64,
        trigger: Trigger,
        owner: &str,
        lease_until: i64,
    ) -> Result<Option<JobClaim>> {
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO job_runs (id, job, slot, trigger_kind, status, owner, attempt, \
             lease_until, created_at, started_at) \
             VALUES ($1, $2, $3, $4, 'running', $5, 1, $6, $7, $7) \
             ON CONFLICT (job, slot) DO NOTHING",
        )
        .bind(&id)
        .bind(job)
        .bind(slot)
        .bind(trigger.as_str())
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok((done.rows_affected() == 1).then(|| JobClaim {
            id,
            job: job.to_owned(),
            slot,
            owner: owner.to_owned(),
            attempt: 1,
        }))
    }

    async fn claim_stalled_jobs(
        &self,
        jobs: &[&str],
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
        max_attempts: i64,
    ) -> Result<Vec<JobClaim>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = jobs
            .iter()
            .fold(
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT id, job, slot, attempt, status FROM job_runs WHERE {STALLED} \
                     AND job IN ({}) ORDER BY slot, id LIMIT $2",
                    placeholders(3, jobs.len())
                )))
                .bind(now)
                .bind(limit as i64),
                |q, job| q.bind(*job),
            )
            .fetch_all(&self.pool)
            .await?;
        let mut claims = Vec::new();
        for row in rows {
            let seen: i64 = row.try_get("attempt")?;
            let id: String = row.try_get("id")?;
            let status = word(&row, "status", RunStatus::parse)?;
            if status == RunStatus::Running && seen >= max_attempts {
                // its holder vanished that many times: the job may be what kills it
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE job_runs SET status = 'failed', finished_at = $1, lease_until = $1, \
                     error = $2 WHERE id = $3 AND attempt = $4 AND {STALLED}"
                )))
                .bind(now)
                .bind(format!(
                    "its runner stopped before the run ended {seen} times (the job may be \
                     crashing its server); not tried again"
                ))
                .bind(&id)
                .bind(seen)
                .execute(&self.pool)
                .await?;
                continue;
            }
            // the attempt seen is the fence: of runners racing for the row one moves it on
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE job_runs SET status = 'running', owner = $2, attempt = attempt + 1, \
                 lease_until = $3, next_attempt_at = NULL, started_at = $1 \
                 WHERE id = $4 AND attempt = $5 AND {STALLED}"
            )))
            .bind(now)
            .bind(owner)
            .bind(lease_until)
            .bind(&id)
            .bind(seen)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                claims.push(JobClaim {
                    id,
                    job: row.try_get("job")?,
                    slot: row.try_get("slot")?,
                    owner: owner.to_owned(),
                    attempt: seen + 1,
                });
            }
        }
        Ok(claims)
    }

    async fn renew_job_lease(&self, claim: &JobClaim, lease_until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE job_runs SET lease_until = $1 \
             WHERE id = $2 AND owner = $3 AND attempt = $4 AND status = 'running'",
        )
        .bind(lease_until)
        .bind(&claim.id)
        .bind(&claim.owner)
        .bind(claim.attempt)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_job(&self, claim: &JobClaim, end: &JobEnd, duration_ms: i64) -> Result<bool> {
        let (status, outcome, error, retry_at) = match end {
            JobEnd::Succeeded { outcome } => (RunStatus::Succeeded, outcome.as_str(), "", None),
            JobEnd::Retry { error, at } => (RunStatus::Retry, "", error.as_str(), Some(*at)),
            JobEnd::Failed { error } => (RunStatus::Failed, "", error.as_str(), None),
        };
        let error: String = error.chars().take(2000).collect();
        let done = sqlx::query(
            "UPDATE job_runs SET status = $1, outcome = $2, error = $3, next_attempt_at = $4, \
             finished_at = $5, duration_ms = $6 \
             WHERE id = $7 AND owner = $8 AND attempt = $9 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(outcome)
        .bind(error)
        .bind(retry_at)
        .bind(now_ms())
        .bind(duration_ms)
        .bind(&claim.id)
        .bind(&claim.owner)
        .bind(claim.attempt)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn job_runs(&self, job: Option<&str>, limit: usize) -> Result<Vec<JobRun>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE ($1 = '' OR job = $1) \
             ORDER BY slot DESC, id DESC LIMIT $2"
        )))
        .bind(job.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_of).collect()
    }

    async fn purge_job_runs(&self, before: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM job_runs WHERE created_at < $1 AND status IN ('succeeded', 'failed')",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl RetentionStore for SqlStore {
    async fn purge_conversations(&self, plan: &str, before: i64) -> Result<(u64, Vec<String>)> {
        purge_conversations_in(
            self,
            "SELECT c.id, c.user_id FROM conversations c JOIN users u ON u.id = c.user_id \
             WHERE c.updated_at < $1 AND u.plan = $2",
            before,
            plan,
        )
        .await
    }

    async fn purge_conversations_of(
        &self,
        collection: &str,
        before: i64,
    ) -> Result<(u64, Vec<String>)> {
        // `collections` is the scope as a JSON array of names and each citation names its
        // collection as `"collection":"<name>"` (a quote inside a passage's text is escaped, so
        // text never matches); names hold no quote or backslash.
        purge_conversations_in(
            self,
            "SELECT c.id, c.user_id FROM conversations c WHERE c.updated_at < $1 AND \
             (c.collections LIKE '%\"' || $2 || '\"%' ESCAPE '\\' OR EXISTS (SELECT 1 FROM \
             messages m WHERE m.conversation_id = c.id AND \
             m.citations LIKE '%\"collection\":\"' || $2 || '\"%' ESCAPE '\\'))",
            before,
            &like_escaped(collection),
        )
        .await
    }

    async fn purge_expired(&self, now: i64) -> Result<Purged> {
        let mut tx = self.begin_write().await?;
        let mut purged = Purged::default();
        let ended = "SELECT id FROM sessions WHERE revoked_at < $1 OR expires_at < $1";
        purged.refresh_tokens = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM refresh_tokens WHERE expires_at < $1 OR session_id IN ({ended})"
        )))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        purged.sessions = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM sessions WHERE id IN ({ended})"
        )))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        purged.mail =
            sqlx::query("DELETE FROM mail_outbox WHERE COALESCE(sent_at, failed_at) < $1")
                .bind(now - MAIL_KEPT_MS)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        purged.uploads =
            sqlx::query("DELETE FROM upload_jobs WHERE status <> 'running' AND created_at < $1")
                .bind(now - UPLOADS_KEPT_MS)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        for (table, count) in [
            ("auth_tokens", &mut purged.auth_tokens),
            ("sso_states", &mut purged.sso_states),
            ("exports", &mut purged.exports),
        ] {
            *count = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE expires_at < $1"
            )))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(purged)
    }
}

/// Deletes the conversations `old` selects (`id` and `user_id`, binding `$1` to `before` and
/// `$2` to `key`), with their messages, in one transaction; returns how many and the users who
/// lost any. The selection is read once, first: it may look at the messages it deletes.
async fn purge_conversations_in(
    store: &SqlStore,
    old: &str,
    before: i64,
    key: &str,
) -> Result<(u64, Vec<String>)> {
    {
        let mut tx = store.begin_write().await?;
        let rows = sqlx::query(AssertSqlSafe(old.to_owned()))
            .bind(before)
            .bind(key)
            .fetch_all(&mut *tx)
            .await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut users = std::collections::BTreeSet::new();
        for row in &rows {
            ids.push(row.try_get::<String, _>("id")?);
            users.insert(row.try_get::<String, _>("user_id")?);
        }
        for prefix in [
            "DELETE FROM messages WHERE conversation_id IN",
            "DELETE FROM conversations WHERE id IN",
        ] {
            for delete in SqlStore::in_queries(prefix, "", &ids) {
                delete.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok((ids.len() as u64, users.into_iter().collect()))
    }
}
