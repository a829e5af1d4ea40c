#![no_main]

use libfuzzer_sys::fuzz_target;
use parse::loaders::Format;

fuzz_target!(|data: &[u8]| {
    lariat_parse_fuzz::load_and_check("doc.pdf", Format::Pdf, data);
});
