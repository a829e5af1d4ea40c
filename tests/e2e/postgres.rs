use lariat_tests::PgDatabase;

use crate::support::{Lariat, corpus_dir, hits};

#[tokio::test]
async fn the_cli_runs_on_postgresql() {
    let db = PgDatabase::create().await;
    let l = Lariat::new().with_env("LARIAT_DATABASE_URL", &db.url);
    let corpus = corpus_dir();
    let corpus = corpus.to_str().unwrap().to_owned();
    let l2 = Lariat {
        dir: l.dir,
        env: l.env.clone(),
    };
    let l = tokio::task::spawn_blocking(move || {
        let r = l2.json(&["ingest", &corpus, "-c", "rodeo", "--json"]);
        assert_eq!(r["failed"], 0, "{r}");
        let again = l2.json(&["ingest", &corpus, "-c", "rodeo", "--json"]);
        assert_eq!(again["unchanged"], r["added"], "{again}");
        let s = l2.json(&["search", "mark out rule", "--json", "-k", "2"]);
        assert!(
            hits(&s)[0]["source"]
                .as_str()
                .unwrap()
                .ends_with("roughstock-events.md"),
            "{s}"
        );
        l2.assert_consistent();
        let team = format!("{corpus}/team-roping.md");
        l2.expect(0, &["rm", "--source", &team]);
        let s = l2.json(&["search", "heel ropes", "--mode", "bm25", "--json"]);
        assert!(
            hits(&s)
                .iter()
                .all(|h| !h["source"].as_str().unwrap().ends_with("team-roping.md"))
        );
        l2.assert_consistent();
        l2
    })
    .await
    .unwrap();
    // nothing was written to SQLite in the data dir
    assert!(!l.data_dir().join("lariat.db").exists());
    db.drop_db().await;
}
