//! A Qdrant server for tests: the gRPC services `qdrant-client` calls (the server traits generated
//! in `qdrant-client` itself, so requests and replies are Qdrant's own wire format) answered by
//! qdrant-edge, the Qdrant engine in-process: one edge shard per collection. It serves what
//! Lariat's Qdrant backends use — collections (create with named dense and sparse vectors, the
//! `idf` modifier; exists, info, list, delete), keyword payload indexes, upsert, delete by ids or
//! filter, retrieve, scroll, count and `query` (nearest dense or sparse vector, a filter, exact or
//! HNSW parameters and IDF over a corpus filter) — and answers anything else `UNIMPLEMENTED`.
//!
//! It holds no cluster: shard number, replication factor and write consistency are accepted and
//! reported back, and every write is applied before it returns. `make test-qdrant` runs the same
//! suites against a real server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use qdrant_client::qdrant as pb;
use qdrant_client::qdrant::collections_server::{Collections, CollectionsServer};
use qdrant_client::qdrant::points_server::{Points, PointsServer};
use qdrant_client::qdrant::qdrant_server::{Qdrant, QdrantServer};
use qdrant_edge as edge;
use serde_json::Value as Json;
use tonic::{Request, Response, Status};

type Reply<T> = Result<Response<T>, Status>;

fn not_served<T>(method: &str) -> Reply<T> {
    Err(Status::unimplemented(format!(
        "the Qdrant test server does not serve {method}"
    )))
}

fn bad(what: impl std::fmt::Display) -> Status {
    Status::invalid_argument(what.to_string())
}

fn engine(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

fn ok<T>(reply: T) -> Reply<T> {
    Ok(Response::new(reply))
}

/// One collection: its shard and the parameters it was created with.
struct Collection {
    shard: Arc<edge::EdgeShard>,
    params: pb::CollectionParams,
}

/// The services, over a folder of edge shards.
pub struct EdgeQdrant {
    dir: PathBuf,
    collections: RwLock<HashMap<String, Arc<Collection>>>,
}

impl EdgeQdrant {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            collections: RwLock::new(HashMap::new()),
        }
    }

    fn collection(&self, name: &str) -> Result<Arc<Collection>, Status> {
        self.collections
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("Collection `{name}` doesn't exist!")))
    }

    /// Runs `f` on collection `name`'s shard on a blocking thread.
    async fn on_shard<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&edge::EdgeShard) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let collection = self.collection(name)?;
        tokio::task::spawn_blocking(move || f(&collection.shard))
            .await
            .map_err(engine)?
    }

    fn path(&self, name: &str) -> Result<PathBuf, Status> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad(format!("bad collection name {name:?}")));
        }
        Ok(self.dir.join(name))
    }
}

/// Serves the Qdrant services on `addr` until `shutdown` resolves.
pub async fn serve(
    dir: &Path,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let service = Arc::new(EdgeQdrant::new(dir));
    tonic::transport::Server::builder()
        .add_service(CollectionsServer::from_arc(service.clone()))
        .add_service(PointsServer::from_arc(service.clone()))
        .add_service(QdrantServer::from_arc(service))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}

/// A test server on a free loopback port, in a thread of its own; stopped when dropped.
pub struct QdrantTestServer {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl QdrantTestServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a folder for the Qdrant test server");
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the Qdrant test server");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr: SocketAddr = std_listener.local_addr().expect("its address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let path = dir.path().to_path_buf();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the Qdrant test server");
            // stopped at once, open connections or not (a graceful stop would wait for the
            // clients' pooled connections)
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                tokio::select! {
                    served = serve(&path, listener, std::future::pending()) => {
                        served.expect("the Qdrant test server");
                    }
                    _ = stopped => {}
                }
            });
            runtime.shutdown_background();
        });
        Self {
            url: format!("http://{addr}"),
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }
}

impl Drop for QdrantTestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---- from Qdrant's wire types to the engine's, and back ----

fn point_id(id: Option<pb::PointId>) -> Result<edge::PointId, Status> {
    use pb::point_id::PointIdOptions;
    match id.and_then(|i| i.point_id_options) {
        Some(PointIdOptions::Num(n)) => Ok(edge::PointId::NumId(n)),
        Some(PointIdOptions::Uuid(u)) => u
            .parse()
            .map(edge::PointId::Uuid)
            .map_err(|_| bad(format!("Unable to parse UUID: {u}"))),
        None => Err(bad("a point without an id")),
    }
}

fn wire_id(id: &edge::PointId) -> pb::PointId {
    match id {
        edge::PointId::NumId(n) => pb::PointId::from(*n),
        edge::PointId::Uuid(u) => pb::PointId::from(u.to_string()),
    }
}

