//! The composition: every concern's service put together on one SQL store, and the one layered
//! [`Config`] composed of every concern's sections. `lariat serve` (HTTP, the web app, the
//! OpenAI-compatible endpoint), the CLI and MCP hold one [`Service`] and call its parts.
//!
//! May use: every concern's crate. Must never know: any transport (axum, clap, rmcp).

pub mod config;

pub use config::{Config, ServerConfig};

use std::sync::Arc;

use serde::Serialize;

use identity::accounts::{AccountStores, Accounts};

use base::error::Result;
use base::principal::{Principal, Role};
use base::ratelimit::RateStore;
use base::redis::RedisRates;
use base::sql::SqlStore;
use base::types::{Collection, CollectionName};
use chat::Chat;
use chat::provider::Llm;
use commerce::analytics::Analytics;
use commerce::billing::Billing;
use commerce::limits::Limits;
use identity::audit::Audit;
use identity::mail::Mail;
use knowledge::collections::Collections;
use knowledge::{CheckReport, Knowledge};
use operations::jobs::{BillingSweep, JobSpec, Jobs, MailSweep, Retention, Schedule, Task};
use operations::privacy::Privacy;
use operations::sources::{Ingestor, Sources};
use operations::store::JobRun;
use operations::uploads::Uploads;
use sites::store::SiteActionStore;

pub struct Service {
    pub knowledge: Arc<Knowledge>,
    pub accounts: Arc<Accounts>,
    /// Collection settings, members and documents, with who may change them.
    pub collections: Collections,
    pub limits: Arc<Limits>,
    pub chat: Arc<Chat>,
    /// What agents wrote on external sites (see the MCP site servers).
    pub site_actions: Arc<dyn SiteActionStore>,
    /// The outbox; `lariat serve` runs its sender ([`Mail::run`]).
    pub mail: Arc<Mail>,
    /// The security events; the retention job purges it.
    pub audit: Arc<Audit>,
    /// Users' exports and erasure.
    pub privacy: Arc<Privacy>,
    /// Paid plans through Stripe; the billing job applies ended periods.
    pub billing: Arc<Billing>,
    /// Usage and revenue reports.
    pub analytics: Analytics,
    /// Scheduled jobs; `lariat serve` and `lariat jobs worker` run them ([`Jobs::run`]).
    pub jobs: Arc<Jobs>,
    /// Collections' sources, each synced by its own job.
    pub sources: Arc<Sources>,
    /// Curators' uploads, the large ones ingested by jobs; `lariat serve` interrupts them when
    /// it stops.
    pub uploads: Arc<Uploads>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("knowledge", &self.knowledge)
            .finish_non_exhaustive()
    }
}

/// The system as its admins see it: what it runs on, what it holds, whether its stores agree.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SystemStatus {
    /// The store backend (sqlite or postgres).
    pub store: &'static str,
    /// The embedding model and its dimension.
    pub model: String,
    pub dimension: usize,
    /// Whether a language model is configured (otherwise answers are extractive).
    pub llm: bool,
    pub collections: Vec<Collection>,
    /// Chunk counts of each store and every disagreement between them.
    pub check: CheckReport,
    pub consistent: bool,
}

impl Service {
    /// Opens everything under the data dir (or PostgreSQL), taking the data dir's lock; sources
    /// ingest with `ingestor`.
    pub async fn open(config: &Config, ingestor: Arc<dyn Ingestor>) -> Result<Self> {
        let setup = config.knowledge();
        let lock = Knowledge::lock(&setup)?;
        let sql =
            Arc::new(SqlStore::open_config(&config.data_dir, config.database_url.as_ref()).await?);
        let knowledge = Arc::new(Knowledge::open_locked(&setup, sql.clone(), lock).await?);
        let rates = Self::rates(config, &sql).await?;
        Self::assemble(config, knowledge, sql, rates, ingestor)
    }

    /// Where the limits every server of a deployment shares keep their buckets: Redis when
    /// configured, else the database when the deployment is shared; none for one server alone
    /// (its limits stay in memory).
    async fn rates(config: &Config, sql: &Arc<SqlStore>) -> Result<Option<Arc<dyn RateStore>>> {
        if let Some(url) = &config.redis.url {
            let timeout = std::time::Duration::from_secs(config.redis.timeout_secs);
            let redis = RedisRates::connect(url, &config.redis.key_prefix, timeout).await?;
            return Ok(Some(Arc::new(redis)));
        }
        Ok(config
            .knowledge()
            .shared()
            .then(|| sql.clone() as Arc<dyn RateStore>))
    }

