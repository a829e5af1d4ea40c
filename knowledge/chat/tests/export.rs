//! Conversations exported as PDF, Markdown and JSON, read back the way their readers read them:
//! pdf-extract, and poppler's `pdftotext`, `pdfinfo` and `pdffonts` (Debian's poppler-utils,
//! installed by `make test-deps`).

use std::process::Command;

use base::types::AnswerStatus;
use chat::Conversation;
use chat::answer::Citation;
use chat::export::{ExportFormat, Exported, render};
use chat::store::{ConversationSummary, Speaker, StoredMessage};
use serde_json::{Value, json};

const T0: i64 = 1_796_300_000_000;

/// A citation as the chat streams it (and the `citations` event's JSON reads).
fn source(n: usize, title: &str, text: &str) -> Citation {
    serde_json::from_value(json!({
        "n": n,
        "score": 0.5,
        "snippet": text.chars().take(40).collect::<String>(),
        "chunk_id": format!("chunk-{n}-{}", title.len()),
        "document_id": format!("doc-{}", title.len()),
        "collection": "rodeo",
        "title": title,
        "source": format!("{title}.md"),
        "location": "Rules > Timing",
        "location_detail": {"headings": ["Rules", "Timing"]},
        "text": text,
    }))
    .unwrap()
}

fn conversation(title: &str, turns: &[(&str, Vec<Citation>)]) -> Conversation {
    let messages = turns
        .iter()
        .enumerate()
        .map(|(i, (text, sources))| {
            let role = if i % 2 == 0 {
                Speaker::User
            } else {
                Speaker::Assistant
            };
            StoredMessage {
                seq: i as i64,
                citations: sources.clone(),
                model: (role == Speaker::Assistant).then(|| "test-model".to_owned()),
                created_at: T0 + i as i64 * 1000,
                ..StoredMessage::new(role, text, AnswerStatus::Complete)
            }
        })
        .collect();
    Conversation {
        summary: ConversationSummary {
            id: "0b7c2a9e-test".into(),
            title: title.into(),
            collections: vec!["rodeo".into()],
            created_at: T0,
            updated_at: T0,
        },
        messages,
    }
}

async fn export(c: &Conversation, format: ExportFormat) -> Exported {
    render(c.clone(), format, T0 + 3_600_000).await.unwrap()
}

