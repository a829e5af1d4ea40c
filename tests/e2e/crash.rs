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
    std::fs::remove_dir_all(l.data_dir().join("lexical")).unwrap();
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
