//! Turning untrusted text into HTML: an answer's Markdown, rendered and then sanitised, its `[n]`
//! markers made into citation chips; and a passage with the query's words marked.

use std::fmt::Write;

use askama::filters::Escaper;

/// Private-use characters that bracket an unsupported sentence through rendering and sanitising.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// An answer's Markdown as sanitised HTML (no script, style, event handler or foreign frame can
/// survive `ammonia`), with each `[n]` that names one of `cited` as a button for source `n`, and
/// each of the `unsupported` sentences inside `<mark class=unsupported>`.
pub fn answer_html(markdown: &str, cited: &[usize], unsupported: &[&str]) -> String {
    let is_sentinel = |c: char| c == OPEN || c == CLOSE;
    let mut source: String = markdown.chars().filter(|c| !is_sentinel(*c)).collect();
    for sentence in unsupported {
        let sentence: String = sentence.chars().filter(|c| !is_sentinel(*c)).collect();
        if let Some(at) = source.find(&sentence).filter(|_| !sentence.is_empty()) {
            source.insert(at + sentence.len(), CLOSE);
            source.insert(at, OPEN);
        }
    }
    marks(&chips(&markdown_html(&source), cited))
}

/// Markdown (an answer's, a passage's) as sanitised HTML: no script, style, event handler,
/// foreign frame or image survives.
pub fn markdown_html(markdown: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_TABLES);
    let mut raw = String::new();
    pulldown_cmark::html::push_html(&mut raw, parser);
    // no images either: an answer that quotes a document's <img> must not fetch anything
    ammonia::Builder::default()
        .rm_tags(["img"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&raw)
        .to_string()
}

/// Each sentinel pair as a `<mark>` when it brackets inline content only (a sentence the
/// Markdown split across blocks loses its mark rather than unbalance the page). The tag has no
/// quote, so even a pair that landed inside an attribute's value cannot end it.
fn marks(html: &str) -> String {
    const BLOCKS: [&str; 12] = [
        "<p", "</p", "<li", "</li", "<h", "</h", "<t", "</t", "<ul", "</ul", "<ol", "</ol",
    ];
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len_utf8()..];
        match after.find(CLOSE) {
            Some(end) if !after[..end].contains(OPEN) => {
                let inner = &after[..end];
                if BLOCKS.iter().any(|b| inner.contains(b)) {
                    out.push_str(inner);
                } else {
                    out.push_str("<mark class=unsupported>");
                    out.push_str(inner);
                    out.push_str("</mark>");
                }
                rest = &after[end + CLOSE.len_utf8()..];
            }
            _ => rest = after,
        }
    }
    out.push_str(rest);
    out.replace(CLOSE, "")
}

/// `[n]` → a chip, for the numbers in `cited`; other brackets stay as they are.
fn chips(html: &str, cited: &[usize]) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let n = after[..digits].parse::<usize>().ok();
        match n {
            Some(n) if after[digits..].starts_with(']') && cited.contains(&n) => {
                let _ = write!(
                    out,
                    r#"<button type="button" class="cite" data-n="{n}" aria-label="Source {n}">{n}</button>"#
                );
                rest = &after[digits + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escaped text with the query's words (3 letters or more, any case) inside `<mark>`.
pub fn highlight(text: &str, query: &str) -> String {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    let mut out = String::with_capacity(text.len() + 32);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        let lower = word.to_lowercase();
        let hit = words.iter().any(|w| lower.starts_with(w.as_str()));
        if hit {
            out.push_str("<mark>");
        }
        let _ = askama::filters::Html.write_escaped_str(&mut *out, word);
        if hit {
            out.push_str("</mark>");
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            let _ = askama::filters::Html.write_escaped_char(&mut out, c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// A time (ms since the epoch) as its UTC date, `2026-12-02`.
pub fn date(ms: &i64) -> String {
    let (y, m, d) = base::time::civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2026-12-02 08:47:05` (UTC) for Unix milliseconds.
pub fn datetime(ms: &i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02}",
        date(ms),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
