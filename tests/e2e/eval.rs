use std::path::Path;

use crate::support::Lariat;

/// A small BEIR-layout dataset with graded judgements, written for the test.
fn write_dataset(dir: &Path) {
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    let topics = [
        (
            "heel",
            "Heel ropes",
            "Heel ropes are 35 to 40 feet long so the heeler can build a big loop.",
        ),
        (
            "head",
            "Head ropes",
            "Head ropes are 30 to 35 feet long and softer than heel ropes.",
        ),
        (
            "barrel",
            "Barrel racing",
            "A knocked barrel adds a five second penalty in barrel racing.",
        ),
        (
            "bull",
            "Bull riding",
            "Bull riders stay on for eight seconds holding a braided bull rope.",
        ),
        (
            "bronc",
            "Saddle bronc",
            "The saddle bronc rider must mark the horse out on the first jump.",
        ),
        (
            "tie",
            "Tie-down roping",
            "The calf must stay tied for six seconds after the roper remounts.",
        ),
        (
            "steer",
            "Steer wrestling",
            "The hazer keeps the steer running straight for the bulldogger.",
        ),
        (
            "entry",
            "Entering",
            "Entries close on Wednesday at five in the afternoon, before the draw.",
        ),
        (
            "fees",
            "Entry fees",
            "Entry fees are paid when entering and refunded only if the rodeo is cancelled.",
        ),
        (
            "vest",
            "Protective vests",
            "Bull riders must wear a protective vest during the whole ride.",
        ),
        (
            "ambulance",
            "Medical",
            "An ambulance and a paramedic must be on site during every performance.",
        ),
        (
            "standings",
            "Standings",
            "Each dollar won counts as one point in the world standings.",
        ),
    ];
    let mut corpus = String::new();
    for (i, (id, title, text)) in topics.iter().enumerate() {
        corpus.push_str(&serde_json::json!({"_id": id, "title": title, "text": text}).to_string());
        corpus.push('\n');
        // near-duplicates make ties and partial matches
        corpus.push_str(&serde_json::json!({"_id": format!("{id}-note"), "title": "", "text": format!("A note on {}: see the rulebook, section {i}.", title.to_lowercase())}).to_string());
        corpus.push('\n');
    }
    // as real collections have: a document with nothing in it (judged below)
    corpus.push_str("{\"_id\": \"blank\", \"title\": \"\", \"text\": \"\"}\n");
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    let queries = [
        ("q1", "how long is a heel rope"),
        ("q2", "penalty for knocking over a barrel"),
        ("q3", "how long must a bull rider stay on"),
        ("q4", "when do rodeo entries close"),
        ("q5", "is a vest required for bull riding"),
        ("q6", "medical staff at the arena"),
        ("q7", "what is the mark out rule"),
        ("q8", "unjudged query"),
    ];
    let q: String = queries
        .iter()
        .map(|(id, text)| format!("{}\n", serde_json::json!({"_id": id, "text": text})))
        .collect();
    std::fs::write(dir.join("queries.jsonl"), q).unwrap();
    let qrels = "query-id\tcorpus-id\tscore\nq1\theel\t2\nq1\thead\t1\nq1\theel-note\t1\nq2\tbarrel\t1\nq3\tbull\t2\nq3\tvest\t1\nq4\tentry\t1\nq4\tfees\t1\nq5\tvest\t1\nq6\tambulance\t1\nq7\tbronc\t1\nq7\tbronc-note\t0\nq3\tblank\t1\n";
    std::fs::write(dir.join("qrels/test.tsv"), qrels).unwrap();
}

