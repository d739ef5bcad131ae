//! OpenAI Chat Completions (also xAI and other OpenAI-compatible servers).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{snippet, DecodeError, Progress, StreamDecoder, TextCursor};
use crate::model::{ChatRequest, FinishReason, StreamEvent, Usage};

/// The body of `POST /v1/chat/completions`.
#[derive(Debug, Serialize)]
pub struct RequestBody<'a> {
    /// Model name, without the provider prefix.
    pub model: &'a str,
    /// The conversation.
    pub messages: Vec<WireMessage<'a>>,
    /// Token limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Stop sequences.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub stop: &'a [String],
    /// Whether to stream.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Asks for the final usage chunk when streaming.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

/// `stream_options` of a streaming request.
#[derive(Debug, Serialize)]
pub struct StreamOptions {
    /// Send a last chunk with usage and empty `choices`.
    pub include_usage: bool,
}

/// A message on the wire.
#[derive(Debug, Serialize)]
pub struct WireMessage<'a> {
    /// `system`, `user` or `assistant`.
    pub role: &'a str,
    /// Its text.
    pub content: &'a str,
}

impl<'a> RequestBody<'a> {
    /// The body for `req`; `include_usage` adds `stream_options` when streaming.
    pub fn new(req: &'a ChatRequest, stream: bool, include_usage: bool) -> Self {
        RequestBody {
            model: req.model.model(),
            messages: req
                .messages
                .iter()
                .map(|m| WireMessage {
                    role: m.role.as_str(),
                    content: &m.content,
                })
                .collect(),
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            stop: &req.stop,
            stream,
            stream_options: (stream && include_usage).then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }
}

/// Token usage as OpenAI sends it.
#[derive(Debug, Clone, Copy, Deserialize, Default)]
pub struct WireUsage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Total tokens.
    #[serde(default)]
    pub total_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Usage {
        let mut usage = Usage::new(u.prompt_tokens, u.completion_tokens);
        if let Some(total) = u.total_tokens {
            usage.total_tokens = total;
        }
        usage
    }
}

/// A non-streaming response body.
#[derive(Debug, Deserialize)]
pub struct ResponseBody {
    /// The model that answered.
    #[serde(default)]
    pub model: Option<String>,
    /// The choices; steer reads the first.
    pub choices: Vec<Choice>,
    /// Usage.
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// One choice of a non-streaming response.
#[derive(Debug, Deserialize)]
pub struct Choice {
    /// The generated message.
    pub message: ChoiceMessage,
    /// Why it stopped.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The message of a choice.
#[derive(Debug, Deserialize)]
pub struct ChoiceMessage {
    /// Its text (null for a pure tool call).
    #[serde(default)]
    pub content: Option<String>,
}

/// What steer keeps of a parsed non-streaming response.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The text.
    pub text: String,
    /// Normalised finish reason.
    pub finish_reason: FinishReason,
    /// Usage (zeros when absent).
    pub usage: Usage,
    /// The model that answered, when named.
    pub model: Option<String>,
}

/// Parses a non-streaming response body. A 2xx body that is not a chat
/// completion is a failure: an error object is the error it carries
/// ([`DecodeError::InBand`]), anything else (`{}`, a proxy's JSON) is malformed.
pub fn parse_response(body: &[u8]) -> Result<Parsed, DecodeError> {
    let parsed: ResponseBody = serde_json::from_slice(body).map_err(|e| {
        if carries_error(body) {
            DecodeError::InBand(String::from_utf8_lossy(body).into_owned())
        } else {
            DecodeError::Malformed(format!("chat completion body: {e}"))
        }
    })?;
    let choice = parsed
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| DecodeError::Malformed("chat completion without choices".into()))?;
    Ok(Parsed {
        text: choice.message.content.unwrap_or_default(),
        finish_reason: choice
            .finish_reason
            .as_deref()
            .map(FinishReason::from_openai)
            .unwrap_or_else(|| FinishReason::Other("missing".into())),
        usage: parsed.usage.map(Usage::from).unwrap_or_default(),
        model: parsed.model,
    })
}

/// Whether a JSON body is an error object (`{"error": ...}`, or Anthropic's
/// `{"type": "error", ...}`) rather than a reply.
pub(crate) fn carries_error(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(default)]
        error: Option<serde::de::IgnoredAny>,
        #[serde(default, rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Probe<'_>>(body)
        .is_ok_and(|p| p.error.is_some() || p.kind.as_deref() == Some("error"))
}

#[derive(Deserialize)]
struct Chunk {
    /// Required: a chunk without it (and without usage or an error) is not a
    /// chat completion chunk.
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<ChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    #[serde(default)]
    content: Option<String>,
}

