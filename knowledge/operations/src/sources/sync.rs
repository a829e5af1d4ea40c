//! Sources: a folder on the server, a list of pages, or a sitemap, that a collection follows on a
//! schedule. Each source is the job `source:<id>` on the job runner (so each of its syncs runs
//! once among all servers), looked up from the store at every tick ([`JobCatalog`]); a new or
//! edited source syncs at the next tick, then on its schedule.
//!
//! A sync checks every page or file the source names: a page is fetched conditionally with the
//! validators its last fetch returned (an unchanged page costs one request and no body), a file
//! is read only if its size or modification time changed; what changed is ingested (documents
//! whose content did not change are skipped by their hash). A page that answers 404 or 410, a
//! file no longer in the folder or a page no longer in the sitemap counts a miss; after the
//! source's `max_misses` consecutive misses its documents are deleted. A page taken out of a
//! source's own list goes at the next sync. A page that fails otherwise (a timeout, a 5xx) is
//! reported and keeps its documents.
//!
//! Who may: a collection's curators and admins (the rules of [`Collections`]); but a folder
//! source reads the server's own files, so only admins add one or change its folder, over the
//! API only under one of `sources.folder_roots` (the local operator at the command line may name
//! any folder). Every sync checks the folder again (still that folder, no link in its place,
//! still under the roots), lists regular files only and follows no link, and reads each file
//! beneath the folder ([`super::read_file`]).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::fetch::ADDRESS_REFUSED;
use super::{Failure, Fetcher, Ingestor};
use crate::config::SourcesConfig;
use crate::jobs::{JobCatalog, JobSpec, Schedule, Task};
use crate::store::{JobRun, JobStore, RunStatus, SourceItem, SourceStore};
use base::error::{Error, Result};
use base::principal::Directory;
use base::principal::{Principal, Role};
use base::types::{CollectionName, now_ms};
use knowledge::Knowledge;
use knowledge::collections::{Collections, WriteAccess};

/// Longest target (a path or an address), in bytes.
pub(super) const MAX_TARGET: usize = 2048;
/// Sitemaps a sitemap index may name.
pub(super) const MAX_SITEMAPS: usize = 50;
/// Pages fetched at once by one sync.
pub(super) const FETCH_CONCURRENCY: usize = 4;

/// What a source follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A folder on the server (one target), read recursively.
    Folder,
    /// One or more web pages (HTML, PDF, Markdown, text).
    Urls,
    /// The pages a sitemap (one target; a sitemap index too) lists on its own host.
    Sitemap,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Folder => "folder",
            SourceKind::Urls => "urls",
            SourceKind::Sitemap => "sitemap",
        }
    }

    pub fn parse(raw: &str) -> Result<Self> {
        match raw {
            "folder" => Ok(SourceKind::Folder),
            "urls" | "url" => Ok(SourceKind::Urls),
            "sitemap" => Ok(SourceKind::Sitemap),
            other => Err(Error::InvalidInput(format!(
                "unknown source kind {other:?}: folder, urls or sitemap"
            ))),
        }
    }
}

/// A collection's source.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Source {
    pub id: String,
    pub collection: String,
    pub kind: SourceKind,
    /// The folder, the pages, or the sitemap's address.
    pub targets: Vec<String>,
    /// When it syncs: cron, 5 fields or 6 (seconds first), UTC.
    pub schedule: String,
    /// Consecutive syncs a page or file may be missing before its documents are deleted.
    pub max_misses: u32,
    /// The id of the user who added it.
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Source {
    /// Its job on the runner.
    pub fn job(&self) -> String {
        job_name(&self.id)
    }
}

fn job_name(id: &str) -> String {
    format!("source:{id}")
}

/// A source as curators see it: when it syncs next, and how its last sync went.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SourceView {
    #[serde(flatten)]
    pub source: Source,
    /// Its job's name (`lariat jobs history source:<id>`).
    pub job: String,
    pub next_sync: Option<i64>,
    /// The last sync; its outcome is a [`SyncReport`].
    pub last_sync: Option<JobRun>,
}

/// A new source.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSource {
    pub kind: SourceKind,
    pub targets: Vec<String>,
    pub schedule: String,
    /// Defaults to `sources.max_misses`.
    #[serde(default)]
    pub max_misses: Option<u32>,
}

/// A change to a source; `None` keeps the field. Its kind stays.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceUpdate {
    pub targets: Option<Vec<String>>,
    pub schedule: Option<String>,
    pub max_misses: Option<u32>,
}

