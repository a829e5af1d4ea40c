//! The rodeo site server end to end: the real `lariat` binary, the official Python MCP client,
//! the fixture association site. Over stdio and Streamable HTTP (`/mcp/sites/rodeo`, same
//! bearer auth as the REST API); unconfigured, writes disabled, dry run.

use lariat_tests::rodeo_site::{PASSWORD, RodeoSite, USERNAME};

use crate::serve::{Api, PASSWORD as ACCOUNT_PASSWORD, Server, create_admin};
use crate::support::Lariat;

fn site_lariat(fixture: &RodeoSite, extra: &[(&str, &str)]) -> Lariat {
    let layout = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/domains/rodeo/sites/example-association.toml");
    let mut l = Lariat::new()
        .with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000")
        .with_env("LARIAT_SITES__RODEO__LAYOUT", layout.to_str().unwrap())
        .with_env("LARIAT_SITES__RODEO__BASE_URL", &fixture.url)
        .with_env("LARIAT_SITES__RODEO__USERNAME", USERNAME)
        .with_env("LARIAT_SITES__RODEO__PASSWORD", PASSWORD)
        .with_env("LARIAT_SITES__RODEO__REQUESTS_PER_MINUTE", "6000");
    for (k, v) in extra {
        l = l.with_env(k, v);
    }
    l
}

/// Runs site_client.py in `mode`, over stdio or (with `http`: url, token) Streamable HTTP.
fn run_client(l: &Lariat, mode: &str, event: &str, http: Option<(&str, &str)>) {
    let mut cmd = l.mcp_client("site_client.py");
    cmd.env("SITE_MODE", mode).env("SITE_EVENT", event);
    if let Some((url, token)) = http {
        cmd.env("MCP_TEST_URL", url).env("MCP_TEST_TOKEN", token);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "site client ({mode}) failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn entry_posts(fixture: &RodeoSite) -> Vec<String> {
    fixture
        .posts()
        .into_iter()
        .filter(|r| r.path.ends_with("/enter"))
        .map(|r| r.path)
        .collect()
}

// the fixture site serves from this runtime while the test waits on child processes
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_drives_the_site_server_over_stdio_and_http() {
    let fixture = RodeoSite::start().await;
    let l = site_lariat(&fixture, &[("LARIAT_SITES__RODEO__WRITES_ENABLED", "true")]);
    run_client(&l, "full", "denver-2027", None);
    // two submits of one confirmation, one late entry refused twice from the record: the site
    // saw one POST for the entry and one for the late one
    assert_eq!(
        entry_posts(&fixture),
        ["/events/denver-2027/enter", "/events/cheyenne-2026/enter"]
    );

    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let (status, signin) = api
        .post(
            "/api/auth/signin",
            None,
            serde_json::json!({"email": "admin@example.com", "password": ACCOUNT_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{signin}");
    let admin = signin["access_token"].as_str().unwrap().to_owned();
    let url = format!("{}/mcp/sites/rodeo", server.base);
    run_client(&l, "full", "houston-2027", Some((&url, &admin)));
    assert_eq!(entry_posts(&fixture).len(), 4);
    // the tools act with the operator's member account: a plain user may not use them
    let rider = api.user("rider@example.com").await;
    let before = fixture.received().len();
    run_client(&l, "forbidden", "", Some((&url, &rider)));
    assert_eq!(fixture.received().len(), before);

    // no credentials: 401 naming this resource's metadata
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}});
    let resp = api
        .client
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("/.well-known/oauth-protected-resource/mcp/sites/rodeo"),
        "{challenge}"
    );
    let (status, meta) = api
        .get(
            "/.well-known/oauth-protected-resource/mcp/sites/rodeo",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(meta["resource"], url);
    let (status, _) = api
        .get(
            "/.well-known/oauth-protected-resource/mcp/sites/nowhere",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

// the fixture site serves from this runtime while the test waits on child processes
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfigured_disabled_and_dry_run_send_nothing() {
    let fixture = RodeoSite::start().await;
    run_client(&Lariat::new(), "unconfigured", "", None);
    run_client(&site_lariat(&fixture, &[]), "disabled", "", None);
    run_client(
        &site_lariat(
            &fixture,
            &[
                ("LARIAT_SITES__RODEO__WRITES_ENABLED", "true"),
                ("LARIAT_SITES__RODEO__DRY_RUN", "true"),
            ],
        ),
        "dry",
        "",
        None,
    );
    assert!(entry_posts(&fixture).is_empty(), "{:?}", fixture.posts());

    // a domain without site tools
    let out = Lariat::new()
        .command()
        .args(["mcp", "site", "bogus"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("there are: rodeo"));
}

/// A write the site may have acted on (it answered 500 to the form) keeps its claim: retrying the
/// same confirmation sends nothing and tells the agent to look at its entries first.
// the fixture site serves from this runtime while the test waits on child processes
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncertain_write_is_never_sent_again() {
    let fixture = RodeoSite::start().await;
    let l = site_lariat(&fixture, &[("LARIAT_SITES__RODEO__WRITES_ENABLED", "true")]);
    fixture.fail_posts(1);
    run_client(&l, "uncertain", "reno-2027", None);
    assert_eq!(entry_posts(&fixture), ["/events/reno-2027/enter"]);
}
