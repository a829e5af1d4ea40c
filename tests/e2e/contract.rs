//! The API against its own served OpenAPI document: schemathesis (PyPI) generates requests from
//! /openapi.json — examples, edge cases, random data and stateful sequences — signed in as a user
//! and as an admin, bounded in examples. No 5xx; every status, content type, header, body and
//! server-sent event is one the document declares; data the document forbids is refused; routes
//! that need credentials refuse requests without; a deleted resource is gone.

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
            // every check but "schema-valid data is accepted": some rules are not a schema's to
            // say (a password's strength, a reranker being configured, a collection existing)
            .args([
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
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
