//! An answer's Markdown as plain blocks a page can set: paragraphs, headings, list items, quotes,
//! code kept line by line, and tables turned into one readable line per row ("Header: value;
//! …"). Emphasis is dropped, links keep their address, images their description.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Paragraph(String),
    Heading(String),
    /// A list item at a depth (1 = top level), with its bullet or number.
    Item {
        depth: usize,
        marker: String,
        text: String,
    },
    Quote(String),
    /// Code, line breaks kept.
    Code(String),
}

/// The blocks of `markdown`, in order.
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut text = String::new();
    // per open list: the next number (None: bullets)
    let mut lists: Vec<Option<u64>> = Vec::new();
    // the open list items, innermost last: depth and the marker its first block still shows
    let mut items: Vec<(usize, String)> = Vec::new();
    let mut quote = 0usize;
    let mut code: Option<String> = None;
    let mut table: Option<Table> = None;
    let mut link: Vec<String> = Vec::new();

    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => {
                flush(&mut out, &mut text, &mut items, quote);
                code = Some(String::new());
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(body) = code.take() {
                    out.push(Block::Code(body.trim_end_matches('\n').to_owned()));
                }
            }
            Event::Text(t) | Event::Code(t) if code.is_some() => {
                code.as_mut().expect("checked").push_str(&t);
            }
            Event::Start(Tag::Table(_)) => {
                flush(&mut out, &mut text, &mut items, quote);
                table = Some(Table::default());
            }
            Event::End(TagEnd::TableCell) => {
                if let Some(t) = table.as_mut() {
                    t.row.push(std::mem::take(&mut text).trim().to_owned());
                }
            }
            Event::End(TagEnd::TableHead) => {
                if let Some(t) = table.as_mut() {
                    t.head = std::mem::take(&mut t.row);
                }
            }
            Event::End(TagEnd::TableRow) => {
                if let Some(t) = table.as_mut() {
                    let row = std::mem::take(&mut t.row);
                    out.push(Block::Item {
                        depth: 1,
                        marker: "•".to_owned(),
                        text: t.line(row),
                    });
                }
            }
            Event::End(TagEnd::Table) => table = None,
            Event::Start(Tag::List(start)) => {
                flush(&mut out, &mut text, &mut items, quote);
                lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                flush(&mut out, &mut text, &mut items, quote);
                lists.pop();
            }
            Event::Start(Tag::Item) => {
                flush(&mut out, &mut text, &mut items, quote);
                let marker = match lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}.", *n - 1)
                    }
                    _ => "•".to_owned(),
                };
                items.push((lists.len().max(1), marker));
            }
            Event::End(TagEnd::Item) => {
                flush(&mut out, &mut text, &mut items, quote);
                items.pop();
            }
            Event::Start(Tag::BlockQuote(_)) => {
                flush(&mut out, &mut text, &mut items, quote);
                quote += 1;
            }
            Event::End(TagEnd::BlockQuote(_)) => {
                flush(&mut out, &mut text, &mut items, quote);
                quote = quote.saturating_sub(1);
            }
            Event::End(TagEnd::Heading(_)) => {
                let heading = std::mem::take(&mut text).trim().to_owned();
                if !heading.is_empty() {
                    out.push(Block::Heading(heading));
                }
            }
            Event::End(TagEnd::Paragraph) => {
                if items.is_empty() {
                    flush(&mut out, &mut text, &mut items, quote);
                } else {
                    text.push(' ');
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => link.push(dest_url.to_string()),
            Event::End(TagEnd::Link) => {
                if let Some(url) = link.pop()
                    && !url.is_empty()
                    && !text.ends_with(url.as_str())
                {
                    text.push_str(&format!(" ({url})"));
                }
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                text.push_str(&t);
            }
            Event::Html(t) | Event::InlineHtml(t) => text.push_str(&t),
            Event::SoftBreak => text.push(' '),
            Event::HardBreak => flush(&mut out, &mut text, &mut items, quote),
            Event::Rule => {
                flush(&mut out, &mut text, &mut items, quote);
                out.push(Block::Paragraph("———".to_owned()));
            }
            Event::TaskListMarker(done) => text.push_str(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(name) => text.push_str(&format!("[^{name}]")),
            _ => {}
        }
    }
    flush(&mut out, &mut text, &mut items, quote);
    out
}

/// Ends the text gathered so far as the block it belongs to.
fn flush(out: &mut Vec<Block>, text: &mut String, items: &mut [(usize, String)], quote: usize) {
    let body = std::mem::take(text).trim().to_owned();
    if body.is_empty() {
        return;
    }
    out.push(match items.last_mut() {
        // an item's later paragraphs continue under the same marker, unmarked
        Some((depth, marker)) => Block::Item {
            depth: *depth,
            marker: std::mem::take(marker),
            text: body,
        },
        None if quote > 0 => Block::Quote(body),
        None => Block::Paragraph(body),
    });
}

#[derive(Default)]
struct Table {
    head: Vec<String>,
    row: Vec<String>,
}

impl Table {
    /// A row as "Header: value; Header: value" (cells without a header, or headers left empty,
    /// print the value alone).
    fn line(&self, row: Vec<String>) -> String {
        row.into_iter()
            .enumerate()
            .filter(|(_, cell)| !cell.is_empty())
            .map(
                |(i, cell)| match self.head.get(i).filter(|h| !h.is_empty()) {
                    Some(head) => format!("{head}: {cell}"),
                    None => cell,
                },
            )
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_lists_code_and_tables() {
        let md = "Intro with **bold** and a [link](https://example.com) [1].\n\n\
                  - first [2]\n- second\n  1. inner\n\n\
                  ```\nfn main() {\n    x();\n}\n```\n\n\
                  | Event | Prize |\n|---|---|\n| Roping | $500 |\n| Barrels | |\n\n\
                  > quoted\n";
        let b = blocks(md);
        assert_eq!(
            b[0],
            Block::Paragraph("Intro with bold and a link (https://example.com) [1].".into())
        );
        assert_eq!(
            b[1],
            Block::Item {
                depth: 1,
                marker: "•".into(),
                text: "first [2]".into()
            }
        );
        assert!(b.contains(&Block::Item {
            depth: 2,
            marker: "1.".into(),
            text: "inner".into()
        }));
        assert!(b.contains(&Block::Code("fn main() {\n    x();\n}".into())));
        assert!(b.contains(&Block::Item {
            depth: 1,
            marker: "•".into(),
            text: "Event: Roping; Prize: $500".into()
        }));
        assert!(b.contains(&Block::Item {
            depth: 1,
            marker: "•".into(),
            text: "Event: Barrels".into()
        }));
        assert_eq!(b.last(), Some(&Block::Quote("quoted".into())));
    }

    #[test]
    fn markers_html_and_empty_input_survive() {
        assert_eq!(blocks("[1]"), vec![Block::Paragraph("[1]".into())]);
        assert_eq!(
            blocks("See [1][2]."),
            vec![Block::Paragraph("See [1][2].".into())]
        );
        assert_eq!(
            blocks("<b>x</b> y"),
            vec![Block::Paragraph("<b>x</b> y".into())]
        );
        assert!(blocks("").is_empty());
        assert!(blocks("   \n\n").is_empty());
        assert_eq!(blocks("| a |\n|---|\n"), vec![]);
    }
}
