//! Text to vectors. The default backend runs a local ONNX model through fastembed, off the async
//! runtime, on a pool of single-threaded inference sessions, one per core: two sessions side by
//! side embed more than one session spread over two threads (each run's steps are too small to
//! split well). Passages go to blocking threads, one batch per session at a time; a query runs
//! where it is asked when a session is free, else in line for the pool's query threads, one per
//! session. Inference burns CPU and must never stall the async runtime.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use serde::Deserialize;

use crate::config::EmbeddingConfig;
use base::error::{Error, Result, blocking};

/// The identity of an embedding model, recorded with each collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub name: String,
    pub dimension: usize,
    pub max_length: usize,
}

#[async_trait]
pub trait Embedder: Send + Sync {
    fn model(&self) -> &ModelInfo;
    /// Vectors for passages, in order, with the model's passage convention applied.
    async fn embed_passages(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>>;
    /// The vector of a query, with the model's query convention applied.
    async fn embed_query(&self, text: &str) -> Result<Vec<f32>>;
}

/// `lariat-model.toml` beside `model.onnx`: how to run the model. Every field has a default
/// fitting sentence-transformers MiniLM models.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ModelManifest {
    name: Option<String>,
    dimension: Option<usize>,
    pooling: String,
    max_length: usize,
    query_prefix: String,
    passage_prefix: String,
}

impl Default for ModelManifest {
    fn default() -> Self {
        Self {
            name: None,
            dimension: None,
            pooling: "mean".into(),
            max_length: 256,
            query_prefix: String::new(),
            passage_prefix: String::new(),
        }
    }
}

const SETUP_HINT: &str = "run `make setup` (or `bash scripts/setup-assets.sh`) to fetch them";

fn read_asset(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::Unavailable(format!(
            "model asset {} cannot be read ({e}); {SETUP_HINT}",
            path.display()
        ))
    })
}

static ORT_LOADED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

/// Loads the ONNX Runtime shared library once per process, with a clear error if it is missing.
fn load_onnxruntime(path: &Path) -> Result<()> {
    let loaded = ORT_LOADED.get_or_init(|| {
        if !path.is_file() {
            return Err(format!(
                "ONNX Runtime library {} not found; {SETUP_HINT}, or point embedding.onnxruntime / ORT_DYLIB_PATH at libonnxruntime.so",
                path.display()
            ));
        }
        ort::init_from(path)
            .map(|_| path.to_path_buf())
            .map_err(|e| format!("ONNX Runtime library {} failed to load: {e}", path.display()))
    });
    loaded
        .as_ref()
        .map(|_| ())
        .map_err(|e| Error::Unavailable(e.clone()))
}

/// A query for the query threads, and where its vector goes. One per model call: on this model
/// a batch costs more per query than a query alone (SciFact questions on one core: 2.6 ms
/// alone, 2.8 ms in a batch of 8 of like length, 6.5 ms in a batch of 64 as they come).
type QueryJob = (String, tokio::sync::oneshot::Sender<Result<Vec<f32>>>);

/// The inference sessions, shared by the embedder, its query threads and passage batches.
type Sessions = Arc<Vec<Mutex<TextEmbedding>>>;

pub struct FastEmbedder {
    info: ModelInfo,
    /// One inference session per core, each single-threaded.
    sessions: Sessions,
    batch_size: usize,
    query_prefix: String,
    passage_prefix: String,
    /// The query threads' queue (they end when the embedder is dropped).
    queries: std::sync::mpsc::Sender<QueryJob>,
}

impl std::fmt::Debug for FastEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastEmbedder")
            .field("info", &self.info)
            .finish()
    }
}

