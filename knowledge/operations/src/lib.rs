//! Operations: scheduled jobs run once however many servers share the database, collections'
//! sources (folders, pages, sitemaps) kept in sync, users' data exports and erasure, and the
//! housekeeping that spans every concern (retention, the mail and billing sweeps).
//!
//! May use: `base`, `identity`, `knowledge` (retrieval), `commerce` and `chat`. Owns its rows
//! ([`store`]: job runs, sources, exports, deletions by age and by erasure) and its settings
//! ([`config`]: `[jobs]`, `[sources]`). Must never know: any transport.

pub mod config;
pub mod jobs;
pub mod privacy;
pub mod sources;
mod sql_jobs;
mod sql_privacy;
mod sql_sources;
mod sql_uploads;
pub mod store;
pub mod uploads;
