//! OpenAI Chat Completions (also xAI and other OpenAI-compatible servers).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{snippet, DecodeError, Progress, StreamDecoder, TextCursor};
use crate::content::Part;
use crate::model::{ChatRequest, FinishReason, Message, ProviderEvent, Role, Usage};
use crate::prefill::Prefill;
use crate::tools::{ResponseFormat, ToolCall, ToolChoice};

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
    /// Tools (`type: function`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<WireTool<'a>>,
    /// `auto`, `none`, `required` or a named function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Whether several calls may come in one turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// `json_object` or `json_schema`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// vLLM's flag: continue the final assistant message ([`Prefill::ContinueFinalMessage`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continue_final_message: Option<bool>,
    /// vLLM's flag, false when `continue_final_message` is set (the two exclude each other).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_generation_prompt: Option<bool>,
    /// `low`, `medium` or `high`, from the request's [`Effort`](crate::Effort).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<&'static str>,
    /// Whether the server keeps the completion (OpenAI's `store`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
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
    /// `system`, `user`, `assistant` or `tool`.
    pub role: &'a str,
    /// Text, or parts (text and images); absent for an assistant turn of tool calls only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<WireContent<'a>>,
    /// The assistant's tool calls.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<WireToolCall<'a>>,
    /// For a `tool` message: the call it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
    /// DeepSeek's and Mistral's flag on a final assistant message: continue it
    /// ([`Prefill::PrefixFlag`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prefix: bool,
}

/// A message's content: plain text, or parts.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum WireContent<'a> {
    /// Text alone.
    Text(std::borrow::Cow<'a, str>),
    /// Text and images.
    Parts(Vec<WirePart<'a>>),
}

/// One content part.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WirePart<'a> {
    /// Text.
    Text {
        /// The text.
        text: &'a str,
    },
    /// An image, by URL (inline data as a `data:` URL).
    ImageUrl {
        /// `{"url": ...}`.
        image_url: ImageUrl,
    },
}

/// `image_url` of a part.
#[derive(Debug, Serialize)]
pub struct ImageUrl {
    /// An http(s) or `data:` URL.
    pub url: String,
}

/// A tool on the wire.
#[derive(Debug, Serialize)]
pub struct WireTool<'a> {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The function.
    pub function: WireFunction<'a>,
}

/// A tool's function.
#[derive(Debug, Serialize)]
pub struct WireFunction<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// JSON Schema of its arguments.
    pub parameters: &'a Value,
    /// Enforce the schema.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

/// A tool call in an assistant message of the history.
#[derive(Debug, Serialize)]
pub struct WireToolCall<'a> {
    /// The call's id.
    pub id: &'a str,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Name and arguments (as JSON text).
    pub function: WireCallFunction<'a>,
}

/// The function of a tool call.
#[derive(Debug, Serialize)]
pub struct WireCallFunction<'a> {
    /// The tool.
    pub name: &'a str,
    /// The arguments, as JSON text.
    pub arguments: String,
}

