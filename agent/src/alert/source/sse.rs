//! Server-Sent Events parsing (the WHATWG event stream format, as the
//! gateway writes it, PROTOCOL.md 4): bytes in as they arrive, split
//! anywhere, events out. Lines end with LF, CRLF or CR; comments (`:`)
//! are skipped; `data:` lines join with a newline. A line or an event
//! over the bound is an error, never a larger buffer. Pure: no I/O.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// `event:`, or `message` when the event named none.
    pub(crate) event: String,
    /// The `data:` lines, joined by `\n`.
    pub(crate) data: Vec<u8>,
    /// The event's own `id:`, if it had one.
    pub(crate) id: Option<String>,
}

/// Why the stream cannot be parsed further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SseError {
    /// A line went past the bound without ending.
    #[error("an SSE line longer than {max} bytes")]
    LineTooLong {
        /// The bound, bytes.
        max: usize,
    },
    /// An event's data went past the bound.
    #[error("an SSE event larger than {max} bytes")]
    EventTooLarge {
        /// The bound, bytes.
        max: usize,
    },
}

/// An incremental parser: [`push`](SseParser::push) what arrived, then
/// take events with [`next_event`](SseParser::next_event) until `None`.
#[derive(Debug)]
pub(crate) struct SseParser {
    /// Bytes received and not yet consumed, from `pos`.
    buf: Vec<u8>,
    pos: usize,
    /// How far past `pos` a line terminator has been looked for.
    scanned: usize,
    /// The previous line ended with CR at the end of a push: an LF that
    /// starts the next one belongs to it.
    skip_lf: bool,
    /// Whether the start of the stream (a BOM) was looked at.
    started: bool,
    event: String,
    data: Vec<u8>,
    has_data: bool,
    id: Option<String>,
    max: usize,
}

impl SseParser {
    /// A parser that refuses a line or an event's data over `max` bytes.
    pub(crate) fn new(max: usize) -> SseParser {
        SseParser {
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            skip_lf: false,
            started: false,
            event: String::new(),
            data: Vec::new(),
            has_data: false,
            id: None,
            max,
        }
    }

    /// Appends bytes as they arrived.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, `None` when more bytes are needed.
    pub(crate) fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
                self.skip_lf = false;
            }
            if !self.started {
                // A leading U+FEFF is not part of the first line.
                let rest = &self.buf[self.pos..];
                if rest.len() < 3 && b"\xEF\xBB\xBF".starts_with(rest) {
                    return Ok(None);
                }
                if rest.starts_with(b"\xEF\xBB\xBF") {
                    self.pos += 3;
                }
                self.started = true;
            }
            let start = self.pos;
            let from = start + self.scanned;
            let Some(at) = memchr::memchr2(b'\n', b'\r', &self.buf[from..]) else {
                self.scanned = self.buf.len() - start;
                if self.scanned > self.max {
                    return Err(SseError::LineTooLong { max: self.max });
                }
                return Ok(None);
            };
            let end = from + at;
            if end - start > self.max {
                return Err(SseError::LineTooLong { max: self.max });
            }
            self.scanned = 0;
            self.pos = end + 1;
            if self.buf[end] == b'\r' {
                match self.buf.get(end + 1) {
                    Some(b'\n') => self.pos += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if let Some(event) = self.line(start, end)? {
                return Ok(Some(event));
            }
        }
    }

    /// Takes the line `buf[start..end]`; an empty one dispatches.
    fn line(&mut self, start: usize, end: usize) -> Result<Option<SseEvent>, SseError> {
        let line = &self.buf[start..end];
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                let grown = self.data.len() + usize::from(self.has_data) + value.len();
                if grown > self.max {
                    return Err(SseError::EventTooLarge { max: self.max });
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            // `retry` and unknown fields: nothing this reader uses.
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        let id = self.id.take();
        if !std::mem::take(&mut self.has_data) {
            // No data: nothing is dispatched (the event type is reset).
            return None;
        }
        Some(SseEvent {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut SseParser) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(e) = p.next_event().unwrap() {
            out.push(e);
        }
        out
    }

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.as_bytes().to_vec(),
            id: id.map(Into::into),
        }
    }

    const STREAM: &str = "event: hello\ndata: {\"type\":\"hello\"}\n\n\
                          : ping\n\n\
                          event: records\nid: 42\ndata: {\"a\":1}\n\n";

    #[test]
    fn events_with_ids_and_comments_skipped() {
        let mut p = SseParser::new(1024);
        p.push(STREAM.as_bytes());
        assert_eq!(
            all(&mut p),
            [
                ev("hello", "{\"type\":\"hello\"}", None),
                ev("records", "{\"a\":1}", Some("42")),
            ]
        );
    }

    #[test]
    fn split_anywhere_gives_the_same_events() {
        let mut whole = SseParser::new(1024);
        whole.push(STREAM.as_bytes());
        let expected = all(&mut whole);
        let bytes = STREAM.as_bytes();
        for size in 1..=bytes.len() {
            let mut p = SseParser::new(1024);
            let mut got = Vec::new();
            for chunk in bytes.chunks(size) {
                p.push(chunk);
                got.extend(all(&mut p));
            }
            assert_eq!(got, expected, "chunks of {size}");
        }
    }

    #[test]
    fn crlf_and_cr_end_lines_even_across_pushes() {
        let text = "event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r";
        for split in 0..=text.len() {
            let mut p = SseParser::new(64);
            let (x, y) = text.as_bytes().split_at(split);
            p.push(x);
            let mut got = all(&mut p);
            p.push(y);
            got.extend(all(&mut p));
            assert_eq!(got, [ev("a", "1", None), ev("b", "2", None)], "{split}");
        }
    }

    #[test]
    fn data_lines_join_and_a_bom_and_bare_fields_are_understood() {
        let mut p = SseParser::new(64);
        p.push(b"\xEF\xBB\xBFdata: one\ndata:two\ndata\n\nevent: only\n\ndata: x\n\n");
        // `event: only` has no data: not dispatched, and its type does not
        // leak into the next event.
        assert_eq!(
            all(&mut p),
            [ev("message", "one\ntwo\n", None), ev("message", "x", None)]
        );
    }

    #[test]
    fn a_line_or_an_event_over_the_bound_is_an_error() {
        let mut p = SseParser::new(8);
        p.push(b"data: 0123456789");
        assert_eq!(p.next_event(), Err(SseError::LineTooLong { max: 8 }));

        let mut p = SseParser::new(8);
        p.push(b"data: 01234567\n");
        assert_eq!(p.next_event(), Err(SseError::LineTooLong { max: 8 }));

        let mut p = SseParser::new(12);
        p.push(b"data: 12345\ndata: 12345\ndata: 1\n\n");
        assert_eq!(p.next_event(), Err(SseError::EventTooLarge { max: 12 }));

        // Exactly at the bound is fine.
        let mut p = SseParser::new(8);
        p.push(b"data: 01\n\n");
        assert_eq!(all(&mut p), [ev("message", "01", None)]);
    }

    #[test]
    fn a_long_line_in_small_pushes_is_scanned_once() {
        let mut p = SseParser::new(1 << 20);
        p.push(b"data: ");
        for _ in 0..10_000 {
            p.push(&[b'x'; 50]);
            assert_eq!(p.next_event(), Ok(None));
        }
        p.push(b"\n\n");
        let e = p.next_event().unwrap().unwrap();
        assert_eq!(e.data.len(), 500_000);
        assert!(p.buf.len() - p.pos < 8, "consumed bytes are dropped");
    }
}
