//! The gRPC services the Qdrant backends call, each on the collection's edge shard; the rest
//! answer UNIMPLEMENTED.

use qdrant_client::qdrant as pb;
use qdrant_client::qdrant::collections_server::Collections;
use qdrant_client::qdrant::points_server::Points;
use qdrant_client::qdrant::qdrant_server::Qdrant;
use qdrant_edge as edge;
use std::sync::Arc;
use tonic::{Request, Status};

use super::wire::*;
use super::{Collection, EdgeQdrant, Reply, bad, engine, not_served, ok};

#[tonic::async_trait]
impl Qdrant for EdgeQdrant {
    async fn health_check(
        &self,
        _: Request<pb::HealthCheckRequest>,
    ) -> Reply<pb::HealthCheckReply> {
        ok(pb::HealthCheckReply {
            title: "qdrant-edge test server".into(),
            version: "1.17.0".into(),
            commit: None,
        })
    }
}

#[tonic::async_trait]
impl Collections for EdgeQdrant {
    async fn get(
        &self,
        request: Request<pb::GetCollectionInfoRequest>,
    ) -> Reply<pb::GetCollectionInfoResponse> {
        let name = request.into_inner().collection_name;
        let collection = self.collection(&name)?;
        let params = collection.params.clone();
        let points = self
            .on_shard(&name, |shard| shard.info().map_err(engine))
            .await?
            .points_count as u64;
        ok(pb::GetCollectionInfoResponse {
            result: Some(pb::CollectionInfo {
                status: pb::CollectionStatus::Green as i32,
                points_count: Some(points),
                segments_count: 1,
                config: Some(pb::CollectionConfig {
                    params: Some(params),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            time: 0.0,
        })
    }

    async fn list(
        &self,
        _: Request<pb::ListCollectionsRequest>,
    ) -> Reply<pb::ListCollectionsResponse> {
        let mut names: Vec<String> = self
            .collections
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        ok(pb::ListCollectionsResponse {
            collections: names
                .into_iter()
                .map(|name| pb::CollectionDescription { name })
                .collect(),
            time: 0.0,
        })
    }

    async fn create(
        &self,
        request: Request<pb::CreateCollection>,
    ) -> Reply<pb::CollectionOperationResponse> {
        let create = request.into_inner();
        let name = create.collection_name.clone();
        let path = self.path(&name)?;
        if self.collection(&name).is_ok() {
            return Err(Status::already_exists(format!(
                "Wrong input: Collection `{name}` already exists!"
            )));
        }
        let config = edge_config(&create)?;
        let shard = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&path).map_err(engine)?;
            edge::EdgeShard::new(&path, config).map_err(engine)
        })
        .await
        .map_err(engine)??;
        let params = pb::CollectionParams {
            shard_number: create.shard_number.unwrap_or(1),
            vectors_config: create.vectors_config,
            sparse_vectors_config: create.sparse_vectors_config,
            replication_factor: create.replication_factor,
            write_consistency_factor: create.write_consistency_factor,
            ..Default::default()
        };
        let mut collections = self.collections.write().unwrap_or_else(|p| p.into_inner());
        if collections.contains_key(&name) {
            return Err(Status::already_exists(format!(
                "Wrong input: Collection `{name}` already exists!"
            )));
        }
        collections.insert(
            name,
            Arc::new(Collection {
                shard: Arc::new(shard),
                params,
            }),
        );
        ok(pb::CollectionOperationResponse {
            result: true,
            time: 0.0,
        })
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteCollection>,
    ) -> Reply<pb::CollectionOperationResponse> {
        let name = request.into_inner().collection_name;
        let path = self.path(&name)?;
        let removed = self
            .collections
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name);
        if let Some(collection) = removed {
            tokio::task::spawn_blocking(move || {
                drop(collection);
                std::fs::remove_dir_all(&path).map_err(engine)
            })
            .await
            .map_err(engine)??;
        }
        ok(pb::CollectionOperationResponse {
            result: true,
            time: 0.0,
        })
    }

    async fn collection_exists(
        &self,
        request: Request<pb::CollectionExistsRequest>,
    ) -> Reply<pb::CollectionExistsResponse> {
        let name = request.into_inner().collection_name;
        ok(pb::CollectionExistsResponse {
            result: Some(pb::CollectionExists {
                exists: self.collection(&name).is_ok(),
            }),
            time: 0.0,
        })
    }

