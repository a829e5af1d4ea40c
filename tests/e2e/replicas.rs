//! Several servers, one deployment: every store in one PostgreSQL with pgvector, each server
//! with its own (empty) data dir.

use serde_json::Value;

use lariat_tests::{PgDatabase, PgVectorServer};

use crate::serve::{Api, Server, create_admin, race_uploads_and_deletions, upload};
use crate::support::{Lariat, corpus_dir};

const SECRET: &str = "one signing key for every server of the deployment";

/// A server's settings on the shared deployment in `db`.
pub fn node(db: &PgDatabase) -> Lariat {
    Lariat::new()
        .with_env("LARIAT_DATABASE_URL", &db.url)
        .with_env("LARIAT_RETRIEVAL__VECTOR_STORE", "pgvector")
        .with_env("LARIAT_RETRIEVAL__LEXICAL_STORE", "database")
        .with_env("LARIAT_AUTH__JWT_SECRET", SECRET)
        .with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000")
        .with_env("LARIAT_PLANS__PRO__REQUESTS_PER_MINUTE", "4")
        .with_env("LARIAT_AUTH__SIGNIN_PER_MINUTE_ACCOUNT", "3")
}

fn sources(r: &Value) -> Vec<String> {
    r["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|h| h["source"].as_str().unwrap().to_owned())
        .collect()
}

/// Three `lariat serve`, each on its own data dir, requests spread over them: sessions, writes,
/// limits and document locks are one for the deployment.
#[tokio::test]
async fn servers_on_one_postgresql_serve_one_deployment() {
    let pg = PgVectorServer::start();
    let db = pg.database().await;
    let (a, b, c) = (node(&db), node(&db), node(&db));
    create_admin(&a);
    let servers = [&a, &b, &c].map(Server::start);
    let [api_a, api_b, api_c] = [0, 1, 2].map(|i| Api::new(&servers[i]));

    // a session opened on one server is good on the other
    let admin = api_a.signin("admin@example.com").await;
    let (s, me) = api_b.get("/api/auth/me", Some(&admin)).await;
    assert_eq!(s, 200, "{me}");

    // what one server wrote, the other finds and cites at once
    let text = "# Barrel pattern\n\nThe cloverleaf barrel pattern has three barrels; a knocked \
                barrel adds five seconds to the run.\n";
    assert_eq!(
        upload(&api_a, &admin, "shared", "barrels.md", text.into()).await,
        201
    );
    let q = "/api/search?q=how%20many%20seconds%20does%20a%20knocked%20barrel%20add&k=3";
    for mode in ["bm25", "dense", "hybrid"] {
        let (s, r) = api_b.get(&format!("{q}&mode={mode}"), Some(&admin)).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(
            sources(&r).first().map(String::as_str),
            Some("upload:barrels.md"),
            "{mode}: {r}"
        );
    }

    // limits are one for the deployment: an account's sign-in attempts through either server
    // count against one budget
    let wrong = serde_json::json!({"email": "nobody@example.com", "password": "wrong password"});
    for api in [&api_a, &api_b, &api_a] {
        let (s, r) = api.post("/api/auth/signin", None, wrong.clone()).await;
        assert_eq!(s, 401, "{r}");
    }
    let (s, r) = api_b.post("/api/auth/signin", None, wrong).await;
    assert_eq!(s, 429, "{r}");

    // and so is a user's request rate, whichever server each request reaches
    let pat = api_c.unverified_user("pat@example.com").await;
    let pat_id = api_a.user_id(&admin, "pat@example.com").await;
    let (s, r) = api_a
        .call(
            reqwest::Method::PATCH,
            &format!("/api/admin/users/{pat_id}"),
            Some(&admin),
            Some(serde_json::json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let search = "/api/search?q=barrel&k=1";
    for api in [&api_a, &api_b, &api_c, &api_a] {
        assert_eq!(api.get(search, Some(&pat)).await.0, 200);
    }
    let (s, r) = api_b.get(search, Some(&pat)).await;
    assert_eq!(s, 429, "{r}");

    // a command on a fourth data dir writes while the servers serve: nothing is locked
    let d = node(&db);
    let corpus = corpus_dir();
    let corpus = corpus.to_str().unwrap().to_owned();
    let report =
        tokio::task::spawn_blocking(move || d.json(&["ingest", &corpus, "-c", "rodeo", "--json"]))
            .await
            .unwrap();
    assert_eq!(report["failed"], 0, "{report}");
    let (_, r) = api_a
        .get(
            "/api/search?q=mark%20out%20rule&k=2&collection=rodeo",
            Some(&admin),
        )
        .await;
    assert!(sources(&r)[0].ends_with("roughstock-events.md"), "{r}");

    // uploads of one document racing through both servers, and its deletions, are serialised
    // across them: afterwards the stores agree
    race_uploads_and_deletions(&[&api_a, &api_b, &api_c], &admin, "shared", "barrels.md").await;
    drop(servers);
    a.assert_consistent();
    db.drop_db().await;
}

/// Without a data-dir lock, servers must sign alike: a deployment with every store in
/// PostgreSQL and no `auth.jwt_secret` is refused before anything starts.
#[tokio::test]
async fn a_shared_deployment_needs_one_signing_key() {
    let l = Lariat::new()
        .with_env("LARIAT_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .with_env("LARIAT_RETRIEVAL__VECTOR_STORE", "pgvector")
        .with_env("LARIAT_RETRIEVAL__LEXICAL_STORE", "database");
    let err = tokio::task::spawn_blocking(move || l.stderr_of(2, &["ls"]))
        .await
        .unwrap();
    assert!(err.contains("auth.jwt_secret"), "{err}");
}
