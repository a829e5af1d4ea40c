//! Values parsed once at the boundary, and the records that flow between the stores.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use parse::{Location, passage_heading, plain_text};

use crate::error::{Error, Result};
pub use crate::time::{format_time, now_ms};

/// A collection's name: 1–64 characters of `[a-z0-9_-]`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CollectionName(String);

impl CollectionName {
    pub fn parse(raw: &str) -> Result<Self> {
        let name = raw.trim();
        let valid_start = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if name.is_empty() || name.len() > 64 || !valid_start || !valid_chars {
            return Err(Error::InvalidInput(format!(
                "invalid collection name {raw:?}: use 1-64 characters a-z, 0-9, '-' or '_', starting with a letter or digit"
            )));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CollectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CollectionName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for CollectionName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// How many hits a search returns: 1..=MAX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopK(usize);

impl TopK {
    pub const MAX: usize = 1000;

    pub fn new(k: usize) -> Result<Self> {
        if k == 0 || k > Self::MAX {
            return Err(Error::InvalidInput(format!(
                "k must be between 1 and {}, got {k}",
                Self::MAX
            )));
        }
        Ok(Self(k))
    }

    pub fn get(self) -> usize {
        self.0
    }
}

/// A search query's text: not blank, at most 4,096 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryText(String);

impl QueryText {
    pub const MAX_BYTES: usize = 4096;

    pub fn parse(raw: &str) -> Result<Self> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(Error::InvalidInput("the query is empty".into()));
        }
        if text.len() > Self::MAX_BYTES {
            return Err(Error::InvalidInput(format!(
                "the query is {} bytes long; the limit is {}",
                text.len(),
                Self::MAX_BYTES
            )));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    Bm25,
    Dense,
    #[default]
    Hybrid,
    /// Hybrid, then the top passages rescored by the configured reranker.
    Rerank,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Bm25 => "bm25",
            SearchMode::Dense => "dense",
            SearchMode::Hybrid => "hybrid",
            SearchMode::Rerank => "rerank",
        }
    }
}

impl FromStr for SearchMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bm25" | "lexical" => Ok(SearchMode::Bm25),
            "dense" | "vector" => Ok(SearchMode::Dense),
            "hybrid" => Ok(SearchMode::Hybrid),
            "rerank" => Ok(SearchMode::Rerank),
            other => Err(Error::InvalidInput(format!(
                "unknown search mode {other:?}: use bm25, dense, hybrid or rerank"
            ))),
        }
    }
}

impl fmt::Display for SearchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may read a collection: every signed-in user, or only its members.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    Private,
}

crate::words!(Visibility, "visibility", { Public => "public", Private => "private" });

/// A member's standing in a collection: readers read it (when it is private), curators also
/// ingest into it and delete from it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Reader,
    Curator,
}

crate::words!(MemberRole, "member role", { Reader => "reader", Curator => "curator" });

/// What a document's source is shown as: the name below what was ingested (`corpus/rules.md`,
/// kept in its metadata as `path`), never the server's own path. Documents stored before that
/// name was kept show their file's name.
pub fn shown_source(source: &str, metadata: &serde_json::Value) -> String {
    if let Some(path) = metadata.get("path").and_then(|p| p.as_str()) {
        return path.to_owned();
    }
    let (file, record) = match source.split_once('#') {
        Some((file, record)) => (file, Some(record)),
        None => (source, None),
    };
    let path = std::path::Path::new(file);
    if !path.is_absolute() {
        return source.to_owned();
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match record {
        Some(r) => format!("{name}#{r}"),
        None => name,
    }
}

/// 64 bits of the SHA-256 of `parts` (each ended by a NUL): ids and lock keys that SQL keeps as
/// a BIGINT, the same on every server.
pub fn hash64(parts: &[&str]) -> i64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(head)
}

pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The stable id of a document: derived from its collection and source, so re-ingesting the same
/// source addresses the same document.
pub fn document_id(collection: &CollectionName, source: &str) -> String {
    let digest = Sha256::digest(format!("{collection}\0{source}").as_bytes());
    hex::encode(&digest[..16])
}

