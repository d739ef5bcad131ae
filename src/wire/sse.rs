//! Server-sent events framing, bounded: bytes in, events out, in one pass.
//!
//! steer frames SSE itself because the framing crates it tried keep the whole
//! unparsed buffer and scan it again on every chunk: a 10 MB line took seconds
//! (quadratic), and endless `data:` lines without a blank line grew without bound.
//! This decoder looks at each byte once and refuses an event larger than its limit
//! ([`SseError::TooLarge`], which the provider turns into a `malformed_response`
//! failure). On valid input it yields what `eventsource-stream` yields (a property
//! test compares the two): the WHATWG rules for lines (`\n`, `\r\n`, `\r`),
//! comments, fields, `data` joining and a leading BOM.
//!
//! ```
//! use steer_llm::wire::sse::SseDecoder;
//! let mut sse = SseDecoder::new(1024);
//! let mut events = Vec::new();
//! sse.push(b"event: ping\ndata: {\"a\"", &mut events).unwrap();
//! sse.push(b":1}\n\ndata: [DONE]\n\n", &mut events).unwrap();
//! assert_eq!(events[0].event, "ping");
//! assert_eq!(events[0].data, "{\"a\":1}");
//! assert_eq!((events[1].event.as_str(), events[1].data.as_str()), ("message", "[DONE]"));
//! ```

use std::fmt;

/// The default limit on one event (its data, event name and the line being read):
/// 1 MiB, far above any provider's event.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; `message` when absent.
    pub event: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

/// Why a byte stream is not acceptable SSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// An event (or a line) grew past the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A line is not UTF-8.
    Utf8,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::TooLarge { limit } => {
                write!(f, "a server-sent event is larger than {limit} bytes")
            }
            SseError::Utf8 => f.write_str("the stream is not UTF-8"),
        }
    }
}

impl std::error::Error for SseError {}

/// A bounded SSE decoder; feed it the body's chunks in order.
#[derive(Debug)]
pub struct SseDecoder {
    limit: usize,
    /// Bytes of the line being read (no terminator yet).
    line: Vec<u8>,
    /// The last byte fed was a `\r`: a `\n` right after it ends no new line.
    after_cr: bool,
    /// The stream's first bytes are still being read (a BOM may start it, even
    /// split across chunks).
    at_start: bool,
    /// Those first bytes, at most a BOM's length.
    start: Vec<u8>,
    event: String,
    data: String,
    /// Whether a `data` field was seen in this event.
    has_data: bool,
}

