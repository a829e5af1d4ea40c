use lariat_tests::{PgDatabase, PgVectorServer};

use crate::support::{Lariat, corpus_dir, hits};

/// Ingest, re-ingest, search in every mode, delete and check, with the CLI on `l`'s settings.
async fn cli_journey(l: Lariat) -> Lariat {
    let corpus = corpus_dir();
    let corpus = corpus.to_str().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        let r = l.json(&["ingest", &corpus, "-c", "rodeo", "--json"]);
        assert_eq!(r["failed"], 0, "{r}");
        let again = l.json(&["ingest", &corpus, "-c", "rodeo", "--json"]);
        assert_eq!(again["unchanged"], r["added"], "{again}");
        for mode in ["hybrid", "dense", "bm25"] {
            let s = l.json(&[
                "search",
                "mark out rule",
                "--mode",
                mode,
                "--json",
                "-k",
                "2",
            ]);
            assert!(
                hits(&s)[0]["source"]
                    .as_str()
                    .unwrap()
                    .ends_with("roughstock-events.md"),
                "{mode}: {s}"
            );
        }
        l.assert_consistent();
        let team = format!("{corpus}/team-roping.md");
        l.expect(0, &["rm", "--source", &team]);
        for mode in ["dense", "bm25"] {
            let s = l.json(&["search", "heel ropes", "--mode", mode, "--json"]);
            assert!(
                hits(&s)
                    .iter()
                    .all(|h| !h["source"].as_str().unwrap().ends_with("team-roping.md")),
                "{mode}: {s}"
            );
        }
        l.assert_consistent();
        l
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_cli_runs_on_postgresql() {
    let db = PgDatabase::create().await;
    let l = cli_journey(Lariat::new().with_env("LARIAT_DATABASE_URL", &db.url)).await;
    // nothing was written to SQLite in the data dir
    assert!(!l.data_dir().join("lariat.db").exists());
    db.drop_db().await;
}

/// The whole deployment in PostgreSQL: rows, vectors (pgvector) and the BM25 index (term tables).
#[tokio::test]
async fn the_cli_keeps_everything_in_postgresql_with_pgvector() {
    let server = PgVectorServer::start();
    let db = server.database().await;
    let l = cli_journey(crate::replicas::node(&db)).await;
    for embedded in ["lariat.db", "vectors", "lexical"] {
        assert!(!l.data_dir().join(embedded).exists(), "{embedded}");
    }
    // vectors in SQLite's data dir cannot be shared: refused, saying why
    let sqlite = Lariat::new().with_env("LARIAT_RETRIEVAL__VECTOR_STORE", "pgvector");
    let err = tokio::task::spawn_blocking(move || sqlite.stderr_of(2, &["ls"]))
        .await
        .unwrap();
    assert!(err.contains("database_url"), "{err}");
    db.drop_db().await;
}
