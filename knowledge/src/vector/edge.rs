//! [`VectorStore`] on qdrant-edge: the Qdrant engine in-process, on disk in the data dir. One shard
//! holds every collection; the payload carries collection, document and chunk ids for filtering.
//!
//! qdrant-edge runs no optimizer of its own: written points sit in plain segments, searched by
//! brute force. A search is exact while the collections it searches hold fewer than
//! `retrieval.exact_search_below` points, by HNSW past that. Once the shard holds that many, an
//! [`Indexer`] thread runs the shard's optimizers after each write (and
//! once on open): segments past the indexing threshold get their HNSW graph, small ones merge,
//! deleted points are vacuumed. Searches and writes go on meanwhile (the optimizers work on
//! copies and swap them in).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use async_trait::async_trait;
use qdrant_edge::{
    Condition, CountRequestBuilder, CreateIndex, Distance, EdgeConfigBuilder, EdgeOptimizersConfig,
    EdgeShard, EdgeVectorParamsBuilder, FieldCondition, FieldIndexOperations, Filter, JsonPath,
    Match, NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations,
    PointOperations, PointStructPersisted, QueryEnum, QueryRequestBuilder, ScoringQuery,
    ScrollRequestBuilder, SearchParams, UpdateOperation, VectorInternal, VectorPersisted,
    VectorStorageDatatype, VectorStructInternal, VectorStructPersisted, WithPayloadInterface,
    WithVector,
};

use super::{Neighbour, VectorPoint, VectorStore, vector_err};
use crate::config::{RetrievalConfig, VectorPrecision};
use base::error::{Error, Result, blocking};

const VECTOR: &str = "dense";
const SCROLL_PAGE: usize = 1000;

fn keyword(field: &str, values: Vec<String>) -> Result<Condition> {
    let key: JsonPath = field
        .parse()
        .map_err(|_| vector_err(format!("bad field {field}")))?;
    let matcher = match <[String; 1]>::try_from(values) {
        Ok([one]) => Match::from(one),
        Err(many) => Match::from(many),
    };
    Ok(Condition::Field(FieldCondition::new_match(key, matcher)))
}

/// The shard in use; `reset` swaps it for a fresh one.
type Current = Arc<RwLock<Arc<EdgeShard>>>;

fn current(shard: &Current) -> Arc<EdgeShard> {
    shard.read().unwrap_or_else(|p| p.into_inner()).clone()
}

#[derive(Default)]
struct IndexerState {
    /// A write came since the last run started.
    wanted: bool,
    running: bool,
    stop: bool,
}

/// The thread that runs the shard's optimizers, one run at a time; requests made while it runs
/// fold into one more run.
struct Indexer {
    state: Mutex<IndexerState>,
    changed: Condvar,
}

impl Indexer {
    fn lock(&self) -> MutexGuard<'_, IndexerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request(&self) {
        self.lock().wanted = true;
        self.changed.notify_all();
    }

    /// Blocks until no run is due or running; the guard keeps the next one from starting.
    fn idle(&self) -> MutexGuard<'_, IndexerState> {
        let state = self.lock();
        self.changed
            .wait_while(state, |s| s.running || (s.wanted && !s.stop))
            .unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, shard: &Current) {
        loop {
            {
                let state = self.lock();
                let mut state = self
                    .changed
                    .wait_while(state, |s| !s.wanted && !s.stop)
                    .unwrap_or_else(|p| p.into_inner());
                if state.stop {
                    return;
                }
                state.wanted = false;
                state.running = true;
            }
            let started = Instant::now();
            match current(shard).optimize() {
                Ok(true) => tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "vector index optimized"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "optimizing the vector index failed"),
            }
            self.lock().running = false;
            self.changed.notify_all();
        }
    }
}

pub struct EdgeVectorStore {
    path: PathBuf,
    shard: Current,
    indexer: Arc<Indexer>,
    worker: Option<JoinHandle<()>>,
    /// Points held, refreshed after each write: whether the indexer is asked to build HNSW
    /// graphs.
    points: Arc<AtomicUsize>,
    /// Points per collection, counted when first searched after a write: a search is exact
    /// while the collections it searches hold fewer than `exact_below` points, whatever else the
    /// shard holds (so a small collection beside a large one is searched as it always was).
    counts: Arc<Counts>,
    exact_below: usize,
    hnsw_ef: usize,
    /// How a shard this store creates (on `reset`) keeps its vectors.
    precision: VectorPrecision,
}

/// Points per collection, and the writes made (a count taken across a write is not kept).
#[derive(Default)]
struct Counts {
    by_collection: Mutex<HashMap<String, usize>>,
    writes: AtomicU64,
}

impl Counts {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.by_collection.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A write changed the counts.
    fn forget(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.lock().clear();
    }

