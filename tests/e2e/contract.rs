//! The API against its own served OpenAPI document: schemathesis (PyPI) generates requests from
//! /openapi.json — examples, edge cases, random data and stateful sequences — signed in as a user
//! and as an admin, bounded in examples. No answer may be a 5xx, and every status and content type
//! must be one the document declares.

use crate::serve::{Api, Server, create_admin};
use crate::support::{Lariat, corpus_dir};

#[tokio::test]
async fn schemathesis_finds_no_server_error_as_a_user_or_an_admin() {
    let l = Lariat::new().with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "100000");
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    for who in ["user@example.com", "admin@example.com"] {
        let token = api.user(who).await;
        let out = tokio::process::Command::new("python3")
            .current_dir(l.dir.path())
            .args(["-m", "schemathesis.cli", "run"])
            .arg(format!("{}/openapi.json", api.base))
            .arg("--header")
            .arg(format!("Authorization: Bearer {token}"))
            .args(["--max-examples", "25", "--workers", "1"])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance",
            ])
            // signing out would end the session the rest of the run uses (tested in accounts)
            .args(["--exclude-path", "/api/auth/signout"])
            .output()
            .await
            .expect("python3 with schemathesis (make test-deps)");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "as {who}:\n{report}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(report.contains("passed"), "as {who}: {report}");
    }
}
