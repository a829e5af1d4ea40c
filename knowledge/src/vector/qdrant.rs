//! [`VectorStore`] on a Qdrant server or cluster: one collection, `<prefix>_chunks`, whose
//! `dense` vectors are compared by cosine; each point's payload carries its collection, document
//! and chunk ids, with keyword indexes on the two a search and a delete filter by. Any number of
//! servers share it.
//!
//! Searches follow the embedded store's rule: exact below `retrieval.exact_search_below` points,
//! HNSW with `hnsw_ef` above it; the collection filter is applied inside the search.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use qdrant_client::qdrant::{
    CountPoints, Datatype, Distance, Filter, NamedVectors, PointId, PointStruct, Query,
    QueryPoints, SearchParams, Value, Vector, VectorInput, VectorParams, VectorParamsMap, Vectors,
    VectorsConfig, WithVectorsSelector, vector_output, vectors, vectors_config,
    with_vectors_selector,
};

use super::{Neighbour, VectorPoint, VectorStore};
use crate::config::{RetrievalConfig, VectorPrecision};
use crate::qdrant::{QdrantEngine, any_of, point_uuid, qdrant_err, with_payload};
use base::error::{Error, Result};

const VECTOR: &str = "dense";
/// How long the point count that chooses exact or HNSW search is trusted: other servers write
/// too.
const COUNT_TTL: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct QdrantVectorStore {
    engine: QdrantEngine,
    collection: String,
    exact_below: usize,
    hnsw_ef: usize,
    /// How the collection this store creates (on `reset`) keeps its vectors.
    precision: VectorPrecision,
    /// When the points were last counted, and how many there were; `None` after this server
    /// wrote.
    counted: Mutex<Option<(Instant, usize)>>,
}

fn vectors_config(dimension: usize, precision: VectorPrecision) -> VectorsConfig {
    VectorsConfig {
        config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
            map: HashMap::from([(
                VECTOR.to_owned(),
                VectorParams {
                    size: dimension as u64,
                    distance: Distance::Cosine as i32,
                    datatype: Some(match precision {
                        VectorPrecision::Float32 => Datatype::Float32,
                        VectorPrecision::Float16 => Datatype::Float16,
                    } as i32),
                    ..Default::default()
                },
            )]),
        })),
    }
}

/// The dimension of the `dense` vectors of collection `name`, if it exists.
async fn stored_dimension(engine: &QdrantEngine, name: &str) -> Result<Option<u64>> {
    if !engine
        .client
        .collection_exists(name)
        .await
        .map_err(qdrant_err)?
    {
        return Ok(None);
    }
    let info = engine
        .client
        .collection_info(name)
        .await
        .map_err(qdrant_err)?;
    let config = info
        .result
        .and_then(|i| i.config)
        .and_then(|c| c.params)
        .and_then(|p| p.vectors_config)
        .and_then(|v| v.config);
    Ok(Some(match config {
        Some(vectors_config::Config::ParamsMap(m)) => m.map.get(VECTOR).map_or(0, |p| p.size),
        Some(vectors_config::Config::Params(p)) => p.size,
        None => 0,
    }))
}

impl QdrantVectorStore {
    /// The store on `engine`'s server, its collection made for `dimension`-d vectors if it is
    /// not there. A collection of another dimension is a conflict (`lariat reindex` remakes it).
    pub async fn open(
        engine: QdrantEngine,
        dimension: usize,
        retrieval: &RetrievalConfig,
    ) -> Result<Self> {
        let collection = engine.collection("chunks");
        match stored_dimension(&engine, &collection).await? {
            Some(d) if d != dimension as u64 => {
                return Err(Error::Conflict(format!(
                    "Qdrant collection {collection} holds {d}-d vectors but the model gives {dimension}-d; run `lariat reindex`"
                )));
            }
            _ => {
                engine
                    .ensure_collection(
                        &collection,
                        Some(vectors_config(dimension, retrieval.vector_precision)),
                        None,
                        &["collection", "document_id"],
                    )
                    .await?
            }
        }
        Ok(Self {
            engine,
            collection,
            exact_below: retrieval.exact_search_below,
            hnsw_ef: retrieval.hnsw_ef,
            precision: retrieval.vector_precision,
            counted: Mutex::new(None),
        })
    }

