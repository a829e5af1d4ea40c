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

/// A text longer than this is chunked in slices of about this size, side by side.
const SLICE_BYTES: usize = 128 * 1024;

/// Where the slices of `text` start: about every `size` bytes, each cut moved forward to the
/// next paragraph end (a blank line), else sentence end, else whitespace, within a quarter of
/// `size`; a text not longer than `size` is one slice.
fn slices(text: &str, size: usize) -> Vec<usize> {
    let mut starts = vec![0];
    let mut at = 0;
    while text.len() - at > size {
        let target = at + size;
        let window_end = (target + size / 4).min(text.len());
        let mut from = target;
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let mut to = window_end;
        while !text.is_char_boundary(to) {
            to += 1;
        }
        let window = &text[from..to];
        let cut = ["\n\n", ". ", "\n", " "]
            .iter()
            .find_map(|end| window.find(end).map(|i| from + i + end.len()))
            .unwrap_or(from);
        if cut >= text.len() {
            break;
        }
        starts.push(cut);
        at = cut;
    }
    starts
}

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

    /// The chunks of `text` with their byte offsets, or `None` once `keep_going` says to stop
    /// (checked between slices). A long text is cut into slices of about [`SLICE_BYTES`] at
    /// paragraph (else sentence, else word) ends, chunked on every core: where the cuts fall
    /// depends on the text alone, so the passages are the same on any machine.
    fn split<'t>(
        &self,
        text: &'t str,
        capacity: usize,
        markdown: bool,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Option<Vec<(usize, &'t str)>> {
        let slices = slices(text, SLICE_BYTES);
        if slices.len() == 1 {
            return keep_going().then(|| self.split_slice(text, capacity, markdown));
        }
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(slices.len());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let stopped = std::sync::atomic::AtomicBool::new(false);
        let mut done: Vec<Option<Vec<(usize, &'t str)>>> = vec![None; slices.len()];
        let parts = std::sync::Mutex::new(&mut done);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    use std::sync::atomic::Ordering::Relaxed;
                    loop {
                        let i = next.fetch_add(1, Relaxed);
                        if i >= slices.len() || stopped.load(Relaxed) {
                            break;
                        }
                        if !keep_going() {
                            stopped.store(true, Relaxed);
                            break;
                        }
                        let start = slices[i];
                        let end = slices.get(i + 1).copied().unwrap_or(text.len());
                        let chunks: Vec<(usize, &'t str)> = self
                            .split_slice(&text[start..end], capacity, markdown)
                            .into_iter()
                            .map(|(at, chunk)| (start + at, chunk))
                            .collect();
                        parts.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(chunks);
                    }
                });
            }
        });
        if stopped.into_inner() {
            return None;
        }
        Some(done.into_iter().flatten().flatten().collect())
    }

    fn split_slice<'t>(
        &self,
        text: &'t str,
        capacity: usize,
        markdown: bool,
    ) -> Vec<(usize, &'t str)> {
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
        self.chunk_while(doc, &|| true).unwrap_or_default()
    }

    /// [`Chunker::chunk`], stopping (`None`) once `keep_going` says so: a big document's
    /// chunking takes seconds, and whoever asked for it may be gone.
    pub fn chunk_while(
        &self,
        doc: &LoadedDocument,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Option<Vec<Passage>> {
        let paged =
            !doc.sections.is_empty() && doc.sections.iter().all(|s| s.location.pages.is_some());
        if paged {
            return self.chunk_pages(&doc.title, &doc.sections, keep_going);
        }
        let mut out = Vec::new();
        for section in &doc.sections {
            let heading = passage_heading(&doc.title, &section.location);
            let capacity = self.capacity_for(&heading);
            for (_, text) in self.split(&section.text, capacity, section.markdown, keep_going)? {
                out.push(self.passage(text, section.location.clone()));
            }
        }
        Some(out)
    }

    fn chunk_pages(
        &self,
        title: &str,
        pages: &[Section],
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Option<Vec<Passage>> {
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
        let chunks = self.split(&text, capacity, false, keep_going)?;
        let passages = chunks
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
            .collect();
        Some(passages)
    }

    fn passage(&self, text: &str, location: Location) -> Passage {
        Passage {
            text: text.to_owned(),
            location,
            token_count: self.count_tokens(text) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loaders::{LoadedDocument, Section};

    fn chunker() -> Chunker {
        let assets = std::env::var_os("LARIAT_ASSETS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(std::env::var_os("HOME").unwrap())
                    .join(".cache/lariat/assets")
            });
        let dir = assets.join("models").join("all-minilm-l6-v2-q8");
        Chunker::load(&dir, &ChunkingConfig::default()).unwrap()
    }

    /// A long text of numbered sentences in paragraphs: every word can be found again.
    fn long_text(sentences: usize) -> String {
        let mut text = String::new();
        for i in 0..sentences {
            text.push_str(&format!(
                "Sentence number w{i} tells of the arena and its rules. "
            ));
            if i % 9 == 8 {
                text.push_str("\n\n");
            }
        }
        text
    }

    fn document(text: String) -> LoadedDocument {
        LoadedDocument {
            source: "big.txt".into(),
            title: "Big".into(),
            metadata: serde_json::Value::Null,
            content: text.as_bytes().to_vec(),
            sections: vec![Section {
                text,
                location: Location::default(),
                markdown: false,
            }],
        }
    }

    #[test]
    fn slices_end_at_paragraphs_and_depend_on_the_text_alone() {
        let text = long_text(20_000);
        let starts = slices(&text, 64 * 1024);
        assert!(starts.len() > 10, "{}", starts.len());
        assert_eq!(starts[0], 0);
        for pair in starts.windows(2) {
            assert!(pair[1] > pair[0]);
            assert!(text[..pair[1]].ends_with("\n\n"), "a cut at {}", pair[1]);
        }
        assert_eq!(starts, slices(&text, 64 * 1024));
        assert_eq!(slices("short", 64 * 1024), [0]);
        // no paragraph, no sentence, no space: cut where it must, on a character boundary
        let solid = "é".repeat(100_000);
        for at in slices(&solid, 64 * 1024) {
            assert!(solid.is_char_boundary(at));
        }
    }

    #[test]
    fn a_long_text_is_chunked_in_slices_losing_nothing() {
        let c = chunker();
        let text = long_text(12_000);
        assert!(text.len() > 4 * SLICE_BYTES);
        let passages = c.chunk(&document(text.clone()));
        assert!(passages.len() > 100);
        for p in &passages {
            assert!(
                p.token_count as usize <= c.config.max_tokens,
                "{}",
                p.token_count
            );
        }
        let joined: String = passages.iter().map(|p| p.text.as_str()).collect();
        for i in (0..12_000).step_by(97) {
            assert!(joined.contains(&format!("w{i} ")), "w{i} is in a passage");
        }
        // the same text gives the same passages, in order
        assert_eq!(passages, c.chunk(&document(text)));
    }

    #[test]
    fn chunking_stops_when_told() {
        let c = chunker();
        let doc = document(long_text(12_000));
        assert_eq!(c.chunk_while(&doc, &|| false), None);
        let small = document("A short note.".into());
        assert_eq!(c.chunk_while(&small, &|| false), None);
        assert_eq!(c.chunk_while(&small, &|| true).unwrap().len(), 1);
    }
}
