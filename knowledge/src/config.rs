//! Retrieval's settings: the embedding model, chunking, ingestion batches, fusion and BM25, and
//! the reranker; each section checks its own values.

use std::path::{Path, PathBuf};

use base::config::{Secret, default_assets_dir};
use base::{Error, Result};
use serde::{Deserialize, Serialize};

pub use parse::chunker::ChunkingConfig;

/// What opening the retrieval stores takes: where they live and how they search.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// The SQLite database (unless `database_url` names PostgreSQL) and the vector and lexical
    /// indexes (unless they are in the database) live here, under an exclusive lock (unless
    /// [`Setup::shared`]).
    pub data_dir: &'a Path,
    pub database_url: Option<&'a Secret>,
    pub embedding: &'a EmbeddingConfig,
    pub retrieval: &'a RetrievalConfig,
    pub rerank: &'a RerankConfig,
}

impl Setup<'_> {
    /// Whether every store is shared: the database in PostgreSQL (`database_url`), vectors in
    /// pgvector or Qdrant and the BM25 index in term tables or Qdrant. The data dir then holds nothing another server needs,
    /// so it is not locked and any number of servers may serve the deployment.
    pub fn shared(&self) -> bool {
        self.database_url.is_some()
            && self.retrieval.vector_store != VectorBackend::Embedded
            && self.retrieval.lexical_store != LexicalBackend::Embedded
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// A folder holding `model.onnx`, the tokenizer files and optionally `lariat-model.toml`.
    pub model_dir: PathBuf,
    /// The ONNX Runtime shared library (`ORT_DYLIB_PATH` is honoured too).
    pub onnxruntime: PathBuf,
    /// Passages per inference call. One is fastest for the default model: a batch is padded to
    /// its longest passage and its activations outgrow the caches (SciFact passages on one core:
    /// 30 ms each alone, 46 ms in batches of 4, 59 ms in batches of 32). Passages of like length
    /// go together when it is larger.
    pub batch_size: usize,
    /// Inference sessions, one thread each; 0 = one per core.
    pub threads: usize,
}

/// How the BM25 and dense lists are combined.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: ranks only.
    Rrf,
    /// Weighted sum of min-max normalised scores.
    Convex,
    /// The mean of convex and RRF, each scaled to [0, 1] (the default: level with convex on
    /// SciFact train and NPL, above it on MED and CACM, and leaning on ranks where one list's
    /// scores mislead).
    #[default]
    Blend,
}

/// Where the chunks' vectors are searched.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum VectorBackend {
    /// qdrant-edge in the data dir: one server.
    #[default]
    Embedded,
    /// pgvector in the PostgreSQL of `database_url`: any number of servers.
    Pgvector,
    /// A Qdrant server or cluster (`retrieval.qdrant`): any number of servers.
    Qdrant,
}

/// How each component of a stored vector is kept by the Qdrant engines (embedded and server).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum VectorPrecision {
    /// 32-bit floats: the model's own output.
    Float32,
    /// 16-bit floats: half the memory and disk; a unit vector's components keep three
    /// significant digits, far finer than the gaps between neighbours a search tells apart.
    #[default]
    Float16,
}

/// Where the lexical (BM25) index is kept.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LexicalBackend {
    /// tantivy in the data dir: one server.
    #[default]
    Embedded,
    /// Term tables in the deployment's database (`database_url`'s PostgreSQL): any number of
    /// servers.
    Database,
    /// Sparse BM25 vectors in a Qdrant server or cluster (`retrieval.qdrant`), weighted by
    /// Lariat's analyzer and scored with Qdrant's `idf` modifier: any number of servers.
    Qdrant,
}

/// The Qdrant server or cluster `vector_store = "qdrant"` and `lexical_store = "qdrant"` use,
/// over gRPC.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QdrantConfig {
    /// The gRPC endpoint (port 6334 by default), `http://` or `https://`.
    pub url: String,
    #[serde(skip_serializing)]
    pub api_key: Option<Secret>,
    /// Lariat's Qdrant collections are named `<prefix>_chunks` (dense) and `<prefix>_lexical`
    /// (BM25): several deployments can share one cluster under different prefixes.
    pub collection_prefix: String,
    /// Shards and copies of each shard, set when the collections are created.
    pub shard_number: u32,
    pub replication_factor: u32,
    /// How many copies must acknowledge a write before it returns.
    pub write_consistency_factor: u32,
    /// Seconds one request may take.
    pub timeout_secs: u64,
}

