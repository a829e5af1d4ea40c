#![no_main]
//! The provider event-stream parser on arbitrary bytes cut at arbitrary points: the events are
//! the same however the stream was split into network chunks.

use libfuzzer_sys::fuzz_target;
use parse::sse::SseParser;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let mut whole = SseParser::default();
    let expected = whole.push(stream);
    // chunks of 1..=256 bytes, the size taken from the first byte, then alternating sizes
    let mut pieces = SseParser::default();
    let mut got = Vec::new();
    let mut size = usize::from(cut) + 1;
    let mut rest = stream;
    while !rest.is_empty() {
        let (head, tail) = rest.split_at(size.min(rest.len()));
        got.extend(pieces.push(head));
        rest = tail;
        size = size % 7 + 1;
    }
    assert_eq!(got, expected, "events depend on how the stream was split");
});