#[test]
fn eval_metrics_equal_pytrec_eval_and_the_collection_is_reused() {
    let l = Lariat::new();
    let data = l.dir.path().join("mini");
    write_dataset(&data);
    let report = l.dir.path().join("report.json");
    let run = l.dir.path().join("run.trec");
    let out = l.expect(
        0,
        &[
            "eval",
            "beir",
            data.to_str().unwrap(),
            "--json",
            report.to_str().unwrap(),
            "--run-file",
            run.to_str().unwrap(),
            "--concurrency",
            "3",
        ],
    );
    assert!(out.contains("| hybrid |"), "{out}");
    let suite: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let r = suite["datasets"][0].clone();
    assert_eq!(r["skipped"]["empty_documents"], 1, "{r}");
    assert_eq!(
        r["queries"], 7,
        "the query without judgements is skipped: {r}"
    );
    assert_eq!(r["corpus_docs"], 24);
    assert_eq!(r["split"], "test");
    assert_eq!(r["ingest"]["reused"], false);
    for key in ["dataset", "config", "results", "ingest"] {
        assert!(r.get(key).is_some(), "{key}");
    }
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for res in results {
        for key in [
            "mode",
            "ndcg@10",
            "recall@10",
            "recall@100",
            "mrr@10",
            "map@100",
            "latency_ms",
            "qps",
        ] {
            assert!(res.get(key).is_some(), "{key} in {res}");
        }
        assert!(
            res["latency_ms"]["p99"].as_f64().unwrap()
                >= res["latency_ms"]["p50"].as_f64().unwrap()
        );
        assert!(res["ndcg@10"].as_f64().unwrap() > 0.5, "{res}");
        let mode = res["mode"].as_str().unwrap();
        let run_file = l.dir.path().join(format!("run.{mode}.trec"));
        let check = std::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/pytrec_check.py"))
            .args([
                data.join("qrels/test.tsv").to_str().unwrap(),
                run_file.to_str().unwrap(),
                report.to_str().unwrap(),
                mode,
            ])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "pytrec_eval disagrees:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }

    // the second run reuses the ingested collection
    let again = l.dir.path().join("again.json");
    l.expect(
        0,
        &[
            "eval",
            "beir",
            data.to_str().unwrap(),
            "--modes",
            "bm25",
            "--json",
            again.to_str().unwrap(),
        ],
    );
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(a["datasets"][0]["ingest"]["reused"], true);
    assert_eq!(
        a["datasets"][0]["results"][0]["ndcg@10"],
        r["results"][0]["ndcg@10"]
    );

    // several datasets in one run: each reported, and their mean
    let copy = l.dir.path().join("mini-copy");
    std::fs::create_dir_all(copy.join("qrels")).unwrap();
    for f in ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"] {
        std::fs::copy(data.join(f), copy.join(f)).unwrap();
    }
    let mut q = std::fs::read_to_string(copy.join("qrels/test.tsv")).unwrap();
    q.push_str("q2\tghost\t1\nq99\theel\t1\n");
    std::fs::write(copy.join("qrels/test.tsv"), q).unwrap();
    let both = l.dir.path().join("both.json");
    let out = l.expect(
        0,
        &[
            "eval",
            "beir",
            data.to_str().unwrap(),
            copy.to_str().unwrap(),
            "--modes",
            "bm25",
            "--json",
            both.to_str().unwrap(),
        ],
    );
    assert!(out.contains("| mean |"), "{out}");
    let both: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&both).unwrap()).unwrap();
    let copied = &both["datasets"][1];
    assert_eq!(copied["dataset"], "mini-copy");
    assert_eq!(copied["skipped"]["judgements_for_absent_documents"], 1);
    assert_eq!(copied["skipped"]["judgements_for_absent_queries"], 1);
    let (first, second) = (
        both["datasets"][0]["results"][0]["ndcg@10"]
            .as_f64()
            .unwrap(),
        copied["results"][0]["ndcg@10"].as_f64().unwrap(),
    );
    assert!(
        (first - second).abs() < 1e-12,
        "the ignored judgements change nothing"
    );
    assert!((both["mean"][0]["ndcg@10"].as_f64().unwrap() - (first + second) / 2.0).abs() < 1e-12);

    // the regression gate: a baseline far above today's numbers fails, naming metric and mode
    // (a report of one dataset, as earlier versions wrote, is a baseline too)
    let mut inflated = r.clone();
    inflated["results"][2]["ndcg@10"] = serde_json::json!(1.5);
    let baseline = l.dir.path().join("baseline.json");
    std::fs::write(&baseline, inflated.to_string()).unwrap();
    let err = l.stderr_of(
        8,
        &[
            "eval",
            "beir",
            data.to_str().unwrap(),
            "--baseline",
            baseline.to_str().unwrap(),
            "--max-drop",
            "0.01",
        ],
    );
    assert!(err.contains("ndcg@10 of mode hybrid"), "{err}");
    std::fs::write(&baseline, r.to_string()).unwrap();
    l.expect(
        0,
        &[
            "eval",
            "beir",
            data.to_str().unwrap(),
            "--baseline",
            baseline.to_str().unwrap(),
        ],
    );
}

/// Breaks a freshly written dataset in one way.
type Damage = Box<dyn Fn(&Path)>;

