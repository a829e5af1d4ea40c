//! The Markdown export: the same content as the PDF — title, dates, each turn with who spoke,
//! answers as they were written (their `[n]` markers included), then every cited passage under
//! "Sources", referenced as `turn.n` with its chunk id.

use std::fmt::Write;

use super::Transcript;
use crate::types::format_time;

pub(super) fn render(t: &Transcript) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", one_line(&t.title));
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
        let _ = writeln!(out, "{}\n", turn.text.trim_end());
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
                    one_line(if s.title.is_empty() {
                        &s.chunk_id
                    } else {
                        &s.title
                    })
                );
                let place = s.place();
                if !place.is_empty() {
                    let _ = writeln!(out, "{}  ", one_line(&place));
                }
                let _ = writeln!(out, "{}\n", s.ids());
                for line in s.text.lines() {
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