    /// The points the shard holds in `collections`.
    fn of(&self, shard: &EdgeShard, collections: &[String]) -> Result<usize> {
        let mut total = 0;
        for c in collections {
            let known = self.lock().get(c).copied();
            total += match known {
                Some(n) => n,
                None => {
                    let before = self.writes.load(Ordering::SeqCst);
                    let request = CountRequestBuilder::new()
                        .filter(Filter::new_must(keyword("collection", vec![c.clone()])?))
                        .exact(true)
                        .build();
                    let n = shard.count(request).map_err(vector_err)?;
                    let mut counts = self.lock();
                    if self.writes.load(Ordering::SeqCst) == before {
                        counts.insert(c.clone(), n);
                    }
                    n
                }
            };
        }
        Ok(total)
    }
}

impl std::fmt::Debug for EdgeVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeVectorStore")
            .field("path", &self.path)
            .finish()
    }
}

/// The optimizers' settings: a segment gets its HNSW graph once it holds more vectors than a
/// search scans exactly (`exact_below`; Qdrant's own default is 10 MB of vectors).
fn optimizers(dimension: usize, exact_below: usize) -> EdgeOptimizersConfig {
    EdgeOptimizersConfig {
        indexing_threshold: Some(
            exact_below
                .saturating_mul(dimension * std::mem::size_of::<f32>())
                .div_ceil(1024)
                .max(1),
        ),
        ..Default::default()
    }
}

fn create_shard(
    path: &Path,
    dimension: usize,
    exact_below: usize,
    precision: VectorPrecision,
) -> Result<EdgeShard> {
    std::fs::create_dir_all(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let config = EdgeConfigBuilder::new()
        .vector(
            VECTOR,
            EdgeVectorParamsBuilder::new(dimension, Distance::Cosine)
                .datatype(match precision {
                    VectorPrecision::Float32 => VectorStorageDatatype::Float32,
                    VectorPrecision::Float16 => VectorStorageDatatype::Float16,
                })
                .build(),
        )
        .optimizers(optimizers(dimension, exact_below))
        .build();
    let shard = EdgeShard::new(path, config).map_err(vector_err)?;
    for field in ["collection", "document_id"] {
        shard
            .update(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name: field.parse().map_err(|_| vector_err("bad field"))?,
                    field_schema: Some(PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword)),
                }),
            ))
            .map_err(vector_err)?;
    }
    Ok(shard)
}

impl EdgeVectorStore {
    /// Opens the shard at `path`, creating it for `dimension`-d vectors if it does not exist.
    /// A shard holding vectors of another dimension is a conflict (`lariat reindex` resets it).
    pub fn open(path: &Path, dimension: usize, retrieval: &RetrievalConfig) -> Result<Self> {
        let exact_below = retrieval.exact_search_below;
        let shard = if path.join("edge_config.json").exists() {
            // the stored settings, with the optimizers' from this configuration
            let tuned = EdgeConfigBuilder::new()
                .optimizers(optimizers(dimension, exact_below))
                .build();
            let shard = EdgeShard::load(path, Some(tuned)).map_err(vector_err)?;
            let stored = shard.config().vectors.get(VECTOR).map(|v| v.size);
            if stored != Some(dimension) {
                return Err(Error::Conflict(format!(
                    "the vector index holds {}-d vectors but the model gives {dimension}-d; run `lariat reindex`",
                    stored.unwrap_or(0)
                )));
            }
            shard
        } else {
            create_shard(path, dimension, exact_below, retrieval.vector_precision)?
        };
        let points = shard.info().map_err(vector_err)?.points_count;
        let shard: Current = Arc::new(RwLock::new(Arc::new(shard)));
        let indexer = Arc::new(Indexer {
            state: Mutex::default(),
            changed: Condvar::new(),
        });
        let worker = std::thread::Builder::new()
            .name("vector-indexer".into())
            .spawn({
                let (indexer, shard) = (indexer.clone(), shard.clone());
                move || indexer.run(&shard)
            })
            .map_err(|e| Error::io("starting the vector indexer", e))?;
        let store = Self {
            path: path.to_path_buf(),
            shard,
            indexer,
            worker: Some(worker),
            points: Arc::new(AtomicUsize::new(points)),
            counts: Arc::default(),
            exact_below,
            hnsw_ef: retrieval.hnsw_ef,
            precision: retrieval.vector_precision,
        };
        store.index_if_large(points);
        Ok(store)
    }

    fn shard(&self) -> Arc<EdgeShard> {
        current(&self.shard)
    }

    /// Points held, and those in segments with an HNSW graph.
    pub fn indexed(&self) -> Result<(usize, usize)> {
        let info = self.shard().info().map_err(vector_err)?;
        Ok((info.points_count, info.indexed_vectors_count))
    }

    /// Asks for an optimizer run when searches use HNSW at this size.
    fn index_if_large(&self, points: usize) {
        if points >= self.exact_below {
            self.indexer.request();
        }
    }
}

