//! The ways real servers answer that differ from the APIs' own documentation,
//! for the mock to take on: each one after a server seen doing it
//! (`../shared/reference/real-servers.md`). A server takes one by default
//! ([`super::MockBuilder::behaviour`], `steer mock --behaviour`), a request
//! another with the [`BEHAVIOUR_HEADER`] (so one test can run every behaviour).
//!
//! ```
//! use steer_llm::mock::Behaviour;
//! assert_eq!("split_calls".parse::<Behaviour>(), Ok(Behaviour::SplitCalls));
//! assert_eq!(Behaviour::ALL.len(), 5);
//! ```

use std::str::FromStr;

/// The header that picks a request's behaviour.
pub const BEHAVIOUR_HEADER: &str = "x-mock-behaviour";

/// How the mock answers, beyond the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Behaviour {
    /// As each API documents it (OpenAI, Anthropic, xAI), with what those
    /// servers really do: tokens smaller than words, one to three a chunk, a
    /// prefill answered afresh by OpenAI and xAI. The default.
    #[default]
    Standard,
    /// FakeAI 0.3.2: a streamed tool call's id comes in one chunk
    /// (`"function": null`), its name in the next (`"id": null`), then its
    /// arguments (real-servers.md §3).
    SplitCalls,
    /// mockllm 0.0.8: one character a chunk, so a chunk is less than a token
    /// (real-servers.md §2; the interop report's finding 2).
    CharChunks,
    /// LiteLLM's proxy 1.108.7 in front of the provider: errors rewritten into
    /// its own shape (a quota error as `throttling_error`, an overload as a 500,
    /// the upstream's wait only as `llm_provider-retry-after`, a mid-stream
    /// error as a `data:` line with a null type), and a prefill's trailing
    /// whitespace stripped before an Anthropic upstream (real-servers.md §5).
    Gateway,
    /// An upstream that leaves a stream's body open after its terminal event
    /// (caidaoli/ccLoad PR #81), the Responses API's then sending `data:
    /// [DONE]` as the Open Responses spec requires (responses-api.md §4): a
    /// client must stop reading at the terminal event.
    Lingering,
}

impl Behaviour {
    /// Every behaviour, for tests that run them all.
    pub const ALL: [Behaviour; 5] = [
        Behaviour::Standard,
        Behaviour::SplitCalls,
        Behaviour::CharChunks,
        Behaviour::Gateway,
        Behaviour::Lingering,
    ];

    /// Its name (the header's value, the CLI's word).
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Standard => "standard",
            Behaviour::SplitCalls => "split_calls",
            Behaviour::CharChunks => "char_chunks",
            Behaviour::Gateway => "gateway",
            Behaviour::Lingering => "lingering",
        }
    }

    /// The error a gateway sends in place of `name` (the provider's own error),
    /// if it rewrites it.
    pub fn rewritten_error(self, name: &str) -> Option<&'static str> {
        if self != Behaviour::Gateway {
            return None;
        }
        Some(match name {
            "insufficient_quota" => "gateway_quota",
            "rate_limit" | "tokens_rate_limit" => "gateway_rate_limit",
            "overloaded" => "gateway_overloaded",
            _ => return None,
        })
    }

    /// The in-band error a gateway sends in place of `name` mid-stream.
    pub fn rewritten_stream_error(self, name: &str) -> Option<&'static str> {
        match (self, name) {
            (Behaviour::Gateway, "overloaded" | "server_error" | "api_error") => {
                Some("gateway_stream_error")
            }
            _ => None,
        }
    }
}

/// A name that is not one of [`Behaviour`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown mock behaviour {0:?}: expected standard, split_calls, char_chunks, gateway or lingering"
)]
pub struct UnknownBehaviour(pub String);

impl FromStr for Behaviour {
    type Err = UnknownBehaviour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Behaviour::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| UnknownBehaviour(s.to_string()))
    }
}

impl std::fmt::Display for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_a_gateway_rewrites_only_what_litellm_does() {
        for b in Behaviour::ALL {
            assert_eq!(b.as_str().parse::<Behaviour>(), Ok(b));
        }
        assert!("fake".parse::<Behaviour>().is_err());
        assert_eq!(
            Behaviour::Gateway.rewritten_error("overloaded"),
            Some("gateway_overloaded")
        );
        assert_eq!(Behaviour::Gateway.rewritten_error("invalid_request"), None);
        assert_eq!(Behaviour::Standard.rewritten_error("overloaded"), None);
    }
}
