//! Chat Completions: OpenAI, xAI, and any server speaking it ([`OpenAiCompatible`]).

use http::HeaderName;

use super::endpoint::EndpointBuilder;
use super::format::{KeyHeader, Sealed, WireFormat};
use super::http_provider::{HttpProvider, HttpProviderBuilder};
use crate::model::ChatRequest;
use crate::prefill::Prefill;
use crate::wire::openai as wire;
use crate::wire::ParseReply;

/// A Chat Completions provider (`POST {base}/chat/completions`, bearer key).
///
/// ```
/// use steer_llm::OpenAiCompatible;
/// // A local vLLM or Ollama server, registered as `local/<model>`:
/// let local = OpenAiCompatible::custom("local", "http://127.0.0.1:11434/v1").build().unwrap();
/// # let _ = local;
/// ```
pub type OpenAiCompatible = HttpProvider<ChatCompletions>;

/// Builds an [`OpenAiCompatible`] provider.
pub type OpenAiCompatibleBuilder = HttpProviderBuilder<ChatCompletions>;

/// The Chat Completions wire format and its settings: whether streams ask for
/// usage, and how the server continues a final assistant message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatCompletions {
    include_usage: bool,
    prefill: Prefill,
    key: KeyHeader,
}

impl Default for ChatCompletions {
    fn default() -> Self {
        ChatCompletions {
            include_usage: true,
            prefill: Prefill::None,
            key: KeyHeader::Bearer,
        }
    }
}

impl Sealed for ChatCompletions {}

impl WireFormat for ChatCompletions {
    type Decoder = wire::Decoder;
    const NAME: &'static str = "OpenAiCompatible";

    fn path(&self) -> &'static str {
        "/chat/completions"
    }

    /// Azure's dated API names the deployment in the path.
    fn dated_path(&self, model: &str) -> String {
        format!("/deployments/{model}{}", self.path())
    }

    fn key_header(&self) -> (HeaderName, &'static str) {
        self.key.pair()
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Result<Vec<u8>, String> {
        wire::request_json(req, stream, self.include_usage, self.prefill)
    }

    fn check(&self, req: &ChatRequest) -> Result<(), String> {
        wire::RequestBody::new(req, false, self.include_usage, self.prefill).map(|_| ())
    }

    fn parse_reply(&self) -> ParseReply {
        wire::parse_response
    }

    fn prefill(&self, _model: &str) -> Prefill {
        self.prefill
    }
}

impl OpenAiCompatible {
    /// OpenAI: `OPENAI_API_KEY`, `OPENAI_BASE_URL`, default `https://api.openai.com/v1`.
    pub fn openai() -> OpenAiCompatibleBuilder {
        HttpProviderBuilder::new(EndpointBuilder::openai(), ChatCompletions::default())
    }

    /// xAI: `XAI_API_KEY`, `XAI_BASE_URL`, default `https://api.x.ai/v1`.
    pub fn xai() -> OpenAiCompatibleBuilder {
        HttpProviderBuilder::new(EndpointBuilder::xai(), ChatCompletions::default())
    }

    /// Azure OpenAI's v1 API at `resource` (`https://NAME.openai.azure.com`):
    /// base `{resource}/openai/v1`, the key in `api-key` (from
    /// `AZURE_OPENAI_API_KEY`), and the deployment's name as the model
    /// (`azure/my-gpt-4o`). Registered as `azure`.
    ///
    /// ```
    /// use steer_llm::OpenAiCompatible;
    /// let azure = OpenAiCompatible::azure("https://contoso.openai.azure.com")
    ///     .api_key("...")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(azure.base_url(), "https://contoso.openai.azure.com/openai/v1");
    /// ```
    pub fn azure(resource: &str) -> OpenAiCompatibleBuilder {
        let format = ChatCompletions {
            key: KeyHeader::ApiKey,
            ..ChatCompletions::default()
        };
        HttpProviderBuilder::new(EndpointBuilder::azure(resource), format)
    }

    /// Azure OpenAI's dated API at `resource` (for an `api-version` such as
    /// `2024-10-21`): `{resource}/openai/deployments/{deployment}/chat/completions
    /// ?api-version=...`, a model's name being its deployment's; the key in
    /// `api-key`, registered as `azure`.
    ///
    /// ```
    /// use steer_llm::OpenAiCompatible;
    /// let azure = OpenAiCompatible::azure_dated("https://contoso.openai.azure.com", "2024-10-21")
    ///     .api_key("...")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(azure.base_url(), "https://contoso.openai.azure.com/openai");
    /// ```
    pub fn azure_dated(resource: &str, api_version: &str) -> OpenAiCompatibleBuilder {
        let format = ChatCompletions {
            key: KeyHeader::ApiKey,
            ..ChatCompletions::default()
        };
        HttpProviderBuilder::new(EndpointBuilder::azure_dated(resource, api_version), format)
    }

    /// Any OpenAI-compatible server, registered under `name`; `base_url` ends before
    /// `/chat/completions` (usually with `/v1`). No environment variables are read.
    pub fn custom(name: &str, base_url: &str) -> OpenAiCompatibleBuilder {
        HttpProviderBuilder::new(
            EndpointBuilder::custom(name, base_url),
            ChatCompletions::default(),
        )
    }
}

impl OpenAiCompatibleBuilder {
    /// Whether streaming requests ask for the final usage chunk
    /// (`stream_options.include_usage`, default on; turn off for servers that reject it).
    pub fn include_usage(mut self, on: bool) -> Self {
        self.format.include_usage = on;
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
        self.format.prefill = prefill;
        self
    }
}
