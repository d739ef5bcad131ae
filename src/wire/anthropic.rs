//! Anthropic Messages (`POST /v1/messages`).

use serde::{Deserialize, Serialize};

use super::{snippet, DecodeError, Progress, StreamDecoder, TextCursor};
use crate::content::{ImageSource, Part};
use crate::model::{
    CacheAccounting, ChatRequest, FinishReason, InferenceGeo, ProviderEvent, Role, ServiceTier,
    Usage,
};
use crate::reasoning::{Reasoning, ReasoningFamily};
use crate::tools::{ResponseFormat, ToolCall, ToolChoice};
use serde_json::Value;

/// `max_tokens` sent when the request sets none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The body of `POST /v1/messages`.
#[derive(Debug, Serialize)]
pub struct RequestBody<'a> {
    /// Model name, without the provider prefix.
    pub model: &'a str,
    /// System prompt: the system messages joined by blank lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// User and assistant turns.
    pub messages: Vec<WireMessage<'a>>,
    /// Token limit (required by the API).
    pub max_tokens: u32,
    /// Temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Stop sequences.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub stop_sequences: &'a [String],
    /// Whether to stream.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Tools.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<WireTool<'a>>,
    /// `auto`, `any`, `tool` or `none`, and `disable_parallel_tool_use`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Structured output: `{"format": {"type": "json_schema", "schema": ...}}`;
    /// adaptive thinking's `effort`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_config: Option<Value>,
    /// Extended thinking, from the request's [`Effort`](crate::Effort).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
}

/// Whether `model` thinks adaptively (Claude 4.6 and later: `thinking.type:
/// adaptive` with `output_config.effort`; a budget is deprecated there and
/// refused from 4.7). Older models take a budget.
pub fn thinks_adaptively(model: &str) -> bool {
    // `claude-{family}-{major}[-{minor}]`; the older `claude-3-5-haiku` names
    // put the version first.
    let mut parts = model.split('-').skip(1);
    let Some(family) = parts.next() else {
        return false;
    };
    if family.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts
        .next()
        .filter(|p| p.len() <= 2)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    major > 4 || (major == 4 && minor >= 6)
}

/// A message on the wire.
#[derive(Debug, Serialize)]
pub struct WireMessage<'a> {
    /// `user` or `assistant`.
    pub role: &'a str,
    /// Text, or content blocks.
    pub content: WireContent<'a>,
}

