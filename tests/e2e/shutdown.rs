//! Stopping a server: what SIGTERM lets finish and what it ends.

use std::time::Duration;

use serde_json::json;

use crate::fake_llm::{self, write_providers};
use crate::serve::{Api, Server};
use crate::support::{Lariat, corpus_dir};

/// SIGTERM: the server stops accepting and ends an answer still streaming once
/// `server.shutdown_grace_secs` is over, instead of waiting for it.
#[tokio::test]
async fn shutdown_ends_what_outlasts_its_grace() {
    let fake = fake_llm::start().await;
    let l = Lariat::new().with_env("LARIAT_SERVER__SHUTDOWN_GRACE_SECS", "1");
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    write_providers(&l, &fake, &[("main", "openai", "slow")], "");
    let server = Server::start(&l);
    let api = Api::new(&server);
    let ann = api.user("ann@example.com").await;
    // an answer that streams for ten seconds, under way
    let mut stream = api
        .client
        .post(format!("{}/api/chat", api.base))
        .bearer_auth(&ann)
        .json(&json!({"message": "How long is a heading rope?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        let chunk = stream.chunk().await.unwrap().expect("the answer streams");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let base = api.base.clone();
    let (status, took) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(7),
        "SIGTERM took {took:?} with 1 s of grace, the answer having 9 s to go"
    );
    // the answer was cut, not finished, and nothing listens any more
    while let Ok(Some(chunk)) = stream.chunk().await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("event: done"), "{seen}");
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
}
