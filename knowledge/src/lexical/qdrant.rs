//! [`LexicalIndex`] on a Qdrant server or cluster (`retrieval.lexical_store = "qdrant"`): BM25 as
//! sparse vectors, so any number of servers share one index. Lariat's analyzer makes the terms
//! and their weights; Qdrant's `idf` modifier supplies each term's IDF, counted over a corpus
//! filter — the searched collections and one kind of entry — so, as in the tantivy index, a
//! collection is scored with its own statistics.
//!
//! One Qdrant collection, `<prefix>_lexical`, holds every entry: each passage (sparse vector
//! `passage`) and each whole document (`document`). A vector's dimensions are (field, term)
//! pairs, so a term's document frequency is counted per field, as tantivy counts it; a
//! dimension's value is BM25's saturated term frequency, `tf / (tf + k1·(1 − b + b·len/avg))`, and
//! the query's is `boost · (k1 + 1)` times the term's query weight. Qdrant multiplies in the IDF.
//!
//! The one difference from the other backends: a length is normalised by its collection's average
//! when the entry is written (kept in a statistics point per collection and kind, maintained by
//! each write), not at search time — the index's vectors are fixed once written. `k1` and `b` are
//! fixed with them: an index written with others is rebuilt when a server opens it, as after an
//! analyzer change, and `lariat reindex` renormalises every length to the current averages.
//!
//! A passage's score is mixed with its document's as in the other backends, over the best
//! `CANDIDATES_PER_HIT` passages per requested hit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use qdrant_client::qdrant::{
    Condition, Filter, GetPoints, IdfParams, Modifier, NamedVectors, PointId, PointStruct, Query,
    QueryPoints, SearchParams, SparseVectorConfig, SparseVectorParams, Value, Vector, VectorInput,
    Vectors, vectors,
};

use super::entries::{BODY, Entry, SizeDelta, TITLE, kind_code, replacing};
use super::{Bm25, INDEX_FORMAT, Kind, LexicalDocument, LexicalIndex, Ranking, query_terms};
use crate::qdrant::{QdrantEngine, WRITE_BATCH, any_of, integer, qdrant_err, text, with_payload};
use base::error::Result;
use base::types::hash64;

const PASSAGE: &str = "passage";
const DOCUMENT: &str = "document";
/// The `kind` of a statistics point and of the format point.
const SIZES: &str = "sizes";
const FORMAT: &str = "format";
/// Passages taken per requested hit before they are mixed with their documents' scores.
const CANDIDATES_PER_HIT: usize = 4;
const MIN_CANDIDATES: usize = 200;

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Passage => PASSAGE,
        Kind::Document => DOCUMENT,
    }
}

/// A point id: the UUID of `parts`' hash.
fn point_id(parts: &[&str]) -> PointId {
    let high = hash64(&[&["lexical"], parts].concat()) as u64;
    let low = hash64(&[&["lexical", "low"], parts].concat()) as u64;
    PointId::from(uuid::Uuid::from_u64_pair(high, low).to_string())
}

/// The sparse dimension of `term` in `field`.
fn dimension(field: i64, term: &str) -> u32 {
    hash64(&[if field == TITLE { "title" } else { "body" }, term]) as u32
}

/// How the vectors were written: an index written another way is rebuilt.
fn format(bm25: &Bm25) -> String {
    format!("{INDEX_FORMAT}; qdrant/1: k1 = {}, b = {}", bm25.k1, bm25.b)
}

/// Entries and tokens per field of one collection and kind.
#[derive(Debug, Default, Clone, Copy)]
struct Sizes {
    entries: i64,
    title_tokens: i64,
    body_tokens: i64,
}

impl Sizes {
    fn average(tokens: i64, entries: i64) -> f32 {
        if entries > 0 {
            (tokens as f32 / entries as f32).max(f32::EPSILON)
        } else {
            1.0
        }
    }
}

pub struct QdrantLexicalIndex {
    engine: QdrantEngine,
    collection: String,
    /// The `k1` and `b` the vectors are written with.
    bm25: Bm25,
    current: AtomicBool,
}

impl std::fmt::Debug for QdrantLexicalIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantLexicalIndex")
            .field("collection", &self.collection)
            .finish()
    }
}

