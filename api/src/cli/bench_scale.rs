//! `lariat bench-scale`: how search cost, disk and memory grow with the collection, at sizes no
//! development collection has. Passages are made without running the model on each: their words
//! drawn from a real corpus's vocabulary with its word frequencies and its passages' lengths,
//! their vectors drawn around real passages' embeddings; they go through the normal write path
//! into a scratch data dir per size. Each size reports its build time, its disk, bm25 / dense /
//! hybrid latency at k = 10 (the query embedding included), the dense top 10's overlap with an
//! exact search over every vector, and the RSS of `lariat serve` idle and after the queries.
//! Each size is measured on the embedded stores and, given a PostgreSQL server with pgvector, on
//! PostgreSQL alone (rows, pgvector and term tables in one database of its own per size).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use base::{CollectionName, DocumentWrite, NewChunk, SearchMode, content_hash, embedding_input};
use clap::{Args, ValueEnum};
use ingest::loaders::{Format, load};
use knowledge::SearchRequest;
use knowledge::config::{LexicalBackend, VectorBackend};
use serde::Serialize;
use service::Config;
use sqlx::{AssertSqlSafe, Connection};

use super::bench::{Latency, latency, read_queries, serve_memory};

#[derive(Args, Debug)]
pub struct BenchScaleArgs {
    /// A BEIR folder (corpus.jsonl, queries.jsonl): the vocabulary, passages and questions the
    /// synthetic collections are drawn around
    dir: PathBuf,
    /// Collection sizes, in passages
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<usize>,
    /// Real passages embedded to draw the vectors around (default: every passage of the
    /// corpus). Each synthetic vector is a seed plus isotropic noise, so the fewer the seeds, the
    /// more points share one and the more of them tie for a question's top 10: with 512 seeds a
    /// million passages put about 2,000 around each, a worst case for any graph index.
    #[arg(long)]
    seeds: Option<usize>,
    /// Questions measured per mode
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Where the stores are measured: `embedded` (SQLite, qdrant-edge, tantivy in the data dir)
    /// and `postgres` (everything in PostgreSQL: rows, pgvector, term tables)
    #[arg(long, value_delimiter = ',', default_value = "embedded")]
    backends: Vec<Backend>,
    /// For `--backends postgres`: the maintenance database of a PostgreSQL server with pgvector
    /// (`postgres://postgres@127.0.0.1:5432/postgres`); each size gets a database of its own there,
    /// dropped once measured
    #[arg(long)]
    postgres: Option<String>,
    /// Write the figures as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Passages per synthetic document.
const PER_DOCUMENT: usize = 4;
/// Documents written together.
const BATCH_DOCUMENTS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Backend {
    Embedded,
    Postgres,
}

#[derive(Debug, Serialize)]
struct SizeReport {
    backend: Backend,
    passages: usize,
    build_s: f64,
    passages_per_s: f64,
    /// After the writes, until the vector index is built (the embedded store builds its HNSW
    /// graph in the background once searches leave exact search).
    index_s: f64,
    disk_mb: f64,
    search: Vec<Latency>,
    dense_overlap_at_10: f64,
    serve_idle_rss_mb: f64,
    serve_rss_after_queries_mb: f64,
    /// Of that, mapped index files (the rest is the process's own memory).
    serve_rss_after_queries_file_mb: f64,
    serve_peak_rss_mb: f64,
}

/// A small deterministic generator (splitmix64): the same passages every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f32 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        let v = self.unit();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// What synthetic passages are drawn from: the corpus's words (cumulative counts for drawing by
/// frequency), its passages' lengths in words, and real passages' vectors.
struct Model {
    words: Vec<String>,
    cumulative: Vec<u64>,
    lengths: Vec<usize>,
    seeds: Vec<Vec<f32>>,
}

impl Model {
    fn word(&self, draw: &mut Draw) -> &str {
        let total = *self.cumulative.last().unwrap_or(&1);
        let at = draw.next() % total;
        let i = self.cumulative.partition_point(|&c| c <= at);
        &self.words[i.min(self.words.len() - 1)]
    }

