//! BM25 over the chunks with tantivy: an English analyzer (lowercase, ASCII folding, stop words
//! and single letters, Snowball stemming), a body holding the title/heading path and the text,
//! the title/heading path again as a boosted field, query words weighted by how often they are
//! said, and a collection filter applied inside the query. Each document is indexed twice: as
//! its passages, and whole; a passage's score mixes its own BM25 (against the other passages)
//! with its document's (against the other documents), so a passage of a document that is about
//! the question as a whole outranks a lone passage that happens to repeat a word. All
//! collections share one index, but a search is scored with the statistics of the collections
//! and the kind of entry it searches (entry count, document frequencies, average lengths), so
//! what one collection holds never changes another's ranking. Derived from SQL; rebuilt by
//! `reindex`, and when opened if an earlier build wrote it differently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tantivy::directory::MmapDirectory;

use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, TokenStream,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use base::error::{Error, Result, blocking};

mod entries;
mod exhaustive;
mod maxscore;
mod qdrant;
mod scoring;
mod sql;

pub use qdrant::QdrantLexicalIndex;
use scoring::*;
pub use scoring::{Bm25, Ranking};
pub use sql::SqlLexicalIndex;

const ANALYZER: &str = "lariat_en";
/// From this many passages in the searched collections on, a search skips what cannot reach its
/// best (`maxscore`); below it, scoring every match is as quick or quicker (`exhaustive`):
/// ranking the best documents first and finding their passages cost more than they save over
/// SciFact's 13,000 passages and as much at 50,000 (`bench-scale`), less at 100,000 and far
/// less at a million. Both rank alike.
const PRUNED_FROM: u64 = 100_000;
const WRITER_MEMORY: usize = 64 * 1024 * 1024;

/// What the lexical index holds of a document: each passage as an entry of its own, and the whole
/// document as one more (document-level BM25 evidence, mixed into each of its passages' scores).
#[derive(Debug, Clone)]
pub struct LexicalDocument {
    pub document_id: String,
    pub collection: String,
    pub title: String,
    /// In document order.
    pub passages: Vec<LexicalPassage>,
}

/// What the lexical index holds of a passage.
#[derive(Debug, Clone)]
pub struct LexicalPassage {
    pub chunk_id: String,
    /// Document title and heading path: the boosted field.
    pub title: String,
    /// The passage's own heading (its section's, else the document title): part of the body.
    /// Not the whole path: a document title every passage shares would say nothing about which
    /// passage answers.
    pub heading: String,
    pub text: String,
}

impl LexicalPassage {
    pub fn new(chunk_id: String, title: &str, location: &base::Location, text: String) -> Self {
        Self {
            chunk_id,
            heading: location
                .headings
                .last()
                .map_or(title, String::as_str)
                .to_owned(),
            title: base::passage_heading(title, location),
            text,
        }
    }

    /// The body it is scored on: its heading (unless the text starts with it) and its text.
    fn body(&self) -> impl Iterator<Item = &str> {
        let heading =
            (!self.text.trim_start().starts_with(self.heading.trim())).then_some(&*self.heading);
        heading.into_iter().chain(std::iter::once(&*self.text))
    }
}

impl LexicalDocument {
    /// The whole document's body: each passage's body once, a heading shared with the passage
    /// before it not repeated, nor the overlap consecutive passages share.
    fn body(&self) -> Vec<&str> {
        let mut parts = Vec::new();
        let mut before: Option<&LexicalPassage> = None;
        for p in &self.passages {
            match before {
                Some(b) if b.heading == p.heading => {
                    parts.push(after_overlap(&b.text, &p.text));
                }
                _ => parts.extend(p.body()),
            }
            before = Some(p);
        }
        parts
    }
}

/// Consecutive passages of a section share up to this many bytes (the chunker's overlap is 20 model
/// tokens by default; a token is rarely over 20 bytes).
const MAX_OVERLAP_BYTES: usize = 2048;
/// A shorter common stretch is taken for chance, not overlap.
const MIN_OVERLAP_BYTES: usize = 12;

/// `next` without the start it shares with the end of `before`: the longest suffix of `before`
/// that `next` starts with, when at least [`MIN_OVERLAP_BYTES`] long.
fn after_overlap<'a>(before: &str, next: &'a str) -> &'a str {
    let mut from = before.len().saturating_sub(MAX_OVERLAP_BYTES);
    while !before.is_char_boundary(from) {
        from += 1;
    }
    for (at, _) in before[from..].char_indices() {
        let shared = &before[from + at..];
        if shared.len() < MIN_OVERLAP_BYTES {
            break;
        }
        if let Some(rest) = next.strip_prefix(shared) {
            return rest;
        }
    }
    next
}

