#![no_main]
//! Documents (Markdown or plain text, as the first byte says) through the loader and the
//! chunker, with the embedding model's own tokenizer (`LARIAT_FUZZ_MODEL_DIR`, default the
//! assets `make setup` installs): every passage has text and fits the model-sized capacity.

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use parse::Chunker;
use parse::chunker::ChunkingConfig;
use parse::loaders::Format;

fn chunker() -> &'static (Chunker, usize) {
    static CHUNKER: OnceLock<(Chunker, usize)> = OnceLock::new();
    CHUNKER.get_or_init(|| {
        let dir = std::env::var_os("LARIAT_FUZZ_MODEL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                    .join(".cache/lariat/assets/models/all-minilm-l6-v2-q8")
            });
        let config = ChunkingConfig::default();
        let chunker = Chunker::load(&dir, &config).expect("the model's tokenizer (make setup)");
        (chunker, config.max_tokens.max(parse::chunker::MIN_CAPACITY))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let (name, format) = if kind % 2 == 0 {
        ("notes.md", Format::Markdown)
    } else {
        ("notes.txt", Format::Text)
    };
    let (chunker, capacity) = chunker();
    for doc in lariat_parse_fuzz::load_and_check(name, format, rest) {
        for p in chunker.chunk(&doc) {
            assert!(!p.text.is_empty(), "a passage has text");
            assert!(
                p.token_count as usize <= *capacity,
                "a passage of {} tokens is over the capacity {capacity}",
                p.token_count
            );
        }
    }
});
