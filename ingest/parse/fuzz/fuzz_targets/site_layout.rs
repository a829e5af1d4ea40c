#![no_main]
//! A site layout file (TOML, from the operator) parsed and checked: an error, never a crash.

use libfuzzer_sys::fuzz_target;
use parse::site::layout::Layout;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Layout::parse(text);
    }
});
