//! Sections to passages, sized in tokens by the embedding model's own tokenizer, so a passage
//! plus its heading line fits the model's window and nothing is silently truncated.

use std::path::Path;

use serde::Deserialize;
use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

use crate::loaders::{LoadedDocument, Section};
use crate::location::{Location, passage_heading};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChunkingConfig {
    /// Upper bound of a chunk in model tokens (without the special tokens).
    pub max_tokens: usize,
    /// Tokens shared by consecutive chunks of the same section.
    pub overlap_tokens: usize,
}

impl Default for ChunkingConfig {
    fn default() -> Self {
        Self {
            max_tokens: 192,
            overlap_tokens: 20,
        }
    }
}

/// Passages are never cut smaller than this many tokens to make room for a long heading.
pub const MIN_CAPACITY: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    pub text: String,
    pub location: Location,
    pub token_count: u32,
}

pub struct Chunker {
    tokenizer: Tokenizer,
    config: ChunkingConfig,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker")
            .field("config", &self.config)
            .finish()
    }
}

impl Chunker {
    /// Loads `tokenizer.json` from the model folder, without its truncation and padding (which
    /// would cap every count at the model's training length).
    pub fn load(model_dir: &Path, config: &ChunkingConfig) -> Result<Self, String> {
        let path = model_dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| {
            format!(
                "tokenizer {} cannot be loaded ({e}); run `make setup` to fetch the model",
                path.display()
            )
        })?;
        tokenizer
            .with_truncation(None)
            .map_err(|e| format!("tokenizer: {e}"))?;
        tokenizer.with_padding(None);
        Ok(Self {
            tokenizer,
            config: config.clone(),
        })
    }

    /// Identifies the chunking, so a change of settings re-chunks documents on the next ingest.
    pub fn fingerprint(&self) -> String {
        format!(
            "chunker:v1:max={}:overlap={}",
            self.config.max_tokens, self.config.overlap_tokens
        )
    }

    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.len())
            .unwrap_or_else(|_| text.split_whitespace().count())
    }

    fn capacity_for(&self, heading: &str) -> usize {
        let heading_tokens = if heading.is_empty() {
            0
        } else {
            self.count_tokens(heading) + 1
        };
        self.config
            .max_tokens
            .saturating_sub(heading_tokens)
            .max(MIN_CAPACITY)
    }

    fn split<'t>(&self, text: &'t str, capacity: usize, markdown: bool) -> Vec<(usize, &'t str)> {
        let overlap = self.config.overlap_tokens.min(capacity / 2);
        let config = ChunkConfig::new(capacity)
            .with_sizer(&self.tokenizer)
            .with_overlap(overlap)
            .expect("overlap is below capacity");
        if markdown {
            MarkdownSplitter::new(config).chunk_indices(text).collect()
        } else {
            TextSplitter::new(config).chunk_indices(text).collect()
        }
    }

    /// Cuts a document into passages. PDF pages are joined first so a paragraph running over a
    /// page break stays whole; each passage then knows the pages it spans.
    pub fn chunk(&self, doc: &LoadedDocument) -> Vec<Passage> {
        let paged =
            !doc.sections.is_empty() && doc.sections.iter().all(|s| s.location.pages.is_some());
        if paged {
            return self.chunk_pages(&doc.title, &doc.sections);
        }
        let mut out = Vec::new();
        for section in &doc.sections {
            let heading = passage_heading(&doc.title, &section.location);
            let capacity = self.capacity_for(&heading);
            for (_, text) in self.split(&section.text, capacity, section.markdown) {
                out.push(self.passage(text, section.location.clone()));
            }
        }
        out
    }

    fn chunk_pages(&self, title: &str, pages: &[Section]) -> Vec<Passage> {
        let mut text = String::new();
        let mut starts = Vec::with_capacity(pages.len()); // (byte offset, page number)
        for page in pages {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            let number = page.location.pages.map(|(a, _)| a).unwrap_or(1);
            starts.push((text.len(), number));
            text.push_str(page.text.trim());
        }
        let page_at = |offset: usize| {
            starts
                .iter()
                .rev()
                .find(|(start, _)| *start <= offset)
                .map(|(_, n)| *n)
                .unwrap_or(1)
        };
        let capacity = self.capacity_for(title);
        self.split(&text, capacity, false)
            .into_iter()
            .map(|(offset, chunk)| {
                let first = page_at(offset);
                let last = page_at(offset + chunk.len().saturating_sub(1));
                self.passage(
                    chunk,
                    Location {
                        pages: Some((first, last)),
                        headings: Vec::new(),
                    },
                )
            })
            .collect()
    }

    fn passage(&self, text: &str, location: Location) -> Passage {
        Passage {
            text: text.to_owned(),
            location,
            token_count: self.count_tokens(text) as u32,
        }
    }
}
