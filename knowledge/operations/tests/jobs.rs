//! Scheduled jobs on one database shared by several runners, each on its own connections (as
//! replicas are), on SQLite and on PostgreSQL: every occurrence runs exactly once; a holder
//! that dies mid-run loses the run to another runner once its lease runs out, and cannot write
//! its result afterwards; failures are retried with backoff and recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base::sql::SqlStore;
use base::{Error, Result, now_ms};
use lariat_tests::PgDatabase;
use operations::config::JobsConfig;
use operations::jobs::{JobSpec, Jobs, Schedule, Task};
use operations::store::{JobEnd, JobStore, RunStatus, Trigger};
use serde_json::json;

/// Counts its runs by the moment they started, sleeps `work`, and fails its first `fail` runs.
struct Probe {
    runs: Mutex<Vec<i64>>,
    work: Duration,
    fail: Mutex<usize>,
}

impl Probe {
    fn new(work: Duration, fail: usize) -> Arc<Self> {
        Arc::new(Self {
            runs: Mutex::new(Vec::new()),
            work,
            fail: Mutex::new(fail),
        })
    }

    fn count(&self) -> usize {
        self.runs.lock().unwrap().len()
    }
}

#[async_trait]
impl Task for Probe {
    async fn run(&self) -> Result<serde_json::Value> {
        self.runs.lock().unwrap().push(now_ms());
        tokio::time::sleep(self.work).await;
        let mut fail = self.fail.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return Err(Error::Upstream("the probe failed on purpose".into()));
        }
        Ok(json!({"ok": true}))
    }
}

fn config(lease_secs: u64, retry_base_secs: u64) -> JobsConfig {
    JobsConfig {
        lease_secs,
        retry_base_secs,
        max_attempts: 3,
        ..JobsConfig::default()
    }
}

fn runner(
    store: Arc<SqlStore>,
    config: JobsConfig,
    job: &str,
    every: &str,
    task: Arc<dyn Task>,
) -> Arc<Jobs> {
    let spec = JobSpec {
        name: job.to_owned(),
        schedule: Schedule::parse(every).unwrap(),
        task,
    };
    Arc::new(Jobs::new(store, config, vec![spec], Vec::new()).unwrap())
}