impl<'a> RequestBody<'a> {
    /// The body for `req`; `include_usage` adds `stream_options` when streaming;
    /// a final assistant message carries the flag `prefill` says the server
    /// continues it by. What Chat Completions cannot express is an error, before
    /// any HTTP call.
    pub fn new(
        req: &'a ChatRequest,
        stream: bool,
        include_usage: bool,
        prefill: Prefill,
    ) -> Result<Self, String> {
        super::check_request(req)?;
        let mut messages = Vec::with_capacity(req.messages.len());
        for (i, m) in req.messages.iter().enumerate() {
            translate(m, i, &mut messages)?;
        }
        let ends_in_prefill = messages
            .last()
            .is_some_and(|m| m.role == "assistant" && m.tool_calls.is_empty());
        if let (Prefill::PrefixFlag, true, Some(last)) =
            (prefill, ends_in_prefill, messages.last_mut())
        {
            last.prefix = true;
        }
        let continue_final =
            (prefill == Prefill::ContinueFinalMessage && ends_in_prefill).then_some(true);
        Ok(RequestBody {
            continue_final_message: continue_final,
            add_generation_prompt: continue_final.map(|_| false),
            reasoning_effort: req.reasoning.map(|e| e.as_str()),
            store: req.store,
            model: req.model.model(),
            messages,
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            stop: &req.stop,
            stream,
            stream_options: (stream && include_usage).then_some(StreamOptions {
                include_usage: true,
            }),
            tools: req
                .tools
                .iter()
                .map(|t| WireTool {
                    kind: "function",
                    function: WireFunction {
                        name: &t.name,
                        description: t.description.as_deref(),
                        parameters: &t.input_schema,
                        strict: t.strict,
                    },
                })
                .collect(),
            tool_choice: req.tool_choice.as_ref().map(|c| match c {
                ToolChoice::Auto => Value::from("auto"),
                ToolChoice::None => Value::from("none"),
                ToolChoice::Required => Value::from("required"),
                ToolChoice::Tool(name) => {
                    serde_json::json!({"type": "function", "function": {"name": name}})
                }
            }),
            parallel_tool_calls: req.parallel_tool_calls.filter(|_| !req.tools.is_empty()),
            response_format: req.response_format.as_ref().map(|f| match f {
                ResponseFormat::Json => serde_json::json!({"type": "json_object"}),
                ResponseFormat::JsonSchema {
                    name,
                    schema,
                    strict,
                } => serde_json::json!({"type": "json_schema",
                    "json_schema": {"name": name, "schema": schema, "strict": strict}}),
            }),
        })
    }
}

/// The JSON of `req`'s body, extra body fields merged in (they win).
pub fn request_json(
    req: &ChatRequest,
    stream: bool,
    include_usage: bool,
    prefill: Prefill,
) -> Result<Vec<u8>, String> {
    let body = RequestBody::new(req, stream, include_usage, prefill)?;
    super::with_extra(&body, &req.extra_body)
}

fn translate<'a>(m: &'a Message, i: usize, out: &mut Vec<WireMessage<'a>>) -> Result<(), String> {
    let unsupported = |p: &Part| {
        Err(format!(
            "messages.{i}: a {} message cannot hold a {} part in Chat Completions",
            m.role.as_str(),
            p.kind()
        ))
    };
    let plain = |role, content| WireMessage {
        role,
        content,
        tool_calls: Vec::new(),
        tool_call_id: None,
        prefix: false,
    };
    match m.role {
        Role::System | Role::User => {
            let mut parts = Vec::with_capacity(m.content.len());
            for p in &m.content {
                match p {
                    Part::Text(text) => parts.push(WirePart::Text { text }),
                    Part::Image(src) if m.role == Role::User => parts.push(WirePart::ImageUrl {
                        image_url: ImageUrl { url: src.as_url() },
                    }),
                    other => return unsupported(other),
                }
            }
            let content = if m.is_text() {
                WireContent::Text(m.text_cow())
            } else {
                WireContent::Parts(parts)
            };
            out.push(plain(m.role.as_str(), Some(content)));
        }
        Role::Assistant => {
            let mut calls = Vec::new();
            for p in &m.content {
                match p {
                    // Chat Completions carries no reasoning back: dropped.
                    Part::Text(_) | Part::Reasoning(_) => {}
                    Part::ToolCall(c) => calls.push(WireToolCall {
                        id: &c.id,
                        kind: "function",
                        function: WireCallFunction {
                            name: &c.name,
                            arguments: c.arguments_text(),
                        },
                    }),
                    other => return unsupported(other),
                }
            }
            let text = m.text_cow();
            let content = (!text.is_empty() || calls.is_empty()).then_some(WireContent::Text(text));
            out.push(WireMessage {
                role: "assistant",
                content,
                tool_calls: calls,
                tool_call_id: None,
                prefix: false,
            });
        }
        Role::Tool => {
            for p in &m.content {
                match p {
                    Part::ToolResult(r) if r.is_error => {
                        return Err(format!(
                            "messages.{i}: Chat Completions has no error flag for tool results; \
                             say so in the result's content"
                        ))
                    }
                    Part::ToolResult(r) => out.push(WireMessage {
                        role: "tool",
                        content: Some(WireContent::Text(r.content.as_str().into())),
                        tool_calls: Vec::new(),
                        tool_call_id: Some(&r.call_id),
                        prefix: false,
                    }),
                    other => return unsupported(other),
                }
            }
        }
    }
    Ok(())
}

