//! The registry of providers, by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Anthropic, EventStream, OpenAiApis, OpenAiCompatible, OpenAiResponses, Provider};
use crate::error::Error;
use crate::model::{ChatRequest, ChatResponse};

/// Providers by name; resolves the `provider` part of a `provider/model` id.
///
/// Cloning is cheap (the providers are shared). Calls made through it are single
/// attempts; the reliability runtime wraps them in retries and breakers.
///
/// ```
/// use steer_llm::{OpenAiCompatible, Providers};
/// let providers = Providers::new()
///     .with(OpenAiCompatible::custom("local", "http://127.0.0.1:8000/v1").build().unwrap());
/// assert!(providers.get("local").is_ok());
/// assert!(providers.get("nope").is_err());
/// ```
#[derive(Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_name.keys()).finish()
    }
}

impl Providers {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// OpenAI (Chat Completions, and the Responses API for the models that
    /// live there: [`OpenAiApis`]), Anthropic and xAI, with keys and base URLs
    /// from the environment
    /// (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `ANTHROPIC_*`, `XAI_*`).
    pub fn from_env() -> Result<Self, Error> {
        Ok(Self::new()
            .with(OpenAiApis::new(
                OpenAiCompatible::openai().build()?,
                OpenAiResponses::openai().build()?,
            )?)
            .with(Anthropic::builder().build()?)
            .with(OpenAiCompatible::xai().build()?))
    }

    /// Adds (or replaces) a provider under its [`Provider::name`].
    pub fn with(mut self, provider: impl Provider) -> Self {
        self.register(Arc::new(provider));
        self
    }

    /// Adds (or replaces) a shared provider under its [`Provider::name`].
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        self.by_name.insert(provider.name().to_string(), provider);
    }

    /// The provider registered under `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Provider>, Error> {
        self.by_name
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownProvider {
                name: name.to_string(),
                known: self.names(),
            })
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    /// One non-streaming attempt at the provider the request's model names.
    pub async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse, Error> {
        let provider = self.get(req.model.provider())?;
        checked(provider.as_ref(), req)?;
        Ok(provider.generate(req).await?)
    }

    /// One streaming attempt at the provider the request's model names.
    pub async fn stream(&self, req: &ChatRequest) -> Result<EventStream, Error> {
        let provider = self.get(req.model.provider())?;
        checked(provider.as_ref(), req)?;
        Ok(provider.stream(req).await?)
    }
}

/// [`Provider::check`] as the library's error.
fn checked(provider: &dyn Provider, req: &ChatRequest) -> Result<(), Error> {
    provider
        .check(req)
        .map_err(|message| Error::InvalidRequest {
            provider: provider.name().to_string(),
            message,
        })
}
