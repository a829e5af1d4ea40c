//! `lariat bench-chat`: the chat path's own speed. Starts a zero-latency OpenAI-compatible
//! provider on 127.0.0.1 (it streams a fixed cited answer at once), runs `lariat serve` on the
//! given data dir against it, then measures the time from request to first streamed token over
//! the queries one at a time, and N concurrent streaming chats (errors, wall time, server RSS).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Body;
use axum::response::Response;
use clap::Args;
use eval::percentile;
use futures::StreamExt;
use serde_json::json;

use super::bench::{ServeChild, read_queries};

#[derive(Args, Debug)]
pub struct BenchChatArgs {
    /// queries.jsonl of a BEIR-layout dataset (one `{"text": …}` per line)
    queries: PathBuf,
    /// Queries asked one at a time for the first-token latency
    #[arg(long, default_value_t = 300)]
    sequential: usize,
    /// Streaming chats in flight at once
    #[arg(long, default_value_t = 1000)]
    concurrency: usize,
    /// Only this collection (default: every collection in the data dir)
    #[arg(long, short)]
    collection: Option<String>,
    /// Write the figures as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
}

const ANSWER: &[&str] = &[
    "The passages ",
    "say this ",
    "plainly [1]",
    ". And more [2]",
    ".",
];

/// The zero-latency provider: every request gets the whole answer streamed without delay.
pub(super) async fn start_provider() -> Result<String> {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            let mut events: Vec<String> = ANSWER
                .iter()
                .map(|t| {
                    format!(
                        "data: {}\n\n",
                        json!({"choices": [{"index": 0, "delta": {"content": t}}]})
                    )
                })
                .collect();
            events.push(format!(
                "data: {}\n\n",
                json!({"choices": [], "usage": {"prompt_tokens": 500, "completion_tokens": 12}})
            ));
            events.push("data: [DONE]\n\n".into());
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from(events.concat()))
                .unwrap_or_default()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/v1"))
}

/// One chat as the client saw it.
pub(super) struct ChatTiming {
    /// From sending the request to the first `delta` event.
    pub(super) first_ms: f64,
    /// It ended with `done` (not `error`).
    pub(super) ok: bool,
    /// The server's own times from the `done` event (retrieval, and from the answer's start to
    /// its first token): what the client waited beyond them was queueing before the answer began.
    retrieval_ms: Option<f64>,
    server_first_ms: Option<f64>,
}

