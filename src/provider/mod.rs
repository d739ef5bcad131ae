//! Provider clients: one trait, one HTTP provider over each API's wire format
//! (Chat Completions for OpenAI-compatible servers, Anthropic Messages, the
//! Responses API), and
//! the registry that resolves `provider/model` ids.
//!
//! A provider makes exactly one attempt per call. It never retries on its own:
//! retries, breakers and deadlines belong to the actors, and stacked retries
//! multiply load during an outage.

mod anthropic;
mod apis;
mod clients;
mod endpoint;
mod format;
pub mod http;
mod http_provider;
mod openai;
mod registry;
mod responses;

use std::pin::Pin;

use futures::Stream;

pub use anthropic::{Anthropic, AnthropicBuilder, Messages};
pub use apis::OpenAiApis;
pub use endpoint::EndpointBuilder;
pub use format::{KeyHeader, WireFormat};
pub use http_provider::{HttpProvider, HttpProviderBuilder};
pub use openai::{ChatCompletions, OpenAiCompatible, OpenAiCompatibleBuilder};
pub use registry::Providers;
pub use responses::{OpenAiResponses, OpenAiResponsesBuilder, Responses};

use crate::error::ProviderError;
use crate::model::{ChatRequest, ChatResponse, ProviderEvent, ResumePoint};

/// The events of one streamed attempt. It ends after `Complete` or after the first
/// error; an end without `Complete` never happens (it is reported as
/// [`crate::FailureKind::Incomplete`]).
pub type EventStream = Pin<Box<dyn Stream<Item = Result<ProviderEvent, ProviderError>> + Send>>;

/// An LLM provider: one attempt of a chat request, whole or streamed.
///
/// Implement it to plug in a provider steer does not know; register the value
/// with [`Providers::register`]. For any OpenAI-compatible server (vLLM, Ollama,
/// Groq, gateways) use [`OpenAiCompatible::custom`] instead.
///
/// ```
/// use steer_llm::{async_trait, ChatRequest, ChatResponse, EventStream, Provider, ProviderError, Usage};
///
/// struct Echo;
///
/// #[async_trait]
/// impl Provider for Echo {
///     fn name(&self) -> &str { "echo" }
///     async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
///         let text = req.messages.last().map(|m| m.text()).unwrap_or_default();
///         Ok(ChatResponse::new(req, "echo", text).with_usage(Usage::new(1, 1)))
///     }
///     async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
///         Ok(steer_llm::provider::stream_from_response(self.generate(req).await?))
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The name it is registered under: the `provider` of `provider/model`.
    fn name(&self) -> &str;

    /// One non-streaming attempt.
    async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// Whether this provider can express `req` (its parts, tools, output format):
    /// the client asks before any attempt, and a `Err(why)` is an
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest). The default accepts
    /// everything.
    fn check(&self, _req: &ChatRequest) -> Result<(), String> {
        Ok(())
    }

    /// Whether and how this provider's server continues a final assistant
    /// message for `model` ([`crate::Prefill`]): a broken stream is continued
    /// with a prefill only where it does, else with the "continue" message.
    /// The default, [`crate::Prefill::None`], is right for any server not
    /// documented to continue one.
    fn prefill(&self, _model: &str) -> crate::Prefill {
        crate::Prefill::None
    }

    /// One streaming attempt. Errors before the response headers are returned here;
    /// later ones arrive in the stream.
    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError>;

    /// Reconnects to `req`'s stored background response after `point` (the
    /// Responses API's `GET /responses/{id}?stream=true&starting_after=N`):
    /// its events after the last one read, nothing generated again. The
    /// default has no such resume: an [`Invalid`](crate::FailureKind::Invalid)
    /// error, on which the stream continues client-side.
    async fn resume(
        &self,
        req: &ChatRequest,
        _point: &ResumePoint,
    ) -> Result<EventStream, ProviderError> {
        Err(ProviderError::new(
            self.name(),
            req.request_id.clone(),
            crate::FailureKind::Invalid {
                message: "this provider has no server-side resume".into(),
            },
        ))
    }

    /// Cancels `req`'s background response `response_id` (the Responses
    /// API's `POST /responses/{id}/cancel`), so that it stops billing once no
    /// one reads it. The default has nothing to cancel.
    async fn cancel(&self, _req: &ChatRequest, _response_id: &str) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// Turns a whole response into a stream (start, one text delta, usage, complete):
/// for custom providers that cannot stream.
pub fn stream_from_response(resp: ChatResponse) -> EventStream {
    let mut events = vec![ProviderEvent::Start {
        request_id: resp.request_id.clone(),
        provider: resp.provider.clone(),
        model: resp.model.clone(),
        provider_request_id: resp.provider_request_id.clone(),
    }];
    if !resp.text.is_empty() {
        events.push(ProviderEvent::TextDelta {
            text: resp.text,
            offset: 0,
        });
    }
    events.push(ProviderEvent::Usage(resp.usage));
    events.push(ProviderEvent::Complete {
        finish_reason: resp.finish_reason,
        usage: Some(resp.usage),
    });
    Box::pin(futures::stream::iter(events.into_iter().map(Ok)))
}