#[test]
fn malformed_datasets_stop_with_the_file_and_line_named() {
    let l = Lariat::new();
    let data = l.dir.path().join("d");
    let report = l.dir.path().join("r.json");
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "missing corpus",
            Box::new(|d: &Path| std::fs::remove_file(d.join("corpus.jsonl")).unwrap()),
            "corpus.jsonl",
        ),
        (
            "broken line",
            Box::new(|d: &Path| {
                let mut c = std::fs::read_to_string(d.join("queries.jsonl")).unwrap();
                c.push_str("{broken\n");
                std::fs::write(d.join("queries.jsonl"), c).unwrap();
            }),
            "queries.jsonl:9",
        ),
        (
            "duplicate document",
            Box::new(|d: &Path| {
                let mut c = std::fs::read_to_string(d.join("corpus.jsonl")).unwrap();
                c.push_str("{\"_id\": \"heel\", \"text\": \"again\"}\n");
                std::fs::write(d.join("corpus.jsonl"), c).unwrap();
            }),
            "corpus.jsonl:26: duplicate _id \"heel\"",
        ),
        (
            "empty split",
            Box::new(|d: &Path| {
                std::fs::write(d.join("qrels/test.tsv"), "query-id\tcorpus-id\tscore\n").unwrap()
            }),
            "is empty",
        ),
        (
            "bad score",
            Box::new(|d: &Path| {
                std::fs::write(d.join("qrels/test.tsv"), "q1\theel\thigh\n").unwrap()
            }),
            "test.tsv:1",
        ),
    ];
    for (what, damage, expected) in cases {
        let _ = std::fs::remove_dir_all(&data);
        write_dataset(&data);
        damage(&data);
        let err = l.stderr_of(
            2,
            &[
                "eval",
                "beir",
                data.to_str().unwrap(),
                "--json",
                report.to_str().unwrap(),
            ],
        );
        assert!(err.contains(expected), "{what}: {err}");
        assert!(!report.exists(), "{what}: a report was written");
    }
    let err = l.stderr_of(
        2,
        &["eval", "beir", data.to_str().unwrap(), "--split", "dev"],
    );
    assert!(err.contains("dev.tsv"), "{err}");
    let err = l.stderr_of(
        2,
        &[
            "eval",
            "beir",
            data.to_str().unwrap(),
            "--modes",
            "bm25,magic",
        ],
    );
    assert!(err.contains("unknown search mode"), "{err}");
}

/// `lariat eval answers` on the sample corpus and its hand-built question set, as CI runs it:
/// extractive answers (no model configured) are scored, the report is written, the committed
/// baseline holds, and a baseline set higher than the run fails the gate. Malformed sets and an
/// unknown collection are refused before anything is asked.
#[test]
fn the_answer_benchmark_scores_the_sample_question_set() {
    let l = Lariat::new();
    let corpus = crate::support::corpus_dir();
    l.expect(0, &["ingest", corpus.to_str().unwrap(), "-c", "rodeo"]);
    let questions = corpus.join("../../../../eval/answers/rodeo.jsonl");
    let questions = questions.to_str().unwrap();
    let report_path = l.dir.path().join("answers.json");
    let out = l.expect(
        0,
        &[
            "eval",
            "answers",
            questions,
            "-c",
            "rodeo",
            "--json",
            report_path.to_str().unwrap(),
            "--baseline",
            corpus
                .join("../../../../eval/baselines/answers-extractive.json")
                .to_str()
                .unwrap(),
        ],
    );
    assert!(out.contains("| heel-rope-length |"), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report["model"], "extractive");
    assert_eq!(
        (
            report["answerable"].as_u64(),
            report["unanswerable"].as_u64()
        ),
        (Some(24), Some(5))
    );
    assert_eq!(report["cases"].as_array().unwrap().len(), 29);
    // the extractive answer quotes the sources: its citations hold, and it declines only the
    // question asking for a quantity no source names (a prize)
    assert!(report["fact_recall"].as_f64().unwrap() > 0.5, "{report}");
    assert!(
        report["citation_precision"].as_f64().unwrap() > 0.9,
        "{report}"
    );
    assert_eq!(report["refusal_rate"], 0.2);
    assert_eq!(report["false_refusal_rate"], 0.0);
    let refused: Vec<&serde_json::Value> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["refused"] == true)
        .map(|c| &c["id"])
        .collect();
    assert_eq!(refused, ["no-prize-money"], "{report}");
    let heel = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "heel-rope-length")
        .unwrap();
    assert_eq!(heel["facts_found"], 1, "{heel}");
    assert_eq!(heel["reference_sources_cited"], 1, "{heel}");

    // a baseline above the run fails the gate, naming the figure
    let mut higher = report.clone();
    higher["fact_recall"] = serde_json::json!(1.0);
    let higher_path = l.dir.path().join("higher.json");
    std::fs::write(&higher_path, higher.to_string()).unwrap();
    let err = l.stderr_of(
        8,
        &[
            "eval",
            "answers",
            questions,
            "-c",
            "rodeo",
            "--baseline",
            higher_path.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("regression: fact_recall fell from 1.0000"),
        "{err}"
    );

    // refused before anything is asked
    let bad = l.dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"a\", \"question\": \"q?\", \"answer\": \"x\", \"facts\": []}\n",
    )
    .unwrap();
    let err = l.stderr_of(
        2,
        &["eval", "answers", bad.to_str().unwrap(), "-c", "rodeo"],
    );
    assert!(
        err.contains("bad.jsonl:1: an answerable question needs key facts"),
        "{err}"
    );
    let err = l.stderr_of(2, &["eval", "answers", "/nonexistent.jsonl", "-c", "rodeo"]);
    assert!(err.contains("/nonexistent.jsonl"), "{err}");
    let err = l.stderr_of(2, &["eval", "answers", questions, "-c", "Bad Name!"]);
    assert!(err.contains("collection"), "{err}");
}
