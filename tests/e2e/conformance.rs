//! The official MCP conformance suite (npm @modelcontextprotocol/conformance, installed by
//! `make test-deps`) against both MCP endpoints of `lariat serve`: server-initialize, ping,
//! tools-list and dns-rebinding-protection. The suite cannot send credentials, so it talks to a
//! small proxy that adds a valid API key and passes everything else, `Host` and `Origin`
//! included, through unchanged.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::serve::{Api, Server};
use crate::support::Lariat;

const SCENARIOS: &[&str] = &[
    "server-initialize",
    "ping",
    "tools-list",
    "dns-rebinding-protection",
];

#[derive(Clone)]
struct Upstream {
    base: String,
    key: String,
    client: reqwest::Client,
}

/// Forwards a request to lariat with `Authorization: Bearer <key>`, streaming the answer back.
async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let url = format!("{}{}", up.base, parts.uri);
    let mut out = up.client.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        if name != "authorization" && name != "content-length" && name != "connection" {
            out = out.header(name, value);
        }
    }
    let resp = match out.bearer_auth(&up.key).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut builder = Response::builder().status(resp.status().as_u16());
    for (name, value) in resp.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            builder = builder.header(
                HeaderName::from_bytes(name.as_ref()).unwrap(),
                value.as_bytes(),
            );
        }
    }
    builder
        .body(Body::from_stream(resp.bytes_stream()))
        .unwrap()
}

fn conformance_bin() -> (std::path::PathBuf, std::path::PathBuf) {
    let script = crate::support::npm_dir("LARIAT_TEST_CONFORMANCE_DIR", "conformance")
        .join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    assert!(
        script.exists(),
        "the MCP conformance suite is missing at {}: run `make test-deps`",
        script.display()
    );
    (crate::support::node_bin(), script)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_conformance_suite_passes_on_both_endpoints() {
    let (node, script) = conformance_bin();
    let l = Lariat::new().with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000");
    let server = Server::start(&l);
    let api = Api::new(&server);
    let token = api.user("agent@example.com").await;
    let (_, key) = api
        .post(
            "/api/keys",
            Some(&token),
            serde_json::json!({"name": "conformance"}),
        )
        .await;
    let upstream = Upstream {
        base: server.base.clone(),
        key: key["key"].as_str().unwrap().to_owned(),
        client: reqwest::Client::new(),
    };
    let app = axum::Router::new().fallback(forward).with_state(upstream);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    for path in ["/mcp", "/mcp/sites/rodeo"] {
        for scenario in SCENARIOS {
            let url = format!("http://localhost:{}{path}", proxy.port());
            let out = tokio::process::Command::new(&node)
                .arg(&script)
                .args(["server", "--url", &url, "--scenario", scenario])
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "conformance {scenario} on {path} failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
