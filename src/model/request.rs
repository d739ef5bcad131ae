//! A chat request: who wrote what ([`Role`], [`Message`]), and the request
//! with its options ([`ChatRequest`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::id::{InvalidModelId, ModelId, RequestId};
use crate::content::Part;
use crate::tools::{ResponseFormat, Tool, ToolCall, ToolChoice, ToolResult};

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
    /// Runs a streamed request in the Responses API's background mode: the
    /// server keeps the response (about ten minutes; not compatible with zero
    /// data retention), so a broken stream resumes exactly where it broke, with
    /// nothing generated again ([`crate::ResumedBy::Server`]). Ignored by the
    /// other APIs and by non-streaming requests. Off by default.
    #[serde(default)]
    pub background: bool,
    /// Asks the model to reason first, as hard as this (where it can): the one
    /// switch for every API, so that a group's targets of different families
    /// each get it in their own words. An `extra_body` field of the same name
    /// (`thinking`, `reasoning`, `reasoning_effort`) wins.
    #[serde(default)]
    pub reasoning: Option<crate::reasoning::Effort>,
    /// Whether the server keeps the response (OpenAI's `store`, on the
    /// Responses API and Chat Completions; unset: the server's default, which
    /// for the Responses API is to keep it). `false` for zero data retention:
    /// the reasoning state then travels only in the history
    /// ([`ChatResponse::reasoning`](super::ChatResponse::reasoning)).
    #[serde(default)]
    pub store: Option<bool>,
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
            && self.reasoning.is_none()
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
            background: false,
            reasoning: None,
            store: None,
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
    /// [`ChatResponse::parse`](super::ChatResponse::parse)).
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
    /// Runs a streamed request in the Responses API's background mode (see
    /// [`ChatRequest::background`](ChatRequest#structfield.background)): a broken
    /// stream then resumes on the server, exactly.
    pub fn in_background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }
    /// Asks the model to reason first (see
    /// [`ChatRequest::reasoning`](ChatRequest#structfield.reasoning)): its
    /// reasoning comes back in [`ChatResponse::reasoning`](super::ChatResponse::reasoning).
    ///
    /// ```
    /// use steer_llm::{ChatRequest, Effort};
    /// let req = ChatRequest::new("anthropic/claude-sonnet-4-6").unwrap().user("Plan it.").reasoning(Effort::Low);
    /// assert_eq!(req.reasoning, Some(Effort::Low));
    /// ```
    pub fn reasoning(mut self, effort: crate::reasoning::Effort) -> Self {
        self.reasoning = Some(effort);
        self
    }
    /// Sets whether the server keeps the response (see
    /// [`ChatRequest::store`](ChatRequest#structfield.store)).
    pub fn store(mut self, keep: bool) -> Self {
        self.store = Some(keep);
        self
    }
    /// Adds an HTTP header to this request.
    pub fn extra_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_headers.0.push((name.into(), value.into()));
        self
    }
}
