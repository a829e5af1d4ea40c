//! Passages keep their source's Markdown (emphasis, links, lists, tables). Where a passage is
//! shown as text (a citation's snippet, the PDF's appendix, search results) it reads without the
//! marks: `**30 to 35 feet**` is "30 to 35 feet".

use pulldown_cmark::{Event, Options, Parser, TagEnd};

/// Markdown as the text a reader sees: emphasis, code ticks, link targets, heading and list marks
/// and raw HTML gone; each block on a line of its own; a line break inside a paragraph a space.
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let end_line = |out: &mut String| {
        let kept = out.trim_end_matches([' ', '\n']).len();
        out.truncate(kept);
        if !out.is_empty() {
            out.push('\n');
        }
    };
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak | Event::Rule => end_line(&mut out),
            Event::TaskListMarker(done) => out.push_str(if done { "[x] " } else { "[ ] " }),
            Event::End(TagEnd::TableCell) => out.push_str("  "),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::TableRow
                | TagEnd::TableHead
                | TagEnd::BlockQuote(_),
            ) => end_line(&mut out),
            _ => {}
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::plain_text;

    #[test]
    fn markdown_reads_as_text() {
        assert_eq!(
            plain_text(
                "Head ropes are typically **30 to 35 feet** long\n(many use a `31`-foot rope)."
            ),
            "Head ropes are typically 30 to 35 feet long (many use a 31-foot rope)."
        );
        assert_eq!(
            plain_text(
                "## Ropes\n\n- *Head* ropes\n- [Heel](https://x.example/h) ropes\n\n> Quoted<br>\n"
            ),
            "Ropes\nHead ropes\nHeel ropes\nQuoted"
        );
        assert_eq!(
            plain_text("| Rope | Feet |\n|---|---|\n| Head | 30 |\n"),
            "Rope  Feet\nHead  30"
        );
        // raw HTML is not text; its words are
        assert_eq!(plain_text("<script>alert(1)</script>\n\nSafe."), "Safe.");
        assert_eq!(
            plain_text("Plain text, 3 * 4 = 12 and a_b_c."),
            "Plain text, 3 * 4 = 12 and a_b_c."
        );
        assert_eq!(plain_text(""), "");
    }
}