/// Runs a poppler tool on the PDF and returns what it printed.
fn poppler(tool: &str, args: &[&str], pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new(tool)
        .args(args)
        .arg(&path)
        .args(if tool == "pdftotext" {
            &["-"][..]
        } else {
            &[][..]
        })
        .output()
        .unwrap_or_else(|e| panic!("{tool} (poppler-utils) must be installed: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{tool} failed: {stderr}");
    assert!(!stderr.contains("Syntax Error"), "{tool}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// The page count pdfinfo reads.
fn pages_of(pdf: &[u8]) -> usize {
    poppler("pdfinfo", &[], pdf)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap()
}

/// Text as both readers see it, with whitespace (line wrapping) folded away.
fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

#[tokio::test]
async fn pdf_holds_every_message_marker_and_source_in_an_embedded_unicode_font() {
    let c = conversation(
        "Rigging <rules> & timing",
        &[
            (
                "How long is a bareback ride? Сколько длится? Πόσο διαρκεί; Combien de temps ?",
                vec![],
            ),
            (
                "A ride lasts **eight seconds** [1]. The judges score it out of 100 [2].\n\n\
                 | Event | Time |\n|---|---|\n| Bareback | 8 s |\n\n\
                 ```\nscore = rider + animal\n```",
                vec![
                    source(
                        1,
                        "Timing rules",
                        "Each ride is timed for eight seconds from the nod.",
                    ),
                    source(
                        2,
                        "Scoring",
                        "Two judges score rider and animal, up to 50 points each.",
                    ),
                ],
            ),
            ("And in Japanese? 日本語では？", vec![]),
            ("I don't know.", vec![]),
        ],
    );
    let pdf = export(&c, ExportFormat::Pdf).await;
    assert_eq!(pdf.format, ExportFormat::Pdf);
    assert!(
        pdf.filename.ends_with(".pdf") && pdf.filename.is_ascii(),
        "{}",
        pdf.filename
    );
    assert!(pdf.bytes.starts_with(b"%PDF-"));

    let extracted = pdf_extract::extract_text_from_mem(&pdf.bytes).unwrap();
    let poppler_text = poppler("pdftotext", &["-enc", "UTF-8"], &pdf.bytes);
    for text in [squeeze(&extracted), squeeze(&poppler_text)] {
        for wanted in [
            "Rigging<rules>&timing",
            "Howlongisabarebackride?",
            "Сколькодлится?",
            "Πόσοδιαρκεί;",
            "Combiendetemps?",
            "Aridelastseightseconds[1].",
            "outof100[2].",
            "Event:Bareback;Time:8s",
            "score=rider+animal",
            "Sources:[1]→2.1,[2]→2.2",
            "2.1TimingrulesRules>Timing",
            "Eachrideistimedforeightsecondsfromthenod.",
            "2.2Scoring",
            "chunkchunk-2-7·documentdoc-7",
            "collectionrodeo",
            "Twojudgesscoreriderandanimal,upto50pointseach.",
            "Andin",
            "Idon'tknow.",
            "page1of2",
        ] {
            assert!(text.contains(wanted), "{wanted:?} missing from {text}");
        }
        // the CJK characters the font lacks are visible placeholders, not lost or garbage
        assert!(text.contains("Japanese?\u{FFFD}\u{FFFD}\u{FFFD}"), "{text}");
    }

    let info = poppler("pdfinfo", &[], &pdf.bytes);
    assert!(
        info.lines()
            .any(|l| l.starts_with("Pages:") && l.ends_with(" 2")),
        "{info}"
    );
    assert!(info.contains("Rigging <rules> & timing"), "{info}");
    // name, type, encoding, emb, sub, uni: every font embedded and Unicode-mapped
    let fonts = poppler("pdffonts", &[], &pdf.bytes);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "{fonts}");
    for row in rows {
        assert!(row.contains("DejaVuSans"), "{fonts}");
        let cols: Vec<&str> = row.split_whitespace().collect();
        let n = cols.len();
        assert_eq!(cols[n - 5], "yes", "embedded: {fonts}");
        assert_eq!(cols[n - 3], "yes", "Unicode map: {fonts}");
    }
}

#[tokio::test]
async fn long_conversations_and_unbreakable_words_make_valid_files() {
    let word = "ж".repeat(3_000) + &"x".repeat(7_000);
    let answer = format!(
        "Here is the word [1]: {word}\n\n```\n{}\n```",
        "y".repeat(2_000)
    );
    let c = conversation(
        "One long word",
        &[
            ("Spell it out", vec![]),
            (answer.as_str(), vec![source(1, "Word", &word)]),
        ],
    );
    let pdf = export(&c, ExportFormat::Pdf).await;
    let mut text = squeeze(&poppler("pdftotext", &["-enc", "UTF-8"], &pdf.bytes));
    // the footers of the pages the word runs over come between its lines
    let pages = pages_of(&pdf.bytes);
    for page in 1..=pages {
        text = text.replace(&format!("Onelongword—page{page}of{pages}"), "");
    }
    // every character arrives, in order, across as many lines as it takes
    let longest = |c: char| {
        text.split(|x| x != c)
            .map(|run| run.chars().count())
            .max()
            .unwrap_or(0)
    };
    assert!(
        text.contains(&word),
        "the long word is broken or lost: runs of {} ж and {} x",
        longest('ж'),
        longest('x')
    );
    assert!(text.contains(&"y".repeat(2_000)));

    let turns: Vec<(String, Vec<Citation>)> = (0..500)
        .map(|i| {
            if i % 2 == 0 {
                (
                    format!("Question number {i}: what about event {i}?"),
                    vec![],
                )
            } else {
                (
                    format!("Answer number {i} cites its source [1] and says more about it."),
                    vec![source(
                        1,
                        &format!("Source {i}"),
                        &format!("Passage text of source {i}."),
                    )],
                )
            }
        })
        .collect();
    let refs: Vec<(&str, Vec<Citation>)> =
        turns.iter().map(|(t, s)| (t.as_str(), s.clone())).collect();
    let c = conversation("Five hundred messages", &refs);
    let pdf = export(&c, ExportFormat::Pdf).await;
    let pages = pages_of(&pdf.bytes);
    eprintln!(
        "500-message export: {pages} pages, {} bytes",
        pdf.bytes.len()
    );
    let text = squeeze(&poppler("pdftotext", &["-enc", "UTF-8"], &pdf.bytes));
    for i in [0, 1, 250, 251, 498, 499] {
        let said = if i % 2 == 0 {
            format!("Questionnumber{i}:")
        } else {
            format!("Answernumber{i}citesitssource[1]")
        };
        assert!(text.contains(&said), "{said}");
    }
    assert!(
        text.contains("500.1SourceSource499") || text.contains("500.1Source499"),
        "the last source"
    );
    assert!(text.contains("Passagetextofsource499."));
    assert!(text.contains(&format!("page{pages}of{pages}")));
}

#[tokio::test]
async fn markdown_and_json_carry_the_same_content() {
    let c = conversation(
        "Timing",
        &[
            ("How long is a ride?", vec![]),
            (
                "Eight seconds [1].",
                vec![source(
                    1,
                    "Timing rules",
                    "Each ride is timed for eight seconds.\nFrom the nod.",
                )],
            ),
        ],
    );
    let md = export(&c, ExportFormat::Md).await;
    assert!(md.filename.ends_with(".md"));
    let md = String::from_utf8(md.bytes).unwrap();
    for wanted in [
        "# Timing\n",
        "## 1. You — 2026-12-03 12:13 UTC",
        "How long is a ride?",
        "## 2. Lariat (test-model) — 2026-12-03 12:13 UTC",
        "Eight seconds [1].",
        "*Sources: [1] → 2.1*",
        "## Sources",
        "### 2.1 Timing rules",
        "Rules > Timing · Timing rules.md · collection rodeo",
        "chunk chunk-1-12 · document doc-12",
        "> Each ride is timed for eight seconds.\n> From the nod.",
    ] {
        assert!(md.contains(wanted), "{wanted:?} missing from\n{md}");
    }
    let json = export(&c, ExportFormat::Json).await;
    let value: Value = serde_json::from_slice(&json.bytes).unwrap();
    assert_eq!(value, serde_json::to_value(&c).unwrap());
    assert_eq!(
        value["messages"][1]["citations"][0]["chunk_id"],
        "chunk-1-12"
    );
}

#[tokio::test]
async fn the_markdown_export_carries_no_live_html_or_link_from_ingested_text_or_answers() {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let hostile = "Ropes <img src=x onerror=alert(1)> and [click me](javascript:alert(2)).\n\
                   <script>alert(3)</script>\n\
                   See <https://evil.example/a> or ![pixel](https://evil.example/p.png).\n\
                   [outer [inner](https://evil.example/i)](https://evil.example/o)\n\
                   [ref]\n\n[ref]: https://evil.example/r";
    let c = conversation(
        "Ropes [x](https://evil.example/t) <b>bold</b>",
        &[
            ("What about <iframe src=//evil.example>?", vec![]),
            (
                "Use a **rope** [1]. <a href=\"https://evil.example/m\">more</a> \
                 [docs](https://evil.example/d)",
                vec![source(
                    1,
                    "<img src=x> [t](https://evil.example/s)",
                    hostile,
                )],
            ),
        ],
    );
    let md = String::from_utf8(export(&c, ExportFormat::Md).await.bytes).unwrap();
    // read as a Markdown renderer reads it
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut seen = String::new();
    for event in Parser::new_ext(&md, options) {
        match event {
            Event::Html(h) | Event::InlineHtml(h) => panic!("live HTML {h:?} in\n{md}"),
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                panic!("a live link to {dest_url} in\n{md}")
            }
            Event::Text(t) | Event::Code(t) => seen.push_str(&t),
            _ => {}
        }
    }
    // the words are all still there for the reader, as text
    for text in [
        "<img src=x onerror=alert(1)>",
        "[click me](javascript:alert(2))",
        "<script>alert(3)</script>",
        "<https://evil.example/a>",
        "[inner](https://evil.example/i)",
        "<iframe src=//evil.example>",
        "[docs](https://evil.example/d)",
        "[x](https://evil.example/t)",
    ] {
        assert!(seen.contains(text), "{text:?} missing from {seen:?}");
    }
    // what was harmless is left as written
    assert!(md.contains("Use a **rope** [1]."), "{md}");
}
