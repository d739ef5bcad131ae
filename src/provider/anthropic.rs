//! Anthropic Messages ([`Anthropic`]).

use http::HeaderName;

use super::endpoint::EndpointBuilder;
use super::format::{Sealed, WireFormat};
use super::http_provider::{HttpProvider, HttpProviderBuilder};
use crate::model::ChatRequest;
use crate::prefill::Prefill;
use crate::wire::anthropic as wire;
use crate::wire::ParseReply;

/// The `anthropic-version` header steer sends.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Anthropic Messages (`POST {base}/v1/messages`, `x-api-key`, `anthropic-version`).
///
/// Key from `ANTHROPIC_API_KEY`, base URL from `ANTHROPIC_BASE_URL`, default
/// `https://api.anthropic.com` (without `/v1`, like the official client).
///
/// ```
/// use steer_llm::Anthropic;
/// let claude = Anthropic::builder().api_key("sk-ant-...").build().unwrap();
/// assert_eq!(claude.base_url(), "https://api.anthropic.com");
/// ```
pub type Anthropic = HttpProvider<Messages>;

/// Builds an [`Anthropic`] provider.
pub type AnthropicBuilder = HttpProviderBuilder<Messages>;

/// The Anthropic Messages wire format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Messages;

impl Sealed for Messages {}

impl WireFormat for Messages {
    type Decoder = wire::Decoder;
    const NAME: &'static str = "Anthropic";

    fn path(&self) -> &'static str {
        "/v1/messages"
    }

    fn key_header(&self) -> (HeaderName, &'static str) {
        (HeaderName::from_static("x-api-key"), "")
    }

    fn headers(&self, headers: &mut http::HeaderMap) {
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            http::HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Result<Vec<u8>, String> {
        wire::request_json(req, stream)
    }

    fn check(&self, req: &ChatRequest) -> Result<(), String> {
        wire::RequestBody::new(req, false).map(|_| ())
    }

    fn parse_reply(&self) -> ParseReply {
        wire::parse_response
    }

    /// Claude before 4.6 continues a final assistant message; from 4.6 on a
    /// prefill is a 400.
    fn prefill(&self, model: &str) -> Prefill {
        if crate::continue_message::rejects_prefill(model) {
            Prefill::None
        } else {
            Prefill::Trailing
        }
    }
}

impl Anthropic {
    /// A builder with the public API as default.
    pub fn builder() -> AnthropicBuilder {
        HttpProviderBuilder::new(
            EndpointBuilder::new(
                "anthropic",
                Some("https://api.anthropic.com"),
                Some("ANTHROPIC_API_KEY"),
                Some("ANTHROPIC_BASE_URL"),
            ),
            Messages,
        )
    }
}
