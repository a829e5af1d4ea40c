#![no_main]
//! A page from the site read through the shipped rodeo layout's selectors: every list page's
//! rows and the event page's fields. Whatever the page, an answer or "not understood", capped.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use parse::site::layout::Layout;
use parse::site::scrape;
use scraper::Html;

fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        Layout::parse(include_str!(
            "../../../../deploy/domains/rodeo/sites/example-association.toml"
        ))
        .expect("the shipped layout")
    })
}

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let doc = Html::parse_document(&html);
    let layout = layout();
    let max = layout.max_text_chars;
    for page in [&layout.events, &layout.standings, &layout.entries] {
        if let Ok(rows) = scrape::rows(&doc, &page.rows, max, "page") {
            for row in rows {
                for value in row.values() {
                    assert!(value.chars().count() <= max + 1, "scraped text is capped");
                }
            }
        }
    }
    let root = doc.root_element();
    let _ = scrape::fields(root, &layout.event.fields, max, "event");
});
