//! Conversations taken away: as a PDF whose `[n]` markers link to an appendix of the cited
//! passages, as Markdown with the same content, or as JSON (the conversation as the API returns
//! it). [`Chat::export`](crate::Chat::export) checks the caller and hands the conversation
//! here; the PDF is laid out on a blocking thread.

mod markdown;
mod pdf;
mod text;

use serde::Deserialize;

use crate::Conversation;
use crate::answer::Citation;
use crate::store::{Speaker, StoredMessage};
use base::error::{Error, Result};
use base::types::{AnswerStatus, Passage};

/// What an export is written as.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Pdf,
    #[serde(alias = "markdown")]
    Md,
    Json,
}

impl ExportFormat {
    /// `pdf`, `md` (or `markdown`) or `json`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "pdf" => Ok(Self::Pdf),
            "md" | "markdown" => Ok(Self::Md),
            "json" => Ok(Self::Json),
            other => Err(Error::InvalidInput(format!(
                "unknown export format {other:?}: use pdf, md or json"
            ))),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Md => "md",
            Self::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Md => "text/markdown; charset=utf-8",
            Self::Json => "application/json",
        }
    }
}

/// An export, ready to be sent or written.
#[derive(Debug, Clone)]
pub struct Exported {
    pub format: ExportFormat,
    /// A safe file name (ASCII letters, digits, `-`), from the title and the conversation's id.
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// Writes `conversation` as `format`; `now_ms` is the moment the export says it was made.
pub async fn render(
    conversation: Conversation,
    format: ExportFormat,
    now_ms: i64,
) -> Result<Exported> {
    let filename = filename(&conversation, format);
    let bytes = match format {
        ExportFormat::Json => serde_json::to_vec_pretty(&conversation)
            .map_err(|e| Error::Internal(format!("export as JSON: {e}")))?,
        ExportFormat::Md => markdown::render(&Transcript::of(&conversation, now_ms)).into_bytes(),
        ExportFormat::Pdf => {
            let transcript = Transcript::of(&conversation, now_ms);
            tokio::task::spawn_blocking(move || pdf::render(&transcript))
                .await
                .map_err(|e| Error::Internal(format!("PDF export stopped: {e}")))??
        }
    };
    Ok(Exported {
        format,
        filename,
        bytes,
    })
}

/// `lariat-<title words>-<id start>.<ext>`, ASCII only, so no header or file system is surprised.
fn filename(conversation: &Conversation, format: ExportFormat) -> String {
    let mut stem = String::new();
    for word in conversation
        .summary
        .title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if stem.len() + word.len() > 48 {
            break;
        }
        stem.push('-');
        stem.push_str(&word.to_ascii_lowercase());
    }
    let id: String = conversation
        .summary
        .id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("lariat{stem}-{id}.{}", format.extension())
}

/// A conversation as both text exports lay it out: turns, then every cited passage.
struct Transcript {
    title: String,
    created_at: i64,
    exported_at: i64,
    turns: Vec<TurnView>,
}

struct TurnView {
    /// 1-based position in the conversation; sources are numbered `answer.n` by it.
    number: usize,
    speaker: String,
    at: i64,
    text: String,
    /// Why an answer stopped early (cancelled, error), if it did.
    stopped: Option<AnswerStatus>,
    sources: Vec<Citation>,
}

impl Transcript {
    fn of(conversation: &Conversation, exported_at: i64) -> Self {
        Self {
            title: conversation.summary.title.clone(),
            created_at: conversation.summary.created_at,
            exported_at,
            turns: conversation
                .messages
                .iter()
                .enumerate()
                .map(|(i, m)| TurnView::of(i + 1, m))
                .collect(),
        }
    }
}

impl TurnView {
    fn of(number: usize, m: &StoredMessage) -> Self {
        let speaker = if m.role == Speaker::User {
            "You".to_owned()
        } else {
            match m.model.as_deref() {
                Some("extractive") => "Lariat (extractive: passages quoted, no model)".to_owned(),
                Some(model) => format!("Lariat ({model})"),
                None => "Lariat".to_owned(),
            }
        };
        let mut sources = m.citations.clone();
        sources.sort_by_key(|s| s.n);
        Self {
            number,
            speaker,
            at: m.created_at,
            text: m.content.clone(),
            stopped: (m.role == Speaker::Assistant && m.status != AnswerStatus::Complete)
                .then_some(m.status),
            sources,
        }
    }

    /// Why an answer has less than it might: it stopped early.
    fn stopped_note(&self) -> Option<String> {
        self.stopped
            .as_ref()
            .map(|status| format!("(This answer stopped early: {status}.)"))
    }

    /// "Sources: [1] → 2.1, [2] → 2.2": which appendix entry each marker points at.
    fn source_line(&self) -> String {
        let refs: Vec<String> = self
            .sources
            .iter()
            .map(|s| format!("[{}] → {}", s.n, self.reference(s.n)))
            .collect();
        format!("Sources: {}", refs.join(", "))
    }

    /// The stable reference of source `n` of this turn, as both exports print it.
    fn reference(&self, n: usize) -> String {
        format!("{}.{n}", self.number)
    }
}

/// Where a passage is: its location in the document, the document and its collection.
fn place(p: &Passage) -> String {
    let mut parts = Vec::new();
    if !p.location.is_empty() {
        parts.push(p.location.clone());
    }
    if !p.source.is_empty() && p.source != p.title {
        parts.push(p.source.clone());
    }
    if !p.collection.is_empty() {
        parts.push(format!("collection {}", p.collection));
    }
    parts.join(" · ")
}

/// The ids a reader can look a passage up by.
fn ids(p: &Passage) -> String {
    if p.document_id.is_empty() {
        format!("chunk {}", p.chunk_id)
    } else {
        format!("chunk {} · document {}", p.chunk_id, p.document_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_strictly() {
        assert_eq!(ExportFormat::parse("PDF").unwrap(), ExportFormat::Pdf);
        assert_eq!(ExportFormat::parse("markdown").unwrap(), ExportFormat::Md);
        assert_eq!(ExportFormat::parse("json").unwrap(), ExportFormat::Json);
        assert!(ExportFormat::parse("docx").is_err());
        assert!(ExportFormat::parse("").is_err());
    }
}
