//! Ids: of a model (`provider/model`) and of a request.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A model id of the form `provider/model`, e.g. `openai/gpt-4o-mini`.
///
/// The provider part is everything before the first `/`; the model part may itself
/// contain slashes (`openrouter/meta-llama/llama-3-8b`).
///
/// ```
/// let id: steer_llm::ModelId = "anthropic/claude-3-5-haiku-latest".parse().unwrap();
/// assert_eq!(id.provider(), "anthropic");
/// assert_eq!(id.model(), "claude-3-5-haiku-latest");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelId {
    // Shared: a request's actor and meters hold the model name without a copy.
    provider: Arc<str>,
    model: Arc<str>,
}

/// Why a string is not a valid `provider/model` id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid model id {input:?}: expected `provider/model`, e.g. `openai/gpt-4o-mini`")]
pub struct InvalidModelId {
    /// The rejected input.
    pub input: String,
}

impl ModelId {
    /// Builds a model id from its two parts.
    pub fn new(provider: &str, model: &str) -> Result<Self, InvalidModelId> {
        format!("{provider}/{model}").parse()
    }

    /// The provider name, e.g. `openai`.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The provider's own model name, e.g. `gpt-4o-mini`.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The model name as shared text (no copy).
    pub fn model_shared(&self) -> Arc<str> {
        self.model.clone()
    }
}

impl FromStr for ModelId {
    type Err = InvalidModelId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidModelId {
            input: s.to_string(),
        };
        let (provider, model) = s.split_once('/').ok_or_else(invalid)?;
        let valid_provider = !provider.is_empty()
            && provider
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
        // No whitespace in the model name (ASCII checked by byte, as most are).
        let spaced = if model.is_ascii() {
            model.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b)
        } else {
            model.chars().any(char::is_whitespace)
        };
        if !valid_provider || model.is_empty() || spaced {
            return Err(invalid());
        }
        Ok(ModelId {
            provider: Arc::from(provider),
            model: Arc::from(model),
        })
    }
}

impl TryFrom<String> for ModelId {
    type Error = InvalidModelId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ModelId> for String {
    fn from(id: ModelId) -> String {
        id.to_string()
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({self})")
    }
}

/// steer's own id of a request: given by the caller, or a fresh UUID v4.
///
/// It is sent to providers as `x-client-request-id` and appears on every error,
/// span and log line of the request.
///
/// Cloning it is a reference count: it travels with every attempt, error and event.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// A fresh random id (UUID v4).
    pub fn random() -> Self {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        RequestId(Arc::from(
            &*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text),
        ))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The id as shared text (no copy).
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(RequestId::from)
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::random()
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        RequestId(Arc::from(s))
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        RequestId(Arc::from(s))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

#[cfg(test)]
mod model_id_tests {
    use super::*;

    /// The rule as written: a provider of ASCII letters, digits, `-`, `_`, `.`;
    /// a model of anything but whitespace; one `/` between (the first).
    fn valid_by_the_rule(s: &str) -> Option<(&str, &str)> {
        let (p, m) = s.split_once('/')?;
        let provider_ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let model_ok = !m.trim().is_empty() && !m.chars().any(char::is_whitespace);
        (provider_ok && model_ok).then_some((p, m))
    }

    #[test]
    fn edges() {
        for (s, ok) in [
            ("openai/gpt-4o-mini", true),
            ("a/b/c", true),
            ("local/llama 3", false),
            ("local/llama\u{0b}3", false),
            ("local/llama\u{a0}3", false),
            ("local/é", true),
            ("é/x", false),
            ("/x", false),
            ("x/", false),
            ("x/ ", false),
            ("x", false),
        ] {
            assert_eq!(s.parse::<ModelId>().is_ok(), ok, "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_parse_keeps_the_rule(s in "[a-z_.é -]{0,6}/?[a-zA-Z0-9 \t\u{0b}\u{a0}\u{2003}é/.-]{0,10}") {
            let parsed = s.parse::<ModelId>();
            match valid_by_the_rule(&s) {
                Some((p, m)) => {
                    let id = parsed.expect("valid by the rule");
                    proptest::prop_assert_eq!((id.provider(), id.model()), (p, m));
                    proptest::prop_assert_eq!(&*id.model_shared(), m);
                }
                None => proptest::prop_assert!(parsed.is_err(), "{:?} accepted", s),
            }
        }
    }
}
