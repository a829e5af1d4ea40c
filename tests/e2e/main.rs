//! End-to-end tests: the real `lariat` binary on a temporary data dir, with the real ONNX model,
//! SQLite or PostgreSQL, qdrant-edge and tantivy. One test binary (fast linking).

mod support;

mod abuse;
mod accounts;
mod authz;
mod bad_input;
mod billing;
mod browser;
mod chat;
mod citations;
mod conformance;
mod contract;
mod crash;
mod deploy;
mod eval;
mod export;
mod fake_llm;
mod feedback;
mod ingest_search;
mod jobs;
mod mail;
mod mcp;
mod migrate;
mod postgres;
mod replicas;
mod rerank;
mod serve;
mod shutdown;
mod site_mcp;
mod sources;
mod sso;
mod uploads;
mod web_ingest;
