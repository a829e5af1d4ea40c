//! What every concern shares and nothing else: errors with their codes, the values parsed once at
//! the boundary (collection names, passages, search modes), who is asking ([`principal`]), time,
//! rate limits (their buckets in SQL or [`redis`] when servers share them), password hashing off
//! the runtime, private files, metrics, and the one SQL database handle ([`sql::SqlStore`]) each
//! concern implements its own store trait on.
//!
//! May use: `parse` (the boundary's `Location`). Must never know: any concern (retrieval,
//! identity, chat, commerce, operations, sites) or any transport.

pub mod config;
pub mod copy;
pub mod crashpoint;
pub mod error;
pub mod files;
pub mod hashing;
pub mod metrics;
pub mod principal;
pub mod ratelimit;
pub mod redis;
pub mod sql;
pub mod time;
pub mod types;
pub mod words;

pub use error::{Error, ErrorCode, Result};
pub use types::*;
