use serde_json::Value;

use crate::support::{Lariat, corpus_dir, hits};

/// Ingests one file of the sample corpus into the collection `rodeo`.
fn ingest_sample(l: &Lariat, file: &str) {
    let path = corpus_dir().join(file);
    l.expect(0, &["ingest", path.to_str().unwrap(), "-c", "rodeo"]);
}

fn ingest_corpus(l: &Lariat) -> Value {
    let corpus = corpus_dir();
    l.json(&[
        "ingest",
        corpus.to_str().unwrap(),
        "--collection",
        "rodeo",
        "--json",
    ])
}

#[test]
fn the_sample_corpus_ingests_searches_and_reingests_idempotently() {
    let l = Lariat::new();
    let first = ingest_corpus(&l);
    assert_eq!(first["failed"], 0, "{first}");
    assert!(first["added"].as_u64().unwrap() >= 10, "{first}");
    assert_eq!(first["failures"], serde_json::json!([]));
    let chunks = first["chunks"].as_u64().unwrap();
    assert!(chunks >= first["added"].as_u64().unwrap());

    let again = ingest_corpus(&l);
    assert_eq!(again["added"], 0, "{again}");
    assert_eq!(again["updated"], 0);
    assert_eq!(again["unchanged"], first["added"]);
    assert_eq!(again["chunks"], 0);
    l.assert_consistent();

    // hybrid search finds the heel rope length, with its heading path as location
    let r = l.json(&[
        "search",
        "how long is a heel rope",
        "--collection",
        "rodeo",
        "-k",
        "3",
        "--json",
    ]);
    assert_eq!(r["query"], "how long is a heel rope");
    assert_eq!(r["mode"], "hybrid");
    let top = &hits(&r)[0];
    for key in [
        "rank",
        "score",
        "chunk_id",
        "document_id",
        "title",
        "source",
        "location",
        "text",
    ] {
        assert!(top.get(key).is_some(), "hit lacks {key}: {top}");
    }
    assert_eq!(top["rank"], 1);
    assert_eq!(
        top["source"], "corpus/team-roping.md",
        "shown below what was ingested, never the server's path: {top}"
    );
    assert!(
        top["text"].as_str().unwrap().contains("35 to 40 feet"),
        "{top}"
    );
    assert!(
        top["location"].as_str().unwrap().contains("Heel ropes"),
        "{top}"
    );

    // each mode answers; bm25 with its own scores
    for mode in ["bm25", "dense"] {
        let r = l.json(&[
            "search",
            "barrel knocked over penalty",
            "--mode",
            mode,
            "--json",
            "-k",
            "2",
        ]);
        assert_eq!(r["mode"], mode);
        let top = &hits(&r)[0];
        assert!(
            top["source"]
                .as_str()
                .unwrap()
                .ends_with("barrel-racing.html"),
            "{mode}: {top}"
        );
        assert!(
            top["text"].as_str().unwrap().contains("5-second penalty"),
            "{mode}: {top}"
        );
    }

    // the PDF's passages know their pages
    let r = l.json(&[
        "search",
        "is an ambulance with a paramedic required on site",
        "-k",
        "1",
        "--json",
    ]);
    let top = &hits(&r)[0];
    assert!(
        top["source"]
            .as_str()
            .unwrap()
            .ends_with("arena-safety.pdf"),
        "{top}"
    );
    assert!(top["location"].as_str().unwrap().starts_with("p"), "{top}");
    assert!(top["location_detail"]["pages"].is_array(), "{top}");

    // HTML navigation and scripts were not indexed
    let r = l.json(&[
        "search",
        "window.analytics track",
        "--mode",
        "bm25",
        "--json",
    ]);
    assert!(
        hits(&r)
            .iter()
            .all(|h| !h["text"].as_str().unwrap().contains("analytics"))
    );

    // listing
    let docs = l.json(&["ls", "--collection", "rodeo", "--json"]);
    let docs = docs.as_array().unwrap();
    assert_eq!(docs.len() as u64, first["added"].as_u64().unwrap());
    let total: i64 = docs.iter().map(|d| d["chunks"].as_i64().unwrap()).sum();
    assert_eq!(total as u64, chunks);
    let human = l.expect(0, &["search", "bull rope", "-k", "2"]);
    assert!(human.contains("1. ["), "{human}");
}