/// Posts one chat and reads its stream to the end.
pub(super) async fn one_chat(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    body: &serde_json::Value,
) -> Result<ChatTiming> {
    let started = Instant::now();
    let resp = client
        .post(format!("{base}/api/chat"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("chat answered {}: {}", resp.status(), resp.text().await?);
    }
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    let mut first = None;
    while let Some(chunk) = stream.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk?));
        if first.is_none() && seen.contains("event: delta") {
            first = Some(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let timings = seen
        .split("event: done\ndata: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .and_then(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|done| done["timings"].clone())
        .unwrap_or_default();
    Ok(ChatTiming {
        first_ms: first.with_context(|| {
            let tail: String = seen
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("no delta event; the stream ended with: {tail}")
        })?,
        ok: seen.contains("event: done") && !seen.contains("event: error"),
        retrieval_ms: timings["retrieval_ms"].as_f64(),
        server_first_ms: timings["first_token_ms"].as_f64(),
    })
}

pub async fn run(data_dir: &Path, args: BenchChatArgs) -> Result<u8> {
    let queries = read_queries(&args.queries)?;
    if queries.is_empty() {
        bail!("{} holds no queries", args.queries.display());
    }
    let provider = start_provider().await?;
    let server = Arc::new(
        ServeChild::start(
            data_dir,
            &[
                ("LARIAT_LLM_BASE_URL", provider.as_str()),
                ("LARIAT_LLM_MODEL", "zero-latency"),
                ("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000000"),
                ("LARIAT_PLANS__FREE__MONTHLY_MESSAGES", "100000000"),
                ("LARIAT_PLANS__FREE__MONTHLY_TOKENS", "100000000000"),
            ],
        )
        .await?,
    );
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let access = server.token(&client).await?;
    let token = server.api_key(&client, &access, "bench").await?;
    let body = |q: &str| match &args.collection {
        Some(c) => json!({"message": q, "collections": [c]}),
        None => json!({"message": q}),
    };

    let mut first_ms = Vec::new();
    let mut retrieval_ms = Vec::new();
    let cpu_before = server.cpu_seconds();
    for q in queries.iter().cycle().take(args.sequential) {
        let t = one_chat(&client, &base, &token, &body(q)).await?;
        if !t.ok {
            bail!("a sequential chat did not finish");
        }
        first_ms.push(t.first_ms);
        retrieval_ms.extend(t.retrieval_ms);
    }
    let sequential_cpu_s = server.cpu_seconds() - cpu_before;
    first_ms.sort_by(f64::total_cmp);
    retrieval_ms.sort_by(f64::total_cmp);
    let rss_idle = server.memory_mb("VmRSS:");
    let rss_idle_file = server.memory_mb("RssFile:");

    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling, server) = (peak.clone(), sampling.clone(), server.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(server.memory_mb("VmRSS:") as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.concurrency);
    for q in queries.iter().cycle().take(args.concurrency) {
        let (client, base, token, errors, first_error) = (
            client.clone(),
            base.clone(),
            token.clone(),
            errors.clone(),
            first_error.clone(),
        );
        let body = body(q);
        tasks.push(tokio::spawn(async move {
            match one_chat(&client, &base, &token, &body).await {
                Ok(t) if t.ok => Some(t),
                outcome => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    let why = match outcome {
                        Err(e) => format!("{e:#}"),
                        Ok(_) => "the stream ended with an error event".to_owned(),
                    };
                    first_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(why);
                    None
                }
            }
        }));
    }
    let (mut concurrent_ms, mut server_retrieval, mut server_first) =
        (Vec::new(), Vec::new(), Vec::new());
    for t in tasks {
        if let Some(t) = t.await? {
            concurrent_ms.push(t.first_ms);
            server_retrieval.extend(t.retrieval_ms);
            server_first.extend(t.server_first_ms);
        }
    }
    server_retrieval.sort_by(f64::total_cmp);
    server_first.sort_by(f64::total_cmp);
    let wall = started.elapsed().as_secs_f64();
    let concurrent_cpu_s = server.cpu_seconds() - cpu_before;
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    concurrent_ms.sort_by(f64::total_cmp);
    let errors = errors.load(Ordering::Relaxed);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let out = json!({
        "first_token_ms": {
            "queries": first_ms.len(),
            "p50": percentile(&first_ms, 50.0),
            "p95": percentile(&first_ms, 95.0),
            "p99": percentile(&first_ms, 99.0),
            "server_retrieval_p50": percentile(&retrieval_ms, 50.0),
            "server_cpu_ms_per_chat": per_chat_ms(sequential_cpu_s, first_ms.len()),
        },
        "concurrent": {
            "chats": args.concurrency,
            "errors": errors,
            "first_error": first_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            "wall_s": wall,
            "chats_per_s": args.concurrency as f64 / wall.max(1e-9),
            "first_token_p50_ms": percentile(&concurrent_ms, 50.0),
            "first_token_p99_ms": percentile(&concurrent_ms, 99.0),
            "server_retrieval_p50_ms": percentile(&server_retrieval, 50.0),
            "server_first_token_p50_ms": percentile(&server_first, 50.0),
            // what the server spent on each chat, and the first token's floor that sets: chats
            // answered in the order they came cannot give the middle one its first token before
            // half the crowd's work is done, on every core the machine has
            "server_cpu_ms_per_chat": per_chat_ms(concurrent_cpu_s, args.concurrency),
            "server_cpu_share": concurrent_cpu_s / (wall * cores).max(1e-9),
            "in_order_first_token_p50_floor_ms":
                per_chat_ms(concurrent_cpu_s, args.concurrency) * args.concurrency as f64 / 2.0 / cores,
        },
        "serve_rss_mb": {
            "after_sequential": rss_idle,
            "after_sequential_mapped_files": rss_idle_file,
            "peak_under_load_sampled": peak.load(Ordering::Relaxed),
            "peak_vmhwm": server.memory_mb("VmHWM:"),
        },
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(if errors > 0 { 1 } else { 0 })
}

/// CPU milliseconds per chat.
fn per_chat_ms(cpu_s: f64, chats: usize) -> f64 {
    cpu_s * 1000.0 / chats.max(1) as f64
}
