//! Where a collection's documents come from besides files handed to `lariat ingest`: web pages,
//! fetched under guard (`fetch`), and sources (`sync`): a folder, a list of pages or a sitemap
//! that a collection follows on a schedule. The values ingestion is done with ([`Input`],
//! [`IngestReport`]) live here; the pipeline that parses, chunks and embeds them is the
//! `ingest` crate's, reached through the [`Ingestor`] trait.

mod check;
mod fetch;
mod local;
mod sync;

pub use fetch::{Fetched, Fetcher, Page, Validators};
pub use local::read_file;
pub use sync::{NewSource, Source, SourceKind, SourceUpdate, SourceView, Sources, SyncReport};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use parse::loaders::Format;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use base::error::Result;
use base::types::CollectionName;
use knowledge::Knowledge;

/// What to ingest: a file on disk, or a document received over the network under a file name.
#[derive(Debug, Clone)]
pub enum Input {
    /// A file on the server, and the name it is shown under (see [`shown_name`]); a folder
    /// source's files are read beneath its `root` only (see [`read_file`]).
    File {
        path: PathBuf,
        shown: String,
        root: Option<PathBuf>,
    },
    Upload {
        name: String,
        bytes: Vec<u8>,
    },
    /// A web page: its URL (the document's source) and what it was served as.
    Fetched {
        url: String,
        format: Format,
        bytes: Vec<u8>,
    },
}

impl Input {
    /// The name failures are reported under.
    pub fn name(&self) -> String {
        match self {
            Input::File { shown, .. } => shown.clone(),
            Input::Upload { name, .. } => name.clone(),
            Input::Fetched { url, .. } => url.clone(),
        }
    }
}

impl Page {
    /// The page as an input whose documents are stored under `url`, read as what it was served
    /// as (its media type, else its path's extension).
    pub fn into_input(self, url: &str) -> std::result::Result<Input, String> {
        let format = Format::of_served(&self.content_type, self.url.path()).ok_or_else(|| {
            format!(
                "served as {:?}, not a document Lariat reads (HTML, PDF, Markdown, text)",
                self.content_type
            )
        })?;
        Ok(Input::Fetched {
            url: url.to_owned(),
            format,
            bytes: self.bytes,
        })
    }
}

/// A file or page that could not be ingested, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Failure {
    pub path: String,
    pub reason: String,
}

/// What an ingestion did.
#[derive(Debug, Clone, Serialize, Default, schemars::JsonSchema)]
pub struct IngestReport {
    pub collection: String,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub chunks: usize,
    pub failures: Vec<Failure>,
    pub seconds: f64,
    pub passages_per_s: f64,
}

/// Parses, chunks, embeds and writes inputs into a collection (the `ingest` crate's pipeline).
/// Dropping the future stops the work: what was written stays whole, nothing more is embedded.
#[async_trait]
pub trait Ingestor: Send + Sync {
    /// Per-input problems are reported in the result; store failures are errors.
    async fn ingest(
        &self,
        knowledge: Arc<Knowledge>,
        collection: &CollectionName,
        inputs: Vec<Input>,
        progress: &dyn Progress,
    ) -> Result<IngestReport>;
}

/// How far an ingestion has come, in documents (a JSONL file adds many once it is read) and in
/// passages (a document adds its own once it is chunked: one big document moves by them).
pub trait Progress: Send + Sync {
    /// A file was read: this many more documents.
    fn add_documents(&self, documents: u64);
    /// A document was chunked: this many more passages.
    fn add_passages(&self, passages: u64);
    /// Documents stored, or found unchanged.
    fn documents_done(&self, documents: u64);
    /// Passages embedded, or found unchanged.
    fn passages_done(&self, passages: u64);
}

/// For callers that show no progress.
impl Progress for () {
    fn add_documents(&self, _: u64) {}
    fn add_passages(&self, _: u64) {}
    fn documents_done(&self, _: u64) {}
    fn passages_done(&self, _: u64) {}
}

