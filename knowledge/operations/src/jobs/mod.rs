//! Scheduled jobs, run once per occurrence however many runners share the database.
//!
//! tokio-cron-scheduler only ticks (every `jobs.tick_secs`); each tick, a runner works out each
//! job's latest occurrence from its cron schedule (croner, UTC) and claims it in SQL by
//! inserting its (job, slot) row ([`JobStore::claim_job_slot`]): one runner wins, the others
//! see the row and move on. The holder renews its lease while the job runs (every quarter of
//! it), and stops the work itself once renewals have failed until half the lease is left, so it
//! never runs beside a successor; if it dies, its lease runs out and the next tick of any runner
//! takes the run over (another attempt), up to `jobs.max_attempts` (a run whose holder vanished
//! that often is failed: the job may be what kills it). A failed run is tried again after a
//! doubling delay, up to `jobs.max_attempts`. Results are
//! written only under the claim's owner and attempt, so a holder that lost its lease (paused,
//! partitioned) cannot overwrite what its successor recorded; it stops as soon as a renewal
//! tells it so.

mod housekeeping;

pub use housekeeping::{BillingSweep, MailSweep, Retention};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::config::JobsConfig;
use crate::store::{JobClaim, JobEnd, JobRun, JobStore, Trigger};
use base::error::{Error, Result};
use base::principal::{Principal, Role};
use base::types::now_ms;