/// A message's content: plain text, or blocks.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum WireContent<'a> {
    /// Text alone.
    Text(std::borrow::Cow<'a, str>),
    /// Blocks.
    Blocks(Vec<AnyBlock<'a>>),
}

/// A block steer writes, or one it sends back exactly as received.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum AnyBlock<'a> {
    /// Written from the neutral message.
    Block(Block<'a>),
    /// A `thinking` or `redacted_thinking` block, unchanged.
    Verbatim(&'a Value),
}

/// A content block.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block<'a> {
    /// Text.
    Text {
        /// The text.
        text: &'a str,
    },
    /// An image.
    Image {
        /// Where it comes from.
        source: ImageBlockSource<'a>,
    },
    /// A tool call of the history.
    ToolUse {
        /// Its id.
        id: &'a str,
        /// The tool.
        name: &'a str,
        /// Its input (an object).
        input: &'a Value,
    },
    /// The result of a call.
    ToolResult {
        /// The call it answers.
        tool_use_id: &'a str,
        /// The result.
        content: &'a str,
        /// Whether the tool failed.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

/// An image block's source.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageBlockSource<'a> {
    /// Inline data.
    Base64 {
        /// Its media type.
        media_type: &'a str,
        /// The base64 data.
        data: &'a str,
    },
    /// A URL.
    Url {
        /// The URL.
        url: &'a str,
    },
}

/// A tool on the wire.
#[derive(Debug, Serialize)]
pub struct WireTool<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// JSON Schema of its input.
    pub input_schema: &'a Value,
    /// Strict tool use.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

impl<'a> RequestBody<'a> {
    /// The body for `req`. System messages move to the top-level `system` field,
    /// tool results to `tool_result` blocks of a user turn. What Messages cannot
    /// express (a JSON mode without a schema, an image outside a user turn, tool
    /// arguments that are not an object) is an error, before any HTTP call.
    pub fn new(req: &'a ChatRequest, stream: bool) -> Result<Self, String> {
        super::check_request(req)?;
        let mut system = Vec::new();
        let mut messages: Vec<WireMessage<'a>> = Vec::with_capacity(req.messages.len());
        for (i, m) in req.messages.iter().enumerate() {
            let unsupported = |p: &Part| {
                Err(format!(
                    "messages.{i}: a {} message cannot hold a {} part in Messages",
                    m.role.as_str(),
                    p.kind()
                ))
            };
            if m.role == Role::System {
                if let Some(other) = m.content.iter().find(|p| !matches!(p, Part::Text(_))) {
                    return unsupported(other);
                }
                // One system message's parts are one text; messages are paragraphs.
                system.push(m.text_cow());
                continue;
            }
            let mut blocks = Vec::with_capacity(m.content.len());
            for p in &m.content {
                if let (Role::Assistant, Part::Reasoning(r)) = (m.role, p) {
                    // Only Anthropic's own, whole: another family's is dropped.
                    if r.replays_to(ReasoningFamily::Anthropic) {
                        blocks.push(AnyBlock::Verbatim(&r.block));
                    }
                    continue;
                }
                let block = match (m.role, p) {
                    (Role::User | Role::Assistant, Part::Text(text)) => Block::Text { text },
                    (Role::User, Part::Image(src)) => Block::Image {
                        source: match src {
                            ImageSource::Url(url) => ImageBlockSource::Url { url },
                            ImageSource::Base64 { media_type, data } => {
                                ImageBlockSource::Base64 { media_type, data }
                            }
                        },
                    },
                    (Role::Assistant, Part::ToolCall(c)) => {
                        if c.unparsed.is_some() || !c.arguments.is_object() {
                            return Err(format!(
                                "messages.{i}: tool call {:?} has arguments that are not a JSON object",
                                c.name
                            ));
                        }
                        Block::ToolUse {
                            id: &c.id,
                            name: &c.name,
                            input: &c.arguments,
                        }
                    }
                    (Role::Tool, Part::ToolResult(r)) => Block::ToolResult {
                        tool_use_id: &r.call_id,
                        content: &r.content,
                        is_error: r.is_error,
                    },
                    (_, other) => return unsupported(other),
                };
                blocks.push(AnyBlock::Block(block));
            }
            let role = if m.role == Role::Assistant {
                "assistant"
            } else {
                "user"
            };
            // Results of several calls go in one user turn.
            if m.role == Role::Tool {
                if let Some(WireMessage {
                    role: "user",
                    content: WireContent::Blocks(previous),
                }) = messages.last_mut()
                {
                    if matches!(
                        previous.first(),
                        Some(AnyBlock::Block(Block::ToolResult { .. }))
                    ) {
                        previous.extend(blocks);
                        continue;
                    }
                }
            }
            let content = if m.is_text() {
                WireContent::Text(m.text_cow())
            } else {
                WireContent::Blocks(blocks)
            };
            messages.push(WireMessage { role, content });
        }
        let disable_parallel = req.parallel_tool_calls == Some(false) && !req.tools.is_empty();
        let mut tool_choice = req.tool_choice.as_ref().map(|c| match c {
            ToolChoice::Auto => serde_json::json!({"type": "auto"}),
            ToolChoice::None => serde_json::json!({"type": "none"}),
            ToolChoice::Required => serde_json::json!({"type": "any"}),
            ToolChoice::Tool(name) => serde_json::json!({"type": "tool", "name": name}),
        });
        if disable_parallel {
            let choice = tool_choice.get_or_insert_with(|| serde_json::json!({"type": "auto"}));
            if let Some(fields) = choice.as_object_mut() {
                if fields.get("type").and_then(Value::as_str) != Some("none") {
                    fields.insert("disable_parallel_tool_use".into(), Value::Bool(true));
                }
            }
        }
        let output_config = match &req.response_format {
            None => None,
            Some(ResponseFormat::Json) => {
                return Err(
                    "Messages has no JSON mode without a schema: use a JSON schema \
                            (ChatRequest::json_schema)"
                        .into(),
                )
            }
            Some(ResponseFormat::JsonSchema { schema, .. }) => {
                Some(serde_json::json!({"format": {"type": "json_schema", "schema": schema}}))
            }
        };
        let mut max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        let mut output_config = output_config;
        let thinking = match req.reasoning {
            None => None,
            Some(effort) if thinks_adaptively(req.model.model()) => {
                let config = output_config.get_or_insert_with(|| serde_json::json!({}));
                if let Some(fields) = config.as_object_mut() {
                    fields.insert("effort".into(), Value::from(effort.as_str()));
                }
                Some(serde_json::json!({"type": "adaptive"}))
            }
            Some(effort) => {
                // A budget of at least 1,024 below `max_tokens`: unset, the
                // limit makes room for the reply after it.
                let budget = match req.max_tokens {
                    None => {
                        let budget = effort.budget_tokens();
                        max_tokens = budget.saturating_add(DEFAULT_MAX_TOKENS);
                        budget
                    }
                    Some(max) if max > 1024 => effort.budget_tokens().min(max - 1),
                    Some(max) => {
                        return Err(format!(
                            "thinking on {} needs max_tokens above 1024 (its budget's \
                             least), not {max}",
                            req.model.model()
                        ))
                    }
                };
                Some(serde_json::json!({"type": "enabled", "budget_tokens": budget}))
            }
        };
        Ok(RequestBody {
            model: req.model.model(),
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages,
            max_tokens,
            temperature: req.temperature,
            stop_sequences: &req.stop,
            stream,
            tools: req
                .tools
                .iter()
                .map(|t| WireTool {
                    name: &t.name,
                    description: t.description.as_deref(),
                    input_schema: &t.input_schema,
                    strict: t.strict,
                })
                .collect(),
            tool_choice,
            output_config,
            thinking,
        })
    }
}

/// The JSON of `req`'s body, extra body fields merged in (they win).
pub fn request_json(req: &ChatRequest, stream: bool) -> Result<Vec<u8>, String> {
    let body = RequestBody::new(req, stream)?;
    super::with_extra(&body, &req.extra_body)
}

/// Usage as Anthropic sends it: the cache's reads and writes beside
/// `input_tokens`, the tier and place it billed at.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WireUsage {
    /// Input tokens (absent in most `message_delta` events).
    #[serde(default)]
    pub input_tokens: Option<u64>,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the prompt cache (every lifetime).
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    /// The writes by lifetime.
    #[serde(default)]
    pub cache_creation: Option<CacheCreation>,
    /// `standard`, `priority` or `batch`.
    #[serde(default)]
    pub service_tier: Option<String>,
    /// `global` or `us`.
    #[serde(default)]
    pub inference_geo: Option<String>,
}

/// Anthropic's cache writes by lifetime.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct CacheCreation {
    /// Written for an hour (billed at twice the input price).
    #[serde(default)]
    pub ephemeral_1h_input_tokens: Option<u64>,
}

