//! A complete response: its text and calls, why it stopped ([`FinishReason`]),
//! what it cost ([`Usage`]) and, for a group, its route ([`RouteStep`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::id::{ModelId, RequestId};
use super::request::ChatRequest;
use crate::tools::{OutputError, ToolCall};

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
    /// steer stopped the stream at its spend budget's cap (the reply so far
    /// is kept; see [`crate::budget`]).
    Budget,
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
    /// Prompt tokens written to the provider's cache, when it reports them
    /// (Anthropic `cache_creation_input_tokens`, every lifetime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    /// Of [`Usage::cache_write_tokens`], those written for an hour (Anthropic
    /// `cache_creation.ephemeral_1h_input_tokens`; the rest are for 5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_tokens: Option<u64>,
    /// Whether the cache's tokens are counted in [`Usage::prompt_tokens`]
    /// (OpenAI) or beside it (Anthropic).
    #[serde(default)]
    pub cache: CacheAccounting,
    /// The tier the provider says it served (and bills) the request at
    /// (OpenAI's and Anthropic's `service_tier`), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<ServiceTier>,
    /// Where Anthropic says it ran the request (`usage.inference_geo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_geo: Option<InferenceGeo>,
}

/// `a` where `b` agrees, else nothing.
fn agreed<T: PartialEq>(a: Option<T>, b: Option<T>) -> Option<T> {
    if a == b {
        a
    } else {
        None
    }
}

/// How a provider counts its prompt cache against the prompt tokens.
///
/// OpenAI's `cached_tokens` are part of `prompt_tokens`; Anthropic's cache
/// reads and writes come beside `input_tokens`. Pricing a usage needs to know
/// which, or the cached tokens are billed twice or never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheAccounting {
    /// Cache reads are included in the prompt tokens (OpenAI, xAI, the
    /// Responses API).
    #[default]
    InPrompt,
    /// Cache reads and writes come beside the prompt tokens (Anthropic).
    BesidePrompt,
}

/// The service tier a provider served a request at, as its usage names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceTier {
    /// The standard (or `default`) tier: the table's base prices.
    Standard,
    /// Priority processing.
    Priority,
    /// OpenAI's flex processing.
    Flex,
    /// A batch.
    Batch,
    /// A tier steer has no name for.
    Other,
}

impl ServiceTier {
    /// The tier a provider's word names (`default`, `auto` and `standard` are
    /// the standard tier).
    pub fn parse(raw: &str) -> Self {
        match raw {
            "default" | "standard" | "auto" | "standard_only" => ServiceTier::Standard,
            "priority" => ServiceTier::Priority,
            "flex" => ServiceTier::Flex,
            "batch" => ServiceTier::Batch,
            _ => ServiceTier::Other,
        }
    }
}

/// Where a provider ran a request, when it prices places apart (Anthropic's
/// `inference_geo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InferenceGeo {
    /// Anywhere (`global`): the table's base prices.
    Global,
    /// The United States only (`us`).
    Us,
    /// A place steer has no name for.
    Other,
}

