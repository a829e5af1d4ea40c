//! `lariat bench`: ingestion and search speed on a BEIR-layout corpus, and the memory of a
//! serving process, measured in one run on a scratch data dir.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base::{CollectionName, SearchMode, embedding_input};
use clap::Args;
use eval::percentile;
use futures::{StreamExt, TryStreamExt};
use ingest::loaders::{Format, load};
use knowledge::SearchRequest;
use knowledge::embed::Embedder;
use serde::Serialize;
use serde_json::json;
use service::Config;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A folder with corpus.jsonl and queries.jsonl
    dir: PathBuf,
    /// Use only the first N corpus documents
    #[arg(long)]
    limit: Option<usize>,
    /// Write the figures as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
    /// Skip starting `lariat serve` to measure its memory
    #[arg(long)]
    no_serve: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct Latency {
    pub(super) mode: String,
    pub(super) queries: usize,
    pub(super) p50_ms: f64,
    pub(super) p95_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) mean_ms: f64,
    pub(super) qps: f64,
}

pub(super) fn latency(mode: &str, mut ms: Vec<f64>, wall: Duration) -> Latency {
    ms.sort_by(f64::total_cmp);
    Latency {
        mode: mode.to_owned(),
        queries: ms.len(),
        p50_ms: percentile(&ms, 50.0),
        p95_ms: percentile(&ms, 95.0),
        p99_ms: percentile(&ms, 99.0),
        mean_ms: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
        qps: ms.len() as f64 / wall.as_secs_f64().max(1e-9),
    }
}

/// The `text` of each line of a BEIR `queries.jsonl`; a bad line is named.
pub fn read_queries(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l)
                .with_context(|| format!("{} line {}", path.display(), i + 1))?;
            v.get("text")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
                .with_context(|| format!("{} line {}: no \"text\"", path.display(), i + 1))
        })
        .collect()
}