impl FastEmbedder {
    /// Loads the model in `config.model_dir`. Blocking: call it from a blocking thread or at
    /// start-up.
    pub fn load(config: &EmbeddingConfig) -> Result<Self> {
        let dir = &config.model_dir;
        load_onnxruntime(&config.onnxruntime)?;
        let manifest_path = dir.join("lariat-model.toml");
        let manifest: ModelManifest = if manifest_path.exists() {
            let text = std::fs::read_to_string(&manifest_path)
                .map_err(|e| Error::io(format!("reading {}", manifest_path.display()), e))?;
            toml::from_str(&text).map_err(|e| {
                Error::InvalidInput(format!("{}: {}", manifest_path.display(), e.message()))
            })?
        } else {
            ModelManifest::default()
        };
        let pooling = match manifest.pooling.as_str() {
            "mean" => Pooling::Mean,
            "cls" => Pooling::Cls,
            other => {
                return Err(Error::InvalidInput(format!(
                    "{}: pooling must be \"mean\" or \"cls\", not {other:?}",
                    manifest_path.display()
                )));
            }
        };
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: read_asset(&dir.join("tokenizer.json"))?,
            config_file: read_asset(&dir.join("config.json"))?,
            special_tokens_map_file: read_asset(&dir.join("special_tokens_map.json"))?,
            tokenizer_config_file: read_asset(&dir.join("tokenizer_config.json"))?,
        };
        let onnx = read_asset(&dir.join("model.onnx"))?;
        let model = UserDefinedEmbeddingModel::new(onnx, tokenizer_files).with_pooling(pooling);
        let count = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut sessions = Vec::with_capacity(count);
        for _ in 0..count {
            // one thread per session: nothing spins, and the pool is the parallelism
            let options = InitOptionsUserDefined::new()
                .with_max_length(manifest.max_length)
                .with_intra_threads(1);
            let session = TextEmbedding::try_new_from_user_defined(model.clone(), options)
                .map_err(|e| Error::Embedding(format!("loading {}: {e}", dir.display())))?;
            sessions.push(Mutex::new(session));
        }
        let sessions: Sessions = Arc::new(sessions);
        let probe = embed_batch(&mut lock(&sessions[0]), &["dimension probe"])?;
        let dimension = probe.first().map(Vec::len).unwrap_or(0);
        if let Some(declared) = manifest.dimension
            && declared != dimension
        {
            return Err(Error::InvalidInput(format!(
                "{}: dimension {declared} declared but the model gives {dimension}",
                manifest_path.display()
            )));
        }
        let name = manifest.name.unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into())
        });
        Ok(Self {
            info: ModelInfo {
                name,
                dimension,
                max_length: manifest.max_length,
            },
            queries: query_threads(&sessions)?,
            sessions,
            batch_size: config.batch_size,
            query_prefix: manifest.query_prefix,
            passage_prefix: manifest.passage_prefix,
        })
    }
}

/// Embeds `texts` in batches of `batch` on every session at once, each taking its session for
/// one batch at a time (so queries get their turn between the batches of a long ingestion). A
/// batch is padded to its longest text, and the padding costs as much inference as text: texts
/// of like length go together (shortest first), and the vectors come back in the caller's order.
/// Padding is masked out, but an int8 model quantizes its activations over the whole batch, so
/// only a batch of one gives each text exactly its own vector (in batches: cosine ≥ 0.98).
/// Stops before the next batch once `cancelled` is set.
fn embed_sorted(
    sessions: &[Mutex<TextEmbedding>],
    texts: &[String],
    batch: usize,
    cancelled: &AtomicBool,
) -> Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let sorted: Vec<&str> = order.iter().map(|&i| texts[i].as_str()).collect();
    let parts: Vec<&[&str]> = sorted.chunks(batch.max(1)).collect();
    let next = AtomicUsize::new(0);
    // each session's thread takes the next batch until none is left
    let work = |session: &Mutex<TextEmbedding>| -> Result<Vec<(usize, Vec<Vec<f32>>)>> {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(part) = parts.get(i) else {
                return Ok(done);
            };
            if cancelled.load(Ordering::Relaxed) {
                return Err(Error::Internal(
                    "embedding stopped: its caller is gone".into(),
                ));
            }
            done.push((i, embed_batch(&mut lock(session), part)?));
        }
    };
    let used = &sessions[..sessions.len().min(parts.len()).max(1)];
    let mut batches = if used.len() == 1 {
        work(&used[0])?
    } else {
        std::thread::scope(|scope| {
            let threads: Vec<_> = used.iter().map(|s| scope.spawn(|| work(s))).collect();
            let mut all = Vec::with_capacity(parts.len());
            for t in threads {
                let done = t
                    .join()
                    .map_err(|_| Error::Internal("an embedding thread panicked".into()))?;
                all.extend(done?);
            }
            Ok::<_, Error>(all)
        })?
    };
    batches.sort_unstable_by_key(|(i, _)| *i);
    let mut out = vec![Vec::new(); texts.len()];
    for (vector, i) in batches.into_iter().flat_map(|(_, v)| v).zip(order) {
        out[i] = vector;
    }
    Ok(out)
}