/// The stable id of a chunk (a UUID, so vector stores can use it as a point id): derived from
/// its document, position and content.
pub fn chunk_id(document_id: &str, ordinal: usize, chunk_hash: &str) -> uuid::Uuid {
    let digest = Sha256::digest(format!("{document_id}\0{ordinal}\0{chunk_hash}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A chunk ready to be written: text, position, and its embedding.
#[derive(Debug, Clone)]
pub struct NewChunk {
    pub text: String,
    pub location: Location,
    pub token_count: u32,
    pub embedding: Vec<f32>,
}

/// A whole document as it will replace whatever the stores hold for its source.
#[derive(Debug, Clone)]
pub struct DocumentWrite {
    pub collection: CollectionName,
    pub source: String,
    pub title: String,
    pub content_hash: String,
    pub metadata: serde_json::Value,
    pub chunks: Vec<NewChunk>,
}

impl DocumentWrite {
    pub fn id(&self) -> String {
        document_id(&self.collection, &self.source)
    }

    /// The ids its chunks get, in order.
    pub fn chunk_ids(&self) -> Vec<uuid::Uuid> {
        let id = self.id();
        self.chunks
            .iter()
            .enumerate()
            .map(|(ordinal, c)| chunk_id(&id, ordinal, &content_hash(c.text.as_bytes())))
            .collect()
    }
}

/// What the embedder sees of a chunk: its heading line, then its text.
pub fn embedding_input(title: &str, location: &Location, text: &str) -> String {
    let heading = passage_heading(title, location);
    if heading.is_empty() {
        text.to_owned()
    } else {
        format!("{heading}\n\n{text}")
    }
}

/// A chunk as stored in SQL, the source of truth the derived indexes are built from.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub id: String,
    pub document_id: String,
    pub collection: String,
    pub ordinal: i64,
    pub title: String,
    pub text: String,
    pub location: Location,
    pub embedding: Vec<f32>,
}

/// What the stores know of one document, for listings.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DocumentSummary {
    pub id: String,
    pub collection: String,
    pub source: String,
    pub title: String,
    pub chunks: i64,
    pub content_hash: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Collection {
    pub name: String,
    pub model: String,
    pub dimension: i64,
    pub version: i64,
    pub visibility: Visibility,
    /// Days a conversation scoped to or citing this collection is kept once untouched (0:
    /// as long as its owner's plan keeps it).
    pub conversation_retention_days: u32,
    pub documents: i64,
    pub chunks: i64,
}

/// The longest retention a collection or plan may set, in days (a hundred years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// A change to a collection's settings; `None` keeps the field.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionUpdate {
    pub visibility: Option<Visibility>,
    pub instructions: Option<String>,
    /// 0 keeps conversations as long as their owners' plans do.
    pub conversation_retention_days: Option<u32>,
}

/// A passage as every surface shows it (search hits, citations, documents, MCP results): its
/// text, the document and collection it belongs to, and where in the source it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Passage {
    pub chunk_id: String,
    pub document_id: String,
    pub collection: String,
    pub title: String,
    /// The source as shown to readers (relative to what was ingested).
    pub source: String,
    /// Page range or heading path in the source, as text shown after the title (a first heading
    /// that repeats the title left out).
    pub location: String,
    pub location_detail: Location,
    pub text: String,
}

/// One ranked passage.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Hit {
    pub rank: usize,
    pub score: f32,
    #[serde(flatten)]
    pub passage: Passage,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SearchResults {
    pub query: String,
    pub mode: SearchMode,
    pub hits: Vec<Hit>,
    /// What the rerank stage did (mode `rerank` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<RerankOutcome>,
}

/// Whether reranking reordered the hits, or why the hybrid order was kept.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RerankOutcome {
    pub applied: bool,
    pub candidates: usize,
    pub milliseconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn encode_embedding(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode_embedding(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(1_796_300_000_000), "2026-12-03 12:13 UTC");
    }

    #[test]
    fn sources_are_shown_without_the_servers_path() {
        let meta = serde_json::json!({"path": "corpus/rules.md"});
        assert_eq!(
            shown_source("/srv/x/corpus/rules.md", &meta),
            "corpus/rules.md"
        );
        let none = serde_json::json!({"format": "markdown"});
        assert_eq!(shown_source("/srv/x/corpus/rules.md", &none), "rules.md");
        assert_eq!(
            shown_source("/srv/data/corpus.jsonl#doc-7", &none),
            "corpus.jsonl#doc-7"
        );
        assert_eq!(shown_source("upload:bulls.md", &none), "upload:bulls.md");
    }

    #[test]
    fn collection_names_are_checked() {
        assert!(CollectionName::parse("rodeo").is_ok());
        assert!(CollectionName::parse("beir-scifact_1").is_ok());
        for bad in ["", " ", "Rodeo", "-x", "a b", "a/b", &"x".repeat(65)] {
            let err = CollectionName::parse(bad).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn top_k_and_queries_are_bounded() {
        assert!(TopK::new(0).is_err());
        assert!(TopK::new(TopK::MAX + 1).is_err());
        assert_eq!(TopK::new(5).unwrap().get(), 5);
        assert!(QueryText::parse("   ").is_err());
        assert!(QueryText::parse(&"a".repeat(5000)).is_err());
        assert_eq!(QueryText::parse(" rope ").unwrap().as_str(), "rope");
    }

    #[test]
    fn ids_are_deterministic() {
        let c = CollectionName::parse("c").unwrap();
        assert_eq!(document_id(&c, "a.md"), document_id(&c, "a.md"));
        assert_ne!(document_id(&c, "a.md"), document_id(&c, "b.md"));
        assert_eq!(chunk_id("d", 0, "h"), chunk_id("d", 0, "h"));
        assert_ne!(chunk_id("d", 0, "h"), chunk_id("d", 1, "h"));
    }

    #[test]
    fn embeddings_round_trip() {
        let v = vec![0.5f32, -1.25, 3.0];
        assert_eq!(decode_embedding(&encode_embedding(&v)), v);
    }

    #[test]
    fn locations_render() {
        let l = Location {
            pages: Some((2, 3)),
            headings: vec!["Rules".into(), "Roping".into()],
        };
        assert_eq!(l.to_string(), "pp. 2-3, Rules > Roping");
    }
}

/// How an answer ended: it finished, the client left before it did, or it failed. A stored
/// message and the usage record of its request keep the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnswerStatus {
    Complete,
    Cancelled,
    Error,
}

crate::words!(AnswerStatus, "answer status", {
    Complete => "complete",
    Cancelled => "cancelled",
    Error => "error",
});
