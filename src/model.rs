//! The request model: model ids, messages, requests, responses and stream events.
//!
//! These types are provider-neutral. Each provider translates them into its own
//! wire format (see [`crate::wire`]) and back.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

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
    provider: String,
    model: String,
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
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !valid_provider || model.trim().is_empty() || model.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        Ok(ModelId {
            provider: provider.to_string(),
            model: model.to_string(),
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
}

impl Role {
    /// The wire name of the role (`system`, `user`, `assistant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
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
    /// steer's id of this request.
    pub request_id: RequestId,
}

impl ChatRequest {
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
}

impl Usage {
    /// Usage from prompt and completion counts; the total is their sum.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }

    /// The usage of two attempts together (saturating).
    pub fn plus(self, other: Usage) -> Usage {
        Usage::new(
            self.prompt_tokens.saturating_add(other.prompt_tokens),
            self.completion_tokens
                .saturating_add(other.completion_tokens),
        )
    }
}

/// A complete (non-streaming) response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The response starts again from the beginning: discard the text received so far.
    Restarted {
        /// The attempt that starts again.
        attempt: u32,
    },
    /// The stream finished successfully.
    Complete {
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Final usage, when the provider sent it.
        usage: Option<Usage>,
    },
}
