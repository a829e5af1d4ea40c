//! Retrieval: collections, documents, chunks and search over three stores — SQL (the source of
//! truth), a vector store and a lexical index (both derived from SQL and rebuildable from it) —
//! with fusion, reranking, the write protocol that keeps them agreeing, and who may read or curate
//! each collection.
//!
//! May use: `base` (errors, boundary types, the shared database, principals) and `parse`.
//! Must never know: accounts, chat, billing, jobs or any transport; callers hand it a
//! [`base::principal::Principal`] and it checks that principal's access to collections.

pub mod collections;
pub mod config;
pub mod embed;
pub mod lexical;
pub mod qdrant;
pub mod rerank;
mod retrieval;
mod sql;
pub mod store;
pub mod vector;

mod knowledge;

pub use knowledge::{
    CheckReport, DocumentText, DocumentView, Knowledge, MoveProgress, MoveReport, Parts,
    PassageInContext, RecoveryReport, SearchRequest,
};
