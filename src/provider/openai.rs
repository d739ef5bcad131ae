//! The OpenAI-compatible provider: OpenAI, xAI, and any server speaking Chat Completions.

use super::endpoint::{endpoint_methods, Endpoint, EndpointBuilder};
use super::http::{self, CallContext};
use super::{EventStream, Provider};
use crate::error::{Error, FailureKind, ProviderError};
use crate::model::{ChatRequest, ChatResponse};
use crate::prefill::Prefill;
use crate::wire::openai::{self as wire, Decoder};

/// A Chat Completions provider (`POST {base}/chat/completions`, bearer key).
///
/// ```
/// use steer_llm::OpenAiCompatible;
/// // A local vLLM or Ollama server, registered as `local/<model>`:
/// let local = OpenAiCompatible::custom("local", "http://127.0.0.1:11434/v1").build().unwrap();
/// # let _ = local;
/// ```
#[derive(Clone)]
pub struct OpenAiCompatible {
    endpoint: Endpoint,
    include_usage: bool,
    prefill: Prefill,
}

impl std::fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("name", &self.endpoint.name)
            .field("base_url", &self.endpoint.base_url)
            .field("api_key", &self.endpoint.api_key)
            .field("prefill", &self.prefill)
            .finish()
    }
}

/// Builds an [`OpenAiCompatible`] provider.
#[derive(Debug, Clone)]
pub struct OpenAiCompatibleBuilder {
    endpoint: EndpointBuilder,
    include_usage: bool,
    prefill: Prefill,
}

impl OpenAiCompatible {
    /// OpenAI: `OPENAI_API_KEY`, `OPENAI_BASE_URL`, default `https://api.openai.com/v1`.
    pub fn openai() -> OpenAiCompatibleBuilder {
        OpenAiCompatibleBuilder::new(EndpointBuilder::new(
            "openai",
            Some("https://api.openai.com/v1"),
            Some("OPENAI_API_KEY"),
            Some("OPENAI_BASE_URL"),
        ))
    }

    /// xAI: `XAI_API_KEY`, `XAI_BASE_URL`, default `https://api.x.ai/v1`.
    pub fn xai() -> OpenAiCompatibleBuilder {
        OpenAiCompatibleBuilder::new(EndpointBuilder::new(
            "xai",
            Some("https://api.x.ai/v1"),
            Some("XAI_API_KEY"),
            Some("XAI_BASE_URL"),
        ))
    }

    /// Any OpenAI-compatible server, registered under `name`; `base_url` ends before
    /// `/chat/completions` (usually with `/v1`). No environment variables are read.
    pub fn custom(name: &str, base_url: &str) -> OpenAiCompatibleBuilder {
        let mut endpoint = EndpointBuilder::new(name, None, None, None);
        endpoint.base_url = Some(base_url.to_string());
        OpenAiCompatibleBuilder::new(endpoint)
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
        let body = wire::request_json(req, stream, self.include_usage, self.prefill).map_err(
            |message| Box::new(self.context(req).error(FailureKind::Invalid { message })),
        )?;
        let mut builder = self
            .endpoint
            .http
            .current()
            .post(self.endpoint.url.clone())
            .header("x-client-request-id", req.request_id.as_str())
            .header(::http::header::CONTENT_TYPE, "application/json")
            .body(body);
        if stream {
            builder = builder.header("accept", "text/event-stream");
        }
        if let Some(key) = &self.endpoint.key_header {
            builder = builder.header(::http::header::AUTHORIZATION, key.clone());
        }
        Ok(super::http::extra_headers(builder, req))
    }
}

impl OpenAiCompatibleBuilder {
    fn new(endpoint: EndpointBuilder) -> Self {
        OpenAiCompatibleBuilder {
            endpoint,
            include_usage: true,
            prefill: Prefill::None,
        }
    }

    endpoint_methods!();

    /// Whether streaming requests ask for the final usage chunk
    /// (`stream_options.include_usage`, default on; turn off for servers that reject it).
    pub fn include_usage(mut self, on: bool) -> Self {
        self.include_usage = on;
        self
    }

    /// How the server continues a final assistant message (default
    /// [`Prefill::None`]: OpenAI and xAI answer it afresh). Declare what your
    /// server does: `PrefixFlag` for DeepSeek and Mistral, `ContinueFinalMessage`
    /// for vLLM, SGLang and TGI, `Trailing` for llama.cpp, Ollama and Groq. A
    /// final assistant message is then sent with the server's flag, and a broken
    /// stream is continued with a prefill instead of the "continue" message.
    ///
    /// ```
    /// use steer_llm::{OpenAiCompatible, Prefill};
    /// let deepseek = OpenAiCompatible::custom("deepseek", "https://api.deepseek.com/beta")
    ///     .api_key("sk-...")
    ///     .prefill(Prefill::PrefixFlag)
    ///     .build()
    ///     .unwrap();
    /// # let _ = deepseek;
    /// ```
    pub fn prefill(mut self, prefill: Prefill) -> Self {
        self.prefill = prefill;
        self
    }

    /// Resolves key, base URL and HTTP client.
    pub fn build(self) -> Result<OpenAiCompatible, Error> {
        Ok(OpenAiCompatible {
            endpoint: self.endpoint.resolve("/chat/completions", "Bearer ")?,
            include_usage: self.include_usage,
            prefill: self.prefill,
        })
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiCompatible {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn check(&self, req: &ChatRequest) -> Result<(), String> {
        if req.is_plain() {
            return Ok(());
        }
        wire::RequestBody::new(req, false, self.include_usage, self.prefill).map(|_| ())
    }

    fn prefill(&self, _model: &str) -> Prefill {
        self.prefill
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
