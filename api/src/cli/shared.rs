//! What the commands share: opening the stores and the service, the ingestion pipeline, the
//! acting user, printing a job's run.

use std::sync::Arc;

use anyhow::Result;
use base::CollectionName;
use indicatif::ProgressBar;
use ingest::{Chunker, IngestOptions, Progress};
use knowledge::Knowledge;
use service::{Config, Service};

pub async fn open(config: &Config) -> Result<Arc<Knowledge>> {
    Ok(Arc::new(Knowledge::open(&config.knowledge()).await?))
}

/// One run of a job on a line.
pub fn print_run(r: &operations::store::JobRun) {
    let detail = if r.error.is_empty() {
        r.outcome.to_string()
    } else {
        r.error.clone()
    };
    println!(
        "{}\t{}\t{}\tattempt {}\t{} ms\t{}\t{}",
        r.job,
        base::format_time(r.slot),
        r.status,
        r.attempt,
        r.duration_ms.unwrap_or(0),
        r.owner,
        detail
    );
}

/// Whom the CLI acts for where an account matters: the user of `LARIAT_API_KEY`, or the local
/// operator when it is unset.
pub async fn acting_user(service: &Service) -> Result<base::principal::Principal> {
    Ok(match std::env::var("LARIAT_API_KEY") {
        Ok(key) if !key.trim().is_empty() => service.accounts.authenticate(&key).await?,
        _ => service.accounts.local_operator().await?,
    })
}

pub(super) struct Bar(pub(super) ProgressBar);

impl Progress for Bar {
    fn add_total(&self, documents: u64) {
        self.0.inc_length(documents);
    }
    fn advance(&self, documents: u64) {
        self.0.inc(documents);
    }
}

pub fn chunker(config: &Config) -> Result<Arc<Chunker>> {
    Ok(Arc::new(
        Chunker::load(&config.embedding.model_dir, &config.chunking)
            .map_err(base::Error::Unavailable)?,
    ))
}

/// The ingest pipeline: uploads and sources' syncs go through it.
pub fn pipeline(config: &Config) -> Result<Arc<ingest::Pipeline>> {
    Ok(Arc::new(ingest::Pipeline {
        chunker: chunker(config)?,
        limits: config.ingest.clone(),
    }))
}

/// The service, its sources syncing through the ingest pipeline.
pub async fn open_service(config: &Config) -> Result<Service> {
    Ok(Service::open(config, pipeline(config)?).await?)
}

pub fn ingest_options(config: &Config, collection: CollectionName) -> IngestOptions {
    IngestOptions {
        collection,
        limits: config.ingest.clone(),
    }
}
