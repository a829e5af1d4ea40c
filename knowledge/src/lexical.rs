//! BM25 over the chunks with tantivy: an English analyzer (lowercase, ASCII folding, stop words,
//! Snowball stemming), the title/heading path as a boosted field, and a collection filter applied
//! inside the query. All collections share one index, but a search is scored with the statistics
//! of the collections it searches (document count, document frequencies, average lengths), so
//! what one collection holds never changes another's ranking. Derived from SQL; rebuilt by
//! `reindex`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, BoostQuery, ConstScoreQuery, EnableScoring, Occur, Query,
    TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, TokenStream,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::error::{Error, Result, blocking};

const ANALYZER: &str = "lariat_en";
const WRITER_MEMORY: usize = 64 * 1024 * 1024;

/// What the lexical index holds of a chunk.
#[derive(Debug, Clone)]
pub struct LexicalDoc {
    pub chunk_id: String,
    pub document_id: String,
    pub collection: String,
    /// Document title and heading path: the boosted field.
    pub title: String,
    pub text: String,
}

#[async_trait]
pub trait LexicalIndex: Send + Sync {
    /// Removes every chunk of `delete_documents` and adds `docs`, committed together.
    async fn replace(&self, delete_documents: &[String], docs: Vec<LexicalDoc>) -> Result<()>;
    /// The `limit` best BM25 matches in any of `collections`, as (chunk id, score).
    async fn search(
        &self,
        query: &str,
        collections: &[String],
        limit: usize,
        title_boost: f32,
    ) -> Result<Vec<(String, f32)>>;
    async fn chunk_ids(&self) -> Result<Vec<String>>;
    async fn reset(&self) -> Result<()>;
}

#[derive(Clone, Copy)]
struct Fields {
    chunk_id: Field,
    document_id: Field,
    collection: Field,
    title: Field,
    body: Field,
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
        collection: b.add_text_field("collection", STRING),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text),
    };
    (b.build(), fields)
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::new(Language::English).expect("english stop words are built in"))
        .filter(Stemmer::new(Language::English))
        .build()
}

struct Inner {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    /// The live documents and tokens of each searched set of collections, for the searcher
    /// generation they were counted on.
    sizes: Mutex<(u64, HashMap<Vec<String>, Sizes>)>,
}

/// How many live documents a set of collections holds, and their tokens per field.
#[derive(Debug, Clone, Copy, Default)]
struct Sizes {
    docs: u64,
    title_tokens: u64,
    body_tokens: u64,
}

/// BM25 statistics of the searched collections alone, as a plain BM25 over an index of just them
/// would have them (deleted documents not counted).
struct CollectionStats<'a> {
    searcher: &'a Searcher,
    filter: &'a dyn Query,
    fields: Fields,
    sizes: Sizes,
}

impl Bm25StatisticsProvider for CollectionStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        Ok(if field == self.fields.title {
            self.sizes.title_tokens
        } else if field == self.fields.body {
            self.sizes.body_tokens
        } else {
            0
        })
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.sizes.docs)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let within = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic)),
            ),
            (Occur::Must, self.filter.box_clone()),
        ]);
        Ok(self.searcher.search(&within, &Count)? as u64)
    }
}

/// Counts the live documents `filter` matches and their tokens in the title and body.
fn sizes(searcher: &Searcher, filter: &dyn Query, f: Fields) -> tantivy::Result<Sizes> {
    let weight = filter.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut sizes = Sizes::default();
    for reader in searcher.segment_readers() {
        let (title, body) = (
            reader.get_fieldnorms_reader(f.title)?,
            reader.get_fieldnorms_reader(f.body)?,
        );
        weight.for_each_no_score(reader, &mut |docs| {
            for &doc in docs {
                if !reader.is_deleted(doc) {
                    sizes.docs += 1;
                    sizes.title_tokens += u64::from(title.fieldnorm(doc));
                    sizes.body_tokens += u64::from(body.fieldnorm(doc));
                }
            }
        })?;
    }
    Ok(sizes)
}