fn json(value: pb::Value) -> Json {
    use pb::value::Kind;
    match value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(b),
        Some(Kind::IntegerValue(n)) => Json::from(n),
        Some(Kind::DoubleValue(x)) => Json::from(x),
        Some(Kind::StringValue(s)) => Json::String(s),
        Some(Kind::ListValue(l)) => Json::Array(l.values.into_iter().map(json).collect()),
        Some(Kind::StructValue(s)) => {
            Json::Object(s.fields.into_iter().map(|(k, v)| (k, json(v))).collect())
        }
    }
}

fn wire_value(value: Json) -> pb::Value {
    use pb::value::Kind;
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Kind::StringValue(s),
        Json::Array(a) => Kind::ListValue(pb::ListValue {
            values: a.into_iter().map(wire_value).collect(),
        }),
        Json::Object(o) => Kind::StructValue(pb::Struct {
            fields: o.into_iter().map(|(k, v)| (k, wire_value(v))).collect(),
        }),
    };
    pb::Value { kind: Some(kind) }
}

fn wire_payload(payload: Option<edge::Payload>) -> HashMap<String, pb::Value> {
    payload
        .map(|p| p.0.into_iter().map(|(k, v)| (k, wire_value(v))).collect())
        .unwrap_or_default()
}

fn key(key: &str) -> Result<edge::JsonPath, Status> {
    key.parse()
        .map_err(|_| bad(format!("bad payload key {key:?}")))
}

fn condition(c: pb::Condition) -> Result<edge::Condition, Status> {
    use pb::condition::ConditionOneOf;
    use pb::r#match::MatchValue;
    match c.condition_one_of {
        Some(ConditionOneOf::Field(f)) => {
            let value = f
                .r#match
                .and_then(|m| m.match_value)
                .ok_or_else(|| Status::unimplemented("only match conditions are served"))?;
            let matcher = match value {
                MatchValue::Keyword(k) => edge::Match::from(k),
                MatchValue::Keywords(k) => edge::Match::from(k.strings),
                MatchValue::Integer(i) => edge::Match::from(i),
                MatchValue::Integers(i) => edge::Match::from(i.integers),
                MatchValue::Boolean(b) => edge::Match::from(b),
                _ => return Err(Status::unimplemented("this match is not served")),
            };
            Ok(edge::Condition::Field(edge::FieldCondition::new_match(
                key(&f.key)?,
                matcher,
            )))
        }
        Some(ConditionOneOf::Filter(f)) => Ok(edge::Condition::Filter(filter(f)?)),
        _ => Err(Status::unimplemented("this condition is not served")),
    }
}