impl Default for QdrantConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:6334".into(),
            api_key: None,
            collection_prefix: "lariat".into(),
            shard_number: 1,
            replication_factor: 1,
            write_consistency_factor: 1,
            timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalConfig {
    pub fusion: Fusion,
    /// Reciprocal rank fusion constant.
    pub rrf_k: f32,
    pub bm25_weight: f32,
    pub dense_weight: f32,
    /// Candidates taken from each list before fusion.
    pub candidates: usize,
    /// BM25 boost of the title/heading field over the body.
    pub title_boost: f32,
    /// BM25's term-frequency saturation (k1) and length normalisation (b).
    pub bm25_k1: f32,
    pub bm25_b: f32,
    /// How much a word said again in the query counts: 0 once, large as often as said.
    pub bm25_k3: f32,
    /// The share of a passage's BM25 score that is its whole document's (scored against the
    /// other documents), the rest its own (against the other passages). 0 ranks passages alone.
    pub bm25_document_weight: f32,
    /// Where vectors are kept and searched: `embedded` (qdrant-edge in the data dir),
    /// `pgvector` (the PostgreSQL of `database_url`) or `qdrant` (`qdrant`'s server); the last
    /// two are shared by every server.
    pub vector_store: VectorBackend,
    /// Where the BM25 index is kept: `embedded` (tantivy in the data dir), `database` (term
    /// tables in the database) or `qdrant` (sparse vectors in `qdrant`'s server); the last two
    /// are shared by every server.
    pub lexical_store: LexicalBackend,
    pub qdrant: QdrantConfig,
    /// Below this many vectors dense search is exact; above it HNSW with `hnsw_ef`.
    pub exact_search_below: usize,
    pub hnsw_ef: usize,
    /// How vectors are stored by qdrant-edge and a Qdrant server, set when the store is
    /// created (an existing one keeps its own until `lariat reindex`); pgvector keeps 32-bit.
    pub vector_precision: VectorPrecision,
    /// Dense pseudo-relevance feedback in hybrid search: the query vector moves toward the
    /// mean vector of this many of the first fusion's top passages, the dense list is searched
    /// again with it and fused again with the lexical one. 0 turns it off.
    pub feedback_passages: usize,
    /// The share of the moved query vector that is the question's own (Rocchio's alpha); the
    /// rest is the passages' mean.
    pub feedback_query_weight: f32,
}

impl RetrievalConfig {
    /// How the lexical index ranks passages.
    pub fn lexical(&self) -> crate::lexical::Ranking {
        crate::lexical::Ranking {
            bm25: crate::lexical::Bm25 {
                k1: self.bm25_k1,
                b: self.bm25_b,
                k3: self.bm25_k3,
            },
            title_boost: self.title_boost,
            document_weight: self.bm25_document_weight,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Files larger than this are skipped with a reason.
    pub max_file_bytes: u64,
    /// Uploads larger than this are ingested by a job: the upload answers 202 at once with the
    /// job, whose progress curators read (0: every upload).
    pub background_upload_bytes: u64,
    /// Chunks embedded and written together.
    pub batch_chunks: usize,
    /// Seconds the parser of one file may run (in its worker process) before it is stopped and
    /// the file fails.
    pub parse_timeout_secs: u64,
    /// Memory (MiB) the parser of one file may use before it is stopped and the file fails.
    pub parse_memory_mb: u64,
}

/// Which wire format the rerank service speaks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RerankApi {
    /// Cohere, Jina, Infinity: `{query, documents}` → `results[{index, relevance_score}]`.
    #[default]
    Cohere,
    /// text-embeddings-inference `/rerank`: `{query, texts}` → `[{index, score}]`.
    Tei,
}

/// The `rerank` search mode's second stage. Off unless `url` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RerankConfig {
    pub url: Option<String>,
    pub api: RerankApi,
    pub model: Option<String>,
    pub api_key: Option<Secret>,
    /// How many of the hybrid list's top passages are rescored.
    pub depth: usize,
    /// Past this the hybrid order is kept and the failure reported.
    pub timeout_ms: u64,
}

impl Default for RerankConfig {
    fn default() -> Self {
        Self {
            url: None,
            api: RerankApi::Cohere,
            model: None,
            api_key: None,
            depth: 50,
            timeout_ms: 3000,
        }
    }
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        let assets = default_assets_dir();
        Self {
            model_dir: assets.join("models").join("all-minilm-l6-v2-q8"),
            onnxruntime: std::env::var_os("ORT_DYLIB_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| assets.join("onnxruntime").join("libonnxruntime.so.1.31.1")),
            batch_size: 1,
            threads: 0,
        }
    }
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            fusion: Fusion::Blend,
            rrf_k: 60.0,
            bm25_weight: 1.0,
            dense_weight: 1.0,
            candidates: 100,
            title_boost: 0.25,
            bm25_k1: 1.2,
            bm25_b: 0.55,
            bm25_k3: 1.0,
            bm25_document_weight: 0.5,
            vector_store: VectorBackend::Embedded,
            lexical_store: LexicalBackend::Embedded,
            qdrant: QdrantConfig::default(),
            exact_search_below: 20_000,
            hnsw_ef: 256,
            vector_precision: VectorPrecision::Float16,
            feedback_passages: 3,
            feedback_query_weight: 0.6,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 50 * 1024 * 1024,
            background_upload_bytes: 1024 * 1024,
            batch_chunks: 128,
            parse_timeout_secs: 120,
            parse_memory_mb: 2048,
        }
    }
}