    /// Puts the parts together on an already open knowledge façade, its SQL store and where
    /// shared limits live.
    fn assemble(
        config: &Config,
        knowledge: Arc<Knowledge>,
        sql: Arc<SqlStore>,
        rates: Option<Arc<dyn RateStore>>,
        ingestor: Arc<dyn Ingestor>,
    ) -> Result<Self> {
        let mail = Arc::new(Mail::new(&config.mail, sql.clone())?);
        let audit = Arc::new(Audit::new(sql.clone(), config.auth.audit_retention_days));
        let accounts = Arc::new(Accounts::new(
            &config.auth,
            &config.data_dir,
            &config.mail.public_url,
            config.plans.keys().cloned().collect(),
            AccountStores {
                accounts: sql.clone(),
                identities: sql.clone(),
                rates: rates.clone(),
            },
            mail.clone(),
            audit.clone(),
        )?);
        let limits = Arc::new(Limits::new(&config.plans, sql.clone(), rates.as_ref()));
        let collections = Collections::new(knowledge.clone(), accounts.clone());
        let llm = Llm::new(config.providers(), &config.llm)?;
        let chat = Arc::new(Chat::new(
            knowledge.clone(),
            sql.clone(),
            limits.clone(),
            llm,
            config.chat.clone(),
        ));
        let billing = Arc::new(Billing::new(
            &config.billing,
            &config.plans,
            sql.clone(),
            mail.clone(),
        )?);
        let privacy = Arc::new(Privacy {
            accounts: sql.clone(),
            usage: sql.clone(),
            identities: sql.clone(),
            conversations: sql.clone(),
            store: sql.clone(),
            audit: audit.clone(),
            chat: chat.clone(),
            mail: mail.clone(),
            billing: billing.clone(),
        });
        let sources = Arc::new(Sources::new(
            knowledge.clone(),
            accounts.clone(),
            sql.clone(),
            sql.clone(),
            &config.sources,
            ingestor.clone(),
        )?);
        let uploads = Arc::new(Uploads::new(
            knowledge.clone(),
            Collections::new(knowledge.clone(), accounts.clone()),
            sql.clone(),
            ingestor,
            config.ingest.background_upload_bytes,
        ));
        let retention = Retention {
            store: sql.clone(),
            runs: sql.clone(),
            audit: audit.clone(),
            chat: chat.clone(),
            knowledge: knowledge.clone(),
            plans: config
                .plans
                .iter()
                .map(|(name, plan)| (name.clone(), plan.conversation_retention_days))
                .collect(),
            history_days: config.jobs.history_days,
        };
        let jobs = Arc::new(Self::jobs(
            config, &sql, retention, &mail, &billing, &sources,
        )?);
        Ok(Self {
            jobs,
            sources,
            uploads,
            billing,
            analytics: Analytics::new(sql.clone()),
            knowledge,
            accounts,
            collections,
            limits,
            chat,
            site_actions: sql,
            mail,
            audit,
            privacy,
        })
    }

    /// The built-in jobs on their schedules (defaults, or `jobs.schedules`).
    fn jobs(
        config: &Config,
        sql: &Arc<SqlStore>,
        retention: Retention,
        mail: &Arc<Mail>,
        billing: &Arc<Billing>,
        sources: &Arc<Sources>,
    ) -> Result<Jobs> {
        let builtin: [(&str, &str, Arc<dyn Task>); 3] = [
            ("retention", "0 15 3 * * *", Arc::new(retention)),
            ("mail", "0 * * * * *", Arc::new(MailSweep(mail.clone()))),
            (
                "billing",
                "30 * * * * *",
                Arc::new(BillingSweep(billing.clone())),
            ),
        ];
        let schedules = &config.jobs.schedules;
        if let Some(unknown) = schedules
            .keys()
            .find(|name| !builtin.iter().any(|(n, ..)| n == name))
        {
            let names: Vec<&str> = builtin.iter().map(|(n, ..)| *n).collect();
            return Err(base::Error::InvalidInput(format!(
                "jobs.schedules.{unknown}: no such job (there are {})",
                names.join(", ")
            )));
        }
        let specs = builtin
            .into_iter()
            .map(|(name, default, task)| {
                let text = schedules.get(name).map_or(default, String::as_str);
                Ok(JobSpec {
                    name: name.to_owned(),
                    schedule: Schedule::parse(text).map_err(|e| {
                        base::Error::InvalidInput(format!("jobs.schedules.{name}: {e}"))
                    })?,
                    task,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Jobs::new(
            sql.clone(),
            config.jobs.clone(),
            specs,
            vec![sources.clone()],
        )
    }

    /// Syncs a source of a collection `principal` curates now, through the job runner (so it
    /// runs once, and is recorded with the scheduled ones). With `wait`, returns the finished
    /// run; otherwise the run as started.
    pub async fn sync_source(
        &self,
        principal: &Principal,
        collection: &CollectionName,
        id: &str,
        wait: bool,
    ) -> Result<JobRun> {
        let job = self
            .sources
            .authorize_sync(principal, collection, id)
            .await?;
        if wait {
            self.jobs.run_now(&job).await
        } else {
            Ok(self.jobs.start_now(&job).await?.0)
        }
    }

    /// The system's status (admins).
    pub async fn status(&self, principal: &Principal) -> Result<SystemStatus> {
        principal.require(Role::Admin)?;
        let model = self.knowledge.embedder().model();
        let check = self.knowledge.check().await?;
        Ok(SystemStatus {
            store: self.knowledge.store_backend(),
            model: model.name.clone(),
            dimension: model.dimension,
            llm: self.chat.has_model(),
            collections: self.knowledge.collections().await?,
            consistent: check.is_consistent(),
            check,
        })
    }

    /// The caller a bearer credential names, calling from `address`, after its rate limit
    /// allowed the request.
    pub async fn authenticate(
        &self,
        bearer: &str,
        address: Option<std::net::IpAddr>,
    ) -> Result<Principal> {
        let mut principal = self.accounts.authenticate(bearer).await?;
        principal.address = address;
        self.limits.check_rate(&principal).await?;
        Ok(principal)
    }
}
