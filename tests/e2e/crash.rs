use std::time::Duration;

use crate::support::{Lariat, hits};

fn write_docs(dir: &std::path::Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let body: String = (0..6)
            .map(|p| {
                format!(
                    "Paragraph {p} of document {i}. Arena note token{i}x{p}: the stock contractor \
                     checks the chutes, the flank straps and the gates before the performance, and the \
                     judges confirm the barrier lengths for the timed events in arena {i}.\n\n"
                )
            })
            .collect();
        std::fs::write(
            dir.join(format!("doc{i:03}.md")),
            format!("# Document {i}\n\n{body}"),
        )
        .unwrap();
    }
}

/// SIGKILL at several moments of an ingestion; every reopening converges to a clean store, and a
/// final run completes with no duplicate and no orphan chunk.
#[test]
fn killing_ingest_at_any_moment_converges_to_a_clean_store() {
    let l = Lariat::new();
    let docs = l.dir.path().join("docs");
    let n = 120;
    write_docs(&docs, n);
    for delay_ms in [700u64, 1500, 2600, 4000, 5500] {
        let mut child = l
            .command()
            .args(["ingest", docs.to_str().unwrap(), "--json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // opening the data dir again finishes or rolls forward whatever was cut off
        l.assert_consistent();
    }
    let report = l.json(&["ingest", docs.to_str().unwrap(), "--json"]);
    assert_eq!(report["failed"], 0, "{report}");
    let done = report["added"].as_u64().unwrap()
        + report["updated"].as_u64().unwrap()
        + report["unchanged"].as_u64().unwrap();
    assert_eq!(done, n as u64, "{report}");
    l.assert_consistent();
    let listed = l.json(&["ls", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), n);
    let r = l.json(&["search", "token119x3", "--mode", "bm25", "--json"]);
    assert_eq!(hits(&r).len(), 1, "exactly one chunk holds the token: {r}");
    let again = l.json(&["ingest", docs.to_str().unwrap(), "--json"]);
    assert_eq!(again["unchanged"], n as u64, "{again}");
}

/// Damage to a derived index is detected by `check` and mended by `check --repair`.
#[test]
fn check_detects_and_repair_mends_a_damaged_index() {
    let l = Lariat::new();
    let docs = l.dir.path().join("docs");
    write_docs(&docs, 3);
    l.expect(0, &["ingest", docs.to_str().unwrap()]);
    l.assert_consistent();
    // an index of this build's format that lost its contents (a missing or older one is
    // rebuilt when opened)
    let lexical = l.data_dir().join("lexical");
    let format = std::fs::read(lexical.join("analyzer")).unwrap();
    std::fs::remove_dir_all(&lexical).unwrap();
    std::fs::create_dir_all(&lexical).unwrap();
    std::fs::write(lexical.join("analyzer"), format).unwrap();
    let out = l.expect(7, &["check"]);
    assert!(out.contains("missing from the lexical index"), "{out}");
    l.expect(0, &["check", "--repair"]);
    l.assert_consistent();
    let r = l.json(&["search", "token2x5", "--mode", "bm25", "--json"]);
    assert_eq!(hits(&r).len(), 1);
    std::fs::remove_dir_all(l.data_dir().join("vectors")).unwrap();
    l.expect(7, &["check"]);
    l.expect(0, &["reindex"]);
    l.assert_consistent();
}

/// What a kill at a named point left behind in SQL (read without lariat, so nothing recovers it
/// first): documents still pending, and deletions whose tombstones are not cleared.
async fn left_behind(l: &Lariat) -> (i64, i64) {
    sqlx::any::install_default_drivers();
    let db = l.data_dir().join("lariat.db");
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE state = 'pending'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let tombstones: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM index_tombstones")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    (pending, tombstones)
}

/// Runs `lariat ARGS` until it announces it paused at `point` (inside a write), then kills it.
pub fn kill_at(l: &Lariat, point: &str, args: &[&str]) {
    use std::io::{BufRead, BufReader};
    let mut child = l
        .command()
        .args(args)
        .env("LARIAT_TEST_PAUSE_AT", point)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let announced = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|line| line == format!("lariat: paused at {point}"));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    assert!(announced, "lariat {args:?} never reached {point}");
}

/// A kill at each named point of the write protocol provably interrupts a write (SQL holds
/// pending documents or tombstones afterwards), and reopening converges to a clean store.
#[tokio::test]
async fn a_kill_inside_each_step_of_a_write_converges() {
    // the points named in knowledge/base/src/crashpoint.rs
    for point in ["write-sql", "write-indexes"] {
        let l = Lariat::new();
        let docs = l.dir.path().join("docs");
        write_docs(&docs, 4);
        kill_at(&l, point, &["ingest", docs.to_str().unwrap()]);
        let (pending, _) = left_behind(&l).await;
        assert!(pending > 0, "{point}: the kill interrupted a write");
        l.assert_consistent();
        assert_eq!(left_behind(&l).await, (0, 0), "{point}");
        let r = l.json(&["search", "token3x5", "--mode", "bm25", "--json"]);
        assert_eq!(
            hits(&r).len(),
            1,
            "{point}: the interrupted write was finished: {r}"
        );
    }
    let l = Lariat::new();
    let docs = l.dir.path().join("docs");
    write_docs(&docs, 4);
    l.expect(0, &["ingest", docs.to_str().unwrap()]);
    let file = docs.join("doc003.md");
    kill_at(
        &l,
        "delete-sql",
        &["rm", "--source", file.to_str().unwrap()],
    );
    let (_, tombstones) = left_behind(&l).await;
    assert!(tombstones > 0, "the kill interrupted a deletion");
    l.assert_consistent();
    assert_eq!(left_behind(&l).await, (0, 0));
    let r = l.json(&["search", "token3x5", "--mode", "bm25", "--json"]);
    assert!(
        hits(&r).is_empty(),
        "the interrupted deletion was finished: {r}"
    );
}