/// Checks retrieval's sections: chunking, fusion and BM25, the reranker and the ingestion batches.
pub fn validate(
    chunking: &ChunkingConfig,
    retrieval: &RetrievalConfig,
    rerank: &RerankConfig,
    embedding: &EmbeddingConfig,
    ingest: &IngestConfig,
) -> Result<()> {
    let c = chunking;
    if c.max_tokens < 16 || c.overlap_tokens >= c.max_tokens {
        return Err(Error::InvalidInput(format!(
            "chunking: max_tokens must be >= 16 and overlap_tokens below it (got {} and {})",
            c.max_tokens, c.overlap_tokens
        )));
    }
    let r = retrieval;
    if r.candidates == 0 || r.rrf_k < 0.0 || r.bm25_weight < 0.0 || r.dense_weight < 0.0 {
        return Err(Error::InvalidInput(
            "retrieval: candidates must be positive and rrf_k and weights not negative".into(),
        ));
    }
    if !(0.0..=10.0).contains(&r.bm25_k1)
        || !(0.0..=1.0).contains(&r.bm25_b)
        || !(0.0..=1000.0).contains(&r.bm25_k3)
        || !(0.0..=1.0).contains(&r.bm25_document_weight)
    {
        return Err(Error::InvalidInput(format!(
            "retrieval: bm25_k1 must be 0-10, bm25_b 0-1, bm25_k3 0-1000 and bm25_document_weight 0-1 (got {}, {}, {} and {})",
            r.bm25_k1, r.bm25_b, r.bm25_k3, r.bm25_document_weight
        )));
    }
    let q = &r.qdrant;
    let uses_qdrant =
        r.vector_store == VectorBackend::Qdrant || r.lexical_store == LexicalBackend::Qdrant;
    if uses_qdrant
        && (!(q.url.starts_with("http://") || q.url.starts_with("https://"))
            || q.collection_prefix.is_empty()
            || q.collection_prefix.len() > 64
            || !q
                .collection_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            || q.shard_number == 0
            || q.replication_factor == 0
            || !(1..=q.replication_factor).contains(&q.write_consistency_factor)
            || !(1..=3600).contains(&q.timeout_secs))
    {
        return Err(Error::InvalidInput(format!(
            "retrieval.qdrant: url must be http:// or https://, collection_prefix 1-64 letters, digits, _ or -, shard_number and replication_factor positive, write_consistency_factor 1 to replication_factor and timeout_secs 1-3600 (got {}, {:?}, {}, {}, {} and {})",
            q.url,
            q.collection_prefix,
            q.shard_number,
            q.replication_factor,
            q.write_consistency_factor,
            q.timeout_secs
        )));
    }
    if r.feedback_passages > 100
        || !(r.feedback_query_weight > 0.0 && r.feedback_query_weight <= 1.0)
    {
        return Err(Error::InvalidInput(format!(
            "retrieval: feedback_passages must be 0-100 and feedback_query_weight above 0 and at most 1 (got {} and {})",
            r.feedback_passages, r.feedback_query_weight
        )));
    }
    if rerank.depth == 0 || rerank.depth > 1000 || rerank.timeout_ms == 0 {
        return Err(Error::InvalidInput(
            "rerank: depth must be 1-1000 and timeout_ms positive".into(),
        ));
    }
    if embedding.batch_size == 0 || ingest.batch_chunks == 0 {
        return Err(Error::InvalidInput(
            "embedding.batch_size and ingest.batch_chunks must be positive".into(),
        ));
    }
    if !(1..=86_400).contains(&ingest.parse_timeout_secs) {
        return Err(Error::InvalidInput(
            "ingest.parse_timeout_secs must be 1-86400".into(),
        ));
    }
    if !(32..=1_048_576).contains(&ingest.parse_memory_mb) {
        return Err(Error::InvalidInput(
            "ingest.parse_memory_mb must be 32-1048576".into(),
        ));
    }
    Ok(())
}