/// Token usage as OpenAI sends it. (Not one struct with the Responses API's
/// names as aliases: a server that sends both names, as FakeAI does, would be
/// a duplicate field.)
#[derive(Debug, Clone, Copy, Deserialize, Default)]
pub struct WireUsage {
    /// Prompt tokens (cached ones included).
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens (reasoning included).
    #[serde(default)]
    pub completion_tokens: u64,
    /// Total tokens.
    #[serde(default)]
    pub total_tokens: Option<u64>,
    /// `cached_tokens` and more.
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
    /// `reasoning_tokens` and more.
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetails>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Deserialize, Default)]
pub struct PromptDetails {
    /// Prompt tokens read from the cache.
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

/// `usage.completion_tokens_details`.
#[derive(Debug, Clone, Copy, Deserialize, Default)]
pub struct CompletionDetails {
    /// Tokens spent on reasoning.
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Usage {
        let mut usage = Usage::new(u.prompt_tokens, u.completion_tokens);
        if let Some(total) = u.total_tokens {
            usage.total_tokens = total;
        }
        usage.cached_prompt_tokens = u.prompt_tokens_details.and_then(|d| d.cached_tokens);
        usage.reasoning_tokens = u.completion_tokens_details.and_then(|d| d.reasoning_tokens);
        usage
    }
}

/// A non-streaming response body.
#[derive(Debug, Deserialize)]
pub struct ResponseBody {
    /// The response's id (`chatcmpl-...`).
    #[serde(default)]
    pub id: Option<String>,
    /// The model that answered.
    #[serde(default)]
    pub model: Option<String>,
    /// The choices; steer reads the first.
    pub choices: Vec<Choice>,
    /// Usage.
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// The tier the reply was served (and billed) at: `default`, `flex`,
    /// `priority` (not the `auto` a request may ask).
    #[serde(default)]
    pub service_tier: Option<String>,
}

/// `usage` with the tier a reply's `service_tier` names.
pub(crate) fn with_tier(mut usage: Usage, tier: Option<&str>) -> Usage {
    usage.service_tier = tier.map(crate::model::ServiceTier::parse);
    usage
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
    /// Its tool calls.
    #[serde(default)]
    pub tool_calls: Option<Vec<ResponseToolCall>>,
}

/// A tool call of a response.
#[derive(Debug, Deserialize)]
pub struct ResponseToolCall {
    /// The call's id (absent, null or empty from some servers: one is made up).
    #[serde(default)]
    pub id: Option<String>,
    /// Name and arguments.
    pub function: ResponseFunction,
}

/// The function of a response's tool call.
#[derive(Debug, Deserialize)]
pub struct ResponseFunction {
    /// The tool.
    #[serde(default)]
    pub name: String,
    /// The arguments, as JSON text.
    #[serde(default)]
    pub arguments: String,
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
    /// The response's id, when sent.
    pub id: Option<String>,
    /// The tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// The reasoning blocks, in order, as sent.
    pub reasoning: Vec<crate::reasoning::Reasoning>,
}

/// Parses a non-streaming response body. A 2xx body that is not a chat
/// completion is a failure: an error object is the error it carries
/// ([`DecodeError::InBand`]), anything else (`{}`, a proxy's JSON) is malformed.
pub fn parse_response(body: &[u8]) -> Result<Parsed, DecodeError> {
    let parsed: ResponseBody = serde_json::from_slice(body).map_err(|e| {
        if super::carries_error(body) {
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
    let tool_calls = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let id =
                c.id.filter(|id| !id.is_empty())
                    .unwrap_or_else(super::calls::made_up_id);
            ToolCall::from_text(id, c.function.name, &c.function.arguments)
        })
        .collect();
    Ok(Parsed {
        reasoning: Vec::new(),
        tool_calls,
        text: choice.message.content.unwrap_or_default(),
        finish_reason: choice
            .finish_reason
            .as_deref()
            .map(FinishReason::from_openai)
            .unwrap_or_else(|| FinishReason::Other("missing".into())),
        usage: with_tier(
            parsed.usage.map(Usage::from).unwrap_or_default(),
            parsed.service_tier.as_deref(),
        ),
        model: parsed.model,
        id: parsed.id,
    })
}

#[derive(Deserialize)]
struct Chunk {
    /// The response's id (the same in every chunk).
    #[serde(default)]
    id: Option<String>,
    /// Required: a chunk without it (and without usage or an error) is not a
    /// chat completion chunk.
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    service_tier: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    /// Which choice; steer delivers the first (index 0).
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<ChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ChunkToolCall>>,
}

#[derive(Deserialize)]
struct ChunkToolCall {
    /// Absent from some servers (Gemini's OpenAI-compatible endpoint).
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<ChunkFunction>,
}

#[derive(Deserialize)]
struct ChunkFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Decodes an OpenAI-format stream: `data:` lines of chunks ending with `data: [DONE]`.
///
/// ```
/// use steer_llm::wire::{openai::Decoder, Progress, StreamDecoder};
/// use steer_llm::ProviderEvent;
/// let mut d = Decoder::default();
/// let mut out = Vec::new();
/// d.on_event("", r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#, &mut out).unwrap();
/// assert_eq!(d.on_event("", "[DONE]", &mut out).unwrap(), Progress::Done);
/// assert!(matches!(&out[0], ProviderEvent::TextDelta { text, offset: 0 } if text == "Hi"));
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    cursor: TextCursor,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    calls: super::CallAssembler,
    id_sent: bool,
}

impl StreamDecoder for Decoder {
    fn whole_reply(&self) -> Option<super::ParseReply> {
        Some(parse_response)
    }