#[async_trait]
pub trait LexicalIndex: Send + Sync {
    /// Removes every entry of `delete_documents` and of the documents in `docs`, and adds `docs`
    /// (each with all its passages), committed together.
    async fn replace(&self, delete_documents: &[String], docs: Vec<LexicalDocument>) -> Result<()>;
    /// The `limit` best-ranked passages in any of `collections`, as (chunk id, score).
    async fn search(
        &self,
        query: &str,
        collections: &[String],
        limit: usize,
        ranking: Ranking,
    ) -> Result<Vec<(String, f32)>>;
    async fn chunk_ids(&self) -> Result<Vec<String>>;
    async fn reset(&self) -> Result<()>;
    /// Whether the index was built the way this build builds it (analyzer and fields); when
    /// not, its terms do not match what queries are cut into, and it must be rebuilt (then
    /// [`LexicalIndex::mark_current`]).
    fn is_current(&self) -> bool;
    async fn mark_current(&self) -> Result<()>;
}

#[derive(Clone, Copy)]
struct Fields {
    /// Passages only.
    chunk_id: Field,
    document_id: Field,
    /// [`document_key`] of the document id, a fast field (how a passage finds its document's
    /// score) and indexed (how a document finds its passages and its whole entry).
    document_key: Field,
    /// [`Kind`].
    kind: Field,
    collection: Field,
    passage: Text,
    document: Text,
}

impl Fields {
    /// The fields `kind`'s entries are scored on.
    fn text(&self, kind: Kind) -> Text {
        match kind {
            Kind::Passage => self.passage,
            Kind::Document => self.document,
        }
    }
}

/// The fields an entry is scored on: its title and heading path (boosted) and its body. Each
/// kind of entry has its own, so a word's posting list holds entries of one kind: ranking the
/// documents never walks the passages' entries, nor the passages the documents'.
#[derive(Clone, Copy)]
struct Text {
    title: Field,
    body: Field,
}

/// The two kinds of entries, scored each with its own statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Passage,
    Document,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Passage => "passage",
            Kind::Document => "document",
        }
    }
}

/// A document id as the number its entries carry in a fast field (64 bits of its SHA-256).
fn document_key(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(head)
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        chunk_id: b.add_text_field("chunk_id", STRING | STORED),
        document_id: b.add_text_field("document_id", STRING),
        document_key: b.add_u64_field("document_key", INDEXED | FAST),
        kind: b.add_text_field("kind", STRING),
        collection: b.add_text_field("collection", STRING),
        passage: Text {
            title: b.add_text_field("title", text.clone()),
            body: b.add_text_field("body", text.clone()),
        },
        document: Text {
            title: b.add_text_field("document_title", text.clone()),
            body: b.add_text_field("document_body", text),
        },
    };
    (b.build(), fields)
}

/// Lucene's English stop words, and every single letter: the tokenizer cuts "rider's" and
/// "don't" into a lone "s" and "t", and a query's "I" would otherwise match every Roman numeral
/// (dropping them gained 0.013 nDCG@10 on CACM, nothing lost elsewhere). Digits stay: "class 1".
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// What the analyzer does and what the fields hold, named: an index an earlier build wrote
/// differently is rebuilt from SQL when opened (see [`LexicalIndex::is_current`]).
const INDEX_FORMAT: &str = "lariat_en/5: simple, long>40, lower, ascii, stop+letters, snowball; \
     body = own heading + text; a whole-document entry per document, in fields of its own; \
     document keys indexed";
const VERSION_FILE: &str = "analyzer";

/// The analyzer, built once (its stop-word set is shared by every clone).
fn analyzer() -> TextAnalyzer {
    static ANALYZER: std::sync::LazyLock<TextAnalyzer> = std::sync::LazyLock::new(|| {
        let stop_words = STOP_WORDS
            .iter()
            .map(|w| (*w).to_owned())
            .chain(('a'..='z').map(String::from));
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .filter(StopWordFilter::remove(stop_words))
            .filter(Stemmer::new(Language::English))
            .build()
    });
    ANALYZER.clone()
}

struct Inner {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    /// What searches counted of the searcher generation they ran on.
    counts: Mutex<Counts>,
}

/// The statistics searches counted in one searcher generation (a commit makes a new one, whose
/// counts start afresh), by kind of entry and (sorted) searched collections.
#[derive(Default)]
struct Counts {
    generation: u64,
    scopes: HashMap<ScopeKey, ScopeCounts>,
    /// Words held, over every scope.
    words: usize,
}

