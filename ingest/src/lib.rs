//! Ingestion: loaders turn files into sections of text with their place in the source (in a
//! worker process under limits, see [`sandbox`]), the chunker cuts sections into model-sized
//! passages, and the pipeline embeds and writes them through the [`knowledge::Knowledge`] façade.

pub mod pipeline;
pub mod sandbox;

pub use operations::sources::{Failure, IngestReport, Input, Progress};
pub use parse::{Chunker, loaders};
pub use pipeline::{
    IngestOptions, Pipeline, fetch_input, ingest_inputs, ingest_paths, ingest_urls_and_paths,
};