    fn text(&self, draw: &mut Draw) -> String {
        let n = self.lengths[draw.below(self.lengths.len())];
        let mut text = String::with_capacity(n * 8);
        for i in 0..n {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(self.word(draw));
        }
        text
    }

    /// A unit vector around a real passage's: the seed plus noise of about its own length.
    fn vector(&self, draw: &mut Draw) -> Vec<f32> {
        let seed = &self.seeds[draw.below(self.seeds.len())];
        let mut v: Vec<f32> = seed.iter().map(|x| x + 0.05 * draw.normal()).collect();
        let norm = v
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
            .max(f32::EPSILON);
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

pub async fn run(base: &Config, args: BenchScaleArgs) -> Result<u8> {
    if args.sizes.is_empty()
        || args.seeds == Some(0)
        || args.queries == 0
        || args.backends.is_empty()
    {
        bail!("--sizes, --backends, --seeds and --queries must name at least one");
    }
    if args.backends.contains(&Backend::Postgres) && args.postgres.is_none() {
        bail!("--backends postgres needs --postgres, the URL of a PostgreSQL server with pgvector");
    }
    let corpus_path = args.dir.join("corpus.jsonl");
    let corpus = std::fs::read(&corpus_path)
        .with_context(|| format!("reading {}", corpus_path.display()))?;
    let mut queries = read_queries(&args.dir.join("queries.jsonl"))?;
    queries.truncate(args.queries);
    let work = std::env::temp_dir().join(format!("lariat-bench-scale-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = measure(base, &args, &corpus, &queries, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn measure(
    base: &Config,
    args: &BenchScaleArgs,
    corpus: &[u8],
    queries: &[String],
    work: &Path,
) -> Result<u8> {
    let docs =
        load(Path::new("corpus.jsonl"), Format::Jsonl, corpus).map_err(|e| anyhow::anyhow!(e.0))?;
    let chunker = super::shared::chunker(base)?;
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut lengths = Vec::new();
    let mut seed_inputs = Vec::new();
    for d in &docs {
        for p in chunker.chunk(d) {
            let words: Vec<&str> = p.text.split_whitespace().collect();
            lengths.push(words.len().max(1));
            for w in words {
                *counts.entry(w.to_owned()).or_default() += 1;
            }
            if args.seeds.is_none_or(|n| seed_inputs.len() < n) {
                seed_inputs.push(embedding_input(&d.title, &p.location, &p.text));
            }
        }
    }
    let mut words: Vec<(String, u64)> = counts.into_iter().collect();
    words.sort();
    let mut total = 0;
    let cumulative = words
        .iter()
        .map(|(_, c)| {
            total += c;
            total
        })
        .collect();
    let scratch = super::shared::open(&Config {
        data_dir: work.join("model"),
        ..base.clone()
    })
    .await?;
    eprintln!(
        "bench-scale: {} words, {} passage lengths, embedding {} seed passages and {} questions",
        words.len(),
        lengths.len(),
        seed_inputs.len(),
        queries.len()
    );
    let seeds = scratch.embedder().embed_passages(seed_inputs).await?;
    let mut query_vectors = Vec::with_capacity(queries.len());
    for q in queries {
        query_vectors.push(scratch.embedder().embed_query(q).await?);
    }
    drop(scratch);
    let model = Model {
        words: words.into_iter().map(|(w, _)| w).collect(),
        cumulative,
        lengths,
        seeds,
    };

    let mut reports = Vec::new();
    for &size in &args.sizes {
        for &backend in &args.backends {
            let report = match (backend, args.postgres.as_deref()) {
                (Backend::Postgres, Some(server)) => {
                    let db = ScratchDatabase::create(server, size).await?;
                    let report = one_size(
                        backend,
                        &db.config(base, work)?,
                        &model,
                        queries,
                        &query_vectors,
                        size,
                    )
                    .await;
                    db.drop().await?;
                    report?
                }
                _ => {
                    let mut config = base.clone();
                    config.data_dir = work.join(format!("embedded-{size}"));
                    one_size(backend, &config, &model, queries, &query_vectors, size).await?
                }
            };
            print_report(&report);
            reports.push(report);
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?)?;
    }
    Ok(0)
}

/// One size's figures as a Markdown table row.
fn print_report(report: &SizeReport) {
    println!(
        "| {:?} | {} passages | build {:.0} s ({:.0}/s), index {:.0} s, {:.0} MB on disk | {} | dense overlap with exact {:.3} | serve RSS idle {:.0} MB, after queries {:.0} MB ({:.0} MB mapped files; peak {:.0}) |",
        report.backend,
        report.passages,
        report.build_s,
        report.passages_per_s,
        report.index_s,
        report.disk_mb,
        report
            .search
            .iter()
            .map(|l| format!("{} p50 {:.2} ms p99 {:.2} ms", l.mode, l.p50_ms, l.p99_ms))
            .collect::<Vec<_>>()
            .join(", "),
        report.dense_overlap_at_10,
        report.serve_idle_rss_mb,
        report.serve_rss_after_queries_mb,
        report.serve_rss_after_queries_file_mb,
        report.serve_peak_rss_mb,
    );
}

/// A database of its own for one size on a PostgreSQL server, and a data dir whose `lariat.toml`
/// points every store at it (so the `lariat serve` measured reads the same stores; a deployment
/// on shared stores needs a session secret of its own).
struct ScratchDatabase {
    server: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create(server: &str, size: usize) -> Result<Self> {
        let name = format!("lariat_bench_scale_{}_{size}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(server)
            .await
            .with_context(|| "connecting to --postgres")?;
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating the database {name}"))?;
        let (at, _) = server
            .rsplit_once('/')
            .context("--postgres must name a database: postgres://HOST:PORT/postgres")?;
        Ok(Self {
            server: server.to_owned(),
            url: format!("{at}/{name}"),
            name,
        })
    }

    fn config(&self, base: &Config, work: &Path) -> Result<Config> {
        let mut config = base.clone();
        config.data_dir = work.join(&self.name);
        config.database_url = Some(base::config::Secret::new(self.url.clone()));
        config.retrieval.vector_store = VectorBackend::Pgvector;
        config.retrieval.lexical_store = LexicalBackend::Database;
        std::fs::create_dir_all(&config.data_dir)?;
        std::fs::write(
            config.data_dir.join("lariat.toml"),
            format!(
                "database_url = {:?}\n[retrieval]\nvector_store = \"pgvector\"\nlexical_store = \"database\"\n\
                 [auth]\njwt_secret = \"{}\"\n",
                self.url,
                uuid::Uuid::new_v4().simple()
            ),
        )?;
        Ok(config)
    }

    /// The database's size on disk.
    async fn bytes(url: &str) -> Result<u64> {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let (bytes,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
            .fetch_one(&mut conn)
            .await?;
        Ok(bytes.max(0) as u64)
    }

    async fn drop(self) -> Result<()> {
        let mut conn = sqlx::PgConnection::connect(&self.server).await?;
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

/// The ten best of (score, chunk id) for one question.
#[derive(Default)]
struct Best(Vec<(f32, String)>);

impl Best {
    fn offer(&mut self, score: f32, id: &uuid::Uuid) {
        if self.0.len() < 10 || score > self.0[self.0.len() - 1].0 {
            let at = self.0.partition_point(|(s, _)| *s >= score);
            self.0.insert(at, (score, id.to_string()));
            self.0.truncate(10);
        }
    }
}

async fn one_size(
    backend: Backend,
    config: &Config,
    model: &Model,
    queries: &[String],
    query_vectors: &[Vec<f32>],
    size: usize,
) -> Result<SizeReport> {
    let k = super::shared::open(config).await?;
    let collection = CollectionName::parse("scale")?;
    k.ensure_collection(&collection).await?;
    let mut exact: Vec<Best> = query_vectors.iter().map(|_| Best::default()).collect();
    let mut draw = Draw(size as u64);
    let started = Instant::now();
    let mut written = 0;
    while written < size {
        let mut batch = Vec::with_capacity(BATCH_DOCUMENTS);
        while batch.len() < BATCH_DOCUMENTS && written < size {
            let n = PER_DOCUMENT.min(size - written);
            let chunks: Vec<NewChunk> = (0..n)
                .map(|_| {
                    let text = model.text(&mut draw);
                    NewChunk {
                        token_count: text.split(' ').count() as u32,
                        text,
                        location: Default::default(),
                        embedding: model.vector(&mut draw),
                    }
                })
                .collect();
            let source = format!("synthetic/{written}");
            let doc = DocumentWrite {
                collection: collection.clone(),
                title: format!("Synthetic {written}"),
                content_hash: content_hash(source.as_bytes()),
                source,
                metadata: serde_json::Value::Null,
                chunks,
            };
            for (chunk, id) in doc.chunks.iter().zip(doc.chunk_ids()) {
                for (best, q) in exact.iter_mut().zip(query_vectors) {
                    let score: f32 = chunk.embedding.iter().zip(q).map(|(a, b)| a * b).sum();
                    best.offer(score, &id);
                }
            }
            written += n;
            batch.push(doc);
        }
        k.write_documents(batch).await?;
        if written % 50_000 < PER_DOCUMENT * BATCH_DOCUMENTS {
            eprintln!("bench-scale: {written} of {size} passages written");
        }
    }
    k.flush().await?;
    let build_s = started.elapsed().as_secs_f64();
    let indexing = Instant::now();
    k.settle().await?;
    let index_s = indexing.elapsed().as_secs_f64();
    eprintln!("bench-scale: {size} passages written in {build_s:.0} s, indexed in {index_s:.0} s");
    let mut disk = disk_bytes(&config.data_dir);
    if let Some(url) = &config.database_url {
        disk += ScratchDatabase::bytes(url.expose()).await?;
    }
    let disk_mb = disk as f64 / 1e6;

    let mut search = Vec::new();
    let mut overlap = 0.0;
    for mode in [SearchMode::Bm25, SearchMode::Dense, SearchMode::Hybrid] {
        let mut ms = Vec::with_capacity(queries.len());
        let wall = Instant::now();
        for (i, q) in queries.iter().enumerate() {
            let request =
                SearchRequest::parse(q, &["scale".to_owned()], Some(mode.as_str()), Some(10))?;
            let t = Instant::now();
            let found = k.search(&request).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            if mode == SearchMode::Dense {
                let truth: Vec<&String> = exact[i].0.iter().map(|(_, id)| id).collect();
                let hit = found
                    .hits
                    .iter()
                    .filter(|h| truth.contains(&&h.passage.chunk_id))
                    .count();
                overlap += hit as f64 / truth.len().max(1) as f64;
            }
        }
        let l = latency(mode.as_str(), ms, wall.elapsed());
        eprintln!(
            "bench-scale: {size} passages, {} p50 {:.2} ms p99 {:.2} ms",
            l.mode, l.p50_ms, l.p99_ms
        );
        search.push(l);
    }
    drop(k);
    let memory = serve_memory(&config.data_dir, queries).await?;
    let _ = std::fs::remove_dir_all(&config.data_dir);
    Ok(SizeReport {
        backend,
        passages: size,
        build_s,
        passages_per_s: size as f64 / build_s.max(1e-9),
        index_s,
        disk_mb,
        search,
        dense_overlap_at_10: overlap / queries.len().max(1) as f64,
        serve_idle_rss_mb: memory.idle,
        serve_rss_after_queries_mb: memory.after_queries,
        serve_rss_after_queries_file_mb: memory.after_queries_file,
        serve_peak_rss_mb: memory.peak,
    })
}

/// Bytes of the files under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}
