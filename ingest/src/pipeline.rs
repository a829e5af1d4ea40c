//! The ingestion pipeline: walk → load and chunk (blocking thread) → skip unchanged → embed in
//! batches → write through the façade, the write of one batch overlapping the embedding of the
//! next.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use base::{CollectionName, DocumentWrite, NewChunk, Result, content_hash, embedding_input};
use knowledge::Knowledge;
use knowledge::config::IngestConfig;
use operations::sources::{
    Failure, Fetched, Fetcher, IngestReport, Ingestor, Input, Progress, collect_files,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::sandbox::Sandbox;
use parse::chunker::{Chunker, Passage};
use parse::loaders::{Format, LoadedDocument};

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub collection: CollectionName,
    /// File size, batch and parser limits (`[ingest]` in the configuration).
    pub limits: IngestConfig,
}

/// Passages embedded in one call: a big document's thousands are embedded piece by piece, so its
/// progress moves and dropping the ingestion stops it within a piece.
const EMBED_PIECE: usize = 256;

struct Prepared {
    source: String,
    title: String,
    hash: String,
    metadata: serde_json::Value,
    passages: Vec<Passage>,
}

enum Loaded {
    /// A file was read: this many documents follow.
    File(usize),
    Document(Prepared),
    Failed(Failure),
}

fn load_input(
    input: &Input,
    max_bytes: u64,
    sandbox: &Sandbox,
) -> Result<Vec<LoadedDocument>, String> {
    let path = match input {
        Input::File { path, .. } => path.as_path(),
        Input::Upload { name, .. } => Path::new(name),
        Input::Fetched { url, .. } => Path::new(url),
    };
    let format = match input {
        Input::Fetched { format, .. } => *format,
        _ => Format::of(path).ok_or_else(|| match path.extension() {
            Some(ext) => format!("unsupported file type .{}", ext.to_string_lossy()),
            None => "unsupported file type (no extension)".to_owned(),
        })?,
    };
    if let Input::Upload { bytes, .. } | Input::Fetched { bytes, .. } = input
        && bytes.len() as u64 > max_bytes
    {
        return Err(format!(
            "file is {} bytes, over the {max_bytes}-byte limit (ingest.max_file_bytes)",
            bytes.len()
        ));
    }
    match input {
        Input::File { path, shown, root } => {
            // opened once: its kind and size are the opened file's, the read is capped
            let bytes = operations::sources::read_file(path, root.as_deref(), max_bytes)?;
            let mut docs = sandbox.load(path, format, &bytes)?;
            // the source keeps the server's path (the document's identity); what readers are
            // shown is the name below what was ingested
            let full = path.to_string_lossy();
            for doc in &mut docs {
                if let Some(meta) = doc.metadata.as_object_mut() {
                    let shown = doc.source.replacen(full.as_ref(), shown, 1);
                    meta.insert("path".into(), serde_json::Value::String(shown));
                }
            }
            Ok(docs)
        }
        Input::Fetched { bytes, .. } => sandbox.load(path, format, bytes),
        Input::Upload { bytes, .. } => {
            let mut docs = sandbox.load(path, format, bytes)?;
            // an upload is named `upload:file.md`: a title taken from that name drops the marker
            for doc in &mut docs {
                if let Some(title) = doc.title.strip_prefix("upload:") {
                    doc.title = title.to_owned();
                }
            }
            Ok(docs)
        }
    }
}

/// Chunks a document and hashes its content with `salt` (chunker and model identity), so a
/// change of either re-ingests it; `None` when `keep_going` stopped the chunking.
fn prepare(
    doc: LoadedDocument,
    chunker: &Chunker,
    salt: &str,
    keep_going: &(dyn Fn() -> bool + Sync),
) -> Option<Prepared> {
    let mut hashed = salt.as_bytes().to_vec();
    hashed.push(0);
    hashed.extend_from_slice(&doc.content);
    Some(Prepared {
        passages: chunker.chunk_while(&doc, keep_going)?,
        hash: content_hash(&hashed),
        source: doc.source,
        title: doc.title,
        metadata: doc.metadata,
    })
}

