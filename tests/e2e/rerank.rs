//! The `rerank` mode against a local fake of the Cohere-style and TEI rerank APIs.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::support::{Lariat, corpus_dir, hits};

/// Scores 1.0 for passages that mention a paramedic, 0.0 otherwise.
fn score(text: &str) -> f64 {
    if text.to_lowercase().contains("paramedic") {
        1.0
    } else {
        0.0
    }
}

type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

async fn cohere(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    seen.lock().unwrap().push((auth, body.clone()));
    let results: Vec<Value> = body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"index": i, "relevance_score": score(d.as_str().unwrap())}))
        .rev()
        .collect();
    Json(json!({"id": "x", "results": results}))
}

async fn tei(Json(body): Json<Value>) -> Json<Value> {
    let results: Vec<Value> = body["texts"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"index": i, "score": score(d.as_str().unwrap())}))
        .collect();
    Json(Value::Array(results))
}

/// Serves the fakes on a runtime of their own, so the test itself can run the CLI synchronously.
fn start_fake() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/v1/rerank", post(cohere))
        .route("/rerank", post(tei))
        .route(
            "/broken",
            post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                Json(json!({"results": []}))
            }),
        )
        .with_state(seen.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (format!("http://{}", rx.recv().unwrap()), seen)
}

fn search(l: &Lariat, env: &[(&str, String)]) -> Value {
    crate::support::json_output(l.command().envs(env.iter().map(|(k, v)| (k, v))).args([
        "search",
        "barrel racing penalty",
        "--mode",
        "rerank",
        "-k",
        "3",
        "--json",
    ]))
}

#[test]
fn rerank_reorders_through_cohere_and_tei_apis_and_falls_back_on_failure() {
    let (base, seen) = start_fake();
    let l = Lariat::new();
    let corpus = corpus_dir();
    l.expect(0, &["ingest", corpus.to_str().unwrap(), "-c", "rodeo"]);
    let top_source = |r: &Value| hits(r)[0]["source"].as_str().unwrap().to_owned();

    // without a reranker configured the mode is refused with the setting to fix
    let err = l.stderr_of(2, &["search", "x", "--mode", "rerank"]);
    assert!(err.contains("rerank.url"), "{err}");

    let hybrid = l.json(&["search", "barrel racing penalty", "-k", "3", "--json"]);
    assert!(top_source(&hybrid).ends_with("barrel-racing.html"));

    let cases = [
        vec![
            ("LARIAT_RERANK__URL", format!("{base}/v1/rerank")),
            ("LARIAT_RERANK__API_KEY", "sk-test".to_owned()),
            ("LARIAT_RERANK__MODEL", "rerank-v3".to_owned()),
            ("LARIAT_RERANK__DEPTH", "100".to_owned()),
        ],
        vec![
            ("LARIAT_RERANK__URL", format!("{base}/rerank")),
            ("LARIAT_RERANK__API", "tei".to_owned()),
            ("LARIAT_RERANK__DEPTH", "100".to_owned()),
        ],
    ];
    for env in &cases {
        let r = search(&l, env);
        assert_eq!(r["mode"], "rerank");
        assert_eq!(r["rerank"]["applied"], true, "{r}");
        assert!(
            top_source(&r).ends_with("arena-safety.pdf"),
            "reranked first: {r}"
        );
        assert_eq!(hits(&r)[0]["score"], 1.0);
    }
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0.as_deref(), Some("Bearer sk-test"));
    assert_eq!(calls[0].1["model"], "rerank-v3");
    assert_eq!(calls[0].1["query"], "barrel racing penalty");
    assert!(calls[0].1["documents"].as_array().unwrap().len() > 3);

    // a failing or slow reranker leaves the hybrid order, and says so
    let ids = |v: &Value| {
        hits(v)
            .iter()
            .map(|h| h["chunk_id"].clone())
            .collect::<Vec<_>>()
    };
    for (path, timeout) in [("/broken", "3000"), ("/slow", "300")] {
        let env = vec![
            ("LARIAT_RERANK__URL", format!("{base}{path}")),
            ("LARIAT_RERANK__TIMEOUT_MS", timeout.to_owned()),
        ];
        let r = search(&l, &env);
        assert_eq!(r["rerank"]["applied"], false, "{path}: {r}");
        assert!(!r["rerank"]["error"].as_str().unwrap().is_empty());
        assert_eq!(ids(&r), ids(&hybrid), "{path}: the hybrid order is kept");
    }
    let err = l
        .command()
        .env("LARIAT_RERANK__URL", "ftp://x")
        .args(["search", "x", "--mode", "rerank"])
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(2));
}
