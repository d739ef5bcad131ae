//! How a broken stream is continued: the continuation request for each strategy,
//! and the seam that removes what the continuation repeats.

use steer_actors::stream::Seam;
use steer_actors::{Category, Failure};

use crate::continue_message::{self, rejects_prefill};
use crate::model::{ChatRequest, Message, Role};

/// What a stream does when it breaks after content began and the failure is retryable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Continuation {
    /// Continue: prefill where the model accepts it, else the "continue" message
    /// (chosen per provider and model; see [`strategy_for`]). The default.
    #[default]
    Auto,
    /// Continue with the delivered text as an assistant prefill.
    Prefill,
    /// Continue with a user message quoting the delivered text, dropping any
    /// overlap the model repeats.
    Instruct,
    /// Start again from scratch; the consumer gets a `Restarted` event and must
    /// discard what it has.
    Restart,
    /// Do not retry after content began: the error carries the partial text.
    Off,
}

/// Whether a failure is a model refusing an assistant prefill (Anthropic's 400
/// "This model does not support assistant message prefill").
pub fn is_prefill_rejection(failure: &Failure) -> bool {
    failure.category == Category::InvalidRequest && failure.message.contains("prefill")
}

/// The strategy `Auto` stands for with this provider and model.
pub fn strategy_for(requested: Continuation, provider: &str, model: &str) -> Continuation {
    match requested {
        Continuation::Auto if provider == "anthropic" && rejects_prefill(model) => {
            Continuation::Instruct
        }
        Continuation::Auto => Continuation::Prefill,
        other => other,
    }
}

/// The request that continues `original` after `delivered`, and its seam.
///
/// `completion_tokens` already generated are taken off `max_tokens`. Anthropic
/// rejects a prefill ending in whitespace: it is trimmed, and the seam drops it
/// from the continuation (the consumer already has it).
pub fn continuation_request(
    original: &ChatRequest,
    delivered: &str,
    strategy: Continuation,
    completion_tokens: u64,
) -> (ChatRequest, Seam) {
    let mut req = original.clone();
    if let Some(max) = req.max_tokens {
        let left = u64::from(max).saturating_sub(completion_tokens).max(1);
        req.max_tokens = Some(u32::try_from(left).unwrap_or(max));
    }
    match strategy {
        Continuation::Instruct => {
            req.messages.push(Message {
                role: Role::User,
                content: continue_message::write(delivered),
            });
            (req, Seam::overlap(delivered))
        }
        _ => {
            let prefill = if original.model.provider() == "anthropic" {
                delivered.trim_end()
            } else {
                delivered
            };
            if prefill.is_empty() {
                // Nothing but whitespace was delivered: ask again, drop it if repeated.
                return (original.clone(), Seam::exact(delivered));
            }
            req.messages.push(Message {
                role: Role::Assistant,
                content: prefill.to_string(),
            });
            (req, Seam::exact(&delivered[prefill.len()..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_prefill_is_trimmed_and_instruct_quotes_the_text() {
        let original = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
            .unwrap()
            .user("hi")
            .max_tokens(100);
        let (req, mut seam) =
            continuation_request(&original, "Hello there.\n\n", Continuation::Prefill, 30);
        assert_eq!(req.messages.last().unwrap().content, "Hello there.");
        assert_eq!(req.max_tokens, Some(70));
        assert_eq!(seam.push("\n\nNext"), "Next");

        let (req, _) = continuation_request(&original, "Hello ", Continuation::Instruct, 0);
        let last = req.messages.last().unwrap();
        assert_eq!(last.role, Role::User);
        assert_eq!(continue_message::read(&last.content), Some("Hello "));
    }

    #[test]
    fn auto_picks_instruct_for_models_that_reject_prefill() {
        let s = |p, m| strategy_for(Continuation::Auto, p, m);
        assert_eq!(s("anthropic", "claude-opus-4-6"), Continuation::Instruct);
        assert_eq!(
            s("anthropic", "claude-3-5-haiku-latest"),
            Continuation::Prefill
        );
        assert_eq!(s("openai", "gpt-4o-mini"), Continuation::Prefill);
        assert_eq!(
            strategy_for(Continuation::Off, "openai", "x"),
            Continuation::Off
        );
    }
}
