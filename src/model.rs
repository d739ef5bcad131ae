//! The request model: model ids, messages, requests, responses and stream events.
//!
//! These types are provider-neutral. Each provider translates them into its own
//! wire format (see [`crate::wire`]) and back.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::content::Part;
use crate::tools::{OutputError, ResponseFormat, Tool, ToolCall, ToolChoice, ToolResult};

/// A model id of the form `provider/model`, e.g. `openai/gpt-4o-mini`.
///
/// The provider part is everything before the first `/`; the model part may itself
/// contain slashes (`openrouter/meta-llama/llama-3-8b`).
///
/// ```
/// let id: steer_llm::ModelId = "anthropic/claude-3-5-haiku-latest".parse().unwrap();
/// assert_eq!(id.provider(), "anthropic");
/// assert_eq!(id.model(), "claude-3-5-haiku-latest");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelId {
    // Shared: a request's actor and meters hold the model name without a copy.
    provider: Arc<str>,
    model: Arc<str>,
}

/// Why a string is not a valid `provider/model` id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid model id {input:?}: expected `provider/model`, e.g. `openai/gpt-4o-mini`")]
pub struct InvalidModelId {
    /// The rejected input.
    pub input: String,
}

impl ModelId {
    /// Builds a model id from its two parts.
    pub fn new(provider: &str, model: &str) -> Result<Self, InvalidModelId> {
        format!("{provider}/{model}").parse()
    }

    /// The provider name, e.g. `openai`.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The provider's own model name, e.g. `gpt-4o-mini`.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The model name as shared text (no copy).
    pub fn model_shared(&self) -> Arc<str> {
        self.model.clone()
    }
}

impl FromStr for ModelId {
    type Err = InvalidModelId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidModelId {
            input: s.to_string(),
        };
        let (provider, model) = s.split_once('/').ok_or_else(invalid)?;
        let valid_provider = !provider.is_empty()
            && provider
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
        // No whitespace in the model name (ASCII checked by byte, as most are).
        let spaced = if model.is_ascii() {
            model.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b)
        } else {
            model.chars().any(char::is_whitespace)
        };
        if !valid_provider || model.is_empty() || spaced {
            return Err(invalid());
        }
        Ok(ModelId {
            provider: Arc::from(provider),
            model: Arc::from(model),
        })
    }
}

impl TryFrom<String> for ModelId {
    type Error = InvalidModelId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ModelId> for String {
    fn from(id: ModelId) -> String {
        id.to_string()
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({self})")
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The caller's turn.
    User,
    /// The model's turn; a final assistant message is a prefill the model continues.
    Assistant,
    /// Results of the assistant's tool calls (OpenAI `tool` messages, Anthropic
    /// `tool_result` blocks in a user turn).
    Tool,
}

impl Role {
    /// The wire name of the role (`system`, `user`, `assistant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One message of a conversation: a role and its parts (text, images, tool calls,
/// tool results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// What it holds, in order.
    pub content: Vec<Part>,
}

impl Message {
    /// A message of these parts.
    pub fn new(role: Role, content: Vec<Part>) -> Self {
        Message { role, content }
    }
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message::new(Role::System, vec![Part::Text(content.into())])
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message::new(Role::User, vec![Part::Text(content.into())])
    }
    /// A user message of several parts (text and images).
    pub fn user_parts(parts: Vec<Part>) -> Self {
        Message::new(Role::User, parts)
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::new(Role::Assistant, vec![Part::Text(content.into())])
    }
    /// The assistant's turn that called tools, for the history: its text (may be
    /// empty) and its calls, as the response gave them.
    pub fn assistant_tool_calls(text: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        let text = text.into();
        let mut content = Vec::with_capacity(calls.len() + 1);
        if !text.is_empty() {
            content.push(Part::Text(text));
        }
        content.extend(calls.into_iter().map(Part::ToolCall));
        Message::new(Role::Assistant, content)
    }
    /// The result of tool call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message::new(
            Role::Tool,
            vec![Part::ToolResult(ToolResult::new(call_id, content))],
        )
    }
    /// The text parts, joined.
    pub fn text(&self) -> String {
        self.content.iter().filter_map(Part::as_text).collect()
    }
    /// The text parts, joined, borrowed when there is one.
    pub fn text_cow(&self) -> std::borrow::Cow<'_, str> {
        match self.content.as_slice() {
            [Part::Text(t)] => std::borrow::Cow::Borrowed(t.as_str()),
            _ => std::borrow::Cow::Owned(self.text()),
        }
    }
    /// Whether the message is text only.
    pub fn is_text(&self) -> bool {
        self.content.iter().all(|p| matches!(p, Part::Text(_)))
    }
}