#[test]
fn a_changed_file_replaces_its_chunks_and_rm_deletes_everywhere() {
    let l = Lariat::new();
    let docs = l.dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let file = docs.join("notes.md");
    std::fs::write(&file, "# Notes\n\nThe xylophonic chute gate squeaks.\n").unwrap();
    std::fs::write(
        docs.join("other.txt"),
        "Goat tying is a timed event for young riders.",
    )
    .unwrap();
    let r = l.json(&["ingest", docs.to_str().unwrap(), "--json"]);
    assert_eq!(
        (r["added"].as_u64(), r["failed"].as_u64()),
        (Some(2), Some(0)),
        "{r}"
    );

    std::fs::write(&file, "# Notes\n\nThe quasistellar arena lights flicker.\n").unwrap();
    let r = l.json(&["ingest", docs.to_str().unwrap(), "--json"]);
    assert_eq!(
        (r["updated"].as_u64(), r["unchanged"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let old = l.json(&["search", "xylophonic", "--mode", "bm25", "--json"]);
    assert!(hits(&old).is_empty(), "stale chunk still found: {old}");
    let new = l.json(&["search", "quasistellar", "--mode", "bm25", "--json"]);
    assert_eq!(hits(&new).len(), 1);
    l.assert_consistent();

    // rm by source path (relative or absolute), then by id
    let out = l.expect(0, &["rm", "--source", file.to_str().unwrap()]);
    assert!(out.contains("deleted 1"), "{out}");
    let gone = l.json(&["search", "quasistellar", "--mode", "bm25", "--json"]);
    assert!(hits(&gone).is_empty());
    let listed = l.json(&["ls", "--json"]);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    l.expect(0, &["rm", &id]);
    assert_eq!(l.json(&["ls", "--json"]), serde_json::json!([]));
    l.assert_consistent();
    let err = l.stderr_of(3, &["rm", &id]);
    assert!(err.contains("no document"), "{err}");
    l.stderr_of(2, &["rm"]);
}

#[test]
fn search_rejects_bad_requests_with_clear_errors() {
    let l = Lariat::new();
    ingest_sample(&l, "team-roping.md");
    let err = l.stderr_of(2, &["search", "   "]);
    assert!(err.contains("query is empty"), "{err}");
    let err = l.stderr_of(2, &["search", "rope", "-k", "0"]);
    assert!(err.contains("k must be"), "{err}");
    let err = l.stderr_of(3, &["search", "rope", "--collection", "nope"]);
    assert!(err.contains("unknown collection nope"), "{err}");
    let err = l.stderr_of(2, &["search", "rope", "--mode", "fuzzy"]);
    assert!(err.contains("unknown search mode"), "{err}");
    let err = l.stderr_of(2, &["search", "rope", "--collection", "Bad Name"]);
    assert!(err.contains("invalid collection name"), "{err}");
    let err = l.stderr_of(3, &["ls", "--collection", "nope"]);
    assert!(err.contains("unknown collection"), "{err}");
    let err = l.stderr_of(
        2,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "UPPER"],
    );
    assert!(err.contains("invalid collection name"), "{err}");
}

#[test]
fn missing_model_assets_name_the_command_that_fetches_them() {
    let l = Lariat::new().with_env("LARIAT_EMBEDDING__MODEL_DIR", "/nonexistent/model");
    let err = l.stderr_of(5, &["search", "rope"]);
    assert!(err.contains("make setup"), "{err}");
    let l = Lariat::new().with_env(
        "LARIAT_EMBEDDING__ONNXRUNTIME",
        "/nonexistent/libonnxruntime.so",
    );
    let err = l.stderr_of(5, &["ls"]);
    assert!(
        err.contains("make setup") && err.contains("ONNX Runtime"),
        "{err}"
    );
}

#[test]
fn a_collection_built_with_another_model_is_refused_until_reindex() {
    let l = Lariat::new();
    ingest_sample(&l, "steer-wrestling.md");
    // the same model files under another name stand in for a different model
    let assets = l.dir.path().join("model-b");
    std::fs::create_dir_all(&assets).unwrap();
    let out = l.command().args(["check", "--json"]).output().unwrap();
    assert!(out.status.success());
    let source = std::env::var("LARIAT_ASSETS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/lariat/assets")
        });
    let model = source.join("models/all-minilm-l6-v2-q8");
    for f in [
        "model.onnx",
        "tokenizer.json",
        "config.json",
        "special_tokens_map.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(model.join(f), assets.join(f)).unwrap();
    }
    std::fs::write(
        assets.join("lariat-model.toml"),
        "name = \"model-b\"\npooling = \"mean\"\n",
    )
    .unwrap();
    let l = Lariat {
        dir: l.dir,
        env: vec![(
            "LARIAT_EMBEDDING__MODEL_DIR".into(),
            assets.to_str().unwrap().into(),
        )],
    };
    let err = l.stderr_of(4, &["search", "hazer", "--mode", "dense"]);
    assert!(err.contains("lariat reindex"), "{err}");
    let corpus = corpus_dir();
    let err = l.stderr_of(
        4,
        &[
            "ingest",
            corpus.join("team-roping.md").to_str().unwrap(),
            "-c",
            "rodeo",
        ],
    );
    assert!(err.contains("lariat reindex"), "{err}");
    let out = l.expect(0, &["reindex"]);
    assert!(out.contains("reindexed"), "{out}");
    let r = l.json(&["search", "hazer", "--json"]);
    assert!(
        hits(&r)[0]["source"]
            .as_str()
            .unwrap()
            .ends_with("steer-wrestling.md")
    );
    l.assert_consistent();
}

#[test]
fn a_lexical_index_from_another_analyzer_is_rebuilt_when_opened() {
    let l = Lariat::new();
    ingest_sample(&l, "steer-wrestling.md");
    let lexical = l.data_dir().join("lexical");
    let version = lexical.join("analyzer");
    assert!(version.exists(), "the analyzer is recorded with the index");
    // an index an earlier build wrote: other terms (here, none at all) and an older version
    std::fs::remove_dir_all(&lexical).unwrap();
    std::fs::create_dir_all(&lexical).unwrap();
    std::fs::write(&version, "lariat_en/1\n").unwrap();
    let r = l.json(&["search", "hazer", "--mode", "bm25", "--json"]);
    assert!(
        hits(&r)[0]["source"]
            .as_str()
            .unwrap()
            .ends_with("steer-wrestling.md"),
        "{r}"
    );
    assert_ne!(
        std::fs::read_to_string(&version).unwrap().trim(),
        "lariat_en/1"
    );
    l.assert_consistent();
}
