//! Wire formats: request bodies, response bodies and stream decoders of each API.
//!
//! Everything here is plain data and pure functions: no I/O, no runtime. A stream
//! decoder is a small state machine fed one SSE event at a time; the provider
//! clients drive it from the HTTP body, and tests and benchmarks drive it directly.

pub mod anthropic;
mod calls;
pub mod openai;
pub mod responses;
pub mod sse;
pub mod stop;

use serde_json::{Map, Value};

use crate::content::Part;
use crate::model::{ChatRequest, ProviderEvent};
use crate::tools::{ResponseFormat, ToolChoice};

pub use calls::CallAssembler;

/// The end of a stream in any format: its open tool calls completed, then
/// `Complete` with the finish reason (`missing` when the server gave none).
pub(crate) fn end_of_stream(
    calls: &mut CallAssembler,
    finish: Option<crate::model::FinishReason>,
    usage: Option<crate::model::Usage>,
    out: &mut Vec<ProviderEvent>,
) -> Progress {
    calls.finish_all(out);
    out.push(ProviderEvent::Complete {
        finish_reason: finish
            .unwrap_or_else(|| crate::model::FinishReason::Other("missing".into())),
        usage,
    });
    Progress::Done
}

/// A format's parser of a whole (non-streaming) reply body.
pub type ParseReply = fn(&[u8]) -> Result<openai::Parsed, DecodeError>;

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
        out: &mut Vec<ProviderEvent>,
    ) -> Result<Progress, DecodeError>;

    /// The parser of this format's whole (non-streaming) reply: a server (or a
    /// gateway) that ignores `stream: true` and answers JSON is read with it,
    /// as a stream of one reply. `None`: no such reply is accepted.
    fn whole_reply(&self) -> Option<ParseReply> {
        None
    }
}

/// The stream events of a whole reply: its text as one delta, its tool calls,
/// its usage (when it has any), and `Complete`.
///
/// ```
/// use steer_llm::wire::{events_of_reply, openai::parse_response};
/// use steer_llm::ProviderEvent;
/// let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}"#;
/// let events = events_of_reply(parse_response(body).unwrap());
/// assert!(matches!(&events[0], ProviderEvent::TextDelta { text, offset: 0 } if text == "Hi"));
/// assert!(matches!(events.last(), Some(ProviderEvent::Complete { usage: None, .. })));
/// ```
pub fn events_of_reply(mut reply: openai::Parsed) -> Vec<ProviderEvent> {
    let mut out = Vec::new();
    if let Some(id) = reply.id.take() {
        out.push(ProviderEvent::ResponseId { id });
    }
    for (index, block) in std::mem::take(&mut reply.reasoning).into_iter().enumerate() {
        out.push(ProviderEvent::Reasoning { index, block });
    }
    if !reply.text.is_empty() {
        out.push(ProviderEvent::TextDelta {
            text: reply.text,
            offset: 0,
        });
    }
    for (index, call) in reply.tool_calls.into_iter().enumerate() {
        out.push(ProviderEvent::ToolCallStart {
            index,
            id: call.id.clone(),
            name: call.name.clone(),
        });
        out.push(ProviderEvent::ToolCallDelta {
            index,
            arguments: call.arguments_text(),
        });
        out.push(ProviderEvent::ToolCall { index, call });
    }
    // A reply that reports no usage has zeros: unknown, not zero.
    let usage = (reply.usage != crate::model::Usage::default()).then_some(reply.usage);
    if let Some(u) = usage {
        out.push(ProviderEvent::Usage(u));
    }
    out.push(ProviderEvent::Complete {
        finish_reason: reply.finish_reason,
        usage,
    });
    out
}

/// The events of a whole reply to a streaming request, ended before the first
/// of `stops` where the reply holds one (an API without stop sequences, the
/// Responses API, leaves them to the client; elsewhere the server stopped
/// before any, and nothing changes).
pub fn events_of_reply_stopped(mut reply: openai::Parsed, stops: &[String]) -> Vec<ProviderEvent> {
    if let Some(at) = stop::first_stop(&reply.text, stops) {
        reply.text.truncate(at);
        reply.tool_calls.clear();
        reply.finish_reason = crate::model::FinishReason::Stop;
    }
    events_of_reply(reply)
}