    async fn update(
        &self,
        _: Request<pb::UpdateCollection>,
    ) -> Reply<pb::CollectionOperationResponse> {
        not_served("update")
    }
    async fn update_aliases(
        &self,
        _: Request<pb::ChangeAliases>,
    ) -> Reply<pb::CollectionOperationResponse> {
        not_served("update_aliases")
    }
    async fn list_collection_aliases(
        &self,
        _: Request<pb::ListCollectionAliasesRequest>,
    ) -> Reply<pb::ListAliasesResponse> {
        not_served("list_collection_aliases")
    }
    async fn list_aliases(
        &self,
        _: Request<pb::ListAliasesRequest>,
    ) -> Reply<pb::ListAliasesResponse> {
        not_served("list_aliases")
    }
    async fn collection_cluster_info(
        &self,
        _: Request<pb::CollectionClusterInfoRequest>,
    ) -> Reply<pb::CollectionClusterInfoResponse> {
        not_served("collection_cluster_info")
    }
    async fn update_collection_cluster_setup(
        &self,
        _: Request<pb::UpdateCollectionClusterSetupRequest>,
    ) -> Reply<pb::UpdateCollectionClusterSetupResponse> {
        not_served("update_collection_cluster_setup")
    }
    async fn create_shard_key(
        &self,
        _: Request<pb::CreateShardKeyRequest>,
    ) -> Reply<pb::CreateShardKeyResponse> {
        not_served("create_shard_key")
    }
    async fn delete_shard_key(
        &self,
        _: Request<pb::DeleteShardKeyRequest>,
    ) -> Reply<pb::DeleteShardKeyResponse> {
        not_served("delete_shard_key")
    }
    async fn list_shard_keys(
        &self,
        _: Request<pb::ListShardKeysRequest>,
    ) -> Reply<pb::ListShardKeysResponse> {
        not_served("list_shard_keys")
    }
}

#[tonic::async_trait]
impl Points for EdgeQdrant {
    async fn upsert(
        &self,
        request: Request<pb::UpsertPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        let upsert = request.into_inner();
        let points = upsert
            .points
            .into_iter()
            .map(point)
            .collect::<Result<Vec<_>, _>>()?;
        self.on_shard(&upsert.collection_name, move |shard| {
            shard
                .update(edge::UpdateOperation::PointOperation(
                    edge::PointOperations::UpsertPoints(edge::PointInsertOperations::PointsList(
                        points,
                    )),
                ))
                .map_err(bad)
        })
        .await?;
        ok(done())
    }

    async fn delete(
        &self,
        request: Request<pb::DeletePoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        use pb::points_selector::PointsSelectorOneOf;
        let delete = request.into_inner();
        let operation = match delete.points.and_then(|p| p.points_selector_one_of) {
            Some(PointsSelectorOneOf::Points(list)) => edge::PointOperations::DeletePoints {
                ids: list
                    .ids
                    .into_iter()
                    .map(|id| point_id(Some(id)))
                    .collect::<Result<_, _>>()?,
            },
            Some(PointsSelectorOneOf::Filter(f)) => {
                edge::PointOperations::DeletePointsByFilter(filter(f)?)
            }
            None => return Err(bad("no points selected")),
        };
        self.on_shard(&delete.collection_name, move |shard| {
            shard
                .update(edge::UpdateOperation::PointOperation(operation))
                .map_err(bad)
        })
        .await?;
        ok(done())
    }

    async fn get(&self, request: Request<pb::GetPoints>) -> Reply<pb::GetResponse> {
        let get = request.into_inner();
        let ids = get
            .ids
            .into_iter()
            .map(|id| point_id(Some(id)))
            .collect::<Result<Vec<_>, _>>()?;
        let payload = with_payload(get.with_payload, false)?;
        let records = self
            .on_shard(&get.collection_name, move |shard| {
                shard
                    .retrieve(
                        edge::RetrieveRequestBuilder::new(ids)
                            .with_payload(payload)
                            .with_vector(edge::WithVector::Bool(false))
                            .build(),
                    )
                    .map_err(engine)
            })
            .await?;
        ok(pb::GetResponse {
            result: records
                .into_iter()
                .map(|r| pb::RetrievedPoint {
                    id: Some(wire_id(&r.id)),
                    payload: wire_payload(r.payload),
                    ..Default::default()
                })
                .collect(),
            time: 0.0,
            usage: None,
        })
    }

