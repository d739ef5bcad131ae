//! Wire formats: request bodies, response bodies and stream decoders of each API.
//!
//! Everything here is plain data and pure functions: no I/O, no runtime. A stream
//! decoder is a small state machine fed one SSE event at a time; the provider
//! clients drive it from the HTTP body, and tests and benchmarks drive it directly.

pub mod anthropic;
pub mod openai;
pub mod sse;

use crate::model::StreamEvent;

/// What a stream decoder makes of one SSE event it cannot turn into stream events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The event is the provider's in-band error; the JSON data as sent.
    InBand(String),
    /// The event is not what the format allows (malformed JSON, missing fields).
    Malformed(String),
}

/// Whether the stream has reached its terminal event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More events are expected.
    Continue,
    /// The terminal event arrived; nothing after it matters.
    Done,
}

/// A decoder of one provider's stream: fed SSE events, it appends stream events.
pub trait StreamDecoder: Send + 'static {
    /// Handles one SSE event (`event` is the `event:` field, empty when absent).
    fn on_event(
        &mut self,
        event: &str,
        data: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<Progress, DecodeError>;
}

/// Tracks the character offset of text deltas within the whole response.
#[derive(Debug, Default, Clone)]
pub struct TextCursor {
    chars: usize,
}

impl TextCursor {
    /// Emits a text delta at the current offset and advances past it.
    pub fn delta(&mut self, text: String, out: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        let offset = self.chars;
        self.chars += text.chars().count();
        out.push(StreamEvent::TextDelta { text, offset });
    }

    /// Characters emitted so far.
    pub fn position(&self) -> usize {
        self.chars
    }
}

/// Shortens `data` for an error message.
pub(crate) fn snippet(data: &str) -> String {
    crate::fold::truncate_chars(data, 120)
}