    async fn points(&self) -> Result<usize> {
        if let Some((at, n)) = *self.counted.lock().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < COUNT_TTL
        {
            return Ok(n);
        }
        let count = self
            .engine
            .client
            .count(CountPoints {
                collection_name: self.collection.clone(),
                exact: Some(false),
                ..Default::default()
            })
            .await
            .map_err(qdrant_err)?
            .result
            .map_or(0, |r| r.count as usize);
        *self.counted.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), count));
        Ok(count)
    }
}

fn point(p: VectorPoint) -> PointStruct {
    let payload: HashMap<String, Value> = [
        ("collection", p.collection),
        ("document_id", p.document_id),
        ("chunk_id", p.chunk_id.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
    PointStruct {
        id: Some(PointId::from(p.chunk_id.to_string())),
        payload,
        vectors: Some(Vectors {
            vectors_options: Some(vectors::VectorsOptions::Vectors(NamedVectors {
                vectors: HashMap::from([(VECTOR.to_owned(), Vector::new_dense(p.vector))]),
            })),
        }),
    }
}

#[async_trait]
impl VectorStore for QdrantVectorStore {
    async fn replace(&self, delete_documents: &[String], points: Vec<VectorPoint>) -> Result<()> {
        *self.counted.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.engine
            .delete_documents(&self.collection, delete_documents)
            .await?;
        self.engine
            .upsert(&self.collection, points.into_iter().map(point))
            .await
    }

    async fn nearest(
        &self,
        vector: Vec<f32>,
        collections: &[String],
        limit: usize,
        with_vectors: bool,
    ) -> Result<Vec<Neighbour>> {
        if collections.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let exact = self.points().await? < self.exact_below;
        let response = self
            .engine
            .client
            .query(QueryPoints {
                collection_name: self.collection.clone(),
                query: Some(Query::new_nearest(VectorInput::new_dense(vector))),
                using: Some(VECTOR.to_owned()),
                filter: Some(Filter::must([any_of("collection", collections)])),
                params: Some(SearchParams {
                    exact: Some(exact),
                    hnsw_ef: Some(self.hnsw_ef as u64),
                    ..Default::default()
                }),
                limit: Some(limit as u64),
                with_payload: with_payload(&[]),
                with_vectors: Some(WithVectorsSelector::from(
                    with_vectors_selector::SelectorOptions::Enable(with_vectors),
                )),
                ..Default::default()
            })
            .await
            .map_err(qdrant_err)?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|p| {
                let vector = match p.vectors.and_then(|v| v.get_vector_by_name(VECTOR)) {
                    Some(vector_output::Vector::Dense(d)) => d.data,
                    _ => Vec::new(),
                };
                point_uuid(p.id.as_ref()).map(|chunk_id| Neighbour {
                    chunk_id,
                    score: p.score,
                    vector,
                })
            })
            .collect())
    }

    async fn chunk_ids(&self) -> Result<Vec<String>> {
        Ok(self
            .engine
            .scroll_all(&self.collection, None, &[])
            .await?
            .iter()
            .filter_map(|p| point_uuid(p.id.as_ref()))
            .collect())
    }

    async fn reset(&self, dimension: usize) -> Result<()> {
        *self.counted.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.engine.drop_collection(&self.collection).await?;
        self.engine
            .ensure_collection(
                &self.collection,
                Some(vectors_config(dimension, self.precision)),
                None,
                &["collection", "document_id"],
            )
            .await
    }

    async fn flush(&self) -> Result<()> {
        // every write waited for Qdrant's write-ahead log
        Ok(())
    }
}
