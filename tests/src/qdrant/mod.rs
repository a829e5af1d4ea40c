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
use qdrant_client::qdrant::collections_server::CollectionsServer;
use qdrant_client::qdrant::points_server::PointsServer;
use qdrant_client::qdrant::qdrant_server::QdrantServer;
use qdrant_edge as edge;
use tonic::{Response, Status};

mod services;
mod wire;

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