impl WireUsage {
    /// This usage updated by a later one of the same reply (each field the
    /// later one sends replaces this one's: Anthropic's counts are cumulative).
    pub fn merge(&mut self, later: WireUsage) {
        fn take<T>(field: &mut Option<T>, later: Option<T>) {
            if later.is_some() {
                *field = later;
            }
        }
        take(&mut self.input_tokens, later.input_tokens);
        take(&mut self.output_tokens, later.output_tokens);
        take(
            &mut self.cache_read_input_tokens,
            later.cache_read_input_tokens,
        );
        take(
            &mut self.cache_creation_input_tokens,
            later.cache_creation_input_tokens,
        );
        take(&mut self.cache_creation, later.cache_creation);
        take(&mut self.service_tier, later.service_tier);
        take(&mut self.inference_geo, later.inference_geo);
    }

    /// steer's usage: the cache beside the prompt, as Anthropic counts it.
    pub fn usage(&self) -> Usage {
        let mut usage = Usage::new(
            self.input_tokens.unwrap_or(0),
            self.output_tokens.unwrap_or(0),
        );
        usage.cache = CacheAccounting::BesidePrompt;
        usage.cached_prompt_tokens = self.cache_read_input_tokens;
        usage.cache_write_tokens = self.cache_creation_input_tokens;
        usage.cache_write_1h_tokens = self
            .cache_creation
            .and_then(|c| c.ephemeral_1h_input_tokens);
        usage.service_tier = self.service_tier.as_deref().map(ServiceTier::parse);
        usage.inference_geo = self.inference_geo.as_deref().map(InferenceGeo::parse);
        usage
    }
}

#[derive(Deserialize)]
struct ResponseBody {
    /// `message` in every reply (checked when present).
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    /// Required: a body without it is not a reply. Kept as sent: thinking
    /// blocks go back byte for byte.
    content: Vec<Value>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

/// A content block's `type`.
fn kind(block: &Value) -> &str {
    block
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A content block's string field.
fn field<'a>(block: &'a Value, name: &str) -> Option<&'a str> {
    block.get(name).and_then(Value::as_str)
}

