//! `lariat bench-cluster`: a crowd on a shared deployment. Starts N `lariat serve` replicas on
//! the configured shared engines (each with its own empty data dir) and a zero-latency
//! OpenAI-compatible provider, then for a fixed time runs U users, each searching and chatting in
//! a loop on the replicas in turn, and C curators uploading and deleting documents; reports
//! errors, throughput, p50/p99 latency per operation and each replica's peak RSS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use eval::percentile;
use serde_json::json;
use service::Config;

use super::bench::{ServeChild, read_queries};
use super::bench_chat::{one_chat, start_provider};

#[derive(Args, Debug)]
pub struct BenchClusterArgs {
    /// queries.jsonl of a BEIR-layout dataset (one `{"text": …}` per line): what users ask
    queries: PathBuf,
    /// Servers of the deployment
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Users searching and chatting at once
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Curators uploading (and deleting) documents at once
    #[arg(long, default_value_t = 2)]
    curators: usize,
    /// How long the crowd runs
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// Of each user's requests, the share that are chats (the rest are searches)
    #[arg(long, default_value_t = 0.3)]
    chat_share: f64,
    /// The collection users search (curators upload into `bench-uploads`, which must exist)
    #[arg(long, short)]
    collection: Option<String>,
    /// Write the figures as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
}

/// What every user and curator shares.
struct Crowd {
    client: reqwest::Client,
    bases: Vec<String>,
    key: String,
    /// The bench admin's session: curators upload with it (the key has the default scopes,
    /// search and chat).
    session: String,
    tally: Arc<Tally>,
    queries: Arc<Vec<String>>,
}

/// What every worker records.
#[derive(Default)]
struct Tally {
    /// Latencies (ms) per operation.
    latencies: std::sync::Mutex<BTreeMap<&'static str, Vec<f64>>>,
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn record(&self, op: &'static str, started: Instant, outcome: Result<()>) {
        match outcome {
            Ok(()) => self
                .latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(op)
                .or_default()
                .push(started.elapsed().as_secs_f64() * 1000.0),
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert_with(|| format!("{op}: {e:#}"));
            }
        }
    }
}

async fn search(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    q: &str,
    collection: Option<&str>,
) -> Result<()> {
    let mut url = reqwest::Url::parse(&format!("{base}/api/search"))?;
    url.query_pairs_mut()
        .append_pair("q", q)
        .append_pair("k", "10")
        .append_pair("mode", "hybrid");
    if let Some(c) = collection {
        url.query_pairs_mut().append_pair("collection", c);
    }
    let resp = client.get(url).bearer_auth(key).send().await?;
    if !resp.status().is_success() {
        bail!("search answered {}: {}", resp.status(), resp.text().await?);
    }
    resp.bytes().await?;
    Ok(())
}

async fn upload(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    name: &str,
    text: String,
) -> Result<()> {
    let resp = client
        .post(format!(
            "{base}/api/collections/bench-uploads/documents?filename={name}"
        ))
        .bearer_auth(key)
        .body(text)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("upload answered {}: {}", resp.status(), resp.text().await?);
    }
    Ok(())
}