/// A session, whoever held it before (a panicked holder leaves it usable: a run changes nothing).
fn lock(session: &Mutex<TextEmbedding>) -> std::sync::MutexGuard<'_, TextEmbedding> {
    session.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets its flag when dropped: with the future awaiting blocking work, when that is abandoned.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One model call on `texts`, one batch.
fn embed_batch(model: &mut TextEmbedding, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    model
        .embed(texts, Some(texts.len().max(1)))
        .map_err(|e| Error::Embedding(e.to_string()))
}

/// Starts one query thread per session, each embedding the next waiting query on its session.
fn query_threads(sessions: &Sessions) -> Result<std::sync::mpsc::Sender<QueryJob>> {
    let (tx, rx) = std::sync::mpsc::channel::<QueryJob>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..sessions.len() {
        let (sessions, rx) = (sessions.clone(), rx.clone());
        std::thread::Builder::new()
            .name(format!("lariat-queries-{i}"))
            .spawn(move || {
                // the queue's lock is held only to take one query: the others wait at it
                let next = || rx.lock().unwrap_or_else(|p| p.into_inner()).recv().ok();
                while let Some((text, reply)) = next() {
                    let vector = embed_one(&mut lock(&sessions[i]), &text);
                    // a caller that gave up is not waiting any more
                    let _ = reply.send(vector);
                }
            })
            .map_err(|e| Error::Internal(format!("starting a query embedding thread: {e}")))?;
    }
    Ok(tx)
}

/// One text's vector, one model call.
fn embed_one(model: &mut TextEmbedding, text: &str) -> Result<Vec<f32>> {
    embed_batch(model, &[text])?
        .pop()
        .ok_or_else(|| Error::Embedding("the model returned no vector".into()))
}

#[async_trait]
impl Embedder for FastEmbedder {
    fn model(&self) -> &ModelInfo {
        &self.info
    }

    async fn embed_passages(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        let texts = if self.passage_prefix.is_empty() {
            texts
        } else {
            texts
                .into_iter()
                .map(|t| format!("{}{t}", self.passage_prefix))
                .collect()
        };
        let sessions = self.sessions.clone();
        let batch = self.batch_size;
        // the blocking thread outlives this future: when the caller drops it (a client that
        // went away, a cancelled job), the guard tells the thread to stop after its batch
        let cancelled = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancelled.clone());
        blocking(move || embed_sorted(&sessions, &texts, batch, &cancelled)).await
    }

    async fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let text = format!("{}{text}", self.query_prefix);
        // A session free (no crowd) on a multi-threaded runtime: the query runs right here
        // (tokio moves the worker's other tasks to another thread), sparing the hand-off to a
        // query thread and back, about 0.7 ms of a 10 ms dense search one at a time.
        if let Ok(tokio::runtime::RuntimeFlavor::MultiThread) =
            tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor())
            && let Some(mut model) = self.sessions.iter().find_map(|s| s.try_lock().ok())
        {
            return tokio::task::block_in_place(move || embed_one(&mut model, &text));
        }
        // busy: wait in line for the next free query thread
        let stopped = || Error::Internal("the query embedding thread stopped".into());
        let (reply, vector) = tokio::sync::oneshot::channel();
        self.queries.send((text, reply)).map_err(|_| stopped())?;
        vector.await.map_err(|_| stopped())?
    }
}
