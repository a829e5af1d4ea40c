//! Ingestion: loaders turn files into sections of text with their place in the source, the
//! chunker cuts sections into model-sized passages, and the pipeline embeds and writes them
//! through the [`knowledge::Knowledge`] façade.

pub mod chunker;
pub mod loaders;
pub mod pipeline;

pub use chunker::Chunker;
pub use pipeline::{
    Failure, IngestOptions, IngestReport, Input, Progress, ingest_inputs, ingest_paths,
};
