//! Text to vectors. The default backend runs a local ONNX model through fastembed, off the async
//! runtime: passages on blocking threads; a query where it is asked when the model is free, else
//! on one thread of its own that embeds every query waiting when it comes round in one call (a
//! crowd's questions cost one padded batch per round, not one model run each, and none waits
//! behind more than one batch). Inference burns CPU and must never stall the async runtime.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Queries embedded in one call at most.
const QUERY_BATCH: usize = 64;

/// A query for the query thread, and where its vector goes.
type QueryJob = (String, tokio::sync::oneshot::Sender<Result<Vec<f32>>>);

pub struct FastEmbedder {
    info: ModelInfo,
    model: Arc<Mutex<TextEmbedding>>,
    batch_size: usize,
    query_prefix: String,
    passage_prefix: String,
    /// The query thread's queue (the thread ends when the embedder is dropped).
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
        let mut options = InitOptionsUserDefined::new().with_max_length(manifest.max_length);
        // Threads spin between the steps of a run (ONNX Runtime's default, unless turned off), but
        // never past its end: threads still spinning after an inference burn the cores the lexical
        // search and SQL hydration need next (SciFact hybrid on 2 cores: hydration p99 3-4 ms →
        // 1 ms, search p99 ~17 → ~14.5 ms).
        options = options
            .with_session_config(
                "session.intra_op.allow_spinning",
                if config.spinning { "1" } else { "0" },
            )
            .with_session_config("session.force_spinning_stop", "1");
        if config.threads > 0 {
            options = options.with_intra_threads(config.threads);
        }
        let mut embedding = TextEmbedding::try_new_from_user_defined(model, options)
            .map_err(|e| Error::Embedding(format!("loading {}: {e}", dir.display())))?;
        let probe = embedding
            .embed(["dimension probe"], None)
            .map_err(|e| Error::Embedding(e.to_string()))?;
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
        let model = Arc::new(Mutex::new(embedding));
        Ok(Self {
            info: ModelInfo {
                name,
                dimension,
                max_length: manifest.max_length,
            },
            queries: query_thread(model.clone())?,
            model,
            batch_size: config.batch_size,
            query_prefix: manifest.query_prefix,
            passage_prefix: manifest.passage_prefix,
        })
    }
}

/// Embeds `texts` in batches of `batch`, taking the model for one batch at a time (so queries
/// get their turn between the batches of a long ingestion). A batch is padded to its longest
/// text, and the padding costs as much inference as text: texts of like length go together
/// (shortest first), and the vectors come back in the caller's order. Padding is masked out, so
/// each vector is the same either way. Stops before the next batch once `cancelled` is set.
fn embed_sorted(
    model: &Mutex<TextEmbedding>,
    texts: &[String],
    batch: usize,
    cancelled: &AtomicBool,
) -> Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let sorted: Vec<&str> = order.iter().map(|&i| texts[i].as_str()).collect();
    let mut vectors = Vec::with_capacity(texts.len());
    for part in sorted.chunks(batch.max(1)) {
        if cancelled.load(Ordering::Relaxed) {
            return Err(Error::Internal(
                "embedding stopped: its caller is gone".into(),
            ));
        }
        let mut model = model.lock().unwrap_or_else(|p| p.into_inner());
        vectors.extend(embed_batch(&mut model, part)?);
    }
    let mut out = vec![Vec::new(); texts.len()];
    for (vector, i) in vectors.into_iter().zip(order) {
        out[i] = vector;
    }
    Ok(out)
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

/// Starts the thread that embeds queries: it waits for one, takes every other query already
/// waiting (up to [`QUERY_BATCH`]), embeds them in one call and answers each.
fn query_thread(model: Arc<Mutex<TextEmbedding>>) -> Result<std::sync::mpsc::Sender<QueryJob>> {
    let (tx, rx) = std::sync::mpsc::channel::<QueryJob>();
    std::thread::Builder::new()
        .name("lariat-queries".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut jobs = vec![first];
                while jobs.len() < QUERY_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let (texts, replies): (Vec<String>, Vec<_>) = jobs.into_iter().unzip();
                match embed_sorted(&model, &texts, QUERY_BATCH, &AtomicBool::new(false)) {
                    Ok(vectors) => {
                        for (reply, vector) in replies.into_iter().zip(vectors) {
                            // a caller that gave up is not waiting any more
                            let _ = reply.send(Ok(vector));
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(Error::Embedding(e.to_string())));
                        }
                    }
                }
            }
        })
        .map_err(|e| Error::Internal(format!("starting the query embedding thread: {e}")))?;
    Ok(tx)
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
        let model = self.model.clone();
        let batch = self.batch_size;
        // the blocking thread outlives this future: when the caller drops it (a client that
        // went away, a cancelled job), the guard tells the thread to stop after its batch
        let cancelled = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancelled.clone());
        blocking(move || embed_sorted(&model, &texts, batch, &cancelled)).await
    }

    async fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let text = format!("{}{text}", self.query_prefix);
        // The model free (no crowd) on a multi-threaded runtime: the query runs right here
        // (tokio moves the worker's other tasks to another thread), sparing the hand-off to the
        // query thread and back, about 0.7 ms of a 10 ms dense search one at a time.
        if let Ok(tokio::runtime::RuntimeFlavor::MultiThread) =
            tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor())
            && let Ok(mut model) = self.model.try_lock()
        {
            return tokio::task::block_in_place(move || {
                embed_batch(&mut model, &[text.as_str()])?
                    .pop()
                    .ok_or_else(|| Error::Embedding("the model returned no vector".into()))
            });
        }
        // busy: wait with the others, embedded together when the query thread comes round
        let stopped = || Error::Internal("the query embedding thread stopped".into());
        let (reply, vector) = tokio::sync::oneshot::channel();
        self.queries.send((text, reply)).map_err(|_| stopped())?;
        vector.await.map_err(|_| stopped())?
    }
}
