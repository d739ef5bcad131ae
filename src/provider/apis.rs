//! OpenAI (or xAI) over both its APIs ([`OpenAiApis`]): Chat Completions for
//! most models, the Responses API for the models that live only there.
//!
//! OpenAI answers a Responses-only model on Chat Completions with a 400 "This
//! model is only supported in v1/responses and not in v1/chat/completions."
//! (the codex models, and `*-pro` ones such as gpt-5-pro and o3-pro; reference
//! `responses-api.md` §10). Codex models go to the Responses API from the
//! start; any other model that draws that answer is moved there at once, for
//! that attempt and, remembered, for every later request.

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{EventStream, OpenAiCompatible, OpenAiResponses, Provider};
use crate::error::ProviderError;
use crate::model::{ChatRequest, ChatResponse};
use crate::prefill::Prefill;

/// Models remembered as Responses-only, at most (names come from callers:
/// past it, a model is still moved on each request, just not remembered).
pub const MAX_REMEMBERED: usize = 1024;

/// The words of OpenAI's answer to a Responses-only model on Chat Completions.
const ONLY_ON_RESPONSES: &str = "only supported in v1/responses";

/// A provider that speaks Chat Completions and the Responses API, choosing by
/// model, under one name.
///
/// ```
/// use steer_llm::provider::{OpenAiApis, OpenAiResponses};
/// use steer_llm::OpenAiCompatible;
/// let openai = OpenAiApis::new(
///     OpenAiCompatible::openai().api_key("sk-...").build().unwrap(),
///     OpenAiResponses::openai().api_key("sk-...").build().unwrap(),
/// ).unwrap();
/// assert!(openai.uses_responses("gpt-5-codex"));
/// assert!(!openai.uses_responses("gpt-4o-mini"));
/// ```
#[derive(Clone)]
pub struct OpenAiApis {
    chat: OpenAiCompatible,
    responses: OpenAiResponses,
    /// Models whose chat completion was refused as Responses-only.
    moved: Arc<RwLock<BTreeSet<String>>>,
}

impl std::fmt::Debug for OpenAiApis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiApis")
            .field("chat", &self.chat)
            .field("responses", &self.responses)
            .field("moved", &*self.moved.read())
            .finish()
    }
}

impl OpenAiApis {
    /// Both APIs of one provider: they must be registered under one name.
    pub fn new(
        chat: OpenAiCompatible,
        responses: OpenAiResponses,
    ) -> Result<Self, crate::error::Error> {
        if chat.name() != responses.name() {
            return Err(crate::error::ConfigError::setting(
                "OpenAiApis::new",
                format!(
                    "the two APIs are one provider: named {:?} and {:?}",
                    chat.name(),
                    responses.name()
                ),
            ));
        }
        Ok(OpenAiApis {
            chat,
            responses,
            moved: Arc::default(),
        })
    }

    /// Whether `model` is called through the Responses API: a codex model, or
    /// one whose chat completion was refused as Responses-only.
    pub fn uses_responses(&self, model: &str) -> bool {
        model.contains("codex") || self.moved.read().contains(model)
    }

    fn api(&self, model: &str) -> &dyn Provider {
        if self.uses_responses(model) {
            &self.responses
        } else {
            &self.chat
        }
    }

    /// Whether `e` is OpenAI's refusal of a Responses-only model; remembers
    /// the model if so.
    fn moved_by(&self, model: &str, e: &ProviderError) -> bool {
        let refused = matches!(e.status(), Some(400 | 404))
            && e.body_text().is_some_and(|b| b.contains(ONLY_ON_RESPONSES));
        if refused {
            tracing::info!(
                provider = self.chat.name(),
                model,
                "steer.api.moved: the model answers only on the Responses API"
            );
            let mut moved = self.moved.write();
            if moved.len() < MAX_REMEMBERED {
                moved.insert(model.to_string());
            }
        }
        refused
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiApis {
    fn name(&self) -> &str {
        self.chat.name()
    }

    fn check(&self, req: &ChatRequest) -> Result<(), String> {
        self.api(req.model.model()).check(req)
    }

    fn prefill(&self, model: &str) -> Prefill {
        self.api(model).prefill(model)
    }

    async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let model = req.model.model();
        if self.uses_responses(model) {
            return self.responses.generate(req).await;
        }
        match self.chat.generate(req).await {
            Err(e) if self.moved_by(model, &e) => self.responses.generate(req).await,
            other => other,
        }
    }

    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let model = req.model.model();
        if self.uses_responses(model) {
            return self.responses.stream(req).await;
        }
        match self.chat.stream(req).await {
            Err(e) if self.moved_by(model, &e) => self.responses.stream(req).await,
            other => other,
        }
    }

    /// Only the Responses API resumes on the server.
    async fn resume(
        &self,
        req: &ChatRequest,
        point: &crate::model::ResumePoint,
    ) -> Result<EventStream, ProviderError> {
        self.responses.resume(req, point).await
    }

    async fn cancel(&self, req: &ChatRequest, response_id: &str) -> Result<(), ProviderError> {
        self.responses.cancel(req, response_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FailureKind;

    fn refusal(status: u16, body: &str) -> ProviderError {
        ProviderError::new(
            "openai",
            "r".into(),
            FailureKind::Status {
                status,
                body: bytes::Bytes::from(body.to_string()),
            },
        )
    }

    fn both() -> OpenAiApis {
        OpenAiApis::new(
            OpenAiCompatible::custom("openai", "http://127.0.0.1:9/v1")
                .build()
                .expect("chat"),
            OpenAiResponses::custom("openai", "http://127.0.0.1:9/v1")
                .build()
                .expect("responses"),
        )
        .expect("one name")
    }

    /// Callers name the models: however many are refused, the memory of them
    /// stays bounded, and each is still moved.
    #[test]
    fn the_models_remembered_are_bounded_and_only_openais_refusal_moves_one() {
        let apis = both();
        let only = r#"{"error":{"message":"This model is only supported in v1/responses and not in v1/chat/completions.","type":"invalid_request_error","param":"model","code":null}}"#;
        for i in 0..MAX_REMEMBERED + 50 {
            assert!(apis.moved_by(&format!("model-{i}"), &refusal(400, only)));
        }
        assert_eq!(apis.moved.read().len(), MAX_REMEMBERED);
        assert!(apis.uses_responses("model-0"));
        assert!(!apis.uses_responses(&format!("model-{}", MAX_REMEMBERED + 1)));
        // Another 400, or the words with another status, move nothing.
        assert!(!apis.moved_by(
            "x",
            &refusal(400, r#"{"error":{"message":"bad temperature"}}"#)
        ));
        assert!(!apis.moved_by("y", &refusal(500, only)));
        assert!(!apis.uses_responses("x") && !apis.uses_responses("y"));
        // Two APIs under two names are not one provider.
        let other = OpenAiResponses::custom("other", "http://127.0.0.1:9/v1")
            .build()
            .expect("responses");
        let chat = OpenAiCompatible::custom("openai", "http://127.0.0.1:9/v1")
            .build()
            .expect("chat");
        assert!(OpenAiApis::new(chat, other).is_err());
    }
}