impl SseDecoder {
    /// A decoder that refuses events larger than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        SseDecoder {
            limit: limit.max(1),
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            start: Vec::new(),
            event: String::new(),
            data: String::new(),
            has_data: false,
        }
    }

    /// Bytes held for the event being read: what the limit bounds.
    fn held(&self) -> usize {
        self.line
            .len()
            .saturating_add(self.data.len())
            .saturating_add(self.event.len())
    }

    /// Feeds a chunk; complete events are appended to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.at_start {
            const BOM: &[u8] = "\u{feff}".as_bytes();
            let take = BOM.len().saturating_sub(self.start.len()).min(chunk.len());
            self.start.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.start.len() < BOM.len() && BOM.starts_with(&self.start) {
                // Maybe a BOM, not whole yet.
                return Ok(());
            }
            self.at_start = false;
            let start = std::mem::take(&mut self.start);
            self.feed(start.strip_prefix(BOM).unwrap_or(&start), out)?;
        }
        self.feed(chunk, out)
    }

    fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        while !chunk.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if let Some(rest) = chunk.strip_prefix(b"\n") {
                    chunk = rest;
                    continue;
                }
            }
            match chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
                Some(end) => {
                    let (body, rest) = chunk.split_at(end);
                    self.extend_line(body)?;
                    self.after_cr = rest.first() == Some(&b'\r');
                    chunk = rest.get(1..).unwrap_or_default();
                    self.end_line(out)?;
                }
                None => {
                    self.extend_line(chunk)?;
                    chunk = &[];
                }
            }
        }
        Ok(())
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.held().saturating_add(bytes.len()) > self.limit {
            return Err(SseError::TooLarge { limit: self.limit });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let text = std::str::from_utf8(&line).map_err(|_| SseError::Utf8)?;
        if text.starts_with(':') {
            // A comment (keep-alive).
        } else {
            let (field, value) = match text.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (text, ""),
            };
            match field {
                "event" => {
                    self.event.clear();
                    self.event.push_str(value);
                }
                "data" => {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.has_data = true;
                    self.data.push_str(value);
                }
                // `id` and `retry` steer has no use for; unknown fields are ignored.
                _ => {}
            }
        }
        // Give the line's buffer back for the next one (no allocation per line).
        self.line = line;
        self.line.clear();
        if self.held() > self.limit {
            return Err(SseError::TooLarge { limit: self.limit });
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if std::mem::take(&mut self.has_data) {
            out.push(SseEvent {
                event: if event.is_empty() {
                    "message".to_string()
                } else {
                    event
                },
                data,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]], limit: usize) -> Result<Vec<SseEvent>, SseError> {
        let mut d = SseDecoder::new(limit);
        let mut out = Vec::new();
        for c in chunks {
            d.push(c, &mut out)?;
        }
        Ok(out)
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn lines_end_in_lf_crlf_or_cr_even_across_chunks() {
        let got = decode(&[b"data: a\r", b"\ndata: b\r\r", b"data:c\n\n"], 100).unwrap();
        assert_eq!(got, vec![ev("message", "a\nb"), ev("message", "c")]);
    }

    #[test]
    fn comments_bom_empty_data_and_unknown_fields() {
        let got = decode(
            &["\u{feff}: hi\nid: 1\nretry: 5\nfoo: x\ndata\n\nevent: e\n\n".as_bytes()],
            100,
        )
        .unwrap();
        // `data` with no value is an event with empty data; an event without
        // data is not dispatched.
        assert_eq!(got, vec![ev("message", "")]);
    }

    #[test]
    fn a_bom_split_across_chunks_is_still_a_bom() {
        let bom = "\u{feff}".as_bytes();
        let got = decode(&[&bom[..1], &bom[1..2], &bom[2..], b"data: a\n\n"], 100).unwrap();
        assert_eq!(got, vec![ev("message", "a")]);
        // Two bytes that only start like one are data.
        let got = decode(&[&bom[..2], b"x\ndata: b\n\n"], 100);
        assert_eq!(got, Err(SseError::Utf8));
        assert_eq!(
            decode(&[b"da", b"ta: c\n\n"], 100).unwrap(),
            vec![ev("message", "c")]
        );
    }

    #[test]
    fn an_incomplete_event_at_the_end_is_not_dispatched() {
        assert_eq!(decode(&[b"data: a\n"], 100).unwrap(), vec![]);
        assert_eq!(decode(&[b"data: a"], 100).unwrap(), vec![]);
    }

    #[test]
    fn events_and_lines_past_the_limit_are_refused() {
        let long_line = vec![b'x'; 200];
        assert_eq!(
            decode(&[b"data: ", &long_line], 100),
            Err(SseError::TooLarge { limit: 100 })
        );
        // Many short data lines that never end the event.
        let mut d = SseDecoder::new(100);
        let mut out = Vec::new();
        let mut result = Ok(());
        for _ in 0..50 {
            result = result.and(d.push(b"data: 0123456789\n", &mut out));
        }
        assert_eq!(result, Err(SseError::TooLarge { limit: 100 }));
        // Comments do not add up: an endless keep-alive is fine.
        let mut d = SseDecoder::new(100);
        for _ in 0..1000 {
            d.push(b": keep-alive\n", &mut out).unwrap();
        }
        assert!(out.is_empty());
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_error() {
        assert_eq!(decode(&[b"data: \xff\xfe\n\n"], 100), Err(SseError::Utf8));
    }
}
