//! Reasoning state a model returns and expects back: Anthropic's `thinking` and
//! `redacted_thinking` blocks with their signatures, and the Responses API's
//! `reasoning` items with their `encrypted_content`.
//!
//! A block is kept exactly as the server sent it and sent back byte for byte:
//! its signature (or encrypted content) is bound to the conversation before it,
//! and a server refuses a block that was rewritten ("Invalid signature in
//! thinking block"; "`thinking` or `redacted_thinking` blocks in the latest
//! assistant message cannot be modified"). The rule steer follows
//! ([`Reasoning::replays_to`]): a block goes back only to a server of the
//! family that made it, unchanged; any other server never sees it (a failover
//! to another family drops it). A block that a broken stream delivered only in
//! part is never sent anywhere: the stream says to discard it
//! ([`crate::StreamEvent::ReasoningDiscarded`]) and the model thinks again.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whose reasoning a block is: only a server of that family can read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningFamily {
    /// Anthropic Messages: `thinking` and `redacted_thinking` blocks.
    Anthropic,
    /// The Responses API (OpenAI, xAI, Azure): `reasoning` items.
    OpenAiResponses,
}

/// One block of reasoning, as its server sent it.
///
/// ```
/// use steer_llm::reasoning::{Reasoning, ReasoningFamily};
/// let block = serde_json::json!({"type": "thinking", "thinking": "Rivers...", "signature": "EqQB"});
/// let r = Reasoning::anthropic(block.clone());
/// assert_eq!(r.text(), "Rivers...");
/// assert!(r.is_signed());
/// assert!(r.replays_to(ReasoningFamily::Anthropic));
/// assert!(!r.replays_to(ReasoningFamily::OpenAiResponses));
/// assert_eq!(r.block, block);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reasoning {
    /// The family that made it.
    pub family: ReasoningFamily,
    /// The block or item, exactly as received.
    pub block: Value,
}

impl Reasoning {
    /// An Anthropic `thinking` or `redacted_thinking` block.
    pub fn anthropic(block: Value) -> Self {
        Reasoning {
            family: ReasoningFamily::Anthropic,
            block,
        }
    }

    /// A Responses API `reasoning` item.
    pub fn openai_responses(item: Value) -> Self {
        Reasoning {
            family: ReasoningFamily::OpenAiResponses,
            block: item,
        }
    }

    /// The readable reasoning it carries, if any: Anthropic's `thinking`, or the
    /// summary texts of a reasoning item (empty for a redacted or encrypted-only one).
    pub fn text(&self) -> String {
        if let Some(t) = self.block.get("thinking").and_then(Value::as_str) {
            return t.to_string();
        }
        self.block
            .get("summary")
            .and_then(Value::as_array)
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n\n")
            })
            .unwrap_or_default()
    }

    /// Whether it carries what its server checks: a signature, redacted data,
    /// or encrypted content.
    pub fn is_signed(&self) -> bool {
        ["signature", "data", "encrypted_content"].iter().any(|k| {
            self.block
                .get(*k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
    }

    /// Whether it may be sent to a server of `family`: only to its own, and
    /// only whole (a block without what its server checks is never sent).
    pub fn replays_to(&self, family: ReasoningFamily) -> bool {
        self.family == family && self.is_signed()
    }
}

/// How hard a model is asked to reason ([`ChatRequest::reasoning`](crate::ChatRequest::reasoning)),
/// as each API takes it: Anthropic's thinking (adaptive, with `output_config.effort`,
/// from Claude 4.6; a budget before), the Responses API's `reasoning.effort` (with
/// its summary and encrypted content), Chat Completions' `reasoning_effort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effort {
    /// A little.
    Low,
    /// The usual.
    Medium,
    /// A lot.
    High,
}

impl Effort {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        }
    }

    /// Anthropic's thinking budget for it, on models that take a budget.
    pub fn budget_tokens(self) -> u32 {
        match self {
            Effort::Low => 1024,
            Effort::Medium => 4096,
            Effort::High => 16384,
        }
    }
}
