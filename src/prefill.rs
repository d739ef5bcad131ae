//! Whether and how a server continues a final assistant message (a prefill).
//!
//! Continuing a broken stream with the delivered text as an assistant prefill
//! is exact only where the server is documented to continue it. OpenAI's Chat
//! Completions documents no such thing: a trailing assistant message is a
//! finished turn and the model answers afresh. So a deployment says what its
//! server does, and steer prefills only where it continues; everywhere else it
//! sends the "continue" message ([`crate::continue_message`]).
//!
//! | server | [`Prefill`] |
//! |---|---|
//! | Anthropic, Claude 4.5 and earlier | `Trailing` (the default of an Anthropic deployment) |
//! | Anthropic, Claude 4.6 and later | `None` (a prefill is a 400) |
//! | OpenAI, xAI, an unknown OpenAI-compatible server | `None` (the default) |
//! | DeepSeek (`/beta`), Mistral | `PrefixFlag`: `"prefix": true` on the last assistant message |
//! | vLLM, SGLang, TGI | `ContinueFinalMessage`: `continue_final_message: true`, `add_generation_prompt: false` |
//! | llama.cpp `llama-server`, Ollama, Groq, LMDeploy | `Trailing` |
//!
//! ```
//! use steer_llm::Prefill;
//! assert!(!Prefill::None.continues());
//! assert_eq!("prefix_flag".parse::<Prefill>(), Ok(Prefill::PrefixFlag));
//! ```

use std::str::FromStr;

/// How a server continues a final assistant message.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Prefill {
    /// It does not: a final assistant message is a finished turn, answered afresh
    /// (OpenAI Chat Completions, xAI, any server not known to continue). The default.
    #[default]
    None,
    /// A final assistant message is continued as it is (Anthropic before Claude
    /// 4.6, llama.cpp, Ollama, Groq). Trailing whitespace is trimmed from it first
    /// (Anthropic refuses it, gateways strip it).
    Trailing,
    /// Continued when the last assistant message carries `"prefix": true`
    /// (DeepSeek's Chat Prefix Completion, Mistral).
    PrefixFlag,
    /// Continued when the body says `continue_final_message: true` and
    /// `add_generation_prompt: false` (vLLM, SGLang, TGI).
    ContinueFinalMessage,
}

impl Prefill {
    /// Whether the server continues a prefill at all.
    pub fn continues(self) -> bool {
        self != Prefill::None
    }

    /// Its name in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Prefill::None => "none",
            Prefill::Trailing => "trailing",
            Prefill::PrefixFlag => "prefix_flag",
            Prefill::ContinueFinalMessage => "continue_final_message",
        }
    }
}

/// A name that is not one of [`Prefill`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown prefill {0:?}: expected none, trailing, prefix_flag or continue_final_message")]
pub struct UnknownPrefill(pub String);

impl FromStr for Prefill {
    type Err = UnknownPrefill;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Prefill::None,
            Prefill::Trailing,
            Prefill::PrefixFlag,
            Prefill::ContinueFinalMessage,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| UnknownPrefill(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_unknown_ones_are_refused() {
        for p in [
            Prefill::None,
            Prefill::Trailing,
            Prefill::PrefixFlag,
            Prefill::ContinueFinalMessage,
        ] {
            assert_eq!(p.as_str().parse::<Prefill>(), Ok(p));
        }
        assert!("prefix".parse::<Prefill>().is_err());
        assert!(Prefill::Trailing.continues() && !Prefill::default().continues());
    }
}