impl Drop for EdgeVectorStore {
    /// Stops the indexer (a run under way finishes first: the optimizers cannot be interrupted).
    fn drop(&mut self) {
        self.indexer.lock().stop = true;
        self.indexer.changed.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[async_trait]
impl VectorStore for EdgeVectorStore {
    async fn replace(&self, delete_documents: &[String], points: Vec<VectorPoint>) -> Result<()> {
        let shard = self.shard();
        let delete = delete_documents.to_vec();
        let (count, counts) = (self.points.clone(), self.counts.clone());
        let points = blocking(move || {
            counts.forget();
            if !delete.is_empty() {
                let filter = Filter::new_must(keyword("document_id", delete)?);
                shard
                    .update(UpdateOperation::PointOperation(
                        PointOperations::DeletePointsByFilter(filter),
                    ))
                    .map_err(vector_err)?;
            }
            if !points.is_empty() {
                let points = points
                    .into_iter()
                    .map(|p| PointStructPersisted {
                        id: PointId::Uuid(p.chunk_id),
                        vector: VectorStructPersisted::Named(HashMap::from([(
                            VECTOR.to_string(),
                            VectorPersisted::Dense(p.vector),
                        )])),
                        payload: Some(
                            serde_json::json!({
                                "collection": p.collection,
                                "document_id": p.document_id,
                                "chunk_id": p.chunk_id.to_string(),
                            })
                            .as_object()
                            .cloned()
                            .unwrap_or_default()
                            .into(),
                        ),
                    })
                    .collect();
                shard
                    .update(UpdateOperation::PointOperation(
                        PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
                    ))
                    .map_err(vector_err)?;
            }
            let points = shard.info().map_err(vector_err)?.points_count;
            count.store(points, Ordering::Relaxed);
            counts.forget();
            Ok(points)
        })
        .await?;
        self.index_if_large(points);
        Ok(())
    }

    async fn nearest(
        &self,
        vector: Vec<f32>,
        collections: &[String],
        limit: usize,
        with_vectors: bool,
    ) -> Result<Vec<Neighbour>> {
        let shard = self.shard();
        let collections = collections.to_vec();
        let (counts, exact_below, hnsw_ef) = (self.counts.clone(), self.exact_below, self.hnsw_ef);
        blocking(move || {
            let exact = counts.of(&shard, &collections)? < exact_below;
            let request = QueryRequestBuilder::new(limit)
                .query(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                    query: VectorInternal::Dense(vector),
                    using: Some(VECTOR.to_string()),
                })))
                .filter(Filter::new_must(keyword("collection", collections)?))
                .params(SearchParams {
                    exact,
                    hnsw_ef: Some(hnsw_ef),
                    ..Default::default()
                })
                .with_payload(WithPayloadInterface::Bool(false))
                .with_vector(WithVector::Bool(with_vectors))
                .build();
            let hits = shard.query(request).map_err(vector_err)?;
            Ok(hits
                .into_iter()
                .map(|p| Neighbour {
                    chunk_id: point_id(&p.id),
                    score: p.score,
                    vector: p.vector.and_then(dense).unwrap_or_default(),
                })
                .collect())
        })
        .await
    }

    async fn chunk_ids(&self) -> Result<Vec<String>> {
        let shard = self.shard();
        blocking(move || {
            let mut ids = Vec::new();
            let mut offset = None;
            loop {
                let mut request = ScrollRequestBuilder::new()
                    .limit(SCROLL_PAGE)
                    .with_payload(WithPayloadInterface::Bool(false))
                    .with_vector(WithVector::Bool(false));
                if let Some(o) = offset {
                    request = request.offset(o);
                }
                let (records, next) = shard.scroll(request.build()).map_err(vector_err)?;
                ids.extend(records.iter().map(|r| point_id(&r.id)));
                match next {
                    Some(n) => offset = Some(n),
                    None => break,
                }
            }
            Ok(ids)
        })
        .await
    }

    async fn reset(&self, dimension: usize) -> Result<()> {
        let (path, exact_below, precision) = (self.path.clone(), self.exact_below, self.precision);
        let (indexer, shard, points, counts) = (
            self.indexer.clone(),
            self.shard.clone(),
            self.points.clone(),
            self.counts.clone(),
        );
        blocking(move || {
            // no optimizer run may be working in the folder being removed
            let _idle = indexer.idle();
            if path.exists() {
                std::fs::remove_dir_all(&path)
                    .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            }
            let fresh = create_shard(&path, dimension, exact_below, precision)?;
            *shard.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
            points.store(0, Ordering::Relaxed);
            counts.forget();
            Ok(())
        })
        .await
    }

    async fn settle(&self) -> Result<()> {
        let indexer = self.indexer.clone();
        blocking(move || {
            drop(indexer.idle());
            Ok(())
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        let shard = self.shard();
        blocking(move || shard.flush().map_err(vector_err)).await
    }
}

/// The dense vector a search returned with a point.
fn dense(vectors: VectorStructInternal) -> Option<Vec<f32>> {
    match vectors {
        VectorStructInternal::Single(v) => Some(v),
        VectorStructInternal::Named(mut named) => match named.remove(VECTOR) {
            Some(VectorInternal::Dense(v)) => Some(v),
            _ => None,
        },
        VectorStructInternal::MultiDense(_) => None,
    }
}

fn point_id(id: &PointId) -> String {
    match id {
        PointId::Uuid(u) => u.to_string(),
        PointId::NumId(n) => n.to_string(),
    }
}