    fn on_event(
        &mut self,
        _event: &str,
        data: &str,
        out: &mut Vec<ProviderEvent>,
    ) -> Result<Progress, DecodeError> {
        let data = data.trim();
        if data == "[DONE]" {
            let finish = self.finish.take();
            return Ok(super::end_of_stream(
                &mut self.calls,
                finish,
                self.usage,
                out,
            ));
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
        if let (Some(id), false) = (chunk.id, self.id_sent) {
            self.id_sent = true;
            out.push(ProviderEvent::ResponseId { id });
        }
        if let Some(choice) = chunk.choices.into_iter().flatten().find(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content {
                    self.cursor.delta(text, out);
                }
                for call in delta.tool_calls.into_iter().flatten() {
                    let (name, arguments) = match call.function {
                        Some(f) => (f.name, f.arguments),
                        None => (None, None),
                    };
                    let key = self.calls.key_for(call.index, call.id.as_deref());
                    // OpenAI streams parallel calls one after another: a new
                    // index means the ones before it are complete.
                    self.calls.finish_below(key, out);
                    self.calls.piece(
                        key,
                        call.id.as_deref(),
                        name.as_deref(),
                        arguments.as_deref(),
                        out,
                    )?;
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.calls.finish_all(out);
                self.finish = Some(FinishReason::from_openai(&reason));
            }
        }
        if let Some(usage) = chunk.usage {
            let usage = with_tier(Usage::from(usage), chunk.service_tier.as_deref());
            self.usage = Some(usage);
            out.push(ProviderEvent::Usage(usage));
        }
        Ok(Progress::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[&str]) -> (Vec<ProviderEvent>, Result<Progress, DecodeError>) {
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
                ProviderEvent::ResponseId {
                    id: "chatcmpl-1".into()
                },
                ProviderEvent::TextDelta {
                    text: "Hello".into(),
                    offset: 0
                },
                ProviderEvent::Usage(Usage::new(14, 30)),
                ProviderEvent::Complete {
                    finish_reason: FinishReason::Stop,
                    usage: Some(Usage::new(14, 30))
                },
            ]
        );
    }