/// Deletes the curator's document `name` (found by its source among the collection's documents).
async fn delete(client: &reqwest::Client, base: &str, key: &str, name: &str) -> Result<()> {
    let docs: serde_json::Value = client
        .get(format!("{base}/api/collections/bench-uploads/documents"))
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let source = format!("upload:{name}");
    let Some(id) = docs["documents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["source"].as_str() == Some(&source))
        .and_then(|d| d["id"].as_str())
    else {
        return Ok(());
    };
    let resp = client
        .delete(format!(
            "{base}/api/collections/bench-uploads/documents/{id}"
        ))
        .bearer_auth(key)
        .send()
        .await?;
    if !resp.status().is_success() && resp.status() != reqwest::StatusCode::NOT_FOUND {
        bail!("delete answered {}: {}", resp.status(), resp.text().await?);
    }
    Ok(())
}

pub async fn run(config: &Config, args: BenchClusterArgs) -> Result<u8> {
    if !config.knowledge().shared() {
        bail!(
            "bench-cluster runs replicas of a shared deployment: set database_url (PostgreSQL), retrieval.vector_store (pgvector or qdrant), retrieval.lexical_store (database or qdrant) and auth.jwt_secret"
        );
    }
    if args.replicas == 0 || args.users + args.curators == 0 || args.seconds == 0 {
        bail!("--replicas, --seconds and --users or --curators must be positive");
    }
    let queries = Arc::new(read_queries(&args.queries)?);
    if queries.is_empty() {
        bail!("{} holds no queries", args.queries.display());
    }
    let provider = start_provider().await?;
    let env = [
        ("LARIAT_LLM_BASE_URL", provider.as_str()),
        ("LARIAT_LLM_MODEL", "zero-latency"),
        ("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000000"),
        ("LARIAT_PLANS__FREE__MONTHLY_MESSAGES", "100000000"),
        ("LARIAT_PLANS__FREE__MONTHLY_TOKENS", "100000000000"),
    ];
    let dirs = (0..args.replicas)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut replicas = Vec::new();
    for dir in &dirs {
        replicas.push(Arc::new(
            ServeChild::start_as(dir.path(), &env, "admin").await?,
        ));
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.users + args.curators)
        .timeout(Duration::from_secs(120))
        .build()?;
    let access = replicas[0].token(&client).await?;
    let key = replicas[0]
        .api_key(&client, &access, "bench-cluster")
        .await?;
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();

    let tally = Arc::new(Tally::default());
    let running = Arc::new(AtomicBool::new(true));
    let peaks: Arc<Vec<AtomicU64>> =
        Arc::new((0..replicas.len()).map(|_| AtomicU64::new(0)).collect());
    let sampler = {
        let (peaks, running, replicas) = (peaks.clone(), running.clone(), replicas.clone());
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                for (peak, r) in peaks.iter().zip(&replicas) {
                    peak.fetch_max(r.memory_mb("VmRSS:") as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    let crowd = Arc::new(Crowd {
        client,
        bases,
        key,
        session: access,
        tally: tally.clone(),
        queries,
    });
    for user in 0..args.users {
        let crowd = crowd.clone();
        let collection = args.collection.clone();
        let chat_every = if args.chat_share > 0.0 {
            (1.0 / args.chat_share).round().max(1.0) as usize
        } else {
            usize::MAX
        };
        tasks.push(tokio::spawn(async move {
            let Crowd {
                client,
                bases,
                key,
                tally,
                queries,
                ..
            } = &*crowd;
            let mut n = user;
            while Instant::now() < deadline {
                let base = &bases[n % bases.len()];
                let q = &queries[n % queries.len()];
                let t = Instant::now();
                if n % chat_every == 0 {
                    let body = match &collection {
                        Some(c) => json!({"message": q, "collections": [c]}),
                        None => json!({"message": q}),
                    };
                    let outcome = one_chat(client, base, key, &body).await.and_then(|c| {
                        if c.ok {
                            Ok(())
                        } else {
                            Err(anyhow::anyhow!("the stream ended with an error event"))
                        }
                    });
                    tally.record("chat", t, outcome);
                } else {
                    let outcome = search(client, base, key, q, collection.as_deref()).await;
                    tally.record("search", t, outcome);
                }
                n += 1;
            }
        }));
    }
    for curator in 0..args.curators {
        let crowd = crowd.clone();
        tasks.push(tokio::spawn(async move {
            let Crowd {
                client,
                bases,
                session,
                tally,
                queries,
                ..
            } = &*crowd;
            let mut n = 0usize;
            while Instant::now() < deadline {
                let base = &bases[(curator + n) % bases.len()];
                // each curator keeps ten documents, rewriting one each turn and deleting the
                // next one's old version every third turn
                let name = format!("curator{curator}-{}.md", n % 10);
                let text = format!(
                    "# Notes {n} of curator {curator}\n\n{}\n\n{}\n",
                    queries[n % queries.len()],
                    queries[(n * 7 + 3) % queries.len()]
                );
                let t = Instant::now();
                tally.record(
                    "upload",
                    t,
                    upload(client, base, session, &name, text).await,
                );
                if n % 3 == 2 {
                    let gone = format!("curator{curator}-{}.md", (n + 1) % 10);
                    let t = Instant::now();
                    tally.record("delete", t, delete(client, base, session, &gone).await);
                }
                n += 1;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let wall = started.elapsed().as_secs_f64();
    running.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let mut latencies = tally
        .latencies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut operations = serde_json::Map::new();
    let mut total = 0usize;
    for (op, ms) in latencies.iter_mut() {
        ms.sort_by(f64::total_cmp);
        total += ms.len();
        operations.insert(
            (*op).to_owned(),
            json!({
                "count": ms.len(),
                "per_s": ms.len() as f64 / wall,
                "p50_ms": percentile(ms, 50.0),
                "p99_ms": percentile(ms, 99.0),
            }),
        );
    }
    let errors = tally.errors.load(Ordering::Relaxed);
    let out = json!({
        "replicas": args.replicas,
        "users": args.users,
        "curators": args.curators,
        "seconds": wall,
        "requests": total,
        "requests_per_s": total as f64 / wall,
        "errors": errors,
        "first_error": tally.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        "operations": operations,
        "replica_peak_rss_mb": replicas
            .iter()
            .zip(peaks.iter())
            .map(|(r, sampled)| json!({
                "sampled": sampled.load(Ordering::Relaxed),
                "vmhwm": r.memory_mb("VmHWM:"),
            }))
            .collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(if errors > 0 { 1 } else { 0 })
}
