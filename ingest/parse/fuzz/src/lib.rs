//! What every fuzz target checks beyond "no crash": the bounds the loaders promise.

use std::path::Path;

use parse::loaders::{
    self, Format, LoadedDocument, MAX_HEADING_CHARS, MAX_HEADING_PATH, MAX_TITLE_CHARS,
};

/// Panics the loaders catch themselves (pdf-extract's, around which `pdf_pages` has
/// `catch_unwind`) are handled behaviour, not findings: libFuzzer's hook would abort on them, so
/// the standard hook (which only prints) is put back, and only a panic that escapes the loader
/// reaches the fuzzer, its message in the log.
pub fn allow_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // take_hook puts the standard hook back in place of libFuzzer's
        let _ = std::panic::take_hook();
    });
}

/// Loads `data` as a file of `format` and checks what every loaded document promises.
pub fn load_and_check(name: &str, format: Format, data: &[u8]) -> Vec<LoadedDocument> {
    allow_caught_panics();
    let Ok(docs) = loaders::load(Path::new(name), format, data) else {
        return Vec::new();
    };
    assert!(!docs.is_empty(), "a loaded file has documents");
    for doc in &docs {
        assert!(
            doc.title.chars().count() <= MAX_TITLE_CHARS + 1,
            "title capped"
        );
        assert!(!doc.sections.is_empty(), "a document has sections");
        for s in &doc.sections {
            assert!(!s.text.trim().is_empty(), "sections have text");
            assert!(
                s.location.headings.len() <= MAX_HEADING_PATH,
                "heading path capped"
            );
            for h in &s.location.headings {
                assert!(h.chars().count() <= MAX_HEADING_CHARS + 1, "heading capped");
            }
        }
    }
    docs
}