pub async fn run(base: &Config, args: BenchArgs) -> Result<u8> {
    let corpus_path = args.dir.join("corpus.jsonl");
    let queries = read_queries(&args.dir.join("queries.jsonl"))?;
    let work = std::env::temp_dir().join(format!("lariat-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = measure(base, &args, &corpus_path, &queries, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn measure(
    base: &Config,
    args: &BenchArgs,
    corpus_path: &Path,
    queries: &[String],
    work: &Path,
) -> Result<u8> {
    let corpus = std::fs::read_to_string(corpus_path)
        .with_context(|| format!("reading {}", corpus_path.display()))?;
    let corpus: String = match args.limit {
        Some(n) => corpus.lines().take(n).map(|l| format!("{l}\n")).collect(),
        None => corpus,
    };
    let corpus_file = work.join("corpus.jsonl");
    std::fs::write(&corpus_file, &corpus)?;
    let mut config = base.clone();
    config.data_dir = work.join("data");
    let k = super::shared::open(&config).await?;
    let chunker = super::shared::chunker(&config)?;

    // 1. The bare embedder on exactly the passages ingestion will embed.
    let docs =
        load(&corpus_file, Format::Jsonl, corpus.as_bytes()).map_err(|e| anyhow::anyhow!(e.0))?;
    let inputs: Vec<String> = docs
        .iter()
        .flat_map(|d| {
            chunker
                .chunk(d)
                .into_iter()
                .map(|p| embedding_input(&d.title, &p.location, &p.text))
                .collect::<Vec<_>>()
        })
        .collect();
    eprintln!(
        "bench: {} documents, {} passages, {} queries",
        docs.len(),
        inputs.len(),
        queries.len()
    );
    let started = Instant::now();
    for batch in inputs.chunks(config.ingest.batch_chunks) {
        k.embedder().embed_passages(batch.to_vec()).await?;
    }
    let bare_s = started.elapsed().as_secs_f64();
    let bare_pps = inputs.len() as f64 / bare_s;
    eprintln!("bench: bare embedder {bare_pps:.1} passages/s");
    // the naive embedder beside it: batches of 32 (a common default) in arrival order, each
    // padded to its longest, one call per core at a time
    let naive_config = knowledge::config::EmbeddingConfig {
        batch_size: NAIVE_BATCH,
        ..config.embedding.clone()
    };
    let naive =
        tokio::task::spawn_blocking(move || knowledge::embed::FastEmbedder::load(&naive_config))
            .await??;
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    futures::stream::iter(inputs.chunks(NAIVE_BATCH))
        .map(|batch| naive.embed_passages(batch.to_vec()))
        .buffer_unordered(cores)
        .try_collect::<Vec<_>>()
        .await?;
    let naive_pps = inputs.len() as f64 / started.elapsed().as_secs_f64();
    eprintln!("bench: naive (padding) embedder {naive_pps:.1} passages/s");

    // 2. Ingestion end to end.
    let options = super::shared::ingest_options(&config, CollectionName::parse("bench")?);
    let report = ingest::ingest_paths(
        k.clone(),
        chunker,
        std::slice::from_ref(&corpus_file),
        &options,
        &(),
    )
    .await?;
    if report.failed > 0 {
        bail!("ingestion failed: {:?}", report.failures);
    }
    eprintln!(
        "bench: ingest {:.1} passages/s ({} chunks, {:.1}s)",
        report.passages_per_s, report.chunks, report.seconds
    );

    // 3. Search latency per mode, one query at a time.
    let mut latencies = Vec::new();
    for mode in [SearchMode::Bm25, SearchMode::Dense, SearchMode::Hybrid] {
        let mut ms = Vec::with_capacity(queries.len());
        let wall = Instant::now();
        for q in queries {
            let request =
                SearchRequest::parse(q, &["bench".to_owned()], Some(mode.as_str()), Some(10))?;
            let t = Instant::now();
            k.search(&request).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let l = latency(mode.as_str(), ms, wall.elapsed());
        eprintln!(
            "bench: {} p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms",
            l.mode, l.p50_ms, l.p95_ms, l.p99_ms
        );
        latencies.push(l);
    }
    drop(k);

    // 4. Peak memory of `lariat serve` on this data after answering every query over HTTP.
    let serve = if args.no_serve {
        None
    } else {
        Some(serve_memory(&config.data_dir, queries).await?)
    };

    println!("| measure | value |\n|---|---|");
    println!(
        "| documents / passages | {} / {} |",
        docs.len(),
        inputs.len()
    );
    println!(
        "| naive embedder (batches of {NAIVE_BATCH} in arrival order, each padded to its longest) | {naive_pps:.1} passages/s |"
    );
    println!(
        "| bare embedder (batches of {}, like lengths together) | {bare_pps:.1} passages/s ({:.2}× naive) |",
        config.embedding.batch_size,
        bare_pps / naive_pps
    );
    println!(
        "| lariat ingest end to end | {:.1} passages/s ({:.0} % of bare, {:.2}× naive) |",
        report.passages_per_s,
        100.0 * report.passages_per_s / bare_pps,
        report.passages_per_s / naive_pps
    );
    for l in &latencies {
        println!(
            "| search {} | p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, {:.0} q/s |",
            l.mode, l.p50_ms, l.p95_ms, l.p99_ms, l.qps
        );
    }
    if let Some(m) = &serve {
        println!(
            "| lariat serve peak RSS | {:.0} MB (idle: {:.0} MB, after queries: {:.0} MB) |",
            m.peak, m.idle, m.after_queries
        );
    }
    if let Some(path) = &args.json {
        let out = json!({
            "documents": docs.len(),
            "passages": inputs.len(),
            "queries": queries.len(),
            "bare_embedder_passages_per_s": bare_pps,
            "naive_embedder_passages_per_s": naive_pps,
            "ingest_vs_naive": report.passages_per_s / naive_pps,
            "ingest": report,
            "ingest_vs_bare": report.passages_per_s / bare_pps,
            "search": latencies,
            "serve_peak_rss_mb": serve.as_ref().map(|m| m.peak),
            "serve_idle_rss_mb": serve.as_ref().map(|m| m.idle),
        });
        std::fs::write(path, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(0)
}

/// A `lariat serve` child on an ephemeral loopback port, stopped (SIGTERM) when dropped.
pub struct ServeChild {
    child: std::process::Child,
    pub base: String,
    /// The bench's own account, opened (verified) before the server started.
    email: String,
}

/// The naive embedder's batch: passages per model call, as they come.
const NAIVE_BATCH: usize = 32;

const BENCH_PASSWORD: &str = "bench password 123";

impl ServeChild {
    /// Opens a fresh bench account with `lariat admin add-user` (an admin vouches for its
    /// address, so it may make API keys), then starts the server.
    pub async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Result<Self> {
        Self::start_as(data_dir, env, "user").await
    }

    /// [`ServeChild::start`] with a bench account of `role`.
    pub async fn start_as(data_dir: &Path, env: &[(&str, &str)], role: &str) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let added = tokio::process::Command::new(&exe)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["admin", "add-user", &email, "--role", role])
            .envs(env.iter().copied())
            .env("LARIAT_ADMIN_PASSWORD", BENCH_PASSWORD)
            .stdout(Stdio::null())
            .status()
            .await?;
        if !added.success() {
            bail!("lariat admin add-user {email} failed ({added})");
        }
        let mut child = Command::new(exe)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let stderr = child.stderr.take().context("no stderr")?;
        let base = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stderr).lines();
            let base = lines
                .by_ref()
                .map_while(|l| l.ok())
                .find_map(|l| l.split("listening on ").nth(1).map(str::to_owned));
            // keep draining so the server never blocks on a full pipe
            std::thread::spawn(move || for _ in lines {});
            base
        })
        .await?;
        let mut started = Self {
            child,
            base: String::new(),
            email,
        };
        started.base = base.context("lariat serve did not start")?;
        Ok(started)
    }

    /// A field of the server's /proc status (`VmRSS:`, `VmHWM:`) in MB.
    pub fn memory_mb(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// CPU time (user and system, seconds) the server has used so far, from /proc (0 when it
    /// cannot be read).
    pub fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) else {
            return 0.0;
        };
        // the fields after the command's name (which may hold spaces): utime and stime are the
        // 12th and 13th, in clock ticks (USER_HZ, 100 on Linux)
        let fields: Vec<&str> = stat
            .rfind(')')
            .map_or("", |end| &stat[end + 1..])
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (ticks(11) + ticks(12)) as f64 / 100.0
    }

    /// A new API key (default scopes: search and chat) of the bench account signed in as `access`.
    pub async fn api_key(
        &self,
        client: &reqwest::Client,
        access: &str,
        name: &str,
    ) -> Result<String> {
        let key: serde_json::Value = client
            .post(format!("{}/api/keys", self.base))
            .bearer_auth(access)
            .json(&json!({"name": name}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        key["key"].as_str().map(str::to_owned).context("no key")
    }

    /// Signs the bench account in: an access token.
    pub async fn token(&self, client: &reqwest::Client) -> Result<String> {
        let creds = json!({"email": self.email, "password": BENCH_PASSWORD});
        let tokens: serde_json::Value = client
            .post(format!("{}/api/auth/signin", self.base))
            .json(&creds)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        tokens["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access token")
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Starts `lariat serve` on the bench data, sends every query over HTTP, and returns its peak and
/// current resident memory in MB (from /proc).
/// The memory of a `lariat serve` child, in MB.
pub(super) struct ServeMemory {
    pub(super) idle: f64,
    pub(super) after_queries: f64,
    pub(super) peak: f64,
    /// Of `after_queries`, the index files mapped into memory (the kernel may drop these pages
    /// and read them again); the rest is the process's own (the heap, the model).
    pub(super) after_queries_file: f64,
}

/// `lariat serve` on the data dir: its RSS idle, then after answering every query as a search
/// over HTTP (the default mode, hybrid), and its peak.
pub(super) async fn serve_memory(data_dir: &Path, queries: &[String]) -> Result<ServeMemory> {
    let server = ServeChild::start(
        data_dir,
        &[("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000000")],
    )
    .await?;
    let idle = server.memory_mb("VmRSS:");
    let client = reqwest::Client::new();
    let token = server.token(&client).await?;
    for q in queries {
        let resp = client
            .get(format!("{}/api/search", server.base))
            .bearer_auth(&token)
            .query(&[("q", q.as_str()), ("k", "10")])
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("search over HTTP answered {}", resp.status());
        }
    }
    Ok(ServeMemory {
        idle,
        after_queries: server.memory_mb("VmRSS:"),
        peak: server.memory_mb("VmHWM:"),
        after_queries_file: server.memory_mb("RssFile:"),
    })
}
