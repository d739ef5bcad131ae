//! How a broken stream is continued: the continuation request for each strategy,
//! and the seam that removes what the continuation repeats.

use steer_actors::stream::{Checkpoint, Seam};
use steer_actors::{Category, Failure};

use crate::continue_message::{self, rejects_prefill};
use crate::model::{ChatRequest, Message};
use crate::tools::ToolCall;

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

/// Tokens of `original`'s `max_tokens` that the consumer has not received yet
/// (counted as delivered deltas, see [`Checkpoint::chunks`]); `None` without a limit.
pub fn tokens_left(original: &ChatRequest, checkpoint: &Checkpoint) -> Option<u64> {
    original
        .token_limit()
        .map(|max| max.saturating_sub(checkpoint.chunks))
}

/// The request that continues `original` after what `checkpoint` delivered, and
/// its seam.
///
/// With a `max_tokens`, the continuation may generate the tokens left plus those
/// it spends repeating what the seam drops (the whitespace trimmed from an
/// Anthropic prefill, or the overlap a model repeats after the "continue"
/// message); steer itself stops the stream once the consumer has the tokens left,
/// so the spliced reply never exceeds the limit. Anthropic rejects a prefill
/// ending in whitespace: it is trimmed, and the seam drops it from the
/// continuation (the consumer already has it).
pub fn continuation_request(
    original: &ChatRequest,
    checkpoint: &Checkpoint,
    strategy: Continuation,
    calls: &[ToolCall],
    tools_began: bool,
) -> (ChatRequest, Seam) {
    let delivered = checkpoint.text.as_str();
    // No provider takes an assistant turn that ends in a tool call as a prefill:
    // once a call began, the "continue" message quotes the calls made whole.
    let strategy = if tools_began {
        Continuation::Instruct
    } else {
        strategy
    };
    let (mut req, seam) = match strategy {
        Continuation::Instruct => {
            let mut req = original.clone();
            req.messages
                .push(Message::user(continue_message::write_with_calls(
                    delivered, calls,
                )));
            (req, Seam::overlap(delivered))
        }
        _ => {
            let prefill = if original.model.provider() == "anthropic" {
                delivered.trim_end()
            } else {
                delivered
            };
            let trimmed = delivered.get(prefill.len()..).unwrap_or_default();
            if prefill.is_empty() {
                // Nothing but whitespace was delivered: ask again, drop it if repeated.
                (original.clone(), Seam::exact(delivered))
            } else {
                let mut req = original.clone();
                req.messages.push(Message::assistant(prefill));
                (req, Seam::exact(trimmed))
            }
        }
    };
    if let Some(left) = tokens_left(original, checkpoint) {
        let repeated = checkpoint.deltas_in_tail(seam.droppable());
        let budget = left.saturating_add(repeated).max(1);
        let budget = u32::try_from(budget).unwrap_or(u32::MAX);
        req.max_tokens = Some(budget);
        // A limit given as an extra body field would win over steer's: it gets the
        // same budget.
        for key in crate::model::TOKEN_LIMIT_FIELDS {
            if let Some(v) = req.extra_body.get_mut(key) {
                *v = serde_json::Value::from(budget);
            }
        }
    }
    (req, seam)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(deltas: &[&str]) -> Checkpoint {
        let mut c = Checkpoint::default();
        for d in deltas {
            c.deliver(d);
        }
        c
    }

    #[test]
    fn anthropic_prefill_is_trimmed_and_instruct_quotes_the_text() {
        let original = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
            .unwrap()
            .user("hi")
            .max_tokens(100);
        let checkpoint = delivered(&["Hello ", "there.\n\n"]);
        let (req, mut seam) =
            continuation_request(&original, &checkpoint, Continuation::Prefill, &[], false);
        assert_eq!(req.messages.last().unwrap().text(), "Hello there.");
        // 98 tokens left, and one more for the trimmed whitespace it repeats.
        assert_eq!(req.max_tokens, Some(99));
        assert_eq!(seam.push("\n\nNext".into()), vec!["Next"]);

        let checkpoint = delivered(&["Hello "]);
        let (req, _) =
            continuation_request(&original, &checkpoint, Continuation::Instruct, &[], false);
        let last = req.messages.last().unwrap();
        assert_eq!(last.role, crate::model::Role::User);
        assert_eq!(continue_message::read(&last.text()), Some("Hello "));
        assert_eq!(req.max_tokens, Some(100), "99 left, 1 delta it may repeat");
    }

    #[test]
    fn the_budget_counts_delivered_deltas_and_what_the_seam_may_drop() {
        let original = ChatRequest::new("openai/gpt-4o-mini")
            .unwrap()
            .user("hi")
            .max_tokens(3);
        let checkpoint = delivered(&["A ", "b "]);
        assert_eq!(tokens_left(&original, &checkpoint), Some(1));
        let (req, _) =
            continuation_request(&original, &checkpoint, Continuation::Prefill, &[], false);
        assert_eq!(req.max_tokens, Some(1), "an OpenAI prefill repeats nothing");
        let all = delivered(&["A ", "b ", "c "]);
        assert_eq!(tokens_left(&original, &all), Some(0));
        let unlimited = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
        let (req, _) = continuation_request(&unlimited, &all, Continuation::Instruct, &[], false);
        assert_eq!(req.max_tokens, None);
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
