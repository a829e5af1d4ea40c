//! What the database and Qdrant backends write of a document: each passage and the whole
//! document as entries, analysed as the tantivy index analyses them (the same analyzer, the same
//! fields, lengths quantised as tantivy's field norms), so every backend scores alike.

use std::collections::BTreeMap;

use tantivy::fieldnorm::FieldNormReader;
use tantivy::tokenizer::TokenStream;

use super::{Kind, LexicalDocument, analyzer};
use base::types::hash64;

pub(super) const TITLE: i64 = 0;
pub(super) const BODY: i64 = 1;

pub(super) fn kind_code(kind: Kind) -> i64 {
    match kind {
        Kind::Passage => 0,
        Kind::Document => 1,
    }
}

pub(super) fn term_id(term: &str) -> i64 {
    hash64(&["term", term])
}

fn document_entry(document_id: &str) -> i64 {
    hash64(&["document", document_id])
}

fn passage_entry(chunk_id: &str) -> i64 {
    hash64(&["passage", chunk_id])
}

/// A length as tantivy keeps it (one byte per field and entry), so both backends score alike.
fn quantised(tokens: u32) -> i64 {
    i64::from(FieldNormReader::id_to_fieldnorm(
        FieldNormReader::fieldnorm_to_id(tokens),
    ))
}

/// One field analysed: each term's frequency, and the field's length.
fn analyse<'a>(values: impl IntoIterator<Item = &'a str>) -> (BTreeMap<String, i64>, i64) {
    let mut analyzer = analyzer();
    let mut tf = BTreeMap::new();
    let mut tokens = 0u32;
    for value in values {
        let mut stream = analyzer.token_stream(value);
        while stream.advance() {
            *tf.entry(stream.token().text.clone()).or_insert(0) += 1;
            tokens += 1;
        }
    }
    (tf, quantised(tokens))
}

/// One entry, analysed, ready to insert.
pub(super) struct Entry {
    pub(super) id: i64,
    pub(super) document_id: String,
    pub(super) collection: String,
    pub(super) kind: Kind,
    pub(super) chunk_id: Option<String>,
    pub(super) document_entry: i64,
    pub(super) title: (BTreeMap<String, i64>, i64),
    pub(super) body: (BTreeMap<String, i64>, i64),
}

pub(super) fn entries_of(doc: &LexicalDocument) -> Vec<Entry> {
    let mut out = Vec::with_capacity(doc.passages.len() + 1);
    let document = document_entry(&doc.document_id);
    let entry = |kind, id, chunk_id, title: &str, body: Vec<&str>| Entry {
        id,
        document_id: doc.document_id.clone(),
        collection: doc.collection.clone(),
        kind,
        chunk_id,
        document_entry: document,
        title: analyse([title]),
        body: analyse(body),
    };
    for p in &doc.passages {
        out.push(entry(
            Kind::Passage,
            passage_entry(&p.chunk_id),
            Some(p.chunk_id.clone()),
            &p.title,
            p.body().collect(),
        ));
    }
    if !doc.passages.is_empty() {
        out.push(entry(
            Kind::Document,
            document,
            None,
            &doc.title,
            doc.body(),
        ));
    }
    out
}

/// Changes to one collection's statistics for one kind of entry.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SizeDelta {
    pub(super) entries: i64,
    pub(super) title_tokens: i64,
    pub(super) body_tokens: i64,
}

impl SizeDelta {
    /// Counts `entry` in (`sign` 1) or out (`sign` -1).
    pub(super) fn add(&mut self, sign: i64, title_len: i64, body_len: i64) {
        self.entries += sign;
        self.title_tokens += sign * title_len;
        self.body_tokens += sign * body_len;
    }
}

/// What a write replaces: the documents whose entries go (those listed, and those added again:
/// what is added replaces whatever the index held of the same documents) and the new entries,
/// analysed on a blocking thread.
pub(super) async fn replacing(
    delete_documents: &[String],
    docs: Vec<LexicalDocument>,
) -> base::error::Result<(Vec<String>, Vec<Entry>)> {
    let mut delete: Vec<String> = delete_documents.to_vec();
    let listed: std::collections::HashSet<&String> = delete_documents.iter().collect();
    delete.extend(
        docs.iter()
            .map(|d| &d.document_id)
            .filter(|id| !listed.contains(id))
            .cloned(),
    );
    let entries =
        base::error::blocking(move || Ok(docs.iter().flat_map(entries_of).collect())).await?;
    Ok((delete, entries))
}