/// What steer keeps of a parsed non-streaming response.
pub type Parsed = super::openai::Parsed;

/// Parses a non-streaming Messages response: the text blocks, concatenated. A 2xx
/// body that is not a message is a failure: an error object is the error it
/// carries ([`DecodeError::InBand`]), anything else (`{}`, a proxy's JSON, a
/// wrong `type`) is malformed.
pub fn parse_response(body: &[u8]) -> Result<Parsed, DecodeError> {
    let parsed: ResponseBody = serde_json::from_slice(body).map_err(|e| {
        if super::carries_error(body) {
            DecodeError::InBand(String::from_utf8_lossy(body).into_owned())
        } else {
            DecodeError::Malformed(format!("messages body: {e}"))
        }
    })?;
    if let Some(kind) = parsed.kind.as_deref().filter(|k| *k != "message") {
        return Err(DecodeError::Malformed(format!(
            "messages body of type {:?}, not a message",
            snippet(kind)
        )));
    }
    let text = parsed
        .content
        .iter()
        .filter(|b| kind(b) == "text")
        .filter_map(|b| field(b, "text"))
        .collect::<String>();
    let tool_calls = parsed
        .content
        .iter()
        .filter(|b| kind(b) == "tool_use")
        .map(|b| {
            ToolCall::new(
                field(b, "id").unwrap_or_default(),
                field(b, "name").unwrap_or_default(),
                b.get("input")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Default::default())),
            )
        })
        .collect();
    let reasoning = parsed
        .content
        .iter()
        .filter(|b| matches!(kind(b), "thinking" | "redacted_thinking"))
        .map(|b| Reasoning::anthropic(b.clone()))
        .collect();
    let usage = parsed.usage.usage();
    Ok(Parsed {
        tool_calls,
        reasoning,
        text,
        finish_reason: parsed
            .stop_reason
            .as_deref()
            .map(FinishReason::from_anthropic)
            .unwrap_or_else(|| FinishReason::Other("missing".into())),
        usage,
        model: parsed.model,
        id: parsed.id,
    })
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        #[serde(default)]
        index: usize,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        #[serde(default)]
        index: usize,
        delta: Delta,
    },
    ContentBlockStop {
        #[serde(default)]
        index: usize,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop {},
    Error {},
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    ToolUse {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // the wire's own names
enum Delta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        #[serde(default)]
        partial_json: String,
    },
    ThinkingDelta {
        #[serde(default)]
        thinking: String,
    },
    SignatureDelta {
        #[serde(default)]
        signature: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// Decodes an Anthropic Messages stream, ending with `message_stop`.
///
/// `ping` and unknown events are skipped; usage in `message_delta` is cumulative;
/// only `text_delta` produces text (tool input and thinking are not text). A
/// thinking block's deltas pass as reasoning; at its end it is whole, with the
/// signature its `signature_delta` set (set, never appended).
#[derive(Debug, Default)]
pub struct Decoder {
    cursor: TextCursor,
    calls: super::CallAssembler,
    thinking: Option<Box<OpenThinking>>,
    /// Reasoning blocks begun (the next one's index).
    reasoning: usize,
    usage: WireUsage,
    finish: Option<FinishReason>,
    saw_usage: bool,
}

/// A thinking block arriving.
#[derive(Debug)]
struct OpenThinking {
    /// Its content block's index.
    key: usize,
    /// Its index among the reasoning blocks.
    index: usize,
    thinking: String,
    signature: String,
}

/// Largest thinking text one streamed block may accumulate.
pub const MAX_THINKING: usize = 4 * 1024 * 1024;

impl StreamDecoder for Decoder {
    fn whole_reply(&self) -> Option<super::ParseReply> {
        Some(parse_response)
    }

    fn on_event(
        &mut self,
        event: &str,
        data: &str,
        out: &mut Vec<ProviderEvent>,
    ) -> Result<Progress, DecodeError> {
        if event == "ping" {
            return Ok(Progress::Continue);
        }
        if event == "error" {
            return Err(DecodeError::InBand(data.to_string()));
        }
        if data.trim() == "[DONE]" {
            // Servers that mimic the format end with OpenAI's terminator
            // (mockllm, without `message_stop`): the end, as the finish says.
            return Ok(self.complete(out));
        }
        let parsed: Event = serde_json::from_str(data).map_err(|e| {
            // A gateway's error line (`data: {"error": ...}`, no event name) is
            // the error it carries, not a malformed event.
            if super::carries_error(data.as_bytes()) {
                DecodeError::InBand(data.to_string())
            } else {
                DecodeError::Malformed(format!("stream event {:?}: {e}", snippet(data)))
            }
        })?;
        match parsed {
            Event::MessageStart { message } => {
                if let Some(id) = message.id {
                    out.push(ProviderEvent::ResponseId { id });
                }
                self.usage = message.usage;
            }
            Event::ContentBlockStart {
                index,
                content_block: StartBlock::ToolUse { id, name },
            } => self.calls.start(index, id, name, out)?,
            Event::ContentBlockStart {
                index,
                content_block: StartBlock::Thinking { thinking },
            } => {
                let at = self.reasoning;
                self.reasoning = self.reasoning.saturating_add(1);
                if !thinking.is_empty() {
                    out.push(ProviderEvent::ReasoningDelta {
                        index: at,
                        text: thinking.clone(),
                    });
                }
                self.thinking = Some(Box::new(OpenThinking {
                    key: index,
                    index: at,
                    thinking,
                    signature: String::new(),
                }));
            }
            Event::ContentBlockStart {
                content_block: StartBlock::RedactedThinking { data },
                ..
            } => {
                // Whole as it starts: no deltas.
                let block = serde_json::json!({"type": "redacted_thinking", "data": data});
                out.push(ProviderEvent::Reasoning {
                    index: self.reasoning,
                    block: Reasoning::anthropic(block),
                });
                self.reasoning = self.reasoning.saturating_add(1);
            }
            Event::ContentBlockDelta {
                index,
                delta: Delta::ThinkingDelta { thinking },
            } => {
                if let Some(open) = self.thinking.as_mut().filter(|t| t.key == index) {
                    if open.thinking.len().saturating_add(thinking.len()) > MAX_THINKING {
                        return Err(DecodeError::Malformed(format!(
                            "a thinking block past {MAX_THINKING} bytes"
                        )));
                    }
                    open.thinking.push_str(&thinking);
                    out.push(ProviderEvent::ReasoningDelta {
                        index: open.index,
                        text: thinking,
                    });
                }
            }
            Event::ContentBlockDelta {
                index,
                delta: Delta::SignatureDelta { signature },
            } => {
                if let Some(open) = self.thinking.as_mut().filter(|t| t.key == index) {
                    open.signature = signature;
                }
            }
            Event::ContentBlockStop { index }
                if self.thinking.as_ref().is_some_and(|t| t.key == index) =>
            {
                if let Some(open) = self.thinking.take() {
                    let OpenThinking {
                        index,
                        thinking,
                        signature,
                        ..
                    } = *open;
                    let block = serde_json::json!({"type": "thinking", "thinking": thinking,
                        "signature": signature});
                    out.push(ProviderEvent::Reasoning {
                        index,
                        block: Reasoning::anthropic(block),
                    });
                }
            }
            Event::ContentBlockDelta {
                delta: Delta::TextDelta { text },
                ..
            } => self.cursor.delta(text, out),
            Event::ContentBlockDelta {
                index,
                delta: Delta::InputJsonDelta { partial_json },
            } => self.calls.delta(index, partial_json, out)?,
            Event::ContentBlockStop { index } => self.calls.finish(index, out),
            Event::ContentBlockStart { .. } | Event::ContentBlockDelta { .. } | Event::Other => {}
            Event::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.finish = Some(FinishReason::from_anthropic(&reason));
                }
                if let Some(u) = usage {
                    self.usage.merge(u);
                    self.saw_usage = true;
                    out.push(ProviderEvent::Usage(self.usage.usage()));
                }
            }
            Event::MessageStop {} => return Ok(self.complete(out)),
            Event::Error {} => return Err(DecodeError::InBand(data.to_string())),
        }
        Ok(Progress::Continue)
    }
}

impl Decoder {
    /// The stream's end: its open calls completed, then `Complete`.
    fn complete(&mut self, out: &mut Vec<ProviderEvent>) -> Progress {
        let usage = self.saw_usage.then(|| self.usage.usage());
        super::end_of_stream(&mut self.calls, self.finish.take(), usage, out)
    }
}

#[cfg(test)]
mod tests;