/// A job's schedule: a cron expression of 5 fields (minute precision) or 6 (seconds first),
/// read in UTC.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.len() > 200 {
            return Err(Error::InvalidInput(
                "a schedule has at most 200 characters".into(),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(text)
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "{text:?} is not a cron schedule (minute hour day month weekday, with an \
                     optional seconds field first): {e}"
                ))
            })?;
        let schedule = Self {
            text: text.to_owned(),
            cron,
        };
        // a pattern that never fires (30 February) is a mistake, not a schedule
        if schedule.next_after(now_ms()).is_none() {
            return Err(Error::InvalidInput(format!("{text:?} never comes round")));
        }
        Ok(schedule)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `ms` as a time, to the whole second (croner keeps the fraction it is given, and a slot
    /// must name the occurrence alone).
    fn at(ms: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(ms.div_euclid(1000), 0).single()
    }

    /// The latest occurrence at or before `now` (ms).
    pub fn latest(&self, now: i64) -> Option<i64> {
        self.cron
            .find_previous_occurrence(&Self::at(now)?, true)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The first occurrence after `now` (ms).
    pub fn next_after(&self, now: i64) -> Option<i64> {
        self.cron
            .find_next_occurrence(&Self::at(now)?, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}

/// What a job does. Its JSON result (counts of what it did) is kept with the run.
#[async_trait]
pub trait Task: Send + Sync {
    async fn run(&self) -> Result<serde_json::Value>;
}

/// Jobs that come and go (collections' sources), looked up at every tick.
#[async_trait]
pub trait JobCatalog: Send + Sync {
    async fn jobs(self: Arc<Self>) -> Result<Vec<JobSpec>>;
}

/// A named job on a schedule.
pub struct JobSpec {
    pub name: String,
    pub schedule: Schedule,
    pub task: Arc<dyn Task>,
}

/// A job as admins see it: its schedule, when it runs next, how its last run went.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobStatus {
    pub name: String,
    pub schedule: String,
    /// The next occurrence (ms), if any.
    pub next_run: Option<i64>,
    pub last_run: Option<JobRun>,
}

/// The runner: the jobs, their store, and who this runner is.
pub struct Jobs {
    store: Arc<dyn JobStore>,
    owner: String,
    config: JobsConfig,
    specs: Vec<Arc<JobSpec>>,
    catalogs: Vec<Arc<dyn JobCatalog>>,
    /// The latest slot this runner tried to claim, per job (so a tick only asks once a slot).
    tried: Mutex<HashMap<String, i64>>,
}

impl Jobs {
    /// A runner of `specs`, and of the jobs `catalogs` hold at each tick.
    pub fn new(
        store: Arc<dyn JobStore>,
        config: JobsConfig,
        specs: Vec<JobSpec>,
        catalogs: Vec<Arc<dyn JobCatalog>>,
    ) -> Result<Self> {
        let mut names = std::collections::HashSet::new();
        for spec in &specs {
            if !names.insert(spec.name.clone()) {
                return Err(Error::InvalidInput(format!(
                    "two jobs are named {}",
                    spec.name
                )));
            }
        }
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let owner = format!(
            "{}{}pid{}-{}",
            host,
            if host.is_empty() { "" } else { "-" },
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Ok(Self {
            store,
            owner,
            config,
            specs: specs.into_iter().map(Arc::new).collect(),
            catalogs,
            tried: Mutex::new(HashMap::new()),
        })
    }

    /// This runner's name in the runs it holds.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn lease(&self) -> i64 {
        self.config.lease_secs as i64 * 1000
    }

    /// Every job: the fixed ones, then the catalogs' (a catalog's own names never shadow a
    /// fixed job's).
    async fn specs(&self) -> Result<Vec<Arc<JobSpec>>> {
        let mut all = self.specs.clone();
        for catalog in &self.catalogs {
            for spec in catalog.clone().jobs().await? {
                if !all.iter().any(|s| s.name == spec.name) {
                    all.push(Arc::new(spec));
                }
            }
        }
        Ok(all)
    }

    async fn spec(&self, name: &str) -> Result<Option<Arc<JobSpec>>> {
        if let Some(spec) = self.specs.iter().find(|s| s.name == name) {
            return Ok(Some(spec.clone()));
        }
        Ok(self.specs().await?.into_iter().find(|s| s.name == name))
    }

    /// One look for due work: each job's latest occurrence (if this runner has not tried it
    /// yet) and runs that stalled or wait for a retry. Every run this runner claims is started
    /// on its own task; their handles are returned.
    pub async fn tick(self: &Arc<Self>) -> Result<Vec<JoinHandle<()>>> {
        let now = now_ms();
        let specs = self.specs().await?;
        let mut started = Vec::new();
        for spec in &specs {
            let Some(slot) = spec.schedule.latest(now) else {
                continue;
            };
            {
                let mut tried = self.tried.lock().unwrap_or_else(|p| p.into_inner());
                if tried.get(&spec.name).is_some_and(|t| *t >= slot) {
                    continue;
                }
                tried.insert(spec.name.clone(), slot);
            }
            if let Some(claim) = self
                .store
                .claim_job_slot(
                    &spec.name,
                    slot,
                    Trigger::Schedule,
                    &self.owner,
                    now + self.lease(),
                )
                .await?
            {
                started.push(tokio::spawn(self.clone().execute(spec.clone(), claim)));
            }
        }
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        let stalled = self
            .store
            .claim_stalled_jobs(
                &names,
                &self.owner,
                now,
                now + self.lease(),
                16,
                i64::from(self.config.max_attempts),
            )
            .await?;
        for claim in stalled {
            if let Some(spec) = specs.iter().find(|s| s.name == claim.job).cloned() {
                started.push(tokio::spawn(self.clone().execute(spec, claim)));
            }
        }
        Ok(started)
    }

    /// Runs a claimed occurrence, renewing its lease, and records how it ended.
    async fn execute(self: Arc<Self>, spec: Arc<JobSpec>, claim: JobClaim) {
        let started = Instant::now();
        let renewals = async {
            let every = (self.lease() / 4).max(100);
            // the lease as claimed, at the latest (it was claimed just before this started)
            let mut held_until = now_ms() + self.lease();
            loop {
                tokio::time::sleep(Duration::from_millis(every as u64)).await;
                let until = now_ms() + self.lease();
                match self.store.renew_job_lease(&claim, until).await {
                    Ok(true) => held_until = until,
                    Ok(false) => return "the run's lease was taken over",
                    // a database hiccup: try again while the lease lasts, but stop the work
                    // before it runs out, so it never runs beside whoever takes the run over
                    Err(e) => {
                        tracing::warn!(job = %claim.job, error = %e, "lease renewal failed");
                        if held_until - now_ms() <= 2 * every {
                            return "the run's lease could not be renewed before it ran out";
                        }
                    }
                }
            }
        };
        let result = tokio::select! {
            result = spec.task.run() => result,
            why = renewals => {
                tracing::warn!(job = %claim.job, slot = claim.slot, "{why}; stopped");
                return;
            }
        };
        let duration_ms = started.elapsed().as_millis() as i64;
        let end = match result {
            Ok(outcome) => JobEnd::Succeeded {
                outcome: outcome.to_string(),
            },
            Err(e) if claim.attempt < i64::from(self.config.max_attempts) => {
                let delay = self
                    .config
                    .retry_base_secs
                    .saturating_mul(1 << (claim.attempt - 1).min(16));
                JobEnd::Retry {
                    error: e.to_string(),
                    at: now_ms() + delay.min(3600) as i64 * 1000,
                }
            }
            Err(e) => JobEnd::Failed {
                error: e.to_string(),
            },
        };
        match &end {
            JobEnd::Succeeded { .. } => {
                tracing::info!(job = %claim.job, attempt = claim.attempt, duration_ms, "job done")
            }
            JobEnd::Retry { error, .. } | JobEnd::Failed { error } => {
                tracing::warn!(job = %claim.job, attempt = claim.attempt, %error, "job failed")
            }
        }
        match self.store.finish_job(&claim, &end, duration_ms).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                job = %claim.job,
                "the run was taken over while it ran; its result is not recorded"
            ),
            Err(e) => {
                tracing::error!(job = %claim.job, error = %e, "a run's result could not be recorded")
            }
        }
    }

    /// Starts `name` now, outside its schedule, on a task of its own; returns the run as
    /// claimed and the task.
    pub async fn start_now(self: &Arc<Self>, name: &str) -> Result<(JobRun, JoinHandle<()>)> {
        let spec = self.spec(name).await?.ok_or_else(|| self.unknown(name))?;
        let now = now_ms();
        let claim = self
            .store
            .claim_job_slot(name, now, Trigger::Manual, &self.owner, now + self.lease())
            .await?
            .ok_or_else(|| Error::Conflict(format!("{name} was started this very moment")))?;
        let run = self.find_run(name, &claim.id).await?;
        Ok((run, tokio::spawn(self.clone().execute(spec, claim))))
    }

    /// Runs `name` now, outside its schedule (`lariat jobs run`), and returns the run.
    pub async fn run_now(self: &Arc<Self>, name: &str) -> Result<JobRun> {
        let (run, task) = self.start_now(name).await?;
        task.await?;
        self.find_run(name, &run.id).await
    }

    async fn find_run(&self, name: &str, id: &str) -> Result<JobRun> {
        self.store
            .job_runs(Some(name), 50)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::Internal(format!("the run of {name} was not recorded")))
    }

    fn unknown(&self, name: &str) -> Error {
        let names: Vec<&str> = self.specs.iter().map(|s| s.name.as_str()).collect();
        Error::NotFound(format!(
            "no job {name:?}; there are: {} (and each source's, source:<id>)",
            names.join(", ")
        ))
    }

    /// Every job with its next and last run.
    pub async fn list(&self) -> Result<Vec<JobStatus>> {
        let now = now_ms();
        let mut out = Vec::new();
        for spec in self.specs().await? {
            out.push(JobStatus {
                name: spec.name.clone(),
                schedule: spec.schedule.as_str().to_owned(),
                next_run: spec.schedule.next_after(now),
                last_run: self.store.job_runs(Some(&spec.name), 1).await?.pop(),
            });
        }
        Ok(out)
    }

    /// Runs, newest first, of one job or all (1-500).
    pub async fn history(&self, name: Option<&str>, limit: usize) -> Result<Vec<JobRun>> {
        if !(1..=500).contains(&limit) {
            return Err(Error::InvalidInput("limit must be 1-500".into()));
        }
        if let Some(name) = name
            && self.spec(name).await?.is_none()
        {
            return Err(self.unknown(name));
        }
        self.store.job_runs(name, limit).await
    }

    /// [`Jobs::list`] for an admin.
    pub async fn list_as(&self, principal: &Principal) -> Result<Vec<JobStatus>> {
        principal.require(Role::Admin)?;
        self.list().await
    }

    /// [`Jobs::history`] for an admin.
    pub async fn history_as(
        &self,
        principal: &Principal,
        name: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JobRun>> {
        principal.require(Role::Admin)?;
        self.history(name, limit).await
    }

    /// Ticks every `jobs.tick_secs` until its task is dropped (`lariat serve`, `lariat jobs
    /// worker`).
    pub async fn run(self: Arc<Self>) -> Result<()> {
        use tokio_cron_scheduler::{Job, JobScheduler};
        let scheduler = |e: tokio_cron_scheduler::JobSchedulerError| {
            Error::Internal(format!("the job scheduler: {e}"))
        };
        let ticker = JobScheduler::new().await.map_err(scheduler)?;
        let jobs = self.clone();
        let tick = Job::new_repeated_async(
            Duration::from_secs(self.config.tick_secs.max(1)),
            move |_, _| {
                let jobs = jobs.clone();
                Box::pin(async move {
                    if let Err(e) = jobs.tick().await {
                        tracing::warn!(error = %e, "jobs: looking for due work failed");
                    }
                })
            },
        )
        .map_err(scheduler)?;
        ticker.add(tick).await.map_err(scheduler)?;
        ticker.start().await.map_err(scheduler)?;
        tracing::info!(owner = %self.owner, jobs = self.specs.len(), "job runner started");
        // the scheduler's own tasks tick; this task only keeps it alive, and stops it when dropped
        struct Stop(Option<JobScheduler>);
        impl Drop for Stop {
            fn drop(&mut self) {
                if let Some(mut s) = self.0.take() {
                    tokio::spawn(async move { s.shutdown().await });
                }
            }
        }
        let _stop = Stop(Some(ticker));
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_name_their_occurrences() {
        let every_5_min = Schedule::parse("*/5 * * * *").unwrap();
        // 2026-12-03 12:13:20 UTC
        let now = 1_796_300_000_000;
        let latest = every_5_min.latest(now).unwrap();
        assert_eq!(latest % 300_000, 0);
        assert!(now - latest < 300_000);
        assert_eq!(every_5_min.next_after(now).unwrap() - latest, 300_000);
        // an occurrence is its own latest
        assert_eq!(every_5_min.latest(latest), Some(latest));
        let seconds = Schedule::parse("*/2 * * * * *").unwrap();
        assert_eq!(
            seconds.next_after(now).unwrap() - seconds.latest(now).unwrap(),
            2000
        );
        for bad in [
            "",
            "every day",
            "61 * * * *",
            "* * 30 2 *",
            "* * * * * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