/// Ingests files and folders into `options.collection`. Per-file problems are reported in the
/// result, never fatal; store failures are.
pub async fn ingest_paths(
    knowledge: Arc<Knowledge>,
    chunker: Arc<Chunker>,
    paths: &[PathBuf],
    options: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    let mut failures = Vec::new();
    let files = collect_files(paths, &mut failures)
        .into_iter()
        .map(|(path, shown)| Input::File {
            path,
            shown,
            root: None,
        })
        .collect();
    ingest_inputs(knowledge, chunker, files, failures, options, progress).await
}

/// Ingests web pages and files and folders together: each URL is fetched under the fetcher's
/// guard (a page that cannot be fetched, or is not a document Lariat reads, is reported with
/// its reason like a bad file).
pub async fn ingest_urls_and_paths(
    knowledge: Arc<Knowledge>,
    chunker: Arc<Chunker>,
    fetcher: &Fetcher,
    urls: &[String],
    paths: &[PathBuf],
    options: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    let mut failures = Vec::new();
    let mut inputs: Vec<Input> = collect_files(paths, &mut failures)
        .into_iter()
        .map(|(path, shown)| Input::File {
            path,
            shown,
            root: None,
        })
        .collect();
    for raw in urls {
        match fetch_input(fetcher, raw).await {
            Ok(input) => inputs.push(input),
            Err(reason) => failures.push(Failure {
                path: raw.clone(),
                reason,
            }),
        }
    }
    ingest_inputs(knowledge, chunker, inputs, failures, options, progress).await
}

/// A web page as an input: fetched, and read as what it was served as.
pub async fn fetch_input(fetcher: &Fetcher, raw: &str) -> std::result::Result<Input, String> {
    let url = Fetcher::parse_url(raw).map_err(|e| e.to_string())?;
    match fetcher.fetch(&url, None).await.map_err(|e| e.to_string())? {
        Fetched::Page(page) => page.into_input(url.as_str()),
        Fetched::Gone => Err("not found (404 or 410)".to_owned()),
        Fetched::NotModified => Err("the server answered 304 to a plain request".to_owned()),
    }
}

/// The pipeline as the service's [`Ingestor`]: what sources' syncs and uploads ingest with.
pub struct Pipeline {
    pub chunker: Arc<Chunker>,
    /// File size, batch and parser limits (`[ingest]` in the configuration).
    pub limits: IngestConfig,
}

#[async_trait::async_trait]
impl Ingestor for Pipeline {
    async fn ingest(
        &self,
        knowledge: Arc<Knowledge>,
        collection: &CollectionName,
        inputs: Vec<Input>,
        progress: &dyn Progress,
    ) -> Result<IngestReport> {
        let options = IngestOptions {
            collection: collection.clone(),
            limits: self.limits.clone(),
        };
        ingest_inputs(
            knowledge,
            self.chunker.clone(),
            inputs,
            Vec::new(),
            &options,
            progress,
        )
        .await
    }
}