fn sparse_config() -> SparseVectorConfig {
    let params = SparseVectorParams {
        modifier: Some(Modifier::Idf as i32),
        ..Default::default()
    };
    SparseVectorConfig {
        map: [PASSAGE, DOCUMENT]
            .into_iter()
            .map(|name| (name.to_owned(), params))
            .collect(),
    }
}

fn payload(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> HashMap<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn named(vectors: HashMap<String, Vector>) -> Option<Vectors> {
    Some(Vectors {
        vectors_options: Some(vectors::VectorsOptions::Vectors(NamedVectors { vectors })),
    })
}

impl QdrantLexicalIndex {
    /// The index on `engine`'s server (its collection made if it is not there), its vectors
    /// written with `ranking`'s `k1` and `b`.
    pub async fn open(engine: QdrantEngine, ranking: &Ranking) -> Result<Self> {
        let collection = engine.collection("lexical");
        engine
            .ensure_collection(
                &collection,
                None,
                Some(sparse_config()),
                &["collection", "document_id", "kind"],
            )
            .await?;
        let index = Self {
            engine,
            collection,
            bm25: ranking.bm25,
            current: AtomicBool::new(false),
        };
        let stored = index
            .get(vec![point_id(&[FORMAT])], &["format"])
            .await?
            .into_iter()
            .next()
            .and_then(|p| text(&p, "format"));
        index
            .current
            .store(stored == Some(format(&index.bm25)), Ordering::Release);
        Ok(index)
    }

    /// The payloads (`fields` of them) of the points `ids` that exist.
    async fn get(&self, ids: Vec<PointId>, fields: &[&str]) -> Result<Vec<HashMap<String, Value>>> {
        Ok(self
            .engine
            .client
            .get_points(GetPoints {
                collection_name: self.collection.clone(),
                ids,
                with_payload: with_payload(fields),
                ..Default::default()
            })
            .await
            .map_err(qdrant_err)?
            .result
            .into_iter()
            .map(|p| p.payload)
            .collect())
    }

    /// The payloads (`fields` of them) of every point `filter` selects.
    async fn scroll(&self, filter: Filter, fields: &[&str]) -> Result<Vec<HashMap<String, Value>>> {
        Ok(self
            .engine
            .scroll_all(&self.collection, Some(filter), fields)
            .await?
            .into_iter()
            .map(|p| p.payload)
            .collect())
    }

    async fn upsert(&self, points: Vec<PointStruct>) -> Result<()> {
        self.engine.upsert(&self.collection, points).await
    }

    /// What the entries of `documents` take from the statistics.
    async fn removed(
        &self,
        documents: &[String],
        sizes: &mut HashMap<(String, i64), SizeDelta>,
    ) -> Result<()> {
        for batch in documents.chunks(WRITE_BATCH) {
            let filter = Filter::must([
                any_of("document_id", batch),
                any_of("kind", &[PASSAGE.into(), DOCUMENT.into()]),
            ]);
            for p in self
                .scroll(filter, &["collection", "kind", "title_len", "body_len"])
                .await?
            {
                let (Some(collection), Some(kind)) = (text(&p, "collection"), text(&p, "kind"))
                else {
                    continue;
                };
                let kind = kind_code(if kind == DOCUMENT {
                    Kind::Document
                } else {
                    Kind::Passage
                });
                sizes.entry((collection, kind)).or_default().add(
                    -1,
                    integer(&p, "title_len").unwrap_or(0),
                    integer(&p, "body_len").unwrap_or(0),
                );
            }
        }
        Ok(())
    }

    /// Applies `deltas` to the statistics points, returning the statistics after them.
    async fn apply_sizes(
        &self,
        deltas: HashMap<(String, i64), SizeDelta>,
    ) -> Result<HashMap<(String, i64), Sizes>> {
        let mut keys: Vec<(String, i64)> = deltas.keys().cloned().collect();
        keys.sort();
        let key_id =
            |(collection, kind): &(String, i64)| point_id(&[SIZES, collection, &kind.to_string()]);
        let mut sizes: HashMap<(String, i64), Sizes> = HashMap::new();
        for p in self
            .get(
                keys.iter().map(key_id).collect(),
                &[
                    "collection",
                    "entry_kind",
                    "entries",
                    "title_tokens",
                    "body_tokens",
                ],
            )
            .await?
        {
            if let (Some(collection), Some(kind)) =
                (text(&p, "collection"), integer(&p, "entry_kind"))
            {
                sizes.insert(
                    (collection, kind),
                    Sizes {
                        entries: integer(&p, "entries").unwrap_or(0),
                        title_tokens: integer(&p, "title_tokens").unwrap_or(0),
                        body_tokens: integer(&p, "body_tokens").unwrap_or(0),
                    },
                );
            }
        }
        let mut points = Vec::new();
        for key in keys {
            let d = deltas[&key];
            let s = sizes.entry(key.clone()).or_default();
            s.entries = (s.entries + d.entries).max(0);
            s.title_tokens = (s.title_tokens + d.title_tokens).max(0);
            s.body_tokens = (s.body_tokens + d.body_tokens).max(0);
            points.push(PointStruct {
                id: Some(key_id(&key)),
                payload: payload([
                    ("kind", Value::from(SIZES)),
                    ("collection", Value::from(key.0.clone())),
                    ("entry_kind", Value::from(key.1)),
                    ("entries", Value::from(s.entries)),
                    ("title_tokens", Value::from(s.title_tokens)),
                    ("body_tokens", Value::from(s.body_tokens)),
                ]),
                vectors: named(HashMap::new()),
            });
        }
        self.upsert(points).await?;
        Ok(sizes)
    }

    /// `entry` as a point, its lengths normalised by `sizes`' averages.
    fn point(&self, entry: &Entry, sizes: Sizes) -> PointStruct {
        let (k1, b) = (self.bm25.k1, self.bm25.b);
        let mut weights: HashMap<u32, f32> = HashMap::new();
        for (field, (tf, len), tokens) in [
            (TITLE, &entry.title, sizes.title_tokens),
            (BODY, &entry.body, sizes.body_tokens),
        ] {
            let norm = 1.0 - b + b * *len as f32 / Sizes::average(tokens, sizes.entries);
            for (term, &n) in tf {
                let tf = n as f32;
                *weights.entry(dimension(field, term)).or_default() += tf / (tf + k1 * norm);
            }
        }
        let name = kind_name(entry.kind);
        let (indices, values): (Vec<u32>, Vec<f32>) = weights.into_iter().unzip();
        let mut fields = vec![
            ("kind", Value::from(name)),
            ("collection", Value::from(entry.collection.clone())),
            ("document_id", Value::from(entry.document_id.clone())),
            ("title_len", Value::from(entry.title.1)),
            ("body_len", Value::from(entry.body.1)),
        ];
        let id = match &entry.chunk_id {
            Some(chunk) => {
                fields.push(("chunk_id", Value::from(chunk.clone())));
                point_id(&[PASSAGE, chunk])
            }
            None => point_id(&[DOCUMENT, &entry.document_id]),
        };
        PointStruct {
            id: Some(id),
            payload: payload(fields),
            vectors: named(HashMap::from([(
                name.to_owned(),
                Vector::new_sparse(indices, values),
            )])),
        }
    }

    /// The best `limit` entries of `kind` in `collections` (and `within`, when given) for the
    /// query `vector`, with the payload `fields`.
    async fn query(
        &self,
        kind: &str,
        vector: &HashMap<u32, f32>,
        collections: &[String],
        within: Option<Condition>,
        limit: usize,
        fields: &[&str],
    ) -> Result<Vec<(HashMap<String, Value>, f32)>> {
        let corpus = Filter::must([
            any_of("collection", collections),
            any_of("kind", &[kind.to_owned()]),
        ]);
        let mut filter = corpus.clone();
        filter.must.extend(within);
        let (indices, values): (Vec<u32>, Vec<f32>) = vector.iter().map(|(d, w)| (*d, *w)).unzip();
        let response = self
            .engine
            .client
            .query(QueryPoints {
                collection_name: self.collection.clone(),
                query: Some(Query::new_nearest(VectorInput::new_sparse(indices, values))),
                using: Some(kind.to_owned()),
                filter: Some(filter),
                params: Some(SearchParams {
                    idf: Some(IdfParams {
                        corpus: Some(corpus),
                    }),
                    ..Default::default()
                }),
                limit: Some(limit as u64),
                with_payload: with_payload(fields),
                ..Default::default()
            })
            .await
            .map_err(qdrant_err)?;
        Ok(response
            .result
            .into_iter()
            .map(|p| (p.payload, p.score))
            .collect())
    }
}

#[async_trait]
impl LexicalIndex for QdrantLexicalIndex {
    async fn replace(&self, delete_documents: &[String], docs: Vec<LexicalDocument>) -> Result<()> {
        let (delete, entries) = replacing(delete_documents, docs).await?;
        let mut deltas = HashMap::new();
        self.removed(&delete, &mut deltas).await?;
        for e in &entries {
            deltas
                .entry((e.collection.clone(), kind_code(e.kind)))
                .or_default()
                .add(1, e.title.1, e.body.1);
        }
        let sizes = self.apply_sizes(deltas).await?;
        self.engine
            .delete_documents(&self.collection, &delete)
            .await?;
        let points = entries
            .iter()
            .map(|e| {
                let s = sizes
                    .get(&(e.collection.clone(), kind_code(e.kind)))
                    .copied()
                    .unwrap_or_default();
                self.point(e, s)
            })
            .collect();
        self.upsert(points).await
    }

    async fn search(
        &self,
        query: &str,
        collections: &[String],
        limit: usize,
        ranking: Ranking,
    ) -> Result<Vec<(String, f32)>> {
        let terms = query_terms(query);
        if terms.is_empty() || collections.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut vector: HashMap<u32, f32> = HashMap::new();
        for (term, n) in &terms {
            let q = ranking.bm25.query_weight(*n) * (ranking.bm25.k1 + 1.0);
            *vector.entry(dimension(TITLE, term)).or_default() += ranking.title_boost * q;
            *vector.entry(dimension(BODY, term)).or_default() += q;
        }
        let w = ranking.document_weight;
        let candidates = if w > 0.0 {
            limit.saturating_mul(CANDIDATES_PER_HIT).max(MIN_CANDIDATES)
        } else {
            limit
        };
        let passages = self
            .query(
                PASSAGE,
                &vector,
                collections,
                None,
                candidates,
                &["chunk_id", "document_id"],
            )
            .await?;
        let mut documents: HashMap<String, f32> = HashMap::new();
        if w > 0.0 && !passages.is_empty() {
            let ids: Vec<String> = passages
                .iter()
                .filter_map(|(p, _)| text(p, "document_id"))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let n = ids.len();
            documents = self
                .query(
                    DOCUMENT,
                    &vector,
                    collections,
                    Some(any_of("document_id", &ids)),
                    n,
                    &["document_id"],
                )
                .await?
                .into_iter()
                .filter_map(|(p, score)| text(&p, "document_id").map(|d| (d, score)))
                .collect();
        }
        let mut hits: Vec<(String, f32)> = passages
            .into_iter()
            .filter_map(|(p, score)| {
                let document = text(&p, "document_id")?;
                let d = documents.get(&document).copied().unwrap_or(0.0);
                Some((text(&p, "chunk_id")?, (1.0 - w) * score + w * d))
            })
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        hits.truncate(limit);
        Ok(hits)
    }

    async fn chunk_ids(&self) -> Result<Vec<String>> {
        Ok(self
            .scroll(
                Filter::must([any_of("kind", &[PASSAGE.into()])]),
                &["chunk_id"],
            )
            .await?
            .iter()
            .filter_map(|p| text(p, "chunk_id"))
            .collect())
    }

    async fn reset(&self) -> Result<()> {
        self.engine.drop_collection(&self.collection).await?;
        self.current.store(false, Ordering::Release);
        self.engine
            .ensure_collection(
                &self.collection,
                None,
                Some(sparse_config()),
                &["collection", "document_id", "kind"],
            )
            .await
    }

    fn is_current(&self) -> bool {
        self.current.load(Ordering::Acquire)
    }

    async fn mark_current(&self) -> Result<()> {
        self.upsert(vec![PointStruct {
            id: Some(point_id(&[FORMAT])),
            payload: payload([
                ("kind", Value::from(FORMAT)),
                ("format", Value::from(format(&self.bm25))),
            ]),
            vectors: named(HashMap::new()),
        }])
        .await?;
        self.current.store(true, Ordering::Release);
        Ok(())
    }
}
