use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::support::{Lariat, corpus_dir, hits};

/// A running `lariat serve`, stopped with SIGTERM when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(l: &Lariat) -> Self {
        let mut child = l
            .command()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("listening on ").nth(1).map(str::to_owned))
            .expect("serve prints its address");
        // keep draining stderr so the server never blocks on a full pipe
        std::thread::spawn(move || for _ in lines {});
        Self { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn serve_answers_search_like_the_cli_and_maps_errors() {
    let l = Lariat::new();
    let corpus = corpus_dir();
    l.expect(0, &["ingest", corpus.to_str().unwrap(), "-c", "rodeo"]);
    let cli = l.json(&[
        "search",
        "how are bull rides scored",
        "-c",
        "rodeo",
        "-k",
        "3",
        "--json",
    ]);

    let server = Server::start(&l);
    let client = reqwest::Client::new();
    let health: serde_json::Value = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"], "sqlite");

    let resp = client
        .get(format!("{}/api/search", server.base))
        .query(&[
            ("q", "how are bull rides scored"),
            ("collection", "rodeo"),
            ("k", "3"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let api: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(api["mode"], "hybrid");
    let ids = |v: &serde_json::Value| {
        hits(v)
            .iter()
            .map(|h| h["chunk_id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&api),
        ids(&cli),
        "HTTP and CLI go through the same search"
    );
    assert_eq!(hits(&api)[0]["text"], hits(&cli)[0]["text"]);

    let cases: &[(&str, u16, &str)] = &[
        ("q=", 400, "invalid_input"),
        ("k=5", 400, "invalid_input"),
        ("q=rope&k=0", 400, "invalid_input"),
        ("q=rope&k=abc", 400, "invalid_input"),
        ("q=rope&mode=fuzzy", 400, "invalid_input"),
        ("q=rope&collection=nope", 404, "not_found"),
        ("q=rope&collection=Bad%20Name", 400, "invalid_input"),
    ];
    for (query, status, code) in cases {
        let resp = client
            .get(format!("{}/api/search?{query}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{query}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], *code, "{query}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    let resp = client
        .get(format!("{}/nope", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // many concurrent searches are all answered
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (client, base) = (client.clone(), server.base.clone());
        tasks.push(tokio::spawn(async move {
            let mode = ["bm25", "dense", "hybrid"][i % 3];
            client
                .get(format!("{base}/api/search"))
                .query(&[("q", "rope length"), ("mode", mode)])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }

    // the data dir is held: a second process is refused with a clear message
    let err = l.stderr_of(5, &["ls"]);
    assert!(err.contains("in use by another lariat process"), "{err}");
}
