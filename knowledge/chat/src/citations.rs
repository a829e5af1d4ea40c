//! How an assistant message's citations are kept in its row: a versioned JSON value that reads
//! back into the same [`Citation`]s the chat produced and streamed.
//!
//! Version 1 is `{"version":1,"citations":[…]}`, each citation as the `citations` event sends it.
//! Rows written before the version existed hold a bare array whose entries may lack any field but
//! `n` (the first releases kept no passage text, no score and no snippet); they read with those
//! fields empty. A version newer than this build is refused rather than half read: during a rolling
//! upgrade an older replica says so instead of showing an answer without its sources.

use serde::{Deserialize, Serialize};

use base::error::{Error, Result};
use base::types::{Location, Passage};

use crate::answer::Citation;

/// The version [`encode`] writes.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Written<'a> {
    version: u32,
    citations: &'a [Citation],
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Read {
    Versioned {
        version: u32,
        citations: serde_json::Value,
    },
    Unversioned(Vec<Unversioned>),
}

/// A citation as the first releases stored it: any field but `n` may be missing.
#[derive(Deserialize)]
struct Unversioned {
    n: usize,
    #[serde(default)]
    score: f32,
    #[serde(default)]
    snippet: String,
    #[serde(default)]
    chunk_id: String,
    #[serde(default)]
    document_id: String,
    #[serde(default)]
    collection: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    location_detail: Location,
    #[serde(default)]
    text: String,
}

impl From<Unversioned> for Citation {
    fn from(u: Unversioned) -> Self {
        Citation {
            n: u.n,
            score: u.score,
            snippet: u.snippet,
            passage: Passage {
                chunk_id: u.chunk_id,
                document_id: u.document_id,
                collection: u.collection,
                title: u.title,
                source: u.source,
                location: u.location,
                location_detail: u.location_detail,
                text: u.text,
            },
        }
    }
}

/// The column's text for these citations.
pub fn encode(citations: &[Citation]) -> Result<String> {
    serde_json::to_string(&Written {
        version: VERSION,
        citations,
    })
    .map_err(|e| Error::Internal(format!("citations do not serialise: {e}")))
}

/// The citations a column holds, of any version this build knows.
pub fn decode(column: &str) -> Result<Vec<Citation>> {
    let unreadable = |e: serde_json::Error| Error::Internal(format!("stored citations: {e}"));
    match serde_json::from_str::<Read>(column).map_err(unreadable)? {
        Read::Versioned {
            version: VERSION,
            citations,
        } => serde_json::from_value(citations).map_err(unreadable),
        Read::Versioned { version, .. } => Err(Error::Internal(format!(
            "stored citations are of version {version}; this build reads versions up to {VERSION}"
        ))),
        Read::Unversioned(old) => Ok(old.into_iter().map(Citation::from).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn citation(n: usize) -> Citation {
        Citation {
            n,
            score: 0.75,
            snippet: "Eight seconds…".into(),
            passage: Passage {
                chunk_id: format!("c{n}"),
                document_id: "d1".into(),
                collection: "rodeo".into(),
                title: "Rules".into(),
                source: "rules.md".into(),
                location: "Scoring".into(),
                location_detail: Location {
                    pages: Some((2, 3)),
                    headings: vec!["Scoring".into()],
                },
                text: "Eight seconds, \"the whistle\".".into(),
            },
        }
    }

    #[test]
    fn citations_read_back_as_written() {
        let written = vec![citation(1), citation(2)];
        let column = encode(&written).unwrap();
        assert!(
            column.starts_with(r#"{"version":1,"citations":["#),
            "{column}"
        );
        // the privacy sweep finds a collection's citations by this exact text
        assert!(column.contains(r#""collection":"rodeo""#), "{column}");
        assert_eq!(decode(&column).unwrap(), written);
        assert_eq!(decode(&encode(&[]).unwrap()).unwrap(), vec![]);
    }

    #[test]
    fn rows_from_before_the_version_still_read() {
        // as the first release wrote them: no passage text
        let old = r#"[{"n":2,"title":"Rules","source":"rules.md","location":"p. 2",
            "location_detail":{"pages":[2,2]},"snippet":"Eight","chunk_id":"c2",
            "document_id":"d1","collection":"rodeo","score":0.5}]"#;
        let read = decode(old).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].n, 2);
        assert_eq!(read[0].passage.chunk_id, "c2");
        assert_eq!(read[0].passage.location_detail.pages, Some((2, 2)));
        assert_eq!(read[0].passage.text, "");
        // the sparsest shape a row ever held
        assert_eq!(decode(r#"[{"n":1}]"#).unwrap()[0].n, 1);
        assert_eq!(decode("[]").unwrap(), vec![]);
    }

    #[test]
    fn a_newer_or_broken_column_is_an_error_not_an_empty_list() {
        let newer = decode(r#"{"version":2,"citations":[]}"#).unwrap_err();
        assert!(newer.to_string().contains("version 2"), "{newer}");
        for broken in [
            "",
            "null",
            "{",
            r#"{"version":1,"citations":[{"n":"x"}]}"#,
            r#"[{"title":"no n"}]"#,
        ] {
            assert!(decode(broken).is_err(), "{broken:?} read");
        }
    }
}