impl Inner {
    /// The sizes of these collections in the searcher's generation, counted once per generation.
    fn sizes_of(
        &self,
        searcher: &Searcher,
        collections: &[String],
        filter: &dyn Query,
    ) -> tantivy::Result<Sizes> {
        let generation = searcher.generation().generation_id();
        let mut key = collections.to_vec();
        key.sort();
        key.dedup();
        {
            let cached = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
            if cached.0 == generation
                && let Some(s) = cached.1.get(&key)
            {
                return Ok(*s);
            }
        }
        let counted = sizes(searcher, filter, self.fields)?;
        let mut cached = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        if cached.0 != generation {
            *cached = (generation, HashMap::new());
        }
        // bounded: a new generation starts afresh, and few sets of collections are searched
        if cached.1.len() >= 256 {
            cached.1.clear();
        }
        cached.1.insert(key, counted);
        Ok(counted)
    }
}

impl Inner {
    fn open(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let dir = MmapDirectory::open(path).map_err(|e| Error::Internal(e.to_string()))?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(dir, schema)?;
        index.tokenizers().register(ANALYZER, analyzer());
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
            sizes: Mutex::new((u64::MAX, HashMap::new())),
        })
    }
}

pub struct TantivyIndex {
    path: PathBuf,
    inner: Arc<Inner>,
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
        Ok(Self {
            path: path.to_path_buf(),
            inner: Arc::new(Inner::open(path)?),
        })
    }

    fn inner(&self) -> Arc<Inner> {
        self.inner.clone()
    }
}

/// The analyzed terms of a query, deduplicated, in order.
fn query_terms(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut seen = HashSet::new();
    let mut terms = Vec::new();
    while stream.advance() {
        let t = stream.token().text.clone();
        if seen.insert(t.clone()) {
            terms.push(t);
        }
    }
    terms
}

#[async_trait]
impl LexicalIndex for TantivyIndex {
    async fn replace(&self, delete_documents: &[String], docs: Vec<LexicalDoc>) -> Result<()> {
        let inner = self.inner();
        let delete = delete_documents.to_vec();
        blocking(move || {
            let f = inner.fields;
            let mut writer = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            for id in &delete {
                writer.delete_term(Term::from_field_text(f.document_id, id));
            }
            for d in docs {
                let mut doc = TantivyDocument::default();
                doc.add_text(f.chunk_id, &d.chunk_id);
                doc.add_text(f.document_id, &d.document_id);
                doc.add_text(f.collection, &d.collection);
                doc.add_text(f.title, &d.title);
                doc.add_text(f.body, &d.text);
                writer.add_document(doc)?;
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
        title_boost: f32,
    ) -> Result<Vec<(String, f32)>> {
        let inner = self.inner();
        let terms = query_terms(query);
        let collections = collections.to_vec();
        if terms.is_empty() || collections.is_empty() {
            return Ok(Vec::new());
        }
        blocking(move || {
            let f = inner.fields;
            let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for t in &terms {
                let title: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(f.title, t),
                    IndexRecordOption::WithFreqs,
                ));
                should.push((Occur::Should, Box::new(BoostQuery::new(title, title_boost))));
                should.push((
                    Occur::Should,
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.body, t),
                        IndexRecordOption::WithFreqs,
                    )),
                ));
            }
            let in_collections: Vec<(Occur, Box<dyn Query>)> = collections
                .iter()
                .map(|c| {
                    let q: Box<dyn Query> = Box::new(TermQuery::new(
                        Term::from_field_text(f.collection, c),
                        IndexRecordOption::Basic,
                    ));
                    (Occur::Should, q)
                })
                .collect();
            let filter = BooleanQuery::new(in_collections);
            let query = BooleanQuery::new(vec![
                (Occur::Must, Box::new(BooleanQuery::new(should))),
                (
                    Occur::Must,
                    Box::new(ConstScoreQuery::new(Box::new(filter.clone()), 0.0)),
                ),
            ]);
            let searcher = inner.reader.searcher();
            let stats = CollectionStats {
                searcher: &searcher,
                filter: &filter,
                fields: f,
                sizes: inner.sizes_of(&searcher, &collections, &filter)?,
            };
            let top = searcher.search_with_statistics_provider(
                &query,
                &TopDocs::with_limit(limit).order_by_score(),
                &stats,
            )?;
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
mod tests {
    use super::*;

    #[test]
    fn the_analyzer_stems_and_drops_stop_words() {
        assert_eq!(query_terms("The Ropers are roping"), vec!["roper", "rope"]);
        assert!(query_terms("the and of").is_empty());
    }
}