/// What one sync did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SyncReport {
    pub source: String,
    pub collection: String,
    /// Pages fetched or files listed.
    pub checked: usize,
    /// Unchanged by their validators (a 304, or a file of the same size and time): not read.
    pub not_modified: usize,
    /// Documents added, updated, or read and found unchanged.
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub chunks: usize,
    /// Pages or files missing this sync whose documents are kept until `max_misses`.
    pub missing: usize,
    /// Documents deleted: their page or file was missing `max_misses` syncs in a row, or was
    /// taken out of the source.
    pub deleted: usize,
    pub failed: usize,
    pub failures: Vec<Failure>,
}

/// Sources, their syncs, and who may change them.
pub struct Sources {
    pub(super) knowledge: Arc<Knowledge>,
    pub(super) collections: Collections,
    /// Who made each source (a folder outside the roots is the local operator's only).
    pub(super) accounts: Arc<dyn Directory>,
    pub(super) store: Arc<dyn SourceStore>,
    pub(super) runs: Arc<dyn JobStore>,
    pub(super) fetcher: Fetcher,
    pub(super) config: SourcesConfig,
    pub(super) ingestor: Arc<dyn Ingestor>,
    /// One lock per source: a sync and a removal of one source in this process take turns (a
    /// removal during a sync would otherwise see the sync write back what it deleted).
    pub(super) busy: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

impl Sources {
    pub fn new(
        knowledge: Arc<Knowledge>,
        accounts: Arc<dyn Directory>,
        store: Arc<dyn SourceStore>,
        runs: Arc<dyn JobStore>,
        config: &SourcesConfig,
        ingestor: Arc<dyn Ingestor>,
    ) -> Result<Self> {
        Ok(Self {
            collections: Collections::new(knowledge.clone(), accounts.clone()),
            accounts,
            knowledge,
            store,
            runs,
            fetcher: Fetcher::new(config)?,
            config: config.clone(),
            ingestor,
            busy: std::sync::Mutex::default(),
        })
    }