    async fn create_field_index(
        &self,
        request: Request<pb::CreateFieldIndexCollection>,
    ) -> Reply<pb::PointsOperationResponse> {
        let create = request.into_inner();
        let schema = match create.field_type.map(pb::FieldType::try_from) {
            Some(Ok(pb::FieldType::Keyword)) => edge::PayloadSchemaType::Keyword,
            Some(Ok(pb::FieldType::Integer)) => edge::PayloadSchemaType::Integer,
            Some(Ok(pb::FieldType::Bool)) => edge::PayloadSchemaType::Bool,
            _ => {
                return Err(Status::unimplemented(
                    "only keyword, integer and bool indexes are served",
                ));
            }
        };
        let field = key(&create.field_name)?;
        self.on_shard(&create.collection_name, move |shard| {
            shard
                .update(edge::UpdateOperation::FieldIndexOperation(
                    edge::FieldIndexOperations::CreateIndex(edge::CreateIndex {
                        field_name: field,
                        field_schema: Some(edge::PayloadFieldSchema::FieldType(schema)),
                    }),
                ))
                .map_err(bad)
        })
        .await?;
        ok(done())
    }

    async fn scroll(&self, request: Request<pb::ScrollPoints>) -> Reply<pb::ScrollResponse> {
        let scroll = request.into_inner();
        let mut builder = edge::ScrollRequestBuilder::new()
            .limit(scroll.limit.unwrap_or(10) as usize)
            .with_payload(with_payload(scroll.with_payload, true)?)
            .with_vector(edge::WithVector::Bool(false));
        if let Some(f) = optional_filter(scroll.filter)? {
            builder = builder.filter(f);
        }
        if scroll.offset.is_some() {
            builder = builder.offset(point_id(scroll.offset)?);
        }
        let (records, next) = self
            .on_shard(&scroll.collection_name, move |shard| {
                shard.scroll(builder.build()).map_err(engine)
            })
            .await?;
        ok(pb::ScrollResponse {
            next_page_offset: next.as_ref().map(wire_id),
            result: records
                .into_iter()
                .map(|r| pb::RetrievedPoint {
                    id: Some(wire_id(&r.id)),
                    payload: wire_payload(r.payload),
                    ..Default::default()
                })
                .collect(),
            time: 0.0,
            usage: None,
        })
    }

    async fn count(&self, request: Request<pb::CountPoints>) -> Reply<pb::CountResponse> {
        let count = request.into_inner();
        let mut builder = edge::CountRequestBuilder::new().exact(count.exact.unwrap_or(true));
        if let Some(f) = optional_filter(count.filter)? {
            builder = builder.filter(f);
        }
        let n = self
            .on_shard(&count.collection_name, move |shard| {
                shard.count(builder.build()).map_err(engine)
            })
            .await?;
        ok(pb::CountResponse {
            result: Some(pb::CountResult { count: n as u64 }),
            time: 0.0,
            usage: None,
        })
    }

    async fn query(&self, request: Request<pb::QueryPoints>) -> Reply<pb::QueryResponse> {
        use pb::query::Variant;
        use pb::vector_input::Variant as Input;
        let query = request.into_inner();
        if !query.prefetch.is_empty() {
            return Err(Status::unimplemented("prefetch is not served"));
        }
        let input = match query.query.and_then(|q| q.variant) {
            Some(Variant::Nearest(input)) => input.variant,
            _ => {
                return Err(Status::unimplemented(
                    "only nearest-vector queries are served",
                ));
            }
        };
        let vector = match input {
            Some(Input::Dense(d)) => edge::VectorInternal::Dense(d.data),
            Some(Input::Sparse(s)) => edge::VectorInternal::Sparse(sparse(s.indices, s.values)?),
            _ => {
                return Err(Status::unimplemented(
                    "only dense and sparse query vectors are served",
                ));
            }
        };
        let params = query.params.unwrap_or_default();
        let idf = params
            .idf
            .map(|idf| -> Result<edge::IdfParams, Status> {
                Ok(match idf.corpus {
                    Some(corpus) => edge::IdfParams::Corpus(edge::IdfCorpusParams {
                        corpus: filter(corpus)?,
                    }),
                    None => edge::IdfParams::Scope(edge::IdfScope::Global),
                })
            })
            .transpose()?;
        let mut builder = edge::QueryRequestBuilder::new(query.limit.unwrap_or(10) as usize)
            .query(edge::ScoringQuery::Vector(edge::QueryEnum::Nearest(
                edge::NamedQuery {
                    query: vector,
                    using: query.using,
                },
            )))
            .params(edge::SearchParams {
                exact: params.exact.unwrap_or(false),
                hnsw_ef: params.hnsw_ef.map(|e| e as usize),
                idf,
                ..Default::default()
            })
            .with_payload(with_payload(query.with_payload, false)?)
            .with_vector(with_vector(query.with_vectors));
        if let Some(f) = optional_filter(query.filter)? {
            builder = builder.filter(f);
        }
        if let Some(offset) = query.offset {
            builder = builder.offset(offset as usize);
        }
        let hits = self
            .on_shard(&query.collection_name, move |shard| {
                shard.query(builder.build()).map_err(bad)
            })
            .await?;
        ok(pb::QueryResponse {
            result: hits
                .into_iter()
                .map(|p| pb::ScoredPoint {
                    id: Some(wire_id(&p.id)),
                    payload: wire_payload(p.payload),
                    vectors: wire_vectors(p.vector),
                    score: p.score,
                    version: p.version,
                    ..Default::default()
                })
                .collect(),
            time: 0.0,
            usage: None,
        })
    }

