#![no_main]
//! A sitemap (from a site a source names).

use libfuzzer_sys::fuzz_target;
use parse::site::sitemap::Sitemap;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(sitemap) = Sitemap::parse(&text) {
        for entry in &sitemap.entries {
            assert!(!entry.loc.is_empty() && entry.loc.len() <= 2048);
        }
    }
});
