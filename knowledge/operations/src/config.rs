//! Operations' settings: scheduled jobs (`[jobs]`) and how sources fetch pages (`[sources]`).

use std::collections::BTreeMap;

use base::{Error, Result};
use serde::{Deserialize, Serialize};

/// How pages are fetched for ingestion.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// Networks fetched although they are not public (loopback, private, link-local…), as
    /// addresses or CIDR (`10.0.0.0/8`): an intranet wiki, say. Everything else that is not a
    /// public address is refused, whatever a host name resolves to.
    pub allow_networks: Vec<String>,
    /// The ports pages are fetched from: ports (`"8080"`) or ranges (`"8000-8999"`). Anything
    /// else is refused, whatever the address.
    pub allowed_ports: Vec<String>,
    /// A page larger than this is refused.
    pub max_bytes: u64,
    /// A whole fetch, redirects included, must end within this.
    pub timeout_secs: u64,
    /// A fetch that receives nothing for this long is abandoned.
    pub stall_secs: u64,
    pub max_redirects: u32,
    /// Folders under which admins may add folder sources over the API or the web app (the
    /// local operator, at the command line, may name any folder). Empty: none.
    pub folder_roots: Vec<std::path::PathBuf>,
    /// A source's document is deleted after its file or page was missing from this many
    /// consecutive syncs (a source may set its own).
    pub max_misses: u32,
    /// Pages a URL list or a sitemap may name.
    pub max_pages: usize,
    /// Sources per collection.
    pub max_per_collection: usize,
    /// The shortest time between two syncs a source's schedule may ask for.
    pub min_interval_secs: u64,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            allowed_ports: vec!["80".into(), "443".into()],
            max_bytes: 20 * 1024 * 1024,
            timeout_secs: 30,
            stall_secs: 10,
            max_redirects: 5,
            folder_roots: Vec::new(),
            max_misses: 3,
            max_pages: 1000,
            max_per_collection: 50,
            min_interval_secs: 300,
        }
    }
}

/// The job runner. Every server sharing a database may run it: each occurrence of a job runs
/// once among them.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Whether `lariat serve` runs jobs (a replica that only serves may leave them to others).
    pub enabled: bool,
    /// How long a run is held without a renewal before another runner takes it over (the
    /// holder renews every quarter of it).
    pub lease_secs: u64,
    /// Attempts per occurrence before it is recorded as failed.
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, up to an hour.
    pub retry_base_secs: u64,
    /// How often a runner looks for due work.
    pub tick_secs: u64,
    /// Days finished runs are kept.
    pub history_days: u32,
    /// Schedules by job name, replacing the defaults: cron, 5 fields (minute hour day month
    /// weekday) or 6 (seconds first), in UTC.
    pub schedules: BTreeMap<String, String>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lease_secs: 60,
            max_attempts: 3,
            retry_base_secs: 30,
            tick_secs: 1,
            history_days: 30,
            schedules: BTreeMap::new(),
        }
    }
}

impl JobsConfig {
    pub fn validate(&self) -> Result<()> {
        let j = self;
        if j.lease_secs == 0 || j.max_attempts == 0 || j.tick_secs == 0 || j.history_days == 0 {
            return Err(Error::InvalidInput(
                "jobs: lease_secs, max_attempts, tick_secs and history_days must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }
}
