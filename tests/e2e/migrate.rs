//! `lariat migrate-store`: an embedded deployment moved onto PostgreSQL with pgvector, or onto
//! PostgreSQL and Qdrant, without embedding anything again; a move killed mid-copy resumes; the
//! source is left as it was.

use serde_json::Value;

use lariat_tests::qdrant::QdrantTarget;
use lariat_tests::{PgDatabase, PgVectorServer};

use crate::crash::kill_at;
use crate::replicas::node;
use crate::serve::{Api, Server};
use crate::support::{Lariat, corpus_dir, sqlite_json};

/// Rows per table of the SQLite database at `l`'s data dir.
fn row_counts(l: &Lariat) -> Value {
    sqlite_json(
        &l.data_dir().join("lariat.db"),
        "names = [r[0] for r in db.execute(\"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'\")]\n\
         print(json.dumps({n: db.execute('SELECT COUNT(*) FROM \"%s\"' % n).fetchone()[0] for n in sorted(names)}))",
        &[],
    )
}

/// An embedded deployment with documents, an account and an answer to find.
fn embedded() -> Lariat {
    let l = Lariat::new();
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    crate::serve::create_admin(&l);
    l
}

fn top_source(l: &Lariat, mode: &str) -> String {
    let r = l.json(&[
        "search",
        "how many seconds does a knocked barrel add",
        "-c",
        "rodeo",
        "-m",
        mode,
        "--json",
    ]);
    r["hits"][0]["source"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_embedded_deployment_moves_to_postgresql_and_resumes_after_a_kill() {
    let source = embedded();
    let before = row_counts(&source);
    let expected = top_source(&source, "hybrid");
    let pg = PgVectorServer::start();
    let db = pg.database().await;

    // killed after its first batch, the move resumes and finishes
    kill_at(&source, "copy-batch", &["migrate-store", "--to", &db.url]);
    let out = source.expect(0, &["migrate-store", "--to", &db.url]);
    assert!(out.contains("consistent"), "{out}");
    assert_eq!(row_counts(&source), before, "the source is untouched");

    // the moved deployment serves what the embedded one did, to a server with an empty data dir
    let moved = node(&db);
    moved.assert_consistent();
    for mode in ["bm25", "dense", "hybrid"] {
        assert_eq!(top_source(&moved, mode), expected, "{mode}");
    }
    // the accounts moved too: the admin signs in with the password set before the move
    let server = Server::start(&moved);
    let api = Api::new(&server);
    let session = api.signin("admin@example.com").await;
    let (s, me) = api.get("/api/auth/me", Some(&session)).await;
    assert_eq!(s, 200, "{me}");
    drop(server);

    // a second move into the same database goes nowhere: it is not empty
    let other = embedded();
    let err = other.stderr_of(4, &["migrate-store", "--to", &db.url]);
    assert!(err.contains("already holds rows"), "{err}");
    db.drop_db().await;
}

#[tokio::test]
async fn an_embedded_deployment_moves_to_postgresql_and_qdrant() {
    let source = embedded();
    let expected = top_source(&source, "hybrid");
    let db = PgDatabase::create().await;
    let qdrant = QdrantTarget::new();
    let prefix = qdrant.prefix();
    let source = source
        .with_env("LARIAT_RETRIEVAL__QDRANT__URL", &qdrant.url)
        .with_env("LARIAT_RETRIEVAL__QDRANT__COLLECTION_PREFIX", &prefix);
    let out = source.expect(
        0,
        &[
            "migrate-store",
            "--to",
            &db.url,
            "--vectors",
            "qdrant",
            "--lexical",
            "qdrant",
        ],
    );
    assert!(out.contains("consistent"), "{out}");
    let moved = Lariat::new()
        .with_env("LARIAT_DATABASE_URL", &db.url)
        .with_env("LARIAT_RETRIEVAL__VECTOR_STORE", "qdrant")
        .with_env("LARIAT_RETRIEVAL__LEXICAL_STORE", "qdrant")
        .with_env("LARIAT_RETRIEVAL__QDRANT__URL", &qdrant.url)
        .with_env("LARIAT_RETRIEVAL__QDRANT__COLLECTION_PREFIX", &prefix)
        .with_env(
            "LARIAT_AUTH__JWT_SECRET",
            "one signing key for every server of the deployment",
        );
    moved.assert_consistent();
    for mode in ["bm25", "dense", "hybrid"] {
        assert_eq!(top_source(&moved, mode), expected, "{mode}");
    }
    db.drop_db().await;
}

#[test]
fn bad_targets_are_refused_before_anything_moves() {
    let l = Lariat::new();
    for (args, code, says) in [
        (vec!["--to", "sqlite:///tmp/x.db"], 2, "postgres://"),
        (
            vec!["--to", "postgres://127.0.0.1/x", "--vectors", "faiss"],
            2,
            "--vectors",
        ),
        (
            vec!["--to", "postgres://127.0.0.1/x", "--lexical", "elastic"],
            2,
            "--lexical",
        ),
    ] {
        let mut all = vec!["migrate-store"];
        all.extend(args);
        let err = l.stderr_of(code, &all);
        assert!(err.contains(says), "{err}");
    }
    // a deployment already in PostgreSQL is not moved again
    let shared = Lariat::new().with_env("LARIAT_DATABASE_URL", "postgres://127.0.0.1:1/none");
    let err = shared.stderr_of(
        2,
        &["migrate-store", "--to", "postgres://127.0.0.1:1/other"],
    );
    assert!(err.contains("embedded"), "{err}");
}