/// Extra HTTP headers of one request (names and values as given). `Debug` shows
/// the names only: a value may be a secret.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHeaders(pub Vec<(String, String)>);

impl fmt::Debug for ExtraHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

/// steer's own id of a request: given by the caller, or a fresh UUID v4.
///
/// It is sent to providers as `x-client-request-id` and appears on every error,
/// span and log line of the request.
///
/// Cloning it is a reference count: it travels with every attempt, error and event.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// A fresh random id (UUID v4).
    pub fn random() -> Self {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        RequestId(Arc::from(
            &*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text),
        ))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The id as shared text (no copy).
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(RequestId::from)
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::random()
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        RequestId(Arc::from(s))
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        RequestId(Arc::from(s))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

/// A chat request to one model.
///
/// ```
/// use steer_llm::ChatRequest;
/// let req = ChatRequest::new("openai/gpt-4o-mini")
///     .unwrap()
///     .system("Be brief.")
///     .user("Name a colour.")
///     .max_tokens(64)
///     .request_id("order-42");
/// assert_eq!(req.messages.len(), 2);
/// assert_eq!(req.request_id.as_str(), "order-42");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Which provider and model to call.
    pub model: ModelId,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Upper bound on generated tokens (Anthropic requires one; steer sends 1024 when unset).
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call (provider default when unset).
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools at once (provider default when unset).
    pub parallel_tool_calls: Option<bool>,
    /// What the reply must look like (JSON, or JSON of a schema).
    pub response_format: Option<ResponseFormat>,
    /// Any other provider parameter, as top-level body fields (they override
    /// steer's own): `top_p`, `seed`, `user`, `metadata`, `reasoning_effort`, ...
    pub extra_body: Map<String, Value>,
    /// Extra HTTP headers (a beta flag, an organisation, ...).
    pub extra_headers: ExtraHeaders,
    /// steer's id of this request.
    pub request_id: RequestId,
}

/// Body fields that limit generated tokens, when given as extra body fields.
pub const TOKEN_LIMIT_FIELDS: [&str; 2] = ["max_tokens", "max_completion_tokens"];

impl ChatRequest {
    /// The limit on generated tokens: `max_tokens`, or one given as an extra body
    /// field (which the wire format sends instead), the smaller if both.
    pub fn token_limit(&self) -> Option<u64> {
        let extra = TOKEN_LIMIT_FIELDS
            .iter()
            .filter_map(|k| self.extra_body.get(*k).and_then(Value::as_u64))
            .min();
        match (self.max_tokens.map(u64::from), extra) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the request is plain text chat: no tools, no structured output, no
    /// part but text, no tool results. Every wire format can express it.
    pub fn is_plain(&self) -> bool {
        self.tools.is_empty()
            && self.extra_headers.0.is_empty()
            && !self.extra_body.contains_key("n")
            && !self.extra_body.contains_key("stream")
            && self.tool_choice.is_none()
            && self.response_format.is_none()
            && self
                .messages
                .iter()
                .all(|m| m.role != Role::Tool && m.is_text())
    }

    /// A request with no messages yet, for `provider/model`, with a fresh request id.
    pub fn new(model: &str) -> Result<Self, InvalidModelId> {
        Ok(Self::for_model(model.parse()?))
    }

    /// A request with no messages yet for an already parsed model id.
    pub fn for_model(model: ModelId) -> Self {
        ChatRequest {
            model,
            messages: Vec::new(),
            max_tokens: None,
            temperature: None,
            stop: Vec::new(),
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: None,
            response_format: None,
            extra_body: Map::new(),
            extra_headers: ExtraHeaders::default(),
            request_id: RequestId::random(),
        }
    }

    /// Appends a message.
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }
    /// Appends a system message.
    pub fn system(self, content: impl Into<String>) -> Self {
        self.message(Message::system(content))
    }
    /// Appends a user message.
    pub fn user(self, content: impl Into<String>) -> Self {
        self.message(Message::user(content))
    }
    /// Appends an assistant message (a final one is a prefill).
    pub fn assistant(self, content: impl Into<String>) -> Self {
        self.message(Message::assistant(content))
    }
    /// Sets `max_tokens`.
    pub fn max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = Some(n);
        self
    }
    /// Sets the temperature.
    pub fn temperature(mut self, t: f32) -> Self {
        self.temperature = Some(t);
        self
    }
    /// Adds a stop sequence.
    pub fn stop(mut self, s: impl Into<String>) -> Self {
        self.stop.push(s.into());
        self
    }
    /// Sets the caller's request id.
    pub fn request_id(mut self, id: impl Into<RequestId>) -> Self {
        self.request_id = id.into();
        self
    }
    /// Adds a tool the model may call.
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }
    /// Sets whether and which tool the model must call.
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }
    /// Allows or forbids several tool calls in one turn.
    pub fn parallel_tool_calls(mut self, on: bool) -> Self {
        self.parallel_tool_calls = Some(on);
        self
    }
    /// Asks for a reply that is JSON following `schema` (see
    /// [`ChatResponse::parse`]).
    pub fn json_schema(mut self, name: impl Into<String>, schema: Value) -> Self {
        self.response_format = Some(ResponseFormat::JsonSchema {
            name: name.into(),
            schema,
            strict: true,
        });
        self
    }
    /// Asks for a reply that is a JSON object (where the provider has such a mode).
    pub fn json_mode(mut self) -> Self {
        self.response_format = Some(ResponseFormat::Json);
        self
    }
    /// Sets a provider parameter steer does not model, as a top-level body field.
    pub fn extra_body(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra_body.insert(key.into(), value);
        self
    }
    /// Adds an HTTP header to this request.
    pub fn extra_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_headers.0.push((name.into(), value.into()));
        self
    }
}