    async fn update_vectors(
        &self,
        _: Request<pb::UpdatePointVectors>,
    ) -> Reply<pb::PointsOperationResponse> {
        not_served("update_vectors")
    }
    async fn delete_vectors(
        &self,
        _: Request<pb::DeletePointVectors>,
    ) -> Reply<pb::PointsOperationResponse> {
        not_served("delete_vectors")
    }
    async fn set_payload(
        &self,
        _: Request<pb::SetPayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        not_served("set_payload")
    }
    async fn overwrite_payload(
        &self,
        _: Request<pb::SetPayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        not_served("overwrite_payload")
    }
    async fn delete_payload(
        &self,
        _: Request<pb::DeletePayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        not_served("delete_payload")
    }
    async fn clear_payload(
        &self,
        _: Request<pb::ClearPayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        not_served("clear_payload")
    }
    async fn delete_field_index(
        &self,
        _: Request<pb::DeleteFieldIndexCollection>,
    ) -> Reply<pb::PointsOperationResponse> {
        not_served("delete_field_index")
    }
    async fn create_vector_name(
        &self,
        _: Request<pb::CreateVectorNameRequest>,
    ) -> Reply<pb::PointsOperationResponse> {
        not_served("create_vector_name")
    }
    async fn delete_vector_name(
        &self,
        _: Request<pb::DeleteVectorNameRequest>,
    ) -> Reply<pb::PointsOperationResponse> {
        not_served("delete_vector_name")
    }
    async fn search(&self, _: Request<pb::SearchPoints>) -> Reply<pb::SearchResponse> {
        not_served("search")
    }
    async fn search_batch(
        &self,
        _: Request<pb::SearchBatchPoints>,
    ) -> Reply<pb::SearchBatchResponse> {
        not_served("search_batch")
    }
    async fn search_groups(
        &self,
        _: Request<pb::SearchPointGroups>,
    ) -> Reply<pb::SearchGroupsResponse> {
        not_served("search_groups")
    }
    async fn recommend(&self, _: Request<pb::RecommendPoints>) -> Reply<pb::RecommendResponse> {
        not_served("recommend")
    }
    async fn recommend_batch(
        &self,
        _: Request<pb::RecommendBatchPoints>,
    ) -> Reply<pb::RecommendBatchResponse> {
        not_served("recommend_batch")
    }
    async fn recommend_groups(
        &self,
        _: Request<pb::RecommendPointGroups>,
    ) -> Reply<pb::RecommendGroupsResponse> {
        not_served("recommend_groups")
    }
    async fn discover(&self, _: Request<pb::DiscoverPoints>) -> Reply<pb::DiscoverResponse> {
        not_served("discover")
    }
    async fn discover_batch(
        &self,
        _: Request<pb::DiscoverBatchPoints>,
    ) -> Reply<pb::DiscoverBatchResponse> {
        not_served("discover_batch")
    }
    async fn update_batch(
        &self,
        _: Request<pb::UpdateBatchPoints>,
    ) -> Reply<pb::UpdateBatchResponse> {
        not_served("update_batch")
    }
    async fn query_batch(&self, _: Request<pb::QueryBatchPoints>) -> Reply<pb::QueryBatchResponse> {
        not_served("query_batch")
    }
    async fn query_groups(
        &self,
        _: Request<pb::QueryPointGroups>,
    ) -> Reply<pb::QueryGroupsResponse> {
        not_served("query_groups")
    }
    async fn facet(&self, _: Request<pb::FacetCounts>) -> Reply<pb::FacetResponse> {
        not_served("facet")
    }
    async fn search_matrix_pairs(
        &self,
        _: Request<pb::SearchMatrixPoints>,
    ) -> Reply<pb::SearchMatrixPairsResponse> {
        not_served("search_matrix_pairs")
    }
    async fn search_matrix_offsets(
        &self,
        _: Request<pb::SearchMatrixPoints>,
    ) -> Reply<pb::SearchMatrixOffsetsResponse> {
        not_served("search_matrix_offsets")
    }
}