    /// JSON has no NaN nor infinity: serde_json writes them as `null`, which
    /// would send the server's default temperature in the caller's place.
    #[test]
    fn a_temperature_that_is_not_a_number_is_refused_in_every_format() {
        for t in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let req = ChatRequest::new("p/m")
                .expect("model")
                .user("hi")
                .temperature(t);
            let bodies = [
                request_json(&req, false, true, Prefill::None),
                crate::wire::anthropic::request_json(&req, false),
                crate::wire::responses::request_json(&req, false),
            ];
            for body in bodies {
                let err = body.expect_err("refused");
                assert!(err.contains("temperature"), "{err}");
            }
        }
        let fine = ChatRequest::new("p/m")
            .expect("model")
            .user("hi")
            .temperature(0.7);
        assert!(request_json(&fine, false, true, Prefill::None).is_ok());
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let (out, _) = run(&[
            r#"{"choices":[{"delta":{"content":"日本"}}]}"#,
            r#"{"choices":[{"delta":{"content":"語"}}]}"#,
        ]);
        assert!(matches!(
            &out[1],
            ProviderEvent::TextDelta { offset: 2, .. }
        ));
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
    fn a_call_whose_id_and_name_come_in_separate_chunks_keeps_its_id() {
        // FakeAI 0.3.2: the id with `"function": null`, then the name with
        // `"id": null`, then the arguments (docs/reference real-servers.md §3).
        let (out, last) = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_f1","type":"function","function":null}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":null,"function":{"name":"get_weather"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":null,"function":{"arguments":"{\"city\": \"Oslo\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            "[DONE]",
        ]);
        assert_eq!(last, Ok(Progress::Done));
        let call = out
            .iter()
            .find_map(|e| match e {
                ProviderEvent::ToolCall { call, .. } => Some(call),
                _ => None,
            })
            .expect("a call");
        assert_eq!(
            (call.id.as_str(), call.name.as_str()),
            ("call_f1", "get_weather")
        );
        assert_eq!(call.arguments, serde_json::json!({"city": "Oslo"}));
    }

    #[test]
    fn a_call_without_an_id_gets_one() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#;
        let p = parse_response(body).unwrap();
        assert!(p.tool_calls[0].id.starts_with("call_"));
    }

    #[test]
    fn broken_json_is_malformed() {
        let (_, last) = run(&[r#"{"choices":[{"delta":"#]);
        assert!(matches!(last, Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn a_usage_with_both_apis_names_reads_chat_completions_own() {
        // FakeAI 0.3.2 sends Chat Completions' names and the Responses API's.
        let body = br#"{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"input_tokens":3,"output_tokens":2}}"#;
        let p = parse_response(body).unwrap();
        assert_eq!((p.usage.prompt_tokens, p.usage.completion_tokens), (3, 2));
    }

    #[test]
    fn non_streaming_body_parses_and_ignores_unknown_fields() {
        let body = br#"{"id":"x","object":"chat.completion","model":"gpt-4o-mini","service_tier":"default","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there","refusal":null},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let p = parse_response(body).unwrap();
        assert_eq!(p.text, "Hi there");
        assert_eq!(p.finish_reason, FinishReason::Length);
        let mut want = Usage::new(3, 2);
        want.service_tier = Some(crate::model::ServiceTier::Standard);
        assert_eq!(p.usage, want);
        // The tier billed, streamed on the usage chunk too.
        let mut d = Decoder::default();
        let mut out = Vec::new();
        let chunk = r#"{"id":"c","choices":[],"service_tier":"flex","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        d.on_event("", chunk, &mut out).unwrap();
        want.service_tier = Some(crate::model::ServiceTier::Flex);
        assert_eq!(out.last(), Some(&ProviderEvent::Usage(want)));
    }
}