/// Ingests inputs (files or uploads) into `options.collection`; `failures` already found (such
/// as missing paths) are reported with the rest.
pub async fn ingest_inputs(
    knowledge: Arc<Knowledge>,
    chunker: Arc<Chunker>,
    files: Vec<Input>,
    failures: Vec<Failure>,
    options: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    let started = Instant::now();
    knowledge.ensure_collection(&options.collection).await?;
    let mut report = IngestReport {
        collection: options.collection.to_string(),
        failures,
        ..Default::default()
    };
    let salt = format!(
        "{}|{}",
        chunker.fingerprint(),
        knowledge.embedder().model().name
    );

    let (tx, mut rx) = mpsc::channel::<Loaded>(256);
    let max_bytes = options.limits.max_file_bytes;
    let sandbox = Sandbox::new(&options.limits);
    let loader_chunker = chunker.clone();
    let loader = tokio::task::spawn_blocking(move || {
        // Documents are chunked and sent one by one, so embedding starts with the first one even
        // when a single JSONL file holds the whole corpus. Once the ingestion is dropped (its
        // caller gone) the channel closes and chunking stops, within a big document too.
        let open = || !tx.is_closed();
        for file in files {
            let sent = match load_input(&file, max_bytes, &sandbox) {
                Ok(docs) => {
                    tx.blocking_send(Loaded::File(docs.len())).is_ok()
                        && docs.into_iter().all(|d| {
                            prepare(d, &loader_chunker, &salt, &open)
                                .is_some_and(|doc| tx.blocking_send(Loaded::Document(doc)).is_ok())
                        })
                }
                Err(reason) => tx
                    .blocking_send(Loaded::Failed(Failure {
                        path: file.name(),
                        reason,
                    }))
                    .is_ok(),
            };
            if !sent {
                break;
            }
        }
    });

    let mut writer = BatchWriter {
        knowledge: knowledge.clone(),
        collection: options.collection.clone(),
        in_flight: None,
    };
    let mut batch: Vec<Prepared> = Vec::new();
    let mut batch_passages = 0;
    while let Some(item) = rx.recv().await {
        match item {
            Loaded::File(n) => progress.add_documents(n as u64),
            Loaded::Failed(f) => {
                debug!(path = %f.path, reason = %f.reason, "skipped");
                report.failures.push(f);
            }
            Loaded::Document(doc) => {
                progress.add_passages(doc.passages.len() as u64);
                batch_passages += doc.passages.len();
                batch.push(doc);
                if batch_passages >= options.limits.batch_chunks {
                    writer
                        .submit(std::mem::take(&mut batch), &mut report, progress)
                        .await?;
                    batch_passages = 0;
                }
            }
        }
    }
    loader.await?;
    writer.submit(batch, &mut report, progress).await?;
    writer.finish().await?;
    knowledge.flush().await?;

    report.failed = report.failures.len();
    report.seconds = started.elapsed().as_secs_f64();
    report.passages_per_s = if report.seconds > 0.0 {
        report.chunks as f64 / report.seconds
    } else {
        0.0
    };
    Ok(report)
}

struct BatchWriter {
    knowledge: Arc<Knowledge>,
    collection: CollectionName,
    in_flight: Option<JoinHandle<Result<()>>>,
}

impl BatchWriter {
    /// Skips unchanged documents, embeds the rest and hands them to a write task once the
    /// previous batch's write has finished (writes stay in order; embedding runs meanwhile).
    async fn submit(
        &mut self,
        batch: Vec<Prepared>,
        report: &mut IngestReport,
        progress: &dyn Progress,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = batch
            .iter()
            .map(|d| base::document_id(&self.collection, &d.source))
            .collect();
        let states = self.knowledge.document_states(&ids).await?;
        let mut changed = Vec::new();
        for (doc, id) in batch.into_iter().zip(ids) {
            match states.get(&id) {
                Some(s) if s.indexed && s.content_hash == doc.hash => {
                    report.unchanged += 1;
                    progress.documents_done(1);
                    progress.passages_done(doc.passages.len() as u64);
                }
                Some(_) => {
                    report.updated += 1;
                    changed.push(doc);
                }
                None => {
                    report.added += 1;
                    changed.push(doc);
                }
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        let mut rest: Vec<String> = changed
            .iter()
            .flat_map(|d| {
                d.passages
                    .iter()
                    .map(|p| embedding_input(&d.title, &p.location, &p.text))
            })
            .collect();
        let mut vectors = Vec::with_capacity(rest.len());
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(EMBED_PIECE));
            let piece = std::mem::replace(&mut rest, tail);
            let n = piece.len() as u64;
            vectors.extend(self.knowledge.embedder().embed_passages(piece).await?);
            progress.passages_done(n);
        }
        let mut vectors = vectors.into_iter();
        let mut writes = Vec::with_capacity(changed.len());
        for doc in changed {
            let chunks: Vec<NewChunk> = doc
                .passages
                .into_iter()
                .map(|p| NewChunk {
                    text: p.text,
                    location: p.location,
                    token_count: p.token_count,
                    embedding: vectors.next().unwrap_or_default(),
                })
                .collect();
            report.chunks += chunks.len();
            writes.push(DocumentWrite {
                collection: self.collection.clone(),
                source: doc.source,
                title: doc.title,
                content_hash: doc.hash,
                metadata: doc.metadata,
                chunks,
            });
        }
        let n = writes.len() as u64;
        self.finish().await?;
        let knowledge = self.knowledge.clone();
        self.in_flight = Some(tokio::spawn(async move {
            knowledge.write_documents(writes).await
        }));
        progress.documents_done(n);
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        match self.in_flight.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}
