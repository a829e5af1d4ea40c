//! Every parser of untrusted bytes, and nothing else: files into sections of text with their
//! place in the source (loaders), sections into model-sized passages (chunker), the LLM
//! providers' event streams (sse), and external sites' layouts, robots.txt and pages (site). Free of storage, network and model engines, so each parser can
//! be fuzzed on its own (`fuzz/`, `make fuzz`).

pub mod chunker;
pub mod loaders;
pub mod location;
pub mod plain;
pub mod site;
pub mod sse;

pub use chunker::Chunker;
pub use location::{Location, passage_heading};
pub use plain::plain_text;
