//! The web app in a real browser: `browser_journeys.py` drives Debian's Chromium with Playwright
//! against `lariat serve` over the sample corpus and a local fake model provider (zero latency,
//! switched off and on by the script) — sign up, ask and watch the answer stream, open a
//! citation's passage, copy and regenerate, the provider down and Retry, search conversations and
//! the corpus, a user kept out of curator pages until an admin makes them a curator, three
//! uploads, an API key made and revoked, come back after the session is gone — with an axe-core
//! scan and desktop and phone screenshots of every page (in `tests/screenshots/`, git-ignored).
//! Fails, never skips, when the browser or a tool is missing.

use std::path::{Path, PathBuf};

use crate::fake_llm::{self, write_providers};
use crate::serve::{Api, PASSWORD, Server, create_admin};
use crate::support::{Lariat, corpus_dir, npm_dir};

fn axe_script() -> PathBuf {
    let script = npm_dir("LARIAT_TEST_AXE_DIR", "axe").join("node_modules/axe-core/axe.min.js");
    assert!(
        script.exists(),
        "axe-core is missing at {}: run `make test-deps`",
        script.display()
    );
    script
}

/// Runs a Playwright script of tests/e2e against the server, signed in as the test admin where
/// it needs one, photographing into tests/screenshots.
async fn journey(script: &str, api: &Api, args: &[&str]) -> std::process::Output {
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    tokio::process::Command::new("python3")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("e2e")
                .join(script),
        )
        .args(["--base", &api.base])
        .arg("--shots")
        .arg(&shots)
        .arg("--axe")
        .arg(axe_script())
        .args(["--admin", "admin@example.com", "--admin-password", PASSWORD])
        .args(args)
        .output()
        .await
        .expect("python3 with playwright (make test-deps)")
}

#[tokio::test]
async fn journeys_pass_in_chromium_with_no_serious_accessibility_violation() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing: run `make test-deps` (scripts/browser-deps.sh)"
    );
    let fake = fake_llm::start().await;
    // the provider is switched off on purpose: no retry, and no circuit left open afterwards
    let l = Lariat::new()
        .with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "100000")
        // the one upload past 100 bytes (arena.html) goes through a job the page follows
        .with_env("LARIAT_INGEST__BACKGROUND_UPLOAD_BYTES", "100")
        .with_env("LARIAT_LLM__RETRIES", "0")
        .with_env("LARIAT_LLM__BREAKER_FAILURES", "1000");
    write_providers(&l, &fake, &[("main", "openai", "switch")], "");
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let control = fake.base.replace("/v1", "/control");
    let out = journey(
        "browser_journeys.py",
        &api,
        &["--provider-control", &control],
    )
    .await;
    let figures = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{figures}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the page weight and Enter-to-first-word, for the record (`--no-capture` shows them)
    println!("browser figures: {figures}");
}

#[tokio::test]
async fn billing_upgrades_through_checkout_and_downgrades_through_the_portal_in_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing: run `make test-deps` (scripts/browser-deps.sh)"
    );
    let stripe = lariat_tests::fake_stripe::FakeStripe::start().await;
    // the app's own address is in Checkout's return links: choose the port first
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut l = Lariat::new().with_env(
        "LARIAT_MAIL__PUBLIC_URL",
        &format!("http://127.0.0.1:{port}"),
    );
    l.env.extend(stripe.env());
    create_admin(&l);
    let server = Server::start_on(&l, &format!("127.0.0.1:{port}"));
    stripe.send_events_to(&format!("{}/api/billing/webhook", server.base));
    let api = Api::new(&server);
    let probe = api.user("probe@example.com").await;
    let (_, billing) = api.get("/api/billing", Some(&probe)).await;
    let messages = |plan: &str| {
        billing["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == plan)
            .unwrap()["limits"]["monthly_messages"]
            .to_string()
    };
    let (pro, free) = (messages("pro"), messages("free"));
    let out = journey(
        "browser_billing.py",
        &api,
        &["--pro-messages", &pro, "--free-messages", &free],
    )
    .await;
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}