/// Decodes an OpenAI-format stream: `data:` lines of chunks ending with `data: [DONE]`.
///
/// ```
/// use steer_llm::wire::{openai::Decoder, Progress, StreamDecoder};
/// use steer_llm::StreamEvent;
/// let mut d = Decoder::default();
/// let mut out = Vec::new();
/// d.on_event("", r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#, &mut out).unwrap();
/// assert_eq!(d.on_event("", "[DONE]", &mut out).unwrap(), Progress::Done);
/// assert!(matches!(&out[0], StreamEvent::TextDelta { text, offset: 0 } if text == "Hi"));
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    cursor: TextCursor,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl StreamDecoder for Decoder {
    fn on_event(
        &mut self,
        _event: &str,
        data: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<Progress, DecodeError> {
        let data = data.trim();
        if data == "[DONE]" {
            out.push(StreamEvent::Complete {
                finish_reason: self
                    .finish
                    .take()
                    .unwrap_or_else(|| FinishReason::Other("missing".into())),
                usage: self.usage,
            });
            return Ok(Progress::Done);
        }
        if data.is_empty() {
            return Ok(Progress::Continue);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            DecodeError::Malformed(format!("stream chunk {:?}: {e}", snippet(data)))
        })?;
        if chunk.error.is_some() {
            return Err(DecodeError::InBand(data.to_string()));
        }
        if chunk.choices.is_none() && chunk.usage.is_none() {
            return Err(DecodeError::Malformed(format!(
                "stream chunk without choices: {:?}",
                snippet(data)
            )));
        }
        if let Some(choice) = chunk.choices.into_iter().flatten().next() {
            if let Some(text) = choice.delta.and_then(|d| d.content) {
                self.cursor.delta(text, out);
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(FinishReason::from_openai(&reason));
            }
        }
        if let Some(usage) = chunk.usage {
            let usage = Usage::from(usage);
            self.usage = Some(usage);
            out.push(StreamEvent::Usage(usage));
        }
        Ok(Progress::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[&str]) -> (Vec<StreamEvent>, Result<Progress, DecodeError>) {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        let mut last = Ok(Progress::Continue);
        for e in events {
            last = d.on_event("", e, &mut out);
            if last.is_err() || last == Ok(Progress::Done) {
                break;
            }
        }
        (out, last)
    }

    #[test]
    fn the_reference_stream_decodes_to_text_usage_and_completion() {
        let (out, last) = run(&[
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-mini","obfuscation":"x","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":30,"total_tokens":44}}"#,
            "[DONE]",
        ]);
        assert_eq!(last, Ok(Progress::Done));
        assert_eq!(
            out,
            vec![
                StreamEvent::TextDelta {
                    text: "Hello".into(),
                    offset: 0
                },
                StreamEvent::Usage(Usage::new(14, 30)),
                StreamEvent::Complete {
                    finish_reason: FinishReason::Stop,
                    usage: Some(Usage::new(14, 30))
                },
            ]
        );
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let (out, _) = run(&[
            r#"{"choices":[{"delta":{"content":"日本"}}]}"#,
            r#"{"choices":[{"delta":{"content":"語"}}]}"#,
        ]);
        assert!(matches!(&out[1], StreamEvent::TextDelta { offset: 2, .. }));
    }

    #[test]
    fn an_error_data_line_is_in_band() {
        let body = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;
        let (_, last) = run(&[body]);
        assert_eq!(last, Err(DecodeError::InBand(body.to_string())));
    }

    #[test]
    fn a_2xx_of_the_wrong_shape_is_a_failure_never_an_empty_reply() {
        for body in [
            &b"{}"[..],
            br#"{"status":"ok"}"#,
            br#"{"choices":[]}"#,
            b"[]",
            b"null",
        ] {
            assert!(
                matches!(parse_response(body), Err(DecodeError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let error = br#"{"error":{"message":"overloaded","type":"server_error"}}"#;
        assert!(matches!(parse_response(error), Err(DecodeError::InBand(_))));
        let (_, last) = run(&[r#"{"id":"x","object":"proxy.status"}"#]);
        assert!(matches!(last, Err(DecodeError::Malformed(_))));
        let (_, last) = run(&["[1,2]"]);
        assert!(matches!(last, Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn broken_json_is_malformed() {
        let (_, last) = run(&[r#"{"choices":[{"delta":"#]);
        assert!(matches!(last, Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn non_streaming_body_parses_and_ignores_unknown_fields() {
        let body = br#"{"id":"x","object":"chat.completion","model":"gpt-4o-mini","service_tier":"default","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there","refusal":null},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let p = parse_response(body).unwrap();
        assert_eq!(p.text, "Hi there");
        assert_eq!(p.finish_reason, FinishReason::Length);
        assert_eq!(p.usage, Usage::new(3, 2));
    }
}