/// Ticks every runner every 100 ms for `secs`, waiting for the runs each claimed.
async fn tick_for(runners: &[Arc<Jobs>], secs: u64) {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut handles = Vec::new();
    while tokio::time::Instant::now() < end {
        for r in runners {
            handles.extend(r.tick().await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for h in handles {
        h.await.unwrap();
    }
}

/// Three runners, each with its own store (connections) and its own copy of the job, claim a
/// job due every second: each second's occurrence runs once, on one of them.
async fn every_occurrence_runs_once(stores: Vec<Arc<SqlStore>>) {
    let probes: Vec<Arc<Probe>> = stores
        .iter()
        .map(|_| Probe::new(Duration::from_millis(50), 0))
        .collect();
    let runners: Vec<Arc<Jobs>> = stores
        .iter()
        .zip(&probes)
        .map(|(s, p)| runner(s.clone(), config(30, 30), "probe", "* * * * * *", p.clone()))
        .collect();
    tick_for(&runners, 4).await;
    let runs = stores[0].job_runs(Some("probe"), 500).await.unwrap();
    let executed: usize = probes.iter().map(|p| p.count()).sum();
    assert!(runs.len() >= 3, "{runs:?}");
    assert_eq!(
        executed,
        runs.len(),
        "each recorded occurrence ran exactly once"
    );
    let mut slots: Vec<i64> = runs.iter().map(|r| r.slot).collect();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), runs.len());
    for r in &runs {
        assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
        assert_eq!(r.attempt, 1);
        assert_eq!(r.slot % 1000, 0, "a slot is the second it was due");
        assert_eq!(r.outcome, json!({"ok": true}));
    }
    let owners: std::collections::HashSet<&str> = runs.iter().map(|r| r.owner.as_str()).collect();
    let names: Vec<&str> = runners.iter().map(|r| r.owner()).collect();
    assert!(owners.iter().all(|o| names.contains(o)), "{owners:?}");
}

/// A holder dies mid-run (its task is aborted, so it never renews); once its lease is over
/// another runner takes the run over as attempt 2 and completes it; the dead holder's late
/// result is refused.
async fn a_dead_holders_run_is_taken_over(stores: Vec<Arc<SqlStore>>) {
    let slow = Probe::new(Duration::from_secs(30), 0);
    let quick = Probe::new(Duration::from_millis(10), 0);
    // a schedule that came round once, long ago: the runners' first tick claims it
    let yearly = "0 0 0 1 1 *";
    let a = runner(
        stores[0].clone(),
        config(1, 30),
        "sync",
        yearly,
        slow.clone(),
    );
    let b = runner(
        stores[1].clone(),
        config(1, 30),
        "sync",
        yearly,
        quick.clone(),
    );
    let held = a.tick().await.unwrap();
    assert_eq!(held.len(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(slow.count(), 1);
    let before = stores[0].job_runs(Some("sync"), 10).await.unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(
        (before[0].status.as_str(), before[0].owner.as_str()),
        ("running", a.owner())
    );
    // the holder dies
    for h in held {
        h.abort();
    }
    // while its lease lasts nobody else runs it
    assert!(b.tick().await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let taken = b.tick().await.unwrap();
    assert_eq!(taken.len(), 1, "taken over after the lease");
    for h in taken {
        h.await.unwrap();
    }
    let after = stores[0].job_runs(Some("sync"), 10).await.unwrap();
    assert_eq!(after.len(), 1);
    let run = &after[0];
    assert_eq!(
        (run.status.as_str(), run.attempt, run.owner.as_str()),
        ("succeeded", 2, b.owner())
    );
    assert_eq!(quick.count(), 1);

    // the stale holder's claim (attempt 1) writes nothing now
    let stale = operations::store::JobClaim {
        id: run.id.clone(),
        job: "sync".into(),
        slot: run.slot,
        owner: a.owner().to_owned(),
        attempt: 1,
    };
    let late = JobEnd::Failed {
        error: "late".into(),
    };
    assert!(!stores[0].finish_job(&stale, &late, 5).await.unwrap());
    assert!(
        !stores[0]
            .renew_job_lease(&stale, now_ms() + 60_000)
            .await
            .unwrap()
    );
    let kept = &stores[1].job_runs(Some("sync"), 1).await.unwrap()[0];
    assert_eq!(kept.status, RunStatus::Succeeded);
    assert_eq!(kept.error, "");
}

/// Failures are retried after the backoff and recorded; past max_attempts a run is failed.
async fn failures_retry_then_give_up(store: Arc<SqlStore>) {
    let flaky = Probe::new(Duration::from_millis(1), 1);
    let r = runner(
        store.clone(),
        config(30, 1),
        "flaky",
        "0 0 0 1 1 *",
        flaky.clone(),
    );
    tick_for(std::slice::from_ref(&r), 1).await;
    let run = &store.job_runs(Some("flaky"), 1).await.unwrap()[0];
    assert_eq!((run.status.as_str(), run.attempt), ("retry", 1), "{run:?}");
    assert!(run.error.contains("failed on purpose"));
    assert!(run.next_attempt_at.unwrap() > run.started_at);
    // the retry is due after a second: the second attempt succeeds
    tick_for(std::slice::from_ref(&r), 2).await;
    let run = &store.job_runs(Some("flaky"), 1).await.unwrap()[0];
    assert_eq!(
        (run.status.as_str(), run.attempt),
        ("succeeded", 2),
        "{run:?}"
    );
    assert_eq!(flaky.count(), 2);

    let broken = Probe::new(Duration::from_millis(1), 100);
    let r = runner(
        store.clone(),
        config(30, 0),
        "broken",
        "0 0 0 1 1 *",
        broken.clone(),
    );
    tick_for(std::slice::from_ref(&r), 2).await;
    let run = &store.job_runs(Some("broken"), 1).await.unwrap()[0];
    assert_eq!((run.status.as_str(), run.attempt), ("failed", 3), "{run:?}");
    assert_eq!(broken.count(), 3);

    // a manual run is its own occurrence
    let manual = r.run_now("broken").await.unwrap();
    assert_eq!(
        (manual.trigger.as_str(), manual.status.as_str()),
        ("manual", "retry")
    );
    assert!(r.run_now("nope").await.is_err());
    let list = r.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].last_run.as_ref().unwrap().id, manual.id);
    assert!(list[0].next_run.unwrap() > now_ms());

    // finished runs are forgotten after their days; open ones never
    assert!(store.purge_job_runs(now_ms() + 1).await.unwrap() >= 3);
    let left = store.job_runs(None, 100).await.unwrap();
    assert!(
        left.iter()
            .all(|r| r.status == RunStatus::Retry || r.status == RunStatus::Running),
        "{left:?}"
    );
}

/// A store whose lease renewals fail (the database is out of reach for this runner only).
struct Unreachable(Arc<SqlStore>);

#[async_trait]
impl JobStore for Unreachable {
    async fn claim_job_slot(
        &self,
        job: &str,
        slot: i64,
        trigger: Trigger,
        owner: &str,
        lease_until: i64,
    ) -> Result<Option<operations::store::JobClaim>> {
        self.0
            .claim_job_slot(job, slot, trigger, owner, lease_until)
            .await
    }
    async fn claim_stalled_jobs(
        &self,
        jobs: &[&str],
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
        max_attempts: i64,
    ) -> Result<Vec<operations::store::JobClaim>> {
        self.0
            .claim_stalled_jobs(jobs, owner, now, lease_until, limit, max_attempts)
            .await
    }
    async fn renew_job_lease(
        &self,
        _claim: &operations::store::JobClaim,
        _lease_until: i64,
    ) -> Result<bool> {
        Err(Error::Unavailable("the database is out of reach".into()))
    }
    async fn finish_job(
        &self,
        claim: &operations::store::JobClaim,
        end: &JobEnd,
        duration_ms: i64,
    ) -> Result<bool> {
        self.0.finish_job(claim, end, duration_ms).await
    }
    async fn job_runs(
        &self,
        job: Option<&str>,
        limit: usize,
    ) -> Result<Vec<operations::store::JobRun>> {
        self.0.job_runs(job, limit).await
    }
    async fn purge_job_runs(&self, before: i64) -> Result<u64> {
        self.0.purge_job_runs(before).await
    }
}

/// Runs until dropped, and says when it was stopped.
struct Endless {
    stopped: Arc<Mutex<Option<i64>>>,
}

struct StopWatch(Arc<Mutex<Option<i64>>>);

impl Drop for StopWatch {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(now_ms());
    }
}

#[async_trait]
impl Task for Endless {
    async fn run(&self) -> Result<serde_json::Value> {
        let _watch = StopWatch(self.stopped.clone());
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(json!({}))
    }
}

/// A holder that cannot renew its lease stops its work before the lease runs out (so it never
/// runs beside whoever takes the run over); a run whose holder vanishes on every attempt is
/// failed after `max_attempts`, not handed to the next server.
async fn a_holder_that_cannot_renew_stops_and_a_killer_job_gives_up(stores: Vec<Arc<SqlStore>>) {
    let stopped = Arc::new(Mutex::new(None));
    let task = Arc::new(Endless {
        stopped: stopped.clone(),
    });
    let cut_off = Arc::new(Unreachable(stores[0].clone()));
    let spec = JobSpec {
        name: "cutoff".into(),
        schedule: Schedule::parse("0 0 0 1 1 *").unwrap(),
        task,
    };
    let a = Arc::new(Jobs::new(cut_off, config(1, 30), vec![spec], Vec::new()).unwrap());
    let claimed_at = now_ms();
    let held = a.tick().await.unwrap();
    assert_eq!(held.len(), 1);
    for h in held {
        tokio::time::timeout(Duration::from_secs(5), h)
            .await
            .expect("the holder gave up")
            .unwrap();
    }
    let at = stopped.lock().unwrap().expect("the work was stopped");
    assert!(
        at < claimed_at + 1000,
        "stopped {} ms after the claim",
        at - claimed_at
    );

    // a job that takes its runner down each time: attempts 1, 2 and 3 vanish, then it fails
    let killer = Probe::new(Duration::from_secs(30), 0);
    let runners: Vec<Arc<Jobs>> = stores
        .iter()
        .map(|s| {
            runner(
                s.clone(),
                config(1, 30),
                "killer",
                "0 0 0 1 1 *",
                killer.clone(),
            )
        })
        .collect();
    for (attempt, r) in runners.iter().enumerate() {
        let held = r.tick().await.unwrap();
        assert_eq!(held.len(), 1, "attempt {}", attempt + 1);
        // it starts, and its runner dies
        tokio::time::sleep(Duration::from_millis(100)).await;
        for h in held {
            h.abort();
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    for r in &runners {
        assert!(r.tick().await.unwrap().is_empty(), "never handed on again");
    }
    let run = &stores[0].job_runs(Some("killer"), 1).await.unwrap()[0];
    assert_eq!((run.status.as_str(), run.attempt), ("failed", 3), "{run:?}");
    assert!(
        run.error.contains("stopped before the run ended 3 times"),
        "{run:?}"
    );
    assert_eq!(killer.count(), 3);
}

/// What every backend must do, given a way to open another store on the same database.
async fn suite<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = SqlStore>,
{
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(open().await));
    }
    every_occurrence_runs_once(stores.clone()).await;
    a_dead_holders_run_is_taken_over(stores.clone()).await;
    failures_retry_then_give_up(stores[0].clone()).await;
    a_holder_that_cannot_renew_stops_and_a_killer_job_gives_up(stores.clone()).await;
    // racing claims of one slot: one wins
    let mut wins = 0;
    let claims = futures::future::join_all(
        stores
            .iter()
            .map(|s| s.claim_job_slot("race", 42, Trigger::Schedule, "x", now_ms() + 1000)),
    )
    .await;
    for c in claims {
        wins += usize::from(c.unwrap().is_some());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn sqlite_runners_share_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lariat.db");
    suite(|| async { SqlStore::open_sqlite(&path).await.unwrap() }).await;
}

#[tokio::test]
async fn postgres_runners_share_the_jobs() {
    let db = PgDatabase::create().await;
    suite(|| async { SqlStore::open_postgres(&db.url).await.unwrap() }).await;
    db.drop_db().await;
}