/// Why generation stopped, normalised across providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end or a stop sequence (`stop`, `end_turn`, `stop_sequence`).
    Stop,
    /// The token limit was reached (`length`, `max_tokens`).
    Length,
    /// Content was withheld or refused (`content_filter`, `refusal`).
    ContentFilter,
    /// The model called a tool (`tool_calls`, `function_call`, `tool_use`).
    ToolCalls,
    /// Anything else, with the provider's own word (`pause_turn`, ...).
    Other(String),
}

impl FinishReason {
    /// Normalises an OpenAI or xAI `finish_reason`.
    pub fn from_openai(raw: &str) -> Self {
        match raw {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "content_filter" => FinishReason::ContentFilter,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            other => FinishReason::Other(other.to_string()),
        }
    }

    /// Normalises an Anthropic `stop_reason`.
    pub fn from_anthropic(raw: &str) -> Self {
        match raw {
            "end_turn" | "stop_sequence" => FinishReason::Stop,
            "max_tokens" => FinishReason::Length,
            "refusal" => FinishReason::ContentFilter,
            "tool_use" => FinishReason::ToolCalls,
            other => FinishReason::Other(other.to_string()),
        }
    }
}

/// Token usage of a response (or of all attempts of one, once resumption adds them up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Their sum.
    pub total_tokens: u64,
    /// Prompt tokens read from the provider's cache, when it reports them
    /// (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`).
    pub cached_prompt_tokens: Option<u64>,
    /// Generated tokens spent on reasoning, when the provider reports them
    /// (OpenAI `reasoning_tokens`).
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Usage from prompt and completion counts; the total is their sum.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            cached_prompt_tokens: None,
            reasoning_tokens: None,
        }
    }

    /// The usage of two attempts together (saturating).
    pub fn plus(self, other: Usage) -> Usage {
        let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        Usage {
            cached_prompt_tokens: add(self.cached_prompt_tokens, other.cached_prompt_tokens),
            reasoning_tokens: add(self.reasoning_tokens, other.reasoning_tokens),
            ..Usage::new(
                self.prompt_tokens.saturating_add(other.prompt_tokens),
                self.completion_tokens
                    .saturating_add(other.completion_tokens),
            )
        }
    }
}

