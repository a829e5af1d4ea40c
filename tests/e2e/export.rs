//! Conversations taken away over HTTP and the CLI: PDF, Markdown and JSON, for their owner
//! only; the PDF read back with poppler's `pdftotext`.

use serde_json::{Value, json};

use crate::serve::{Api, Server};
use crate::support::{Lariat, corpus_dir};

fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn conversations_export_as_pdf_markdown_and_json_for_their_owner_only() {
    let l = Lariat::new();
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    let server = Server::start(&l);
    let api = Api::new(&server);
    let ann = api.user("ann@example.com").await;
    let bob = api.user("bob@example.com").await;

    let question = "How long is a heading rope?";
    let id = api.ask(&ann, question).await;
    let (_, conversation) = api
        .get(&format!("/api/conversations/{id}"), Some(&ann))
        .await;
    let answer = &conversation["messages"][1];
    let cited = answer["citations"].as_array().unwrap();
    assert!(!cited.is_empty(), "{answer}");

    let get = |format: &str, token: Option<&str>| {
        let mut req = api.client.get(format!(
            "{}/api/conversations/{id}/export?format={format}",
            api.base
        ));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };

    let pdf = get("pdf", Some(&ann)).await.unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let disposition = pdf.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"lariat-how-long-is-a-heading-rope-")
            && disposition.ends_with(".pdf\""),
        "{disposition}"
    );
    let text = squeeze(&pdf_text(&pdf.bytes().await.unwrap()));
    assert!(text.contains(&squeeze(question)), "{text}");
    for c in cited {
        for field in ["title", "chunk_id"] {
            let wanted = squeeze(c[field].as_str().unwrap());
            assert!(
                text.contains(&wanted),
                "{field} {wanted} missing from {text}"
            );
        }
        // the passage itself, as far as its first words, read as text (no Markdown marks)
        let plain = c["text"].as_str().unwrap().replace("**", "");
        let start: String = squeeze(&plain).chars().take(40).collect();
        assert!(text.contains(&start), "{start} missing from {text}");
    }
    assert!(!text.contains("**"), "Markdown marks in {text}");

    let md = get("md", Some(&ann)).await.unwrap();
    assert_eq!(md.headers()["content-type"], "text/markdown; charset=utf-8");
    let md = md.text().await.unwrap();
    assert!(md.contains(question) && md.contains("## Sources"), "{md}");
    assert!(md.contains(cited[0]["chunk_id"].as_str().unwrap()), "{md}");

    let json: Value = get("json", Some(&ann)).await.unwrap().json().await.unwrap();
    assert_eq!(json, conversation);

    // another user, nobody, a bad format, an unknown conversation
    assert_eq!(get("pdf", Some(&bob)).await.unwrap().status(), 404);
    assert_eq!(get("pdf", None).await.unwrap().status(), 401);
    let bad = get("docx", Some(&ann)).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("format"));
    let (s, _) = api.get("/api/conversations/nope/export", Some(&ann)).await;
    assert_eq!(s, 404);

    // the CLI, as the owner through an API key
    let (s, key) = api
        .post("/api/keys", Some(&ann), json!({"name": "cli"}))
        .await;
    assert_eq!(s, 201, "{key}");
    drop(server);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("talk.md");
    let file = file.to_str().unwrap();
    let nobody = l.expect(3, &["export", &id, "--format", "md", "-o", file]);
    assert!(nobody.is_empty());
    let l = l.with_env("LARIAT_API_KEY", key["key"].as_str().unwrap());
    l.expect(0, &["export", &id, "--format", "md", "-o", file]);
    assert!(std::fs::read_to_string(file).unwrap().contains(question));
    // an existing file is kept unless --force
    let refused = l.run(&["export", &id, "-o", file]);
    assert_ne!(refused.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert!(std::fs::read_to_string(file).unwrap().contains(question));
    l.expect(0, &["export", &id, "-o", file, "--force"]);
    assert!(std::fs::read(file).unwrap().starts_with(b"%PDF-"));
    let stdout = l.run(&["export", &id, "-f", "json", "-o", "-"]);
    let value: Value = serde_json::from_slice(&stdout.stdout).unwrap();
    assert_eq!(value, conversation);
    l.expect(2, &["export", &id, "-f", "docx"]);
}