/// Tracks the character offset of text deltas within the whole response.
#[derive(Debug, Default, Clone)]
pub struct TextCursor {
    chars: usize,
}

impl TextCursor {
    /// Emits a text delta at the current offset and advances past it.
    pub fn delta(&mut self, text: String, out: &mut Vec<ProviderEvent>) {
        if text.is_empty() {
            return;
        }
        let offset = self.chars;
        self.chars += text.chars().count();
        out.push(ProviderEvent::TextDelta { text, offset });
    }

    /// Characters emitted so far.
    pub fn position(&self) -> usize {
        self.chars
    }
}

/// Largest argument text one streamed tool call may accumulate.
pub const MAX_TOOL_ARGUMENTS: usize = 4 * 1024 * 1024;

/// Checks what no wire format can express: invalid tools, a tool choice without
/// tools or naming an unknown one, invalid images, a schema that is not an object,
/// a temperature that is not a number (JSON has no NaN nor infinity: it would be
/// sent as `null`, the server's default, without a word).
pub(crate) fn check_request(req: &ChatRequest) -> Result<(), String> {
    if let Some(t) = req.temperature.filter(|t| !t.is_finite()) {
        return Err(format!("temperature {t} is not a finite number"));
    }
    for (i, tool) in req.tools.iter().enumerate() {
        tool.validate()?;
        if req.tools[..i].iter().any(|t| t.name == tool.name) {
            return Err(format!("two tools are named {:?}", tool.name));
        }
    }
    match &req.tool_choice {
        Some(ToolChoice::Auto | ToolChoice::None) | None => {}
        Some(_) if req.tools.is_empty() => {
            return Err("a tool choice that requires a call needs tools".into())
        }
        Some(ToolChoice::Tool(name)) if !req.tools.iter().any(|t| &t.name == name) => {
            return Err(format!(
                "tool_choice names {name:?}, which is not among the tools"
            ))
        }
        Some(_) => {}
    }
    if let Some(ResponseFormat::JsonSchema { schema, .. }) = &req.response_format {
        if !schema.is_object() {
            return Err("the response format's schema must be a JSON object".into());
        }
    }
    if req
        .extra_body
        .get("n")
        .is_some_and(|n| n.as_u64() != Some(1))
    {
        return Err("steer delivers one choice: an extra `n` other than 1 is not supported".into());
    }
    if req.extra_body.get("stream").is_some() {
        return Err("`stream` is steer's to set: use Client::stream or Client::generate".into());
    }
    for (name, value) in &req.extra_headers.0 {
        let valid = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
            && http::HeaderValue::from_str(value).is_ok();
        if !valid {
            return Err(format!("extra header {name:?} is not a valid HTTP header"));
        }
    }
    for (i, m) in req.messages.iter().enumerate() {
        for p in &m.content {
            if let Part::Image(src) = p {
                src.validate().map_err(|e| format!("messages.{i}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// Whether a JSON body is an error object (`{"error": ...}`, or Anthropic's
/// `{"type": "error", ...}`) rather than a reply.
pub(crate) fn carries_error(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(default)]
        error: Option<serde::de::IgnoredAny>,
        #[serde(default, rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Probe<'_>>(body)
        .is_ok_and(|p| p.error.is_some() || p.kind.as_deref() == Some("error"))
}

/// `body` as JSON, with `extra` fields merged in at the top level (they win).
pub(crate) fn with_extra<T: serde::Serialize>(
    body: &T,
    extra: &Map<String, Value>,
) -> Result<Vec<u8>, String> {
    if extra.is_empty() {
        return serde_json::to_vec(body).map_err(|e| format!("cannot encode the request: {e}"));
    }
    let mut value =
        serde_json::to_value(body).map_err(|e| format!("cannot encode the request: {e}"))?;
    if let Value::Object(fields) = &mut value {
        for (k, v) in extra {
            fields.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_vec(&value).map_err(|e| format!("cannot encode the request: {e}"))
}

/// Shortens `data` for an error message.
pub(crate) fn snippet(data: &str) -> String {
    crate::fold::truncate_chars(data, 120)
}
