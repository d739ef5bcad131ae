//! What makes one HTTP API differ from another ([`WireFormat`]): its path, how
//! the key travels, the headers it needs, and the wire module that writes its
//! requests and reads its replies. Everything else about an attempt (the
//! endpoint, the HTTP client, errors, streams) is the one
//! [`HttpProvider`](super::HttpProvider)'s.

use http::{HeaderMap, HeaderName};

use crate::model::{ChatRequest, ChatResponse, ResumePoint};
use crate::prefill::Prefill;
use crate::wire::{ParseReply, StreamDecoder};

mod sealed {
    /// Only steer's formats: a new one needs its wire module, its mock and its
    /// conformance tests, which live in this crate.
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// How an OpenAI-format server takes its key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyHeader {
    /// `Authorization: Bearer KEY` (OpenAI, xAI, most compatible servers).
    #[default]
    Bearer,
    /// `api-key: KEY` (Azure OpenAI).
    ApiKey,
}

impl KeyHeader {
    /// The header and what goes before the key in it.
    pub(crate) fn pair(self) -> (HeaderName, &'static str) {
        match self {
            KeyHeader::Bearer => (http::header::AUTHORIZATION, "Bearer "),
            KeyHeader::ApiKey => (HeaderName::from_static("api-key"), ""),
        }
    }
}

/// One API's wire format, as the generic [`HttpProvider`](super::HttpProvider)
/// needs it: Chat Completions ([`ChatCompletions`](super::ChatCompletions)) and
/// Anthropic Messages ([`Messages`](super::Messages)). Sealed: steer adds formats.
pub trait WireFormat: Sealed + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The decoder of its streams.
    type Decoder: StreamDecoder + Default;

    /// The type's name in `Debug` output (`OpenAiCompatible`, `Anthropic`).
    const NAME: &'static str;

    /// The API's path after the base URL (`/chat/completions`).
    fn path(&self) -> &'static str;

    /// The path of a request to `model` on Azure's dated API (the deployment
    /// in the path where the API puts it there).
    fn dated_path(&self, _model: &str) -> String {
        self.path().to_string()
    }

    /// The header that carries the key and what goes before the key in it.
    fn key_header(&self) -> (HeaderName, &'static str);

    /// Adds the headers every request of this API carries (a version).
    fn headers(&self, _headers: &mut HeaderMap) {}

    /// The request's JSON body, or why this API cannot express it.
    fn body(&self, req: &ChatRequest, stream: bool) -> Result<Vec<u8>, String>;

    /// Whether this API can express `req` (what [`Provider::check`](super::Provider::check) answers).
    fn check(&self, req: &ChatRequest) -> Result<(), String>;

    /// The parser of a whole (non-streaming) reply.
    fn parse_reply(&self) -> ParseReply;

    /// The decoder of `req`'s stream.
    fn decoder(&self, _req: &ChatRequest) -> Self::Decoder {
        Self::Decoder::default()
    }

    /// Whether the API keeps background responses, to resume and cancel
    /// (`GET /responses/{id}`, `POST /responses/{id}/cancel`). Default no.
    fn resumes(&self) -> bool {
        false
    }

    /// The decoder of `req`'s stream resumed on the server at `point` (asked
    /// only where [`WireFormat::resumes`]).
    fn resume_decoder(&self, req: &ChatRequest, _point: &ResumePoint) -> Self::Decoder {
        self.decoder(req)
    }

    /// What the client does to a whole reply that the API leaves to it (stop
    /// sequences where the API has none).
    fn finish_reply(&self, _req: &ChatRequest, _reply: &mut ChatResponse) {}

    /// Whether and how the server continues a final assistant message for `model`.
    fn prefill(&self, model: &str) -> Prefill;
}
