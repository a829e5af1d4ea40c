//! End-to-end tests: the real `lariat` binary on a temporary data dir, with the real ONNX model,
//! SQLite or PostgreSQL, qdrant-edge and tantivy. One test binary (fast linking).

mod support;

mod bad_input;
mod crash;
mod eval;
mod ingest_search;
mod postgres;
mod rerank;
mod serve;
