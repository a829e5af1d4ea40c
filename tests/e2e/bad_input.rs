use crate::support::{Lariat, hits};

/// A PDF whose trailer names an encryption dictionary it cannot be opened without.
const ENCRYPTED_PDF: &[u8] = b"%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >> endobj
4 0 obj << /Length 44 >> stream
BT /F1 12 Tf 72 712 Td (Secret text) Tj ET
endstream endobj
5 0 obj << /Filter /Standard /V 1 /R 2 /O (0123456789abcdef0123456789abcdef) /U (0123456789abcdef0123456789abcdef) /P -44 >> endobj
trailer << /Root 1 0 R /Encrypt 5 0 R /ID [(abc) (abc)] /Size 6 >>
%%EOF
";

#[test]
fn bad_files_are_reported_with_reasons_and_the_rest_is_ingested() {
    let l = Lariat::new().with_env("LARIAT_INGEST__MAX_FILE_BYTES", "1000");
    let dir = l.dir.path().join("in");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "good.md",
            b"# Good\n\nHeading ropes are about thirty feet.".to_vec(),
            "",
        ),
        (
            "corrupt.pdf",
            b"%PDF-1.7\n garbage that is no PDF".to_vec(),
            "PDF",
        ),
        ("encrypted.pdf", ENCRYPTED_PDF.to_vec(), "PDF"),
        ("fake.pdf", b"plain text pretending".to_vec(), "not a PDF"),
        (
            "binary.txt",
            vec![0x7f, b'E', b'L', b'F', 0, 0, 1, 2],
            "binary",
        ),
        ("empty.md", Vec::new(), "empty file"),
        (
            "blank.html",
            b"<html><body><script>x()</script></body></html>".to_vec(),
            "no text",
        ),
        ("latin1.txt", b"caf\xe9 cr\xe8me".to_vec(), "UTF-8"),
        ("sub/big.txt", "rodeo ".repeat(400).into_bytes(), "limit"),
        (
            "notes.docx",
            b"PK\x03\x04".to_vec(),
            "unsupported file type .docx",
        ),
        (
            "broken.jsonl",
            b"{\"_id\": \"1\", \"text\": \"ok\"}\n{not json\n".to_vec(),
            "line 2",
        ),
    ];
    for (name, bytes, _) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    std::fs::write(dir.join(".hidden.md"), "# Hidden\n\nnever ingested").unwrap();
    let missing = l.dir.path().join("does-not-exist");

    let out = l.run(&[
        "ingest",
        dir.to_str().unwrap(),
        missing.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["added"], 1, "{report}");
    assert_eq!(report["failed"], files.len(), "{report}");
    let failures = report["failures"].as_array().unwrap();
    for (name, _, reason) in files.iter().skip(1) {
        let f = failures
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported: {report}"));
        let got = f["reason"].as_str().unwrap();
        assert!(got.contains(reason), "{name}: {got}");
    }
    assert!(
        failures
            .iter()
            .any(|f| f["path"].as_str().unwrap().ends_with("does-not-exist"))
    );
    let r = l.json(&["search", "heading ropes", "--json"]);
    assert_eq!(hits(&r).len(), 1);
    assert!(
        l.json(&["search", "hidden", "--mode", "bm25", "--json"])["hits"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    l.assert_consistent();

    // the human summary names each failure too
    let out = l.run(&["ingest", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 unchanged") && text.contains("failed: "),
        "{text}"
    );
}

#[test]
fn bad_configuration_is_refused_before_anything_runs() {
    let l = Lariat::new().with_env("LARIAT_RETRIEVAL__CANDIDATES", "many");
    let err = l.stderr_of(2, &["ls"]);
    assert!(err.contains("candidates"), "{err}");
    let l = Lariat::new();
    let cfg = l.dir.path().join("bad.toml");
    std::fs::write(&cfg, "[chunking]\nmax_tokens = 8\n").unwrap();
    let err = l.stderr_of(2, &["--config", cfg.to_str().unwrap(), "ls"]);
    assert!(err.contains("max_tokens"), "{err}");
    let l = Lariat::new().with_env("LARIAT_CHAT__PREPARING", "100000");
    let err = l.stderr_of(2, &["ls"]);
    assert!(err.contains("chat.preparing"), "{err}");
    // a source budget too small to hold a sentence, or past the context
    for tokens in ["8", "5000"] {
        let l = Lariat::new().with_env("LARIAT_LLM__LOCAL__SOURCE_TOKENS", tokens);
        let err = l.stderr_of(2, &["ls"]);
        assert!(err.contains("source_tokens"), "{tokens}: {err}");
    }
    let l = Lariat::new();
    let cfg = l.dir.path().join("provider.toml");
    std::fs::write(
        &cfg,
        "[[llm.providers]]\nname = \"p\"\napi = \"openai\"\nmodel = \"m\"\nsource_tokens = 16\n",
    )
    .unwrap();
    let err = l.stderr_of(2, &["--config", cfg.to_str().unwrap(), "ls"]);
    assert!(err.contains("llm provider p: source_tokens"), "{err}");
}
