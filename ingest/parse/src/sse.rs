//! Server-sent events (the LLM providers' streaming wire format) from untrusted network bytes.

/// Longest line kept, in bytes; the rest of a longer line is dropped (so the event it belongs to
/// no longer parses), and memory stays bounded whatever the peer sends.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Most data kept for one event, in bytes, likewise.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// Splits a byte stream into server-sent events (`event:` name and joined `data:` lines), as the
/// WHATWG event-stream format reads them: lines end at CRLF, LF or a lone CR, an empty line ends
/// an event, lines starting with `:` are comments. The result does not depend on how the stream
/// was cut into network chunks: bytes are kept until their character is whole (bytes that can
/// never form one become U+FFFD), and a CR at the end of a chunk waits to see whether an LF
/// follows.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a character not yet whole.
    pending: Vec<u8>,
    /// The line being read.
    line: String,
    /// The last line ended with a CR: an LF right after it ends nothing more.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseParser {
    /// Reads the next bytes of the stream: the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let text = self.decode(bytes);
        let mut out = Vec::new();
        for c in text.chars() {
            if std::mem::take(&mut self.after_cr) && c == '\n' {
                continue;
            }
            match c {
                '\r' | '\n' => {
                    self.after_cr = c == '\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.end_line(&line) {
                        out.push(event);
                    }
                }
                _ if self.line.len() + c.len_utf8() > MAX_LINE_BYTES => {}
                _ => self.line.push(c),
            }
        }
        out
    }

    /// The text of the bytes whose characters are whole, keeping the bytes of a character cut at
    /// the end.
    fn decode(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    text.push_str(s);
                    self.pending.clear();
                    return text;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // checked by from_utf8 up to `valid`
                    text.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // an incomplete character at the end: wait for the rest
                        None => {
                            self.pending.drain(..valid);
                            return text;
                        }
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Takes in one whole line; an empty one dispatches the event read so far.
    fn end_line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let (event, data) = (self.event.take(), self.data.take());
            return (event.is_some() || data.is_some()).then(|| SseEvent {
                event,
                data: data.unwrap_or_default(),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.trim().to_owned()),
            "data" => match &mut self.data {
                Some(data) if data.len() + 1 + value.len() > MAX_EVENT_BYTES => {}
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.push(b"event: message_start\ndata: {\"a\"").is_empty());
        let events = p.push(b":1}\n\ndata: one\r\ndata: two\r\n\r\ndata: [DONE]\n\n");
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event.as_deref(), Some("message_start"));
        assert_eq!(events[0].data, "{\"a\":1}");
        assert_eq!(events[1].data, "one\ntwo");
        assert_eq!(events[2].data, "[DONE]");
    }

    #[test]
    fn multibyte_characters_split_across_chunks_arrive_whole() {
        let event = "data: {\"t\":\"é規🐂\"}\n\n".as_bytes();
        // every split point, including inside each multi-byte character
        for cut in 1..event.len() {
            let mut p = SseParser::default();
            let mut events = p.push(&event[..cut]);
            events.extend(p.push(&event[cut..]));
            assert_eq!(events.len(), 1, "cut at {cut}");
            assert_eq!(events[0].data, "{\"t\":\"é規🐂\"}", "cut at {cut}");
        }
        // one byte at a time
        let mut p = SseParser::default();
        let events: Vec<SseEvent> = event.iter().flat_map(|b| p.push(&[*b])).collect();
        assert_eq!(events[0].data, "{\"t\":\"é規🐂\"}");
        // bytes that never make a character become U+FFFD, and the stream goes on
        let mut p = SseParser::default();
        let events = p.push(b"data: a\xffb\n\ndata: c\n\n");
        assert_eq!(events[0].data, "a\u{fffd}b");
        assert_eq!(events[1].data, "c");
    }

    /// Every way of cutting `stream` into two chunks gives the events of the whole.
    fn same_however_cut(stream: &[u8]) -> Vec<SseEvent> {
        let whole = SseParser::default().push(stream);
        for cut in 0..=stream.len() {
            let mut p = SseParser::default();
            let mut events = p.push(&stream[..cut]);
            events.extend(p.push(&stream[cut..]));
            assert_eq!(events, whole, "cut at {cut} of {stream:?}");
        }
        whole
    }

    #[test]
    fn line_ends_are_crlf_lf_or_cr_wherever_the_stream_is_cut() {
        // found by the sse fuzz target: a CR ending one chunk and LF starting the next, and runs
        // of CRs, used to end events (or not) depending on where the stream was cut
        let found =
            b"\x65vent: message_svar\x91\xf5da\x0c\0\0\0\xf9:[d\"\x01\0\0\0\x04\rda\n\0\0\0\0\x03\
            \"content\":\"h\xc3\xa9\xff\xff\xff\xff\xff\0\"}}}]\n\r\r\n\0\x0c\n\rda\ntad";
        same_however_cut(found);
        let events = same_however_cut(b"data: a\r\rdata: b\r\n\r\ndata: c\n\r\n");
        let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["a", "b", "c"]);
        // comments, fields without a colon, an event name alone
        let events = same_however_cut(b": keep-alive\n\ndata\n\nevent: ping\n\n");
        assert_eq!(
            events[0],
            SseEvent {
                event: None,
                data: String::new()
            }
        );
        assert_eq!(events[1].event.as_deref(), Some("ping"));
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn a_line_without_end_stays_bounded() {
        let mut p = SseParser::default();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            assert!(p.push(&chunk).is_empty());
        }
        assert!(p.line.len() <= MAX_LINE_BYTES);
        let events = p.push(b"\n\ndata: next\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "next");
    }
}
