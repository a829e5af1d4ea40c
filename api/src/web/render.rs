//! Turning untrusted text into HTML: an answer's Markdown, rendered and then sanitised, its `[n]`
//! markers made into citation chips; and a passage with the query's words marked.

use std::fmt::Write;

use askama::filters::Escaper;

/// An answer's Markdown as sanitised HTML (no script, style, event handler or foreign frame can
/// survive `ammonia`), with each `[n]` that names one of `cited` as a button for source `n`.
pub fn answer_html(markdown: &str, cited: &[usize]) -> String {
    let parser = pulldown_cmark::Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_TABLES);
    let mut raw = String::new();
    pulldown_cmark::html::push_html(&mut raw, parser);
    // no images either: an answer that quotes a document's <img> must not fetch anything
    let clean = ammonia::Builder::default()
        .rm_tags(["img"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&raw)
        .to_string();
    chips(&clean, cited)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_lose_active_content_and_keep_their_citations() {
        let html = answer_html(
            "**Bareback** riders hold a rigging [1]. <script>alert(1)</script>\n\n\
             <img src=x onerror=alert(2)> [2] [9] [x]",
            &[1, 2],
        );
        assert!(html.contains("<strong>Bareback</strong>"), "{html}");
        assert!(
            !html.contains("<script") && !html.contains("onerror"),
            "{html}"
        );
        assert!(
            html.contains(r#"data-n="1""#) && html.contains(r#"data-n="2""#),
            "{html}"
        );
        assert!(html.contains("[9]") && html.contains("[x]"), "{html}");
    }

    #[test]
    fn highlighting_escapes_everything_but_its_marks() {
        let out = highlight("<b>Rigging</b> & riggings", "rigging");
        assert_eq!(
            out,
            "&#60;b&#62;<mark>Rigging</mark>&#60;/b&#62; &#38; <mark>riggings</mark>"
        );
    }
}
