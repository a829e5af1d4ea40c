//! The MCP knowledge server driven by the official Python MCP client: over stdio as the local operator
//! (reads everything) and as an API key's user, and over Streamable HTTP at /mcp with bearer tokens.

use crate::serve::{Api, Server};
use crate::support::{Lariat, corpus_dir};

/// How the client reaches the server.
enum Via<'a> {
    /// `lariat mcp`, optionally as the user of an API key.
    Stdio(Option<&'a str>),
    /// Streamable HTTP at this URL with this bearer token.
    Http(&'a str, &'a str),
}

fn run_client(l: &Lariat, via: Via, expect: &str, secret_error: &str) {
    let mut cmd = l.mcp_client("mcp_client.py");
    cmd.env("MCP_EXPECT_COLLECTIONS", expect)
        .env("MCP_SECRET_ERROR", secret_error);
    match via {
        Via::Stdio(Some(key)) => {
            cmd.env("LARIAT_API_KEY", key);
        }
        Via::Stdio(None) => {}
        Via::Http(url, token) => {
            cmd.env("MCP_TEST_URL", url).env("MCP_TEST_TOKEN", token);
        }
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "MCP client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_python_mcp_client_uses_every_tool_over_stdio_and_http() {
    // every MCP message over HTTP is a request against the plan's rate: allow a whole session
    let l = Lariat::new().with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000");
    let corpus = corpus_dir();
    l.expect(0, &["ingest", corpus.to_str().unwrap(), "-c", "rodeo"]);
    let secret = l.dir.path().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(
        secret.join("s.md"),
        "# Secret\n\nThe rope password is swordfish.\n",
    )
    .unwrap();
    // enough documents that listing them as resources takes two pages
    for i in 0..105 {
        std::fs::write(
            secret.join(format!("note-{i}.txt")),
            format!("Secret note {i} about the arena."),
        )
        .unwrap();
    }
    l.expect(
        0,
        &[
            "ingest",
            secret.to_str().unwrap(),
            "-c",
            "secret",
            "--visibility",
            "private",
        ],
    );
    // the local operator reads every collection
    run_client(&l, Via::Stdio(None), r#"["rodeo", "secret"]"#, "");

    // over Streamable HTTP at /mcp, authenticated like the REST API
    let key = {
        let server = Server::start(&l);
        let api = Api::new(&server);
        let token = api.user("ann@example.com").await;
        let (_, key) = api
            .post(
                "/api/keys",
                Some(&token),
                serde_json::json!({"name": "mcp"}),
            )
            .await;
        let key = key["key"].as_str().unwrap().to_owned();
        let url = format!("{}/mcp", server.base);
        run_client(&l, Via::Http(&url, &token), r#"["rodeo"]"#, "not_found");
        run_client(&l, Via::Http(&url, &key), r#"["rodeo"]"#, "not_found");
        // no or bad credentials: 401 pointing at the protected-resource metadata
        let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}});
        for bearer in [None, Some("garbage")] {
            let mut req = api
                .client
                .post(&url)
                .header("accept", "application/json, text/event-stream")
                .json(&init);
            if let Some(b) = bearer {
                req = req.bearer_auth(b);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401);
            let challenge = resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(challenge.contains("resource_metadata="), "{challenge}");
        }
        let (status, meta) = api
            .get("/.well-known/oauth-protected-resource/mcp", None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(meta["resource"], url);
        assert_eq!(
            meta["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
        key
    };
    // a user's key over stdio: the private collection does not exist for them
    run_client(&l, Via::Stdio(Some(&key)), r#"["rodeo"]"#, "not_found");

    // a bad key is refused before the server starts
    let out = l
        .command()
        .arg("mcp")
        .env("LARIAT_API_KEY", "lrt_forged")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