/// Progress kept in counters, read while the ingestion runs (upload jobs report it).
#[derive(Debug, Default)]
pub struct ProgressCounts {
    documents_total: AtomicU64,
    documents_done: AtomicU64,
    passages_total: AtomicU64,
    passages_done: AtomicU64,
}

/// What [`ProgressCounts`] held when read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProgressSnapshot {
    pub documents_total: u64,
    pub documents_done: u64,
    pub passages_total: u64,
    pub passages_done: u64,
}

impl ProgressCounts {
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            documents_total: self.documents_total.load(Ordering::Relaxed),
            documents_done: self.documents_done.load(Ordering::Relaxed),
            passages_total: self.passages_total.load(Ordering::Relaxed),
            passages_done: self.passages_done.load(Ordering::Relaxed),
        }
    }
}

impl Progress for ProgressCounts {
    fn add_documents(&self, n: u64) {
        self.documents_total.fetch_add(n, Ordering::Relaxed);
    }
    fn add_passages(&self, n: u64) {
        self.passages_total.fetch_add(n, Ordering::Relaxed);
    }
    fn documents_done(&self, n: u64) {
        self.documents_done.fetch_add(n, Ordering::Relaxed);
    }
    fn passages_done(&self, n: u64) {
        self.passages_done.fetch_add(n, Ordering::Relaxed);
    }
}

/// The name a file is shown under: the folder given and the path below it (`corpus/rules.md`),
/// or the file's own name when a file was given; never where it lives on the server.
pub fn shown_name(root: &Path, file: &Path) -> String {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    match file.strip_prefix(root) {
        Ok(below) if !below.as_os_str().is_empty() => {
            let below = below.to_string_lossy();
            match name(root) {
                r if r.is_empty() => below.into_owned(),
                r => format!("{r}/{below}"),
            }
        }
        _ => name(file),
    }
}

/// Lists the files to ingest: files as given, folders recursively (hidden entries skipped, links
/// not followed), each resolved to an absolute path so the same file is the same source however
/// it is named, with the name it is shown under. Paths that cannot be read are `failures`.
pub fn collect_files(paths: &[PathBuf], failures: &mut Vec<Failure>) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for path in paths {
        let display = path.display().to_string();
        let Ok(abs) = std::path::absolute(path) else {
            failures.push(Failure {
                path: display,
                reason: "invalid path".into(),
            });
            continue;
        };
        match std::fs::metadata(&abs) {
            Err(e) => failures.push(Failure {
                path: display,
                reason: e.to_string(),
            }),
            Ok(m) if m.is_dir() => {
                let walker = walkdir::WalkDir::new(&abs)
                    .sort_by_file_name()
                    .into_iter()
                    .filter_entry(|e| {
                        e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')
                    });
                for entry in walker {
                    match entry {
                        Ok(e) if e.file_type().is_file() => {
                            let shown = shown_name(&abs, e.path());
                            files.push((e.into_path(), shown));
                        }
                        Ok(_) => {}
                        Err(e) => failures.push(Failure {
                            path: e
                                .path()
                                .map(|p| p.display().to_string())
                                .unwrap_or(display.clone()),
                            reason: e.to_string(),
                        }),
                    }
                }
            }
            Ok(_) => {
                let shown = shown_name(&abs, &abs);
                files.push((abs, shown));
            }
        }
    }
    let mut seen = HashSet::new();
    files.retain(|(f, _)| seen.insert(f.clone()));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_shown_below_what_was_ingested() {
        let root = Path::new("/srv/lariat/corpus");
        assert_eq!(
            shown_name(root, Path::new("/srv/lariat/corpus/rules/team.md")),
            "corpus/rules/team.md"
        );
        let file = Path::new("/srv/lariat/corpus/a.md");
        assert_eq!(shown_name(file, file), "a.md");
        assert_eq!(shown_name(Path::new("/"), Path::new("/a.md")), "a.md");
    }
}
