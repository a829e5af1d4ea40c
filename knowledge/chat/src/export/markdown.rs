//! The Markdown export: the same content as the PDF — title, dates, each turn with who spoke,
//! answers as they were written (their `[n]` markers included), then every cited passage under
//! "Sources", referenced as `turn.n` with its chunk id. Everything that came from a model or from
//! ingested text is made inert first: no raw HTML and no link survives into the file, whatever
//! renders it (see [`inert`]).

use std::fmt::Write;
use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag};

use super::{Transcript, ids, place};
use base::types::format_time;

pub(super) fn render(t: &Transcript) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", inert(&one_line(&t.title)));
    let _ = writeln!(
        out,
        "Conversation started {}, {} messages; exported from Lariat {}.\n",
        format_time(t.created_at),
        t.turns.len(),
        format_time(t.exported_at)
    );
    for turn in &t.turns {
        let _ = writeln!(
            out,
            "## {}. {} — {}\n",
            turn.number,
            turn.speaker,
            format_time(turn.at)
        );
        let _ = writeln!(out, "{}\n", inert(turn.text.trim_end()));
        if let Some(note) = turn.stopped_note() {
            let _ = writeln!(out, "*{note}*\n");
        }
        if !turn.sources.is_empty() {
            let _ = writeln!(out, "*{}*\n", turn.source_line());
        }
    }
    if t.turns.iter().any(|turn| !turn.sources.is_empty()) {
        out.push_str("## Sources\n\n");
        for turn in &t.turns {
            for s in &turn.sources {
                let _ = writeln!(
                    out,
                    "### {} {}\n",
                    turn.reference(s.n),
                    inert(&one_line(if s.passage.title.is_empty() {
                        &s.passage.chunk_id
                    } else {
                        &s.passage.title
                    }))
                );
                let place = place(&s.passage);
                if !place.is_empty() {
                    let _ = writeln!(out, "{}  ", inert(&one_line(&place)));
                }
                let _ = writeln!(out, "{}\n", ids(&s.passage));
                for line in inert(&s.passage.text).lines() {
                    let _ = writeln!(out, "> {line}");
                }
                out.push('\n');
            }
        }
    }
    out
}

/// Text that must stay on one line of Markdown (a heading, a title).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` as Markdown with nothing a renderer would turn into HTML or a link: in each stretch
/// that parses as raw HTML, a link, an image or an autolink, `<` and `>` become entities and the
/// brackets are escaped. A reader sees the same characters; only what they would have done is
/// gone. Everything else (emphasis, lists, `[n]` markers) is left as it was written.
pub(super) fn inert(text: &str) -> String {
    let mut text = text.to_owned();
    // undoing an outer link can reveal one inside it: go again until nothing is live (escaping
    // only ever removes constructs, so this ends)
    for _ in 0..16 {
        let spans = live_spans(&text);
        if spans.is_empty() {
            break;
        }
        for span in spans.into_iter().rev() {
            let escaped = escaped(&text[span.clone()]);
            text.replace_range(span, &escaped);
        }
    }
    text
}

/// The outermost stretches of `text` that render as raw HTML or as a link or image, in order.
fn live_spans(text: &str) -> Vec<Range<usize>> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut spans: Vec<Range<usize>> = Vec::new();
    for (event, span) in Parser::new_ext(text, options).into_offset_iter() {
        let live = matches!(
            event,
            Event::Html(_)
                | Event::InlineHtml(_)
                | Event::Start(Tag::Link { .. } | Tag::Image { .. } | Tag::HtmlBlock)
        );
        if live && spans.last().is_none_or(|last| span.start >= last.end) {
            spans.push(span);
        }
    }
    spans
}

fn escaped(span: &str) -> String {
    let mut out = String::with_capacity(span.len() + 8);
    // backslashes just before: an odd run means the next character is escaped already
    let mut backslashes = 0;
    for c in span.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '[' | ']' if backslashes % 2 == 0 => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        backslashes = if c == '\\' { backslashes + 1 } else { 0 };
    }
    out
}
