//! OpenAI's Responses API: OpenAI, xAI, and any server speaking it
//! ([`OpenAiResponses`]).

use http::HeaderName;

use super::endpoint::EndpointBuilder;
use super::format::{KeyHeader, Sealed, WireFormat};
use super::http_provider::{HttpProvider, HttpProviderBuilder};
use crate::model::{ChatRequest, ChatResponse, ResumePoint};
use crate::prefill::Prefill;
use crate::wire::responses as wire;
use crate::wire::ParseReply;

/// A Responses API provider (`POST {base}/responses`, bearer key): the API
/// OpenAI and xAI now put first, and the only one some models answer on.
///
/// ```
/// use steer_llm::provider::OpenAiResponses;
/// let openai = OpenAiResponses::openai().api_key("sk-...").build().unwrap();
/// assert_eq!(openai.base_url(), "https://api.openai.com/v1");
/// ```
pub type OpenAiResponses = HttpProvider<Responses>;

/// Builds an [`OpenAiResponses`] provider.
pub type OpenAiResponsesBuilder = HttpProviderBuilder<Responses>;

/// The Responses API wire format, how its server takes the key, and whether
/// its streams run in background mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Responses {
    key: KeyHeader,
    background: bool,
}

impl Sealed for Responses {}

impl WireFormat for Responses {
    type Decoder = wire::Decoder;
    const NAME: &'static str = "OpenAiResponses";

    fn path(&self) -> &'static str {
        "/responses"
    }

    fn key_header(&self) -> (HeaderName, &'static str) {
        self.key.pair()
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Result<Vec<u8>, String> {
        let mut body = wire::RequestBody::new(req, stream)?;
        body.background |= stream && self.background;
        crate::wire::with_extra(&body, &req.extra_body)
    }

    fn check(&self, req: &ChatRequest) -> Result<(), String> {
        wire::RequestBody::new(req, false).map(|_| ())
    }

    fn parse_reply(&self) -> ParseReply {
        wire::parse_response
    }

    /// The API has no stop sequences: the decoder ends the reply before the first.
    fn decoder(&self, req: &ChatRequest) -> wire::Decoder {
        wire::Decoder::with_stops(req.stop.clone())
    }

    fn resumes(&self) -> bool {
        true
    }

    /// A background response's stream resumes after the last event read.
    fn resume_decoder(&self, req: &ChatRequest, point: &ResumePoint) -> wire::Decoder {
        wire::Decoder::resuming(req.stop.clone(), point)
    }

    fn finish_reply(&self, req: &ChatRequest, reply: &mut ChatResponse) {
        if let Some(at) = crate::wire::stop::first_stop(&reply.text, &req.stop) {
            reply.text.truncate(at);
            reply.tool_calls.clear();
            reply.finish_reason = crate::model::FinishReason::Stop;
        }
    }

    /// The Responses API answers a final assistant message afresh: a broken
    /// stream is continued with the "continue" message.
    fn prefill(&self, _model: &str) -> Prefill {
        Prefill::None
    }
}

impl OpenAiResponsesBuilder {
    /// Runs every stream of this deployment in background mode (see
    /// [`ChatRequest::background`](crate::ChatRequest#structfield.background)):
    /// the server keeps each response about ten minutes, which is not
    /// compatible with zero data retention, and a broken stream resumes
    /// exactly, with nothing generated again. Off by default.
    pub fn background(mut self, on: bool) -> Self {
        self.format.background = on;
        self
    }
}

impl OpenAiResponses {
    /// OpenAI: `OPENAI_API_KEY`, `OPENAI_BASE_URL`, default `https://api.openai.com/v1`.
    pub fn openai() -> OpenAiResponsesBuilder {
        HttpProviderBuilder::new(EndpointBuilder::openai(), Responses::default())
    }

    /// xAI: `XAI_API_KEY`, `XAI_BASE_URL`, default `https://api.x.ai/v1`.
    pub fn xai() -> OpenAiResponsesBuilder {
        HttpProviderBuilder::new(EndpointBuilder::xai(), Responses::default())
    }

    /// Azure OpenAI's v1 Responses API at `resource`, as
    /// [`OpenAiCompatible::azure`](super::OpenAiCompatible::azure) reaches its
    /// Chat Completions: the key in `api-key`, registered as `azure`.
    pub fn azure(resource: &str) -> OpenAiResponsesBuilder {
        let format = Responses {
            key: KeyHeader::ApiKey,
            background: false,
        };
        HttpProviderBuilder::new(EndpointBuilder::azure(resource), format)
    }

    /// Azure OpenAI's dated Responses API at `resource`:
    /// `{resource}/openai/responses?api-version=...`, the key in `api-key`.
    pub fn azure_dated(resource: &str, api_version: &str) -> OpenAiResponsesBuilder {
        let format = Responses {
            key: KeyHeader::ApiKey,
            background: false,
        };
        HttpProviderBuilder::new(EndpointBuilder::azure_dated(resource, api_version), format)
    }

    /// Any server speaking the Responses API, registered under `name`;
    /// `base_url` ends before `/responses` (usually with `/v1`).
    pub fn custom(name: &str, base_url: &str) -> OpenAiResponsesBuilder {
        HttpProviderBuilder::new(
            EndpointBuilder::custom(name, base_url),
            Responses::default(),
        )
    }
}