/// A complete (non-streaming) response.
///
/// A custom [`Provider`](crate::Provider) builds one with [`ChatResponse::new`]
/// and the `with_*` setters: the fields the runtime fills (`route`,
/// `rate_limit`) start empty, and new fields do not break it.
///
/// ```
/// use steer_llm::{ChatRequest, ChatResponse, FinishReason, Usage};
/// let req = ChatRequest::new("echo/m").unwrap().user("Hi");
/// let reply = ChatResponse::new(&req, "echo", "Hi")
///     .with_usage(Usage::new(1, 1))
///     .with_finish_reason(FinishReason::Stop);
/// assert_eq!((reply.model.as_str(), reply.request_id), ("m", req.request_id));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The generated text.
    pub text: String,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Token usage.
    pub usage: Usage,
    /// The provider that answered (`openai`, `anthropic`, `xai`, or a custom name).
    pub provider: String,
    /// The model that answered, as the provider named it.
    pub model: String,
    /// steer's id of the request.
    pub request_id: RequestId,
    /// The provider's id of the request (`x-request-id` / `request-id`), if sent.
    pub provider_request_id: Option<String>,
    /// The response's own id in its body (`chatcmpl-...`, `msg_...`), if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// The tools the model called, in order (`finish_reason` is then `ToolCalls`).
    pub tool_calls: Vec<ToolCall>,
    /// For a request to a model group: the targets tried, in order, and how each
    /// ended (the last one answered). Empty otherwise.
    pub route: Vec<RouteStep>,
    /// What the response's rate-limit headers said (remaining counts and resets).
    pub rate_limit: steer_actors::RateLimitHints,
}

/// One target a grouped request tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStep {
    /// The target, `deployment/model`.
    pub target: String,
    /// `answered`, or why it did not: a failure's category, `breaker_rejected`,
    /// `paused`, `invalid_request`, ...
    pub outcome: String,
    /// When the target can be tried again, if it said (a breaker's half-open time,
    /// a pause's end).
    pub back_in: Option<std::time::Duration>,
}

impl RouteStep {
    pub(crate) fn answered(target: &ModelId) -> Self {
        RouteStep {
            target: target.to_string(),
            outcome: "answered".into(),
            back_in: None,
        }
    }
}

impl ChatResponse {
    /// `provider`'s reply to `req` with `text`: the model and request id are
    /// `req`'s, it finished with `Stop`, no usage, tool call or provider id.
    pub fn new(req: &ChatRequest, provider: impl Into<String>, text: impl Into<String>) -> Self {
        ChatResponse {
            text: text.into(),
            finish_reason: FinishReason::Stop,
            usage: Usage::default(),
            provider: provider.into(),
            model: req.model.model().to_string(),
            request_id: req.request_id.clone(),
            provider_request_id: None,
            response_id: None,
            tool_calls: Vec::new(),
            route: Vec::new(),
            rate_limit: steer_actors::RateLimitHints::default(),
        }
    }

    /// With this finish reason.
    pub fn with_finish_reason(mut self, finish_reason: FinishReason) -> Self {
        self.finish_reason = finish_reason;
        self
    }

    /// With this usage.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// With these tool calls (set the finish reason to `ToolCalls` too).
    pub fn with_tool_calls(mut self, tool_calls: Vec<ToolCall>) -> Self {
        self.tool_calls = tool_calls;
        self
    }

    /// With the provider's id of the request.
    pub fn with_provider_request_id(mut self, id: impl Into<String>) -> Self {
        self.provider_request_id = Some(id.into());
        self
    }

    /// The reply as JSON (for a request with a [`ResponseFormat`]).
    pub fn json(&self) -> Result<Value, OutputError> {
        serde_json::from_str(self.text.trim()).map_err(|_| OutputError::not_json(&self.text))
    }

    /// The reply as a typed value (for a request with a JSON schema).
    ///
    /// ```
    /// # fn demo(reply: steer_llm::ChatResponse) -> Result<(), steer_llm::tools::OutputError> {
    /// #[derive(serde::Deserialize)]
    /// struct City { name: String, population: u64 }
    /// let city: City = reply.parse()?;
    /// # Ok(()) }
    /// ```
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, OutputError> {
        serde_json::from_str(self.text.trim()).map_err(|e| OutputError {
            message: e.to_string(),
            text: self.text.clone(),
        })
    }
}