impl InferenceGeo {
    /// The place a provider's word names.
    pub fn parse(raw: &str) -> Self {
        match raw {
            "global" | "" => InferenceGeo::Global,
            "us" => InferenceGeo::Us,
            _ => InferenceGeo::Other,
        }
    }
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
            cache_write_tokens: None,
            cache_write_1h_tokens: None,
            cache: CacheAccounting::InPrompt,
            service_tier: None,
            inference_geo: None,
        }
    }

    /// Every prompt token the provider read, the cache's included (Anthropic's
    /// cache reads and writes added to its `input_tokens`).
    pub fn input_tokens(&self) -> u64 {
        match self.cache {
            CacheAccounting::InPrompt => self.prompt_tokens,
            CacheAccounting::BesidePrompt => self
                .prompt_tokens
                .saturating_add(self.cached_prompt_tokens.unwrap_or(0))
                .saturating_add(self.cache_write_tokens.unwrap_or(0)),
        }
    }

    /// The same usage with the cache counted in the prompt tokens (as OpenAI
    /// counts it): usages of two conventions add up this way.
    pub fn cache_in_prompt(self) -> Usage {
        Usage {
            prompt_tokens: self.input_tokens(),
            total_tokens: self.input_tokens().saturating_add(self.completion_tokens),
            cache: CacheAccounting::InPrompt,
            ..self
        }
    }

    /// The usage of two attempts together (saturating).
    /// Two usages of different cache conventions add up with the cache in the
    /// prompt; the tier and place are kept where both agree.
    pub fn plus(self, other: Usage) -> Usage {
        let (a, b) = if self.cache == other.cache {
            (self, other)
        } else {
            (self.cache_in_prompt(), other.cache_in_prompt())
        };
        let (this, other) = (a, b);
        let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        Usage {
            cached_prompt_tokens: add(this.cached_prompt_tokens, other.cached_prompt_tokens),
            reasoning_tokens: add(this.reasoning_tokens, other.reasoning_tokens),
            cache_write_tokens: add(this.cache_write_tokens, other.cache_write_tokens),
            cache_write_1h_tokens: add(this.cache_write_1h_tokens, other.cache_write_1h_tokens),
            cache: this.cache,
            service_tier: agreed(this.service_tier, other.service_tier),
            inference_geo: agreed(this.inference_geo, other.inference_geo),
            ..Usage::new(
                this.prompt_tokens.saturating_add(other.prompt_tokens),
                this.completion_tokens
                    .saturating_add(other.completion_tokens),
            )
        }
    }
}

/// A complete (non-streaming) response.
///
/// A custom [`Provider`](crate::Provider) builds one with [`ChatResponse::new`]
/// and the `with_*` setters: the fields the runtime fills (`route`,
/// `rate_limit`, `spend`) start empty, and new fields do not break it.
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
    /// The model's reasoning blocks, in order, exactly as sent (Anthropic's
    /// signed thinking, the Responses API's reasoning items): put them back in
    /// the history with [`ChatResponse::message`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasoning: Vec<crate::reasoning::Reasoning>,
    /// For a request to a model group: the targets tried, in order, and how each
    /// ended (the last one answered). Empty otherwise.
    pub route: Vec<RouteStep>,
    /// What the response's rate-limit headers said (remaining counts and resets).
    pub rate_limit: steer_actors::RateLimitHints,
    /// What the request spent: every attempt (retries, a group's legs, hedges
    /// that lost) at the client's prices, delivered and wasted apart
    /// ([`crate::cost`]). `usage` is this reply's own attempt's.
    #[serde(default)]
    pub spend: super::Spend,
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
        RouteStep::ended(target, "answered")
    }

    /// A hedge's leg at `target` that lost its race (`hedge_lost`).
    pub(crate) fn lost_race(target: &ModelId) -> Self {
        RouteStep::ended(target, "hedge_lost")
    }

    /// `target` ended with `outcome`, with no time to come back.
    pub(crate) fn ended(target: &ModelId, outcome: &str) -> Self {
        RouteStep {
            target: target.to_string(),
            outcome: outcome.into(),
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
            reasoning: Vec::new(),
            route: Vec::new(),
            rate_limit: steer_actors::RateLimitHints::default(),
            spend: super::Spend::default(),
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

    /// The reply as the assistant turn of a conversation's history: its
    /// reasoning blocks (unchanged, first), its text, its tool calls.
    ///
    /// ```
    /// # fn demo(req: steer_llm::ChatRequest, reply: steer_llm::ChatResponse) {
    /// let next = req.message(reply.message()).user("And then?");
    /// # }
    /// ```
    pub fn message(&self) -> crate::Message {
        let mut content: Vec<crate::content::Part> = self
            .reasoning
            .iter()
            .cloned()
            .map(crate::content::Part::Reasoning)
            .collect();
        if !self.text.is_empty() {
            content.push(crate::content::Part::Text(self.text.clone()));
        }
        content.extend(
            self.tool_calls
                .iter()
                .cloned()
                .map(crate::content::Part::ToolCall),
        );
        crate::Message::new(crate::model::Role::Assistant, content)
    }

    /// The reply as JSON (for a request with a [`ResponseFormat`](crate::tools::ResponseFormat)).
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
