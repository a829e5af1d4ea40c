//! [`VectorStore`] on qdrant-edge: the Qdrant engine in-process, on disk in the data dir. One shard
//! holds every collection; the payload carries collection, document and chunk ids for filtering.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use qdrant_edge::{
    Condition, CreateIndex, Distance, EdgeConfigBuilder, EdgeShard, EdgeVectorParamsBuilder,
    FieldCondition, FieldIndexOperations, Filter, JsonPath, Match, NamedQuery, PayloadFieldSchema,
    PayloadSchemaType, PointId, PointInsertOperations, PointOperations, PointStructPersisted,
    QueryEnum, QueryRequestBuilder, ScoringQuery, ScrollRequestBuilder, SearchParams,
    UpdateOperation, VectorInternal, VectorPersisted, VectorStructPersisted, WithPayloadInterface,
    WithVector,
};

use super::{VectorPoint, VectorStore, vector_err};
use crate::config::RetrievalConfig;
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

pub struct EdgeVectorStore {
    path: PathBuf,
    shard: RwLock<Arc<EdgeShard>>,
    /// Points held, refreshed after each write: chooses exact or HNSW search without asking the
    /// shard on every query.
    points: Arc<AtomicUsize>,
    exact_below: usize,
    hnsw_ef: usize,
}

impl std::fmt::Debug for EdgeVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeVectorStore")
            .field("path", &self.path)
            .finish()
    }
}

fn create_shard(path: &Path, dimension: usize) -> Result<EdgeShard> {
    std::fs::create_dir_all(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let config = EdgeConfigBuilder::new()
        .vector(
            VECTOR,
            EdgeVectorParamsBuilder::new(dimension, Distance::Cosine).build(),
        )
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
        let shard = if path.join("edge_config.json").exists() {
            let shard = EdgeShard::load(path, None).map_err(vector_err)?;
            let stored = shard.config().vectors.get(VECTOR).map(|v| v.size);
            if stored != Some(dimension) {
                return Err(Error::Conflict(format!(
                    "the vector index holds {}-d vectors but the model gives {dimension}-d; run `lariat reindex`",
                    stored.unwrap_or(0)
                )));
            }
            shard
        } else {
            create_shard(path, dimension)?
        };
        let points = shard.info().map_err(vector_err)?.points_count;
        Ok(Self {
            path: path.to_path_buf(),
            shard: RwLock::new(Arc::new(shard)),
            points: Arc::new(AtomicUsize::new(points)),
            exact_below: retrieval.exact_search_below,
            hnsw_ef: retrieval.hnsw_ef,
        })
    }

    fn shard(&self) -> Arc<EdgeShard> {
        self.shard.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl VectorStore for EdgeVectorStore {
    async fn replace(&self, delete_documents: &[String], points: Vec<VectorPoint>) -> Result<()> {
        let shard = self.shard();
        let delete = delete_documents.to_vec();
        let count = self.points.clone();
        blocking(move || {
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
            count.store(
                shard.info().map_err(vector_err)?.points_count,
                Ordering::Relaxed,
            );
            Ok(())
        })
        .await
    }

    async fn search(
        &self,
        vector: Vec<f32>,
        collections: &[String],
        limit: usize,
    ) -> Result<Vec<(String, f32)>> {
        let shard = self.shard();
        let collections = collections.to_vec();
        let exact = self.points.load(Ordering::Relaxed) < self.exact_below;
        let hnsw_ef = self.hnsw_ef;
        blocking(move || {
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
                .with_vector(WithVector::Bool(false))
                .build();
            let hits = shard.query(request).map_err(vector_err)?;
            Ok(hits
                .into_iter()
                .map(|p| (point_id(&p.id), p.score))
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
        let path = self.path.clone();
        let fresh = blocking(move || {
            if path.exists() {
                std::fs::remove_dir_all(&path)
                    .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            }
            create_shard(&path, dimension)
        })
        .await?;
        *self.shard.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        self.points.store(0, Ordering::Relaxed);
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        let shard = self.shard();
        blocking(move || shard.flush().map_err(vector_err)).await
    }
}

fn point_id(id: &PointId) -> String {
    match id {
        PointId::Uuid(u) => u.to_string(),
        PointId::NumId(n) => n.to_string(),
    }
}
