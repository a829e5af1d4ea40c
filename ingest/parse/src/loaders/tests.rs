use super::*;

#[test]
fn markdown_keeps_heading_paths() {
    let md = "# Roping\nintro\n## Heading\nhead rope\n### Lengths\n35 ft\n## Heeling\nheel rope\n";
    let (title, s) = markdown_sections(md);
    assert_eq!(title.as_deref(), Some("Roping"));
    let paths: Vec<(String, &str)> = s
        .iter()
        .map(|s| (s.location.headings.join(">"), s.text.as_str()))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("".into(), ""),
            ("Roping".into(), "intro"),
            ("Roping>Heading".into(), "head rope"),
            ("Roping>Heading>Lengths".into(), "35 ft"),
            ("Roping>Heeling".into(), "heel rope"),
        ]
    );
}

#[test]
fn html_drops_chrome_and_keeps_lists() {
    let html = "<html><head><title>Rules</title><style>p{}</style></head><body>\
        <nav>Home | About</nav><h1>Barrel racing</h1><p>A timed   event.</p>\
        <h2>Penalties</h2><ul><li>Five seconds per barrel</li><li>No time</li></ul>\
        <script>alert(1)</script><footer>(c)</footer></body></html>";
    let (title, s) = html_sections(html).unwrap();
    assert_eq!(title.as_deref(), Some("Rules"));
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].location.headings, vec!["Barrel racing"]);
    assert_eq!(s[0].text, "A timed event.");
    assert_eq!(s[1].location.headings, vec!["Barrel racing", "Penalties"]);
    assert_eq!(s[1].text, "- Five seconds per barrel\n- No time");
    let all: String = s.iter().map(|s| s.text.clone()).collect();
    assert!(!all.contains("alert") && !all.contains("Home") && !all.contains("(c)"));
}

#[test]
fn deep_html_is_refused_before_parsing_and_deep_but_fine_html_walks_without_recursion() {
    let bomb = format!(
        "<html><body>{}x{}</body></html>",
        "<div>".repeat(200_000),
        "</div>".repeat(200_000)
    );
    let err = load(Path::new("bomb.html"), Format::Html, bomb.as_bytes()).unwrap_err();
    assert!(err.0.contains("nested 200000 elements deep"), "{err}");
    // unclosed, too: the parser would nest them just the same
    assert!(html_nesting_depth(&"<span>".repeat(1_000)) >= 1_000);
    // as deep as allowed: parsed and walked (on a small stack, to prove no recursion)
    let deep = format!(
        "<body>{}deep text{}</body>",
        "<div><b>".repeat(250),
        "</b></div>".repeat(250)
    );
    let sections = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || html_sections(&deep).unwrap().1)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(sections[0].text, "deep text");
}

#[test]
fn nesting_estimate_ignores_what_does_not_nest() {
    let page = "<!-- <div><div> --><p>one<p>two<ul><li>a<li>b</ul><br><img src=x>\
                <script>if (a<b) { '<div><div><div>' }</script><div/><table><tr><td>1<td>2\
                </table><style>div<div{}</style>";
    assert_eq!(
        html_nesting_depth(page),
        1,
        "ul, then table: one level at a time"
    );
    assert_eq!(html_nesting_depth("<div><section><p>x</section></div>"), 2);
    assert_eq!(html_nesting_depth("<<<<a<<b"), 2);
    assert_eq!(html_nesting_depth("</div></div><div>"), 1);
}

#[test]
fn titles_and_heading_paths_are_bounded() {
    let long = "word ".repeat(10_000);
    let md = format!(
        "# {long}\n\n{}\n\ntext\n",
        (1..=6)
            .map(|l| format!("{} {long}\n\nx\n\n", "#".repeat(l)))
            .collect::<String>()
    );
    let docs = load(Path::new("a.md"), Format::Markdown, md.as_bytes()).unwrap();
    assert!(docs[0].title.chars().count() <= MAX_TITLE_CHARS + 1);
    for s in &docs[0].sections {
        assert!(s.location.headings.len() <= MAX_HEADING_PATH);
        assert!(
            s.location
                .headings
                .iter()
                .all(|h| h.chars().count() <= MAX_HEADING_CHARS + 1)
        );
    }
    let html = format!("<title>{long}</title><h1>{long}</h1><p>t</p>");
    let docs = load(Path::new("a.html"), Format::Html, html.as_bytes()).unwrap();
    assert!(docs[0].title.chars().count() <= MAX_TITLE_CHARS + 1);
}

#[test]
fn deep_markdown_loads_without_overflowing_the_stack() {
    for md in [
        ">".repeat(200_000) + " x",
        "- ".repeat(100_000) + "x",
        "[".repeat(100_000) + "x",
        "*".repeat(200_000) + "x",
    ] {
        let _ = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || {
                load(Path::new("a.md"), Format::Markdown, md.as_bytes()).map(|d| d.len())
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
    }
}

#[test]
fn bad_text_files_are_refused_with_a_reason() {
    let p = Path::new("x.txt");
    assert_eq!(load(p, Format::Text, b"").unwrap_err().0, "empty file");
    assert!(
        load(p, Format::Text, b"ab\0cd")
            .unwrap_err()
            .0
            .contains("binary")
    );
    assert!(
        load(p, Format::Text, b"ok \xff\xfe")
            .unwrap_err()
            .0
            .contains("UTF-8")
    );
    assert_eq!(
        load(p, Format::Text, b"  \n ").unwrap_err().0,
        "no text to index"
    );
    assert!(
        load(Path::new("x.pdf"), Format::Pdf, b"hello")
            .unwrap_err()
            .0
            .contains("not a PDF")
    );
    assert!(
        load(Path::new("x.pdf"), Format::Pdf, b"%PDF-1.7 garbage")
            .unwrap_err()
            .0
            .contains("corrupt")
    );
}

#[test]
fn jsonl_names_the_bad_line() {
    let ok = "{\"_id\": \"a\", \"title\": \"T\", \"text\": \"x\"}\n{\"_id\": 7, \"text\": \"y\"}\n";
    let docs = jsonl_documents("c.jsonl", ok).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1].source, "c.jsonl#7");
    // the jsonl fuzz target's finding: a title and no text
    let titled =
        "{\"_id\":\"1\",\"title\":\"Barreels\",\"text\":\" \",\"metadata\":{\"k\":\"v\"}}\n";
    let docs = jsonl_documents("c.jsonl", titled).unwrap();
    assert_eq!(docs[0].sections[0].text, "Barreels");
    let bad = "{\"_id\": \"a\", \"text\": \"x\"}\n{broken\n";
    assert!(
        jsonl_documents("c.jsonl", bad)
            .unwrap_err()
            .0
            .starts_with("line 2:")
    );
    // records with nothing in them are left out (a null or missing text is none)
    let empty = "{\"_id\": \"a\", \"title\": \"\", \"text\": \"\"}\n{\"_id\": \"b\", \"text\": null}\n\
                 {\"_id\": \"c\"}\n{\"_id\": \"d\", \"text\": \"kept\"}\n";
    let docs = jsonl_documents("c.jsonl", empty).unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].source, "c.jsonl#d");
    assert_eq!(
        jsonl_documents("c.jsonl", "{\"_id\": \"a\", \"text\": \" \"}\n")
            .unwrap_err()
            .0,
        "no records"
    );
    let dup = "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"a\", \"text\": \"y\"}\n";
    assert!(
        jsonl_documents("c.jsonl", dup)
            .unwrap_err()
            .0
            .contains("duplicate")
    );
}
