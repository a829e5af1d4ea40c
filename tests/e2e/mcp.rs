//! `lariat mcp` over stdio, driven by the official Python MCP client: as the local operator
//! (reads everything) and as the user of an API key (reads what that user may).

use crate::serve::{Api, Server};
use crate::support::{Lariat, corpus_dir, lariat_bin};

fn run_client(l: &Lariat, api_key: Option<&str>, expect: &str, secret_error: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/mcp_client.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script)
        .env("MCP_TEST_BIN", lariat_bin())
        .env("MCP_TEST_DATA", l.data_dir())
        .env("MCP_EXPECT_COLLECTIONS", expect)
        .env("MCP_SECRET_ERROR", secret_error)
        .env_remove("LARIAT_API_KEY");
    if let Some(key) = api_key {
        cmd.env("LARIAT_API_KEY", key);
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
async fn the_python_mcp_client_uses_every_tool_over_stdio() {
    let l = Lariat::new();
    let corpus = corpus_dir();
    l.expect(0, &["ingest", corpus.to_str().unwrap(), "-c", "rodeo"]);
    let secret = l.dir.path().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(
        secret.join("s.md"),
        "# Secret\n\nThe rope password is swordfish.\n",
    )
    .unwrap();
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
    run_client(&l, None, r#"["rodeo", "secret"]"#, "");

    // a user's key: the private collection does not exist for them
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
        key["key"].as_str().unwrap().to_owned()
    };
    run_client(&l, Some(&key), r#"["rodeo"]"#, "not_found");

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