/// The kind of entry and the (sorted, distinct) collections a scope covers.
type ScopeKey = (Kind, Vec<String>);

/// One scope's live entries and tokens, and what it holds of the words asked of it: counting
/// a word's matches within the scope reads its whole posting list (a third of a search at
/// 100,000 passages, before it was kept), and the common words of questions recur.
#[derive(Default)]
struct ScopeCounts {
    sizes: Option<Sizes>,
    terms: rustc_hash::FxHashMap<Term, Arc<TermCounts>>,
}

/// Bounds on what [`Counts`] keeps (past either it starts afresh): sets of collections
/// searched, and words over all of them (some 10 MB with their frontiers).
const COUNTED_SCOPES: usize = 256;
const COUNTED_WORDS: usize = 100_000;

impl Inner {
    /// `read` of `key`'s counts in `generation`, else `count` (remembered by `write`). A search
    /// on an older generation than the one counted last counts for itself.
    fn counted<T: Clone>(
        &self,
        generation: u64,
        key: &ScopeKey,
        read: impl FnOnce(&ScopeCounts) -> Option<T>,
        count: impl FnOnce() -> tantivy::Result<T>,
        write: impl FnOnce(&mut ScopeCounts, T),
    ) -> tantivy::Result<T> {
        {
            let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            if counts.generation == generation
                && let Some(t) = counts.scopes.get(key).and_then(read)
            {
                return Ok(t);
            }
        }
        let counted = count()?;
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let full = counts.words >= COUNTED_WORDS
            || (!counts.scopes.contains_key(key) && counts.scopes.len() >= COUNTED_SCOPES);
        // (an empty cache is any generation's)
        if generation > counts.generation || full {
            *counts = Counts {
                generation: generation.max(counts.generation),
                ..Counts::default()
            };
        }
        if counts.generation == generation {
            let scope = counts.scopes.entry(key.clone()).or_default();
            let before = scope.terms.len();
            write(scope, counted.clone());
            let added = scope.terms.len() - before;
            counts.words += added;
        }
        Ok(counted)
    }
}

impl Inner {
    fn open(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let (schema, fields) = schema();
        let open = || {
            let dir = MmapDirectory::open(path).map_err(|e| Error::Internal(e.to_string()))?;
            Ok::<_, Error>(Index::open_or_create(dir, schema.clone()))
        };
        let mut index = match open()? {
            // an index an earlier build wrote with other fields is derived data: it starts
            // empty, and the missing format file has it rebuilt from SQL
            Err(tantivy::TantivyError::SchemaError(e)) => {
                tracing::warn!(
                    "the lexical index in {} has other fields than this build's ({e}): rebuilding it",
                    path.display()
                );
                std::fs::remove_dir_all(path)
                    .and_then(|()| std::fs::create_dir_all(path))
                    .map_err(|e| Error::io(format!("emptying {}", path.display()), e))?;
                open()??
            }
            other => other?,
        };
        index.tokenizers().register(ANALYZER, analyzer());
        index.set_default_multithread_executor()?;
        let writer = index.writer(WRITER_MEMORY).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => Error::Unavailable(format!(
                "the lexical index in {} is held by another lariat process",
                path.display()
            )),
            other => other.into(),
        })?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            reader,
            writer: Mutex::new(writer),
            fields,
            counts: Mutex::default(),
        })
    }
}

pub struct TantivyIndex {
    path: PathBuf,
    inner: Arc<Inner>,
    current: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for TantivyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyIndex")
            .field("path", &self.path)
            .finish()
    }
}

impl TantivyIndex {
    pub fn open(path: &Path) -> Result<Self> {
        let inner = Arc::new(Inner::open(path)?);
        let current = std::fs::read_to_string(path.join(VERSION_FILE))
            .is_ok_and(|v| v.trim() == INDEX_FORMAT);
        Ok(Self {
            path: path.to_path_buf(),
            inner,
            current: current.into(),
        })
    }

    fn inner(&self) -> Arc<Inner> {
        self.inner.clone()
    }
}

/// The analyzed terms of a query in order of first appearance, each with how often it occurs.
fn query_terms(text: &str) -> Vec<(String, u32)> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut terms: Vec<(String, u32)> = Vec::new();
    while stream.advance() {
        let t = &stream.token().text;
        match at.get(t) {
            Some(&i) => terms[i].1 += 1,
            None => {
                at.insert(t.clone(), terms.len());
                terms.push((t.clone(), 1));
            }
        }
    }
    terms
}