fn conditions(list: Vec<pb::Condition>) -> Result<Option<Vec<edge::Condition>>, Status> {
    if list.is_empty() {
        return Ok(None);
    }
    list.into_iter()
        .map(condition)
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn filter(f: pb::Filter) -> Result<edge::Filter, Status> {
    if f.min_should.is_some() {
        return Err(Status::unimplemented("min_should is not served"));
    }
    Ok(edge::Filter {
        must: conditions(f.must)?,
        should: conditions(f.should)?,
        must_not: conditions(f.must_not)?,
        min_should: None,
    })
}

fn optional_filter(f: Option<pb::Filter>) -> Result<Option<edge::Filter>, Status> {
    f.map(filter).transpose()
}

fn with_payload(
    selector: Option<pb::WithPayloadSelector>,
    default: bool,
) -> Result<edge::WithPayloadInterface, Status> {
    use pb::with_payload_selector::SelectorOptions;
    Ok(match selector.and_then(|s| s.selector_options) {
        None => edge::WithPayloadInterface::Bool(default),
        Some(SelectorOptions::Enable(b)) => edge::WithPayloadInterface::Bool(b),
        Some(SelectorOptions::Include(i)) => edge::WithPayloadInterface::Fields(
            i.fields.iter().map(|f| key(f)).collect::<Result<_, _>>()?,
        ),
        Some(SelectorOptions::Exclude(_)) => {
            return Err(Status::unimplemented("payload exclusion is not served"));
        }
    })
}

fn sparse(indices: Vec<u32>, values: Vec<f32>) -> Result<edge::SparseVector, Status> {
    edge::SparseVector::new(indices, values).map_err(bad)
}

/// A stored vector from the wire (the `vector` one-of, or the older `data` and `indices`).
fn vector(v: pb::Vector) -> Result<edge::VectorPersisted, Status> {
    use pb::vector::Vector as V;
    #[allow(deprecated)]
    match v.vector {
        Some(V::Dense(d)) => Ok(edge::VectorPersisted::Dense(d.data)),
        Some(V::Sparse(s)) => Ok(edge::VectorPersisted::Sparse(sparse(s.indices, s.values)?)),
        Some(_) => Err(Status::unimplemented(
            "only dense and sparse vectors are served",
        )),
        None => match v.indices {
            Some(i) => Ok(edge::VectorPersisted::Sparse(sparse(i.data, v.data)?)),
            None => Ok(edge::VectorPersisted::Dense(v.data)),
        },
    }
}

fn point(p: pb::PointStruct) -> Result<edge::PointStructPersisted, Status> {
    use pb::vectors::VectorsOptions;
    let vector = match p.vectors.and_then(|v| v.vectors_options) {
        Some(VectorsOptions::Vectors(named)) => edge::VectorStructPersisted::Named(
            named
                .vectors
                .into_iter()
                .map(|(name, v)| Ok((name, vector(v)?)))
                .collect::<Result<_, Status>>()?,
        ),
        Some(VectorsOptions::Vector(v)) => match vector(v)? {
            edge::VectorPersisted::Dense(d) => edge::VectorStructPersisted::Single(d),
            _ => return Err(bad("an unnamed vector must be dense")),
        },
        None => edge::VectorStructPersisted::Named(HashMap::new()),
    };
    Ok(edge::PointStructPersisted {
        id: point_id(p.id)?,
        vector,
        payload: Some(edge::Payload::from(
            p.payload
                .into_iter()
                .map(|(k, v)| (k, json(v)))
                .collect::<serde_json::Map<_, _>>(),
        )),
    })
}

fn done() -> pb::PointsOperationResponse {
    pb::PointsOperationResponse {
        result: Some(pb::UpdateResult {
            operation_id: Some(0),
            status: pb::UpdateStatus::Completed as i32,
        }),
        time: 0.0,
        usage: None,
    }
}

/// An edge shard's configuration from a collection's creation request.
fn edge_config(c: &pb::CreateCollection) -> Result<edge::EdgeConfig, Status> {
    use pb::vectors_config::Config;
    let mut builder = edge::EdgeConfigBuilder::new();
    let dense: Vec<(String, pb::VectorParams)> =
        match c.vectors_config.clone().and_then(|v| v.config) {
            Some(Config::Params(p)) => vec![(String::new(), p)],
            Some(Config::ParamsMap(m)) => m.map.into_iter().collect(),
            None => Vec::new(),
        };
    for (name, params) in dense {
        let distance = match pb::Distance::try_from(params.distance) {
            Ok(pb::Distance::Cosine) => edge::Distance::Cosine,
            Ok(pb::Distance::Dot) => edge::Distance::Dot,
            Ok(pb::Distance::Euclid) => edge::Distance::Euclid,
            Ok(pb::Distance::Manhattan) => edge::Distance::Manhattan,
            _ => return Err(bad("unknown distance")),
        };
        if params.size == 0 {
            return Err(bad("a vector's size must be positive"));
        }
        builder = builder.vector(
            name,
            edge::EdgeVectorParamsBuilder::new(params.size as usize, distance).build(),
        );
    }
    for (name, params) in c
        .sparse_vectors_config
        .clone()
        .map(|s| s.map)
        .unwrap_or_default()
    {
        let modifier = match params.modifier.map(pb::Modifier::try_from) {
            Some(Ok(pb::Modifier::Idf)) => edge::Modifier::Idf,
            _ => edge::Modifier::None,
        };
        builder = builder.sparse_vector(
            name,
            edge::EdgeSparseVectorParamsBuilder::new()
                .modifier(modifier)
                .build(),
        );
    }
    Ok(builder.build())
}

// ---- the services ----

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
            .with_vector(edge::WithVector::Bool(false));
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

/// Where the Qdrant suites run: the server at `LARIAT_TEST_QDRANT_URL` (`make test-qdrant`), else
/// a [`QdrantTestServer`] started for the test. Each [`QdrantTarget::prefix`] is new, so runs and
/// tests sharing a real server never see each other's collections.
pub struct QdrantTarget {
    pub url: String,
    _server: Option<QdrantTestServer>,
    run: String,
    next: std::sync::atomic::AtomicUsize,
}

impl QdrantTarget {
    pub fn new() -> Self {
        let (url, server) = match std::env::var("LARIAT_TEST_QDRANT_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let server = QdrantTestServer::start();
                (server.url.clone(), Some(server))
            }
        };
        Self {
            url,
            _server: server,
            run: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            next: 0.into(),
        }
    }

    /// A collection prefix no other test or run uses.
    pub fn prefix(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("t{}_{n}", self.run)
    }
}

impl Default for QdrantTarget {
    fn default() -> Self {
        Self::new()
    }
}