    /// Waits for this process's turn at source `id`.
    async fn turn(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            // forget the locks nobody holds or waits for
            busy.retain(|_, l| Arc::strong_count(l) > 1);
            busy.entry(id.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    fn unknown(id: &str) -> Error {
        Error::NotFound(format!("no source {id:?}"))
    }

    /// The source `id` of `collection`, which `principal` curates.
    async fn curated(
        &self,
        principal: &Principal,
        collection: &CollectionName,
        id: &str,
    ) -> Result<Source> {
        self.collections
            .require_curator(principal, collection)
            .await?;
        match self.store.source(id).await? {
            Some(s) if s.collection == collection.as_str() => Ok(s),
            _ => Err(Self::unknown(id)),
        }
    }

    /// Checks a schedule, and that it leaves `sources.min_interval_secs` between syncs.
    fn schedule(&self, text: &str) -> Result<Schedule> {
        let schedule = Schedule::parse(text)?;
        let mut at = schedule.latest(now_ms()).unwrap_or_else(now_ms);
        for _ in 0..16 {
            let Some(next) = schedule.next_after(at) else {
                break;
            };
            if next - at < self.config.min_interval_secs as i64 * 1000 {
                return Err(Error::InvalidInput(format!(
                    "{text:?} syncs more often than every {} seconds (sources.min_interval_secs)",
                    self.config.min_interval_secs
                )));
            }
            at = next;
        }
        Ok(schedule)
    }

    fn max_misses(&self, asked: Option<u32>) -> Result<u32> {
        match asked.unwrap_or(self.config.max_misses) {
            n @ 1..=1000 => Ok(n),
            n => Err(Error::InvalidInput(format!(
                "max_misses must be 1-1000, not {n}"
            ))),
        }
    }

    /// Parses a kind's targets: one folder that exists (under `sources.folder_roots` unless the
    /// local operator names it), or http(s) addresses (one for a sitemap).
    async fn targets(
        &self,
        principal: &Principal,
        kind: SourceKind,
        raw: &[String],
    ) -> Result<Vec<String>> {
        let mut targets = Vec::new();
        let mut seen = HashSet::new();
        for t in raw.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            if t.len() > MAX_TARGET {
                return Err(Error::InvalidInput(format!(
                    "a target has at most {MAX_TARGET} bytes"
                )));
            }
            if seen.insert(t.to_owned()) {
                targets.push(t.to_owned());
            }
        }
        let one = |what: &str| match targets.len() {
            1 => Ok(()),
            _ => Err(Error::InvalidInput(format!(
                "a {what} source names exactly one target"
            ))),
        };
        match kind {
            SourceKind::Folder => {
                one("folder")?;
                // a folder is the server's own disk: admins choose it, curators follow it
                if principal.role() < Role::Admin {
                    return Err(Error::Forbidden(
                        "folder sources are added and changed by admins (the folder is on the \
                         server's own disk); ask an administrator, or follow pages or a sitemap"
                            .into(),
                    ));
                }
                let (raw, local) = (PathBuf::from(&targets[0]), principal.is_local_operator());
                let roots = self.config.folder_roots.clone();
                // canonicalising reads the file system: off the async runtime
                let folder =
                    tokio::task::spawn_blocking(move || resolve_folder(&raw, &roots, local))
                        .await??;
                Ok(vec![folder])
            }
            SourceKind::Sitemap => {
                one("sitemap")?;
                Ok(vec![Fetcher::parse_url(&targets[0])?.to_string()])
            }
            SourceKind::Urls => {
                if targets.is_empty() || targets.len() > self.config.max_pages {
                    return Err(Error::InvalidInput(format!(
                        "a urls source names 1-{} pages (sources.max_pages)",
                        self.config.max_pages
                    )));
                }
                let mut urls = Vec::new();
                for t in &targets {
                    let url = Fetcher::parse_url(t)?.to_string();
                    if !urls.contains(&url) {
                        urls.push(url);
                    }
                }
                Ok(urls)
            }
        }
    }

    /// Adds a source to a collection `principal` curates (or, for admins, a new one).
    pub async fn add(
        &self,
        principal: &Principal,
        collection: &CollectionName,
        new: &NewSource,
    ) -> Result<Source> {
        let access = self
            .collections
            .authorize_write(principal, collection)
            .await?;
        let schedule = self.schedule(&new.schedule)?;
        let targets = self.targets(principal, new.kind, &new.targets).await?;
        let max_misses = self.max_misses(new.max_misses)?;
        if self.store.sources(Some(collection.as_str())).await?.len()
            >= self.config.max_per_collection
        {
            return Err(Error::Conflict(format!(
                "{collection} has {} sources, the most a collection may have \
                 (sources.max_per_collection)",
                self.config.max_per_collection
            )));
        }
        if access == WriteAccess::Create {
            self.knowledge.ensure_collection(collection).await?;
        }
        let now = now_ms();
        let source = Source {
            id: uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
            collection: collection.to_string(),
            kind: new.kind,
            targets,
            schedule: schedule.as_str().to_owned(),
            max_misses,
            created_by: principal.user.id.clone(),
            created_at: now,
            updated_at: now,
        };
        self.store.insert_source(&source).await?;
        tracing::info!(source = %source.id, collection = %collection, kind = source.kind.as_str(), by = %principal.user.email, "source added");
        Ok(source)
    }

    /// The source as `viewer` sees it: an admin sees why a fetch target was refused; anyone
    /// else only that its address is not allowed (which rule refused it, and what a name
    /// resolved to, tell about the server's network).
    async fn view(&self, source: Source, viewer: &Principal) -> Result<SourceView> {
        let job = source.job();
        let next_sync = Schedule::parse(&source.schedule)
            .ok()
            .and_then(|s| s.next_after(now_ms()));
        let mut last_sync = self.runs.job_runs(Some(&job), 1).await?.pop();
        if !viewer.is_admin()
            && let Some(run) = &mut last_sync
        {
            if run.error.contains(ADDRESS_REFUSED) {
                run.error = ADDRESS_REFUSED.into();
            }
            if let Some(failures) = run
                .outcome
                .get_mut("failures")
                .and_then(|f| f.as_array_mut())
            {
                for failure in failures {
                    let refused = failure["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains(ADDRESS_REFUSED));
                    if refused {
                        failure["reason"] = ADDRESS_REFUSED.into();
                    }
                }
            }
        }
        Ok(SourceView {
            source,
            job,
            next_sync,
            last_sync,
        })
    }

    /// A collection's sources (its curators).
    pub async fn list(
        &self,
        principal: &Principal,
        collection: &CollectionName,
    ) -> Result<Vec<SourceView>> {
        self.collections
            .require_curator(principal, collection)
            .await?;
        let mut out = Vec::new();
        for s in self.store.sources(Some(collection.as_str())).await? {
            out.push(self.view(s, principal).await?);
        }
        Ok(out)
    }

    pub async fn get(
        &self,
        principal: &Principal,
        collection: &CollectionName,
        id: &str,
    ) -> Result<SourceView> {
        let source = self.curated(principal, collection, id).await?;
        self.view(source, principal).await
    }

    /// Changes a source's targets, schedule or misses.
    pub async fn update(
        &self,
        principal: &Principal,
        collection: &CollectionName,
        id: &str,
        update: &SourceUpdate,
    ) -> Result<Source> {
        let mut source = self.curated(principal, collection, id).await?;
        if let Some(schedule) = &update.schedule {
            source.schedule = self.schedule(schedule)?.as_str().to_owned();
        }
        if let Some(targets) = &update.targets {
            source.targets = self.targets(principal, source.kind, targets).await?;
        }
        if update.max_misses.is_some() {
            source.max_misses = self.max_misses(update.max_misses)?;
        }
        source.updated_at = now_ms();
        if !self.store.update_source(&source).await? {
            return Err(Self::unknown(id));
        }
        Ok(source)
    }

    /// Removes a source and, unless `keep_documents`, the documents it brought; returns how
    /// many documents were deleted.
    pub async fn remove(
        &self,
        principal: &Principal,
        collection: &CollectionName,
        id: &str,
        keep_documents: bool,
    ) -> Result<usize> {
        self.curated(principal, collection, id).await?;
        let _turn = self.turn(id).await;
        let items = self.store.source_items(id).await?;
        if !self.store.delete_source(id).await? {
            return Err(Self::unknown(id));
        }
        let mut deleted = 0;
        if !keep_documents {
            for item in &items {
                deleted += self.delete_item(collection, item).await?;
            }
        }
        tracing::info!(source = %id, collection = %collection, deleted, by = %principal.user.email, "source removed");
        Ok(deleted)
    }

    /// The job that syncs source `id` of `collection`, for `principal` who curates it, now: not
    /// while a sync of it runs, nor (but for the local operator) within
    /// `sources.min_interval_secs` of the last one's start: a sync by hand costs the sites what
    /// a scheduled one does.
    pub async fn authorize_sync(
        &self,
        principal: &Principal,
        collection: &CollectionName,
        id: &str,
    ) -> Result<String> {
        let job = self.curated(principal, collection, id).await?.job();
        let Some(last) = self.runs.job_runs(Some(&job), 1).await?.into_iter().next() else {
            return Ok(job);
        };
        let now = now_ms();
        if last.status == RunStatus::Running && last.lease_until > now {
            return Err(Error::Conflict(
                "a sync of this source is under way: sync again when it has ended".into(),
            ));
        }
        if principal.is_local_operator() {
            return Ok(job);
        }
        let interval = self.config.min_interval_secs as i64 * 1000;
        let wait = last.started_at + interval - now;
        if wait > 0 {
            let secs = (wait as u64).div_ceil(1000);
            return Err(Error::RateLimited {
                message: format!(
                    "this source synced less than {} s ago (sources.min_interval_secs); sync it \
                     again in {secs} s",
                    self.config.min_interval_secs
                ),
                retry_after_secs: secs,
            });
        }
        Ok(job)
    }

    async fn delete_item(&self, collection: &CollectionName, item: &SourceItem) -> Result<usize> {
        let ids = self
            .knowledge
            .documents_by_source(Some(collection), &item.document_source)
            .await?;
        self.knowledge.delete_documents(&ids).await
    }

    /// Syncs source `id` now (its job's task; `lariat source sync` goes through the runner).
    pub async fn sync(&self, id: &str) -> Result<SyncReport> {
        let _turn = self.turn(id).await;
        let source = self
            .store
            .source(id)
            .await?
            .ok_or_else(|| Self::unknown(id))?;
        let collection = CollectionName::parse(&source.collection)?;
        let prior: HashMap<String, SourceItem> = self
            .store
            .source_items(id)
            .await?
            .into_iter()
            .map(|i| (i.item.clone(), i))
            .collect();
        let mut report = SyncReport {
            source: source.id.clone(),
            collection: source.collection.clone(),
            ..SyncReport::default()
        };
        let checked = match source.kind {
            SourceKind::Folder => self.check_folder(&source, &prior, &mut report).await?,
            SourceKind::Urls => self.check_pages(&source.targets, &prior, &mut report).await,
            SourceKind::Sitemap => {
                let pages = self.sitemap_pages(&source.targets[0], &mut report).await?;
                self.check_pages(&pages, &prior, &mut report).await
            }
        };

        // ingest what changed; a page or file that failed keeps its old state (retried next time)
        let mut kept: Vec<SourceItem> = Vec::new();
        let mut inputs = Vec::new();
        let mut changed = Vec::new();
        for c in checked {
            match c.input {
                Some(input) => {
                    changed.push((input.name(), c.item));
                    inputs.push(input);
                }
                None => kept.push(c.item),
            }
        }
        if !inputs.is_empty() {
            let ingested = self
                .ingestor
                .ingest(self.knowledge.clone(), &collection, inputs, &())
                .await?;
            report.added += ingested.added;
            report.updated += ingested.updated;
            report.unchanged += ingested.unchanged;
            report.chunks += ingested.chunks;
            let failed: HashSet<&str> = ingested.failures.iter().map(|f| f.path.as_str()).collect();
            for (name, item) in changed {
                if !failed.contains(name.as_str()) {
                    kept.push(item);
                } else if let Some(old) = prior.get(&item.item) {
                    kept.push(old.clone());
                }
            }
            report.failures.extend(ingested.failures);
        }

        // what was not found this time: a miss, or gone for good
        let found: HashSet<String> = kept.iter().map(|i| i.item.clone()).collect();
        let listed: Option<HashSet<&str>> = (source.kind == SourceKind::Urls)
            .then(|| source.targets.iter().map(String::as_str).collect());
        let failed_pages: HashSet<String> =
            report.failures.iter().map(|f| f.path.clone()).collect();
        for (key, old) in &prior {
            if found.contains(key) {
                continue;
            }
            if failed_pages.contains(key) {
                kept.push(old.clone());
                continue;
            }
            let taken_out = listed.as_ref().is_some_and(|l| !l.contains(key.as_str()));
            let misses = old.misses + 1;
            if taken_out || misses >= source.max_misses {
                report.deleted += self.delete_item(&collection, old).await?;
            } else {
                report.missing += 1;
                kept.push(SourceItem {
                    misses,
                    ..old.clone()
                });
            }
        }
        if !self.store.save_source_items(id, &kept).await? {
            return Err(Error::Conflict(format!(
                "source {id} was removed while it synced"
            )));
        }
        report.failed = report.failures.len();
        Ok(report)
    }
}

/// A source's sync as a job.
struct SyncTask {
    sources: Arc<Sources>,
    id: String,
}

#[async_trait]
impl Task for SyncTask {
    async fn run(&self) -> Result<serde_json::Value> {
        let report = self.sources.sync(&self.id).await?;
        serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))
    }
}

#[async_trait]
impl JobCatalog for Sources {
    async fn jobs(self: Arc<Self>) -> Result<Vec<JobSpec>> {
        let mut specs = Vec::new();
        for s in self.store.sources(None).await? {
            match Schedule::parse(&s.schedule) {
                Ok(schedule) => specs.push(JobSpec {
                    name: job_name(&s.id),
                    schedule,
                    task: Arc::new(SyncTask {
                        sources: self.clone(),
                        id: s.id,
                    }),
                }),
                Err(e) => tracing::warn!(source = %s.id, error = %e, "a source's schedule"),
            }
        }
        Ok(specs)
    }
}

/// A folder source's target: an existing folder under one of `roots` (anywhere for the local
/// operator), as its canonical path. Outside the roots, whether the path exists is not told.
pub(super) fn resolve_folder(
    raw: &Path,
    roots: &[PathBuf],
    local_operator: bool,
) -> Result<String> {
    if !raw.is_absolute() {
        return Err(Error::InvalidInput(format!(
            "{} is not an absolute path",
            raw.display()
        )));
    }
    let refused = || {
        Error::Forbidden(format!(
            "{} is not under a folder sources may read (sources.folder_roots)",
            raw.display()
        ))
    };
    let canonical = match std::fs::canonicalize(raw) {
        Ok(p) => p,
        Err(_) if !local_operator => return Err(refused()),
        Err(e) => return Err(Error::InvalidInput(format!("{}: {e}", raw.display()))),
    };
    let allowed = local_operator
        || roots
            .iter()
            .filter_map(|root| std::fs::canonicalize(root).ok())
            .any(|root| canonical.starts_with(root));
    if !allowed {
        return Err(refused());
    }
    if !canonical.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is not a folder",
            raw.display()
        )));
    }
    canonical
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::InvalidInput("the folder's path is not UTF-8".into()))
}
