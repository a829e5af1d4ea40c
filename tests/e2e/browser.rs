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
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/browser_journeys.py"))
        .args(["--base", &api.base])
        .arg("--shots")
        .arg(&shots)
        .arg("--axe")
        .arg(axe_script())
        .args(["--admin", "admin@example.com", "--admin-password", PASSWORD])
        .arg("--provider-control")
        .arg(fake.base.replace("/v1", "/control"))
        .output()
        .await
        .expect("python3 with playwright (make test-deps)");
    let figures = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{figures}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the page weight and Enter-to-first-word, for the record (`--no-capture` shows them)
    println!("browser figures: {figures}");
}
