//! The Anthropic Messages provider.

use super::endpoint::{endpoint_methods, Endpoint, EndpointBuilder};
use super::http::{self, CallContext};
use super::{EventStream, Provider};
use crate::error::{Error, FailureKind, ProviderError};
use crate::model::{ChatRequest, ChatResponse};
use crate::wire::anthropic::{self as wire, Decoder};

/// The `anthropic-version` header steer sends.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Anthropic Messages (`POST {base}/v1/messages`, `x-api-key`, `anthropic-version`).
///
/// Key from `ANTHROPIC_API_KEY`, base URL from `ANTHROPIC_BASE_URL`, default
/// `https://api.anthropic.com` (without `/v1`, like the official client).
#[derive(Clone)]
pub struct Anthropic {
    endpoint: Endpoint,
}

impl std::fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anthropic")
            .field("name", &self.endpoint.name)
            .field("base_url", &self.endpoint.base_url)
            .field("api_key", &self.endpoint.api_key)
            .finish()
    }
}

/// Builds an [`Anthropic`] provider.
#[derive(Debug, Clone)]
pub struct AnthropicBuilder {
    endpoint: EndpointBuilder,
}

impl Anthropic {
    /// A builder with the public API as default.
    pub fn builder() -> AnthropicBuilder {
        AnthropicBuilder {
            endpoint: EndpointBuilder::new(
                "anthropic",
                Some("https://api.anthropic.com"),
                Some("ANTHROPIC_API_KEY"),
                Some("ANTHROPIC_BASE_URL"),
            ),
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.endpoint.base_url
    }

    fn context(&self, req: &ChatRequest) -> CallContext {
        self.endpoint.context(req)
    }

    fn request(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, Box<ProviderError>> {
        let body = wire::request_json(req, stream).map_err(|message| {
            Box::new(self.context(req).error(FailureKind::Invalid { message }))
        })?;
        let mut builder = self
            .endpoint
            .http
            .current()
            .post(self.endpoint.url.clone())
            .header("anthropic-version", ANTHROPIC_VERSION)
            .header("x-client-request-id", req.request_id.as_str())
            .header(::http::header::CONTENT_TYPE, "application/json")
            .body(body);
        if stream {
            builder = builder.header("accept", "text/event-stream");
        }
        if let Some(key) = &self.endpoint.key_header {
            builder = builder.header("x-api-key", key.clone());
        }
        Ok(super::http::extra_headers(builder, req))
    }
}

impl AnthropicBuilder {
    endpoint_methods!();

    /// Resolves key, base URL and HTTP client.
    pub fn build(self) -> Result<Anthropic, Error> {
        Ok(Anthropic {
            endpoint: self.endpoint.resolve("/v1/messages", "")?,
        })
    }
}

#[async_trait::async_trait]
impl Provider for Anthropic {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    /// Claude before 4.6 continues a final assistant message; from 4.6 on a
    /// prefill is a 400.
    fn prefill(&self, model: &str) -> crate::Prefill {
        if crate::continue_message::rejects_prefill(model) {
            crate::Prefill::None
        } else {
            crate::Prefill::Trailing
        }
    }

    fn check(&self, req: &ChatRequest) -> Result<(), String> {
        if req.is_plain() {
            return Ok(());
        }
        wire::RequestBody::new(req, false).map(|_| ())
    }

    async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        // In statements of their own: a temporary of the awaiting statement
        // would be kept in the future beside the attempt's.
        let request = self.request(req, false).map_err(|e| *e)?;
        let attempt = http::generate(self.context(req), request, req, wire::parse_response);
        attempt.await
    }

    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let request = self.request(req, true).map_err(|e| *e)?;
        let attempt = http::stream(self.context(req), request, req, Decoder::default());
        attempt.await
    }
}