#[async_trait]
impl LexicalIndex for TantivyIndex {
    async fn replace(&self, delete_documents: &[String], docs: Vec<LexicalDocument>) -> Result<()> {
        let inner = self.inner();
        let delete = delete_documents.to_vec();
        blocking(move || {
            let f = inner.fields;
            let mut writer = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            for id in delete.iter().chain(docs.iter().map(|d| &d.document_id)) {
                writer.delete_term(Term::from_field_text(f.document_id, id));
            }
            for d in &docs {
                let entry = |kind: Kind, title: &str, body: &mut dyn Iterator<Item = &str>| {
                    let mut doc = TantivyDocument::default();
                    doc.add_text(f.document_id, &d.document_id);
                    doc.add_u64(f.document_key, document_key(&d.document_id));
                    doc.add_text(f.kind, kind.name());
                    doc.add_text(f.collection, &d.collection);
                    let text = f.text(kind);
                    doc.add_text(text.title, title);
                    // the body holds the passage's heading too, so a passage is scored as the
                    // whole of what it says; the title field adds a boost on top (+0.011
                    // nDCG@10 on SciFact and +0.026 on CACM over title and body as separate
                    // fields)
                    for part in body {
                        doc.add_text(text.body, part);
                    }
                    doc
                };
                for p in &d.passages {
                    let mut doc = entry(Kind::Passage, &p.title, &mut p.body());
                    doc.add_text(f.chunk_id, &p.chunk_id);
                    writer.add_document(doc)?;
                }
                if !d.passages.is_empty() {
                    writer.add_document(entry(
                        Kind::Document,
                        &d.title,
                        &mut d.body().into_iter(),
                    ))?;
                }
            }
            writer.commit()?;
            drop(writer);
            inner.reader.reload()?;
            Ok(())
        })
        .await
    }

    async fn search(
        &self,
        query: &str,
        collections: &[String],
        limit: usize,
        ranking: Ranking,
    ) -> Result<Vec<(String, f32)>> {
        let inner = self.inner();
        let terms = query_terms(query);
        let collections = collections.to_vec();
        if terms.is_empty() || collections.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        blocking(move || {
            let f = inner.fields;
            let searcher = inner.reader.searcher();
            let scope = |kind| Scope::new(&inner, &searcher, &collections, kind);
            let passages = scope(Kind::Passage)?;
            let documents = if ranking.document_weight > 0.0 {
                Some(scope(Kind::Document)?)
            } else {
                None
            };
            let top = if passages.sizes.docs < PRUNED_FROM {
                exhaustive::top_passages(&passages, documents.as_ref(), &terms, ranking, limit)?
            } else {
                maxscore::top_passages(
                    &passages,
                    documents.as_ref(),
                    &terms,
                    ranking,
                    limit,
                    maxscore::DOCUMENTS_RANKED,
                    maxscore::piece_entries(&searcher),
                )?
            };
            top.into_iter()
                .map(|(score, addr)| {
                    let doc: TantivyDocument = searcher.doc(addr)?;
                    let id = doc
                        .get_first(f.chunk_id)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned();
                    Ok((id, score))
                })
                .collect()
        })
        .await
    }

    async fn chunk_ids(&self) -> Result<Vec<String>> {
        let inner = self.inner();
        blocking(move || {
            let searcher = inner.reader.searcher();
            let mut ids = Vec::new();
            for segment in searcher.segment_readers() {
                let store = segment
                    .get_store_reader(64)
                    .map_err(|e| Error::io("reading the lexical index", e))?;
                for doc_id in segment.doc_ids_alive() {
                    let doc: TantivyDocument = store.get(doc_id)?;
                    if let Some(id) = doc
                        .get_first(inner.fields.chunk_id)
                        .and_then(|v| v.as_str())
                    {
                        ids.push(id.to_owned());
                    }
                }
            }
            Ok(ids)
        })
        .await
    }

    fn is_current(&self) -> bool {
        self.current.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn mark_current(&self) -> Result<()> {
        let file = self.path.join(VERSION_FILE);
        // a torn write reads as another version: the index is rebuilt once more, nothing worse
        blocking(move || base::files::write_private(&file, &format!("{INDEX_FORMAT}\n"))).await?;
        self.current
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    async fn reset(&self) -> Result<()> {
        let inner = self.inner();
        blocking(move || {
            let mut writer = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            writer.delete_all_documents()?;
            writer.commit()?;
            drop(writer);
            inner.reader.reload()?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
