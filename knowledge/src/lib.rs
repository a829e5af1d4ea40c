//! Lariat's core: collections, documents, chunks and retrieval over three stores — SQL (the source
//! of truth), a vector store and a lexical index (both derived from SQL and rebuildable from it).
//!
//! Transports (CLI, HTTP, MCP) call [`Knowledge`], the one façade; this crate knows none of them.

pub mod accounts;
pub mod analytics;
pub mod audit;
pub mod billing;
pub mod chat;
pub mod collections;
pub mod config;
pub mod crashpoint;
pub mod embed;
pub mod error;
pub mod export;
pub mod files;
pub mod hashing;
pub mod jobs;
pub mod lexical;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod privacy;
pub mod ratelimit;
pub mod rerank;
mod retrieval;
pub mod sites;
pub mod sources;
pub mod store;
pub mod types;
pub mod vector;

mod knowledge;
mod service;

pub use config::Config;
pub use error::{Error, ErrorCode, Result};
pub use knowledge::{
    CheckReport, DocumentView, Knowledge, Parts, PassageInContext, RecoveryReport, SearchRequest,
};
pub use service::{Service, SystemStatus};
pub use types::*;