/// One event of a streamed response.
///
/// A successful stream is `Start`, any number of `TextDelta` and `Usage`, then
/// exactly one `Complete`. Later releases add events (resumption and failover
/// seams), hence `#[non_exhaustive]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StreamEvent {
    /// Response headers arrived.
    Start {
        /// steer's id of the request.
        request_id: RequestId,
        /// The provider answering.
        provider: String,
        /// The model answering.
        model: String,
        /// The provider's id of the request, if sent.
        provider_request_id: Option<String>,
    },
    /// A piece of generated text.
    TextDelta {
        /// The text.
        text: String,
        /// Where it starts in the whole response text, in characters (Unicode scalar values).
        offset: usize,
    },
    /// Usage so far (cumulative, not an increment).
    Usage(Usage),
    /// A continuation attempt takes over here after the stream broke: the text
    /// before and after the seam is one response, with nothing lost or repeated.
    Resumed {
        /// The attempt that continues (2 for the first retry).
        attempt: u32,
        /// Where the seam is in the response text, in characters.
        offset: usize,
        /// The provider continuing.
        provider: String,
    },
    /// A tool call begins (its arguments follow as `ToolCallDelta`s).
    ToolCallStart {
        /// Its position among the response's tool calls (0 for the first).
        index: usize,
        /// The provider's id of the call.
        id: String,
        /// The tool.
        name: String,
    },
    /// A piece of a tool call's argument text.
    ToolCallDelta {
        /// The call's index.
        index: usize,
        /// The piece.
        arguments: String,
    },
    /// A tool call is complete: its arguments, parsed. Delivered exactly once per call.
    ToolCall {
        /// The call's index.
        index: usize,
        /// The call.
        call: ToolCall,
    },
    /// A seam: the stream broke while this call's arguments were arriving, and the
    /// continuation makes the call again from its start. Discard what arrived for
    /// it (its `ToolCallStart` and deltas); its complete `ToolCall` follows.
    ToolCallDiscarded {
        /// The call's index.
        index: usize,
    },
    /// A seam where a model group's next target takes over the stream: the text
    /// before and after it is one response, nothing lost or repeated.
    FailedOver {
        /// The attempt that continues.
        attempt: u32,
        /// Where the seam is in the response text, in characters.
        offset: usize,
        /// The target taking over, `deployment/model`.
        target: String,
    },
    /// The targets a grouped stream tried and how each ended (sent once, just
    /// before `Complete`).
    Route {
        /// The targets, in order; the last one answered.
        steps: Vec<RouteStep>,
    },
    /// The response starts again from the beginning: discard the text received so far.
    Restarted {
        /// The attempt that starts again.
        attempt: u32,
    },
    /// The response's own id in its body (`chatcmpl-...`, `msg_...`), when the
    /// provider sends one: what a provider's stream yields once it is known. The
    /// client records it on the request's span (`gen_ai.response.id`) and does not
    /// pass it on.
    ResponseId {
        /// The id.
        id: String,
    },
    /// The stream finished successfully.
    Complete {
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Final usage, when the provider sent it.
        usage: Option<Usage>,
    },
}

#[cfg(test)]
mod model_id_tests {
    use super::*;

    /// The rule as written: a provider of ASCII letters, digits, `-`, `_`, `.`;
    /// a model of anything but whitespace; one `/` between (the first).
    fn valid_by_the_rule(s: &str) -> Option<(&str, &str)> {
        let (p, m) = s.split_once('/')?;
        let provider_ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let model_ok = !m.trim().is_empty() && !m.chars().any(char::is_whitespace);
        (provider_ok && model_ok).then_some((p, m))
    }

    #[test]
    fn edges() {
        for (s, ok) in [
            ("openai/gpt-4o-mini", true),
            ("a/b/c", true),
            ("local/llama 3", false),
            ("local/llama\u{0b}3", false),
            ("local/llama\u{a0}3", false),
            ("local/é", true),
            ("é/x", false),
            ("/x", false),
            ("x/", false),
            ("x/ ", false),
            ("x", false),
        ] {
            assert_eq!(s.parse::<ModelId>().is_ok(), ok, "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_parse_keeps_the_rule(s in "[a-z_.é -]{0,6}/?[a-zA-Z0-9 \t\u{0b}\u{a0}\u{2003}é/.-]{0,10}") {
            let parsed = s.parse::<ModelId>();
            match valid_by_the_rule(&s) {
                Some((p, m)) => {
                    let id = parsed.expect("valid by the rule");
                    proptest::prop_assert_eq!((id.provider(), id.model()), (p, m));
                    proptest::prop_assert_eq!(&*id.model_shared(), m);
                }
                None => proptest::prop_assert!(parsed.is_err(), "{:?} accepted", s),
            }
        }
    }
}
