//! What the commands share: opening the stores and the service, the ingestion pipeline, the
//! acting user, printing a job's run.

use std::sync::Arc;

use anyhow::Result;
use base::CollectionName;
use indicatif::ProgressBar;
use ingest::{Chunker, IngestOptions, Progress};
use knowledge::Knowledge;
use operations::sources::ProgressCounts;
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

/// An ingestion's progress on the terminal: the bar moves by passages embedded (one big document
/// moves it too), the documents are counted beside it.
pub(super) struct Bar {
    pub(super) bar: ProgressBar,
    counts: ProgressCounts,
}

impl Bar {
    pub(super) fn new(bar: ProgressBar) -> Self {
        Self {
            bar,
            counts: ProgressCounts::default(),
        }
    }

    fn show_documents(&self) {
        let s = self.counts.snapshot();
        self.bar.set_message(format!(
            "{}/{} documents",
            s.documents_done, s.documents_total
        ));
    }
}

impl Progress for Bar {
    fn add_documents(&self, documents: u64) {
        self.counts.add_documents(documents);
        self.show_documents();
    }
    fn add_passages(&self, passages: u64) {
        self.bar.inc_length(passages);
    }
    fn documents_done(&self, documents: u64) {
        self.counts.documents_done(documents);
        self.show_documents();
    }
    fn passages_done(&self, passages: u64) {
        self.bar.inc(passages);
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
