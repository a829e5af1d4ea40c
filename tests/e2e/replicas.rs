//! Several servers, one deployment: every store in one PostgreSQL with pgvector, each server
//! with its own (empty) data dir.

use serde_json::{Value, json};

use lariat_tests::{PgDatabase, PgVectorServer};

use crate::chat::{chat, one};
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

/// The rows of `table` in the deployment's database.
async fn rows(db: &PgDatabase, table: &str) -> i64 {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let n: (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&mut connection)
        .await
        .unwrap();
    n.0
}

/// Three servers with their shared limits in Redis and the answer cache on: a user's hourly
/// request limit and monthly quota are one across the three; an erasure through one server
/// empties every server's cache of answers; a server killed in the middle of an upload leaves
/// nothing the same upload through another cannot finish (`lariat check` clean after); and a
/// job scheduled every second runs each occurrence on one server only.
#[tokio::test]
async fn three_servers_share_limits_in_redis_survive_a_killed_one_and_run_jobs_once() {
    let pg = PgVectorServer::start();
    let db = pg.database().await;
    let prefix = lariat_tests::redis_prefix();
    let shared = |l: Lariat| {
        l.with_env("LARIAT_REDIS__URL", &lariat_tests::redis_url())
            .with_env("LARIAT_REDIS__KEY_PREFIX", &prefix)
            .with_env("LARIAT_CHAT__CACHE_ENABLED", "true")
            .with_env("LARIAT_PLANS__PRO__REQUESTS_PER_HOUR", "5")
            .with_env("LARIAT_PLANS__PRO__REQUESTS_PER_MINUTE", "100")
            .with_env("LARIAT_PLANS__TEAM__MONTHLY_MESSAGES", "2")
            .with_env("LARIAT_JOBS__SCHEDULES__RETENTION", "* * * * * *")
    };
    let (a, b) = (shared(node(&db)), shared(node(&db)));
    // the third stops for good inside its first write, as a crash would stop it
    let c = shared(node(&db)).with_env("LARIAT_TEST_PAUSE_AT", "write-indexes");
    create_admin(&a);
    let (server_a, server_b, server_c) = (Server::start(&a), Server::start(&b), Server::start(&c));
    let [api_a, api_b, api_c] = [&server_a, &server_b, &server_c].map(Api::new);
    let admin = api_a.signin("admin@example.com").await;
    let text = "# Barrel pattern\n\nThe cloverleaf barrel pattern has three barrels; a knocked \
                barrel adds five seconds to the run.\n";
    assert_eq!(
        upload(&api_a, &admin, "shared", "barrels.md", text.into()).await,
        201
    );

    // an answer through one server cites what another wrote
    let ann = api_b.user("ann@example.com").await;
    let question = json!({"message": "How many seconds does a knocked barrel add?"});
    let (s, first) = chat(&api_c, &ann, question.clone()).await;
    assert_eq!(s, 200, "{first:?}");
    let cited = &one(&first, "citations")["citations"];
    assert_eq!(cited[0]["source"], "upload:barrels.md", "{cited}");
    assert_eq!(one(&first, "done")["cached"], false);

    // the answer is cached on the server that gave it; erasing its asker through another
    // server drops it there too
    let bob = api_a.user("bob@example.com").await;
    let (_, again) = chat(&api_c, &bob, question.clone()).await;
    assert_eq!(one(&again, "done")["cached"], true);
    let ann_id = api_a.user_id(&admin, "ann@example.com").await;
    let (s, r) = api_a
        .post(
            &format!("/api/admin/users/{ann_id}/erase"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, 204, "{r}");
    let (_, after) = chat(&api_c, &bob, question.clone()).await;
    assert_eq!(one(&after, "done")["cached"], false, "{after:?}");

    // a plan's hourly limit is one across the servers, kept in Redis (not in SQL)
    let pat = api_a.user("pat@example.com").await;
    let pat_id = api_a.user_id(&admin, "pat@example.com").await;
    let quinn = api_a.user("quinn@example.com").await;
    let quinn_id = api_a.user_id(&admin, "quinn@example.com").await;
    for (id, plan) in [(&pat_id, "pro"), (&quinn_id, "team")] {
        let (s, r) = api_b
            .call(
                reqwest::Method::PATCH,
                &format!("/api/admin/users/{id}"),
                Some(&admin),
                Some(json!({"plan": plan})),
            )
            .await;
        assert_eq!(s, 200, "{r}");
    }
    let apis = [&api_a, &api_b, &api_c];
    let search = "/api/search?q=barrel&k=1";
    for i in 0..5 {
        let (s, r) = apis[i % 3].get(search, Some(&pat)).await;
        assert_eq!(s, 200, "request {i}: {r}");
    }
    let (s, r) = api_b.get(search, Some(&pat)).await;
    assert_eq!(s, 429, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("per hour"),
        "{r}"
    );
    assert_eq!(
        rows(&db, "rate_limits").await,
        0,
        "the buckets are in Redis"
    );
    let keys = lariat_tests::redis_keys(&format!("{prefix}rate:")).await;
    assert!(
        keys.iter().any(|(k, _)| k.contains("requests_user_hour")),
        "{keys:?}"
    );

    // and so is a monthly quota
    for api in [&api_a, &api_b] {
        let (s, e) = chat(api, &quinn, json!({"message": "What is a knocked barrel?"})).await;
        assert_eq!(s, 200, "{e:?}");
    }
    let (s, e) = chat(
        &api_c,
        &quinn,
        json!({"message": "What is a knocked barrel?"}),
    )
    .await;
    assert_eq!(s, 402, "{e:?}");

    // a server killed inside an upload: the same upload through another finishes it
    let manual = "# Entries\n\nEntries for the spring rodeo close at noon on the Wednesday \
                  before the event.\n"
        .to_owned();
    let crashed = tokio::spawn({
        let (api_c, admin, manual) = (api_c.clone(), admin.clone(), manual.clone());
        async move {
            api_c
                .client
                .post(format!(
                    "{}/api/collections/shared/documents?filename=entries.md",
                    api_c.base
                ))
                .bearer_auth(&admin)
                .body(manual)
                .send()
                .await
        }
    });
    server_c.kill_when_paused("write-indexes").await;
    assert!(
        crashed.await.unwrap().is_err(),
        "the upload died with its server"
    );
    // (200: it replaced what the dead server left pending)
    let retried = upload(&api_b, &admin, "shared", "entries.md", manual).await;
    assert!([200, 201].contains(&retried), "{retried}");
    let (_, r) = api_a
        .get(
            "/api/search?q=when%20do%20entries%20close&k=1&collection=shared",
            Some(&admin),
        )
        .await;
    assert_eq!(sources(&r), ["upload:entries.md"], "{r}");

    // the job scheduled every second ran on the servers, each occurrence once
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let (s, jobs) = api_a
        .get("/api/admin/jobs?job=retention&limit=100", Some(&admin))
        .await;
    assert_eq!(s, 200, "{jobs}");
    let slots: Vec<i64> = jobs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["slot"].as_i64().unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<&i64> = slots.iter().collect();
    assert!(slots.len() >= 3, "{jobs}");
    assert_eq!(
        distinct.len(),
        slots.len(),
        "an occurrence ran twice: {jobs}"
    );

    drop((server_a, server_b));
    a.assert_consistent();
    db.drop_db().await;
}
