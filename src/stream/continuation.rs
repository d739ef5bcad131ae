//! How a broken stream is continued: the continuation request for each strategy,
//! and the seam that removes what the continuation repeats.

use super::checkpoint::{estimate_tokens, Checkpoint, Seam};
use steer_actors::{Category, Failure};

use crate::content::Part;
use crate::continue_message;
use crate::model::{ChatRequest, Message, Role};
use crate::prefill::Prefill;
use crate::reasoning::{Reasoning, ReasoningFamily};
use crate::tools::ToolCall;

/// What a stream does when it breaks after content began and the failure is retryable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Continuation {
    /// Continue: prefill where the server is documented to continue one (the
    /// deployment's [`Prefill`]), else the "continue" message (see
    /// [`strategy_for`]). The default.
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

/// What a stream does with a continuation that cannot be spliced: one that
/// started the reply again and then said something else than the consumer has
/// (a server that answered a prefill or a "continue" message afresh). Never
/// appended either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Divergence {
    /// Start again: the consumer gets `Restarted` (discard what you have) and
    /// the reply from its start, the original request sent again. The default.
    #[default]
    Restart,
    /// End the stream with a typed error (`stream_interrupted`, not retried)
    /// carrying the partial text: for consumers that cannot discard.
    Fail,
}

/// Whether a failure is a model refusing an assistant prefill (Anthropic's 400
/// "This model does not support assistant message prefill").
pub fn is_prefill_rejection(failure: &Failure) -> bool {
    failure.category == Category::InvalidRequest && failure.message.contains("prefill")
}

/// The strategy `Auto` stands for where the server continues a prefill as
/// `prefill` says ([`crate::Provider::prefill`]): a prefill only where the
/// server is documented to continue one, else the "continue" message.
pub fn strategy_for(requested: Continuation, prefill: Prefill) -> Continuation {
    match requested {
        Continuation::Auto if prefill.continues() => Continuation::Prefill,
        Continuation::Auto => Continuation::Instruct,
        other => other,
    }
}

/// Whether a request turns Anthropic's extended thinking on (`thinking` of a
/// type other than `disabled`, given as an extra body field): then a final
/// assistant message must start with a thinking block, so a stream is
/// continued by a prefill only behind the blocks it received whole.
pub fn thinking_enabled(req: &ChatRequest) -> bool {
    req.reasoning.is_some()
        || req
            .extra_body
            .get("thinking")
            .and_then(|t| t.get("type"))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|t| t != "disabled")
}

/// Bytes of the delivered text's end a continuation's budget allows it to repeat.
pub const REPEAT_ALLOWANCE_BYTES: usize = 16;

/// Tokens of `original`'s `max_tokens` that the consumer has not received yet,
/// counting what it has on the high side ([`Checkpoint::tokens`]); `None`
/// without a limit.
pub fn tokens_left(original: &ChatRequest, checkpoint: &Checkpoint) -> Option<u64> {
    original.token_limit().map(|max| {
        max.saturating_sub(checkpoint.tokens)
            .saturating_sub(checkpoint.reasoning_tokens)
    })
}

/// Tokens a continuation's delta `text` counts toward `original`'s
/// `max_tokens`, on the high side: the estimate, or the count of the model's
/// public tokenizer where that is more (the estimate is high for words, but a
/// real tokenizer may cut a short word in more pieces: "Meadow," is two
/// tokens by the estimate and three by `o200k_base`).
pub fn delta_tokens(original: &ChatRequest, text: &str) -> u64 {
    let estimate = estimate_tokens(text).max(1);
    crate::tokens::count(original.model.model(), text).map_or(estimate, |n| n.max(estimate))
}

/// Where a continuation's delta stands against `original`'s `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaLimit {
    /// The request has no limit.
    Unlimited,
    /// Within it: the delta counts these tokens ([`delta_tokens`]).
    Within(u64),
    /// It would take the consumer past the limit: the continuation is cut
    /// before it.
    Over,
}

/// Where delivering `text` after `checkpoint` stands against `original`'s
/// `max_tokens`, counted on the high side ([`delta_tokens`]).
pub fn delta_limit(original: &ChatRequest, checkpoint: &Checkpoint, text: &str) -> DeltaLimit {
    let Some(left) = tokens_left(original, checkpoint) else {
        return DeltaLimit::Unlimited;
    };
    match delta_tokens(original, text) {
        tokens if tokens > left => DeltaLimit::Over,
        tokens => DeltaLimit::Within(tokens),
    }
}

/// Whether delivering `text` would take the consumer past `original`'s
/// `max_tokens` ([`delta_limit`]): a continuation is cut before it.
pub fn over_limit(original: &ChatRequest, checkpoint: &Checkpoint, text: &str) -> bool {
    delta_limit(original, checkpoint, text) == DeltaLimit::Over
}

/// The request that continues `original` after what `checkpoint` delivered, and
/// its seam.
///
/// With a `max_tokens`, the continuation may generate the tokens left plus those
/// it spends repeating what the seam drops (the whitespace trimmed from a
/// prefill, or the overlap a model repeats after the "continue" message); steer
/// itself cuts the continuation before a delta that would take the consumer
/// past the limit, counting on the high side ([`over_limit`]), so the spliced
/// reply never exceeds the limit as the provider counts it (it may end a little
/// short of it, with `length`). A prefill is trimmed of trailing whitespace
/// (Anthropic rejects it, gateways strip it), and the seam drops that
/// whitespace from the continuation if it is repeated.
pub fn continuation_request(
    original: &ChatRequest,
    checkpoint: &Checkpoint,
    strategy: Continuation,
    calls: &[ToolCall],
    tools_began: bool,
    reasoning: &[Reasoning],
) -> (ChatRequest, Seam) {
    let delivered = checkpoint.text.as_str();
    // No provider takes an assistant turn that ends in a tool call as a prefill:
    // once a call began, the "continue" message quotes the calls made whole.
    // With Anthropic's thinking on, a prefill must start with the turn's
    // thinking blocks: without one received whole, the "continue" message.
    let no_thinking_to_lead = thinking_enabled(original)
        && !reasoning
            .iter()
            .any(|r| r.replays_to(ReasoningFamily::Anthropic));
    let strategy = if tools_began || no_thinking_to_lead {
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
            (req, Seam::overlap(delivered).verified_against(delivered))
        }
        _ => {
            // Trimmed whatever the server: Anthropic refuses trailing
            // whitespace and gateways strip it; the seam drops it from the
            // continuation only if the continuation repeats it.
            let prefill = delivered.trim_end();
            let trimmed = delivered.get(prefill.len()..).unwrap_or_default();
            if prefill.is_empty() {
                // Nothing but whitespace was delivered: ask again, drop it if repeated.
                (
                    original.clone(),
                    Seam::exact(delivered).verified_against(delivered),
                )
            } else {
                let mut req = original.clone();
                // The turn's reasoning blocks lead, unchanged (each wire sends
                // only its own family's).
                let mut parts: Vec<Part> = reasoning.iter().cloned().map(Part::Reasoning).collect();
                parts.push(Part::Text(prefill.to_string()));
                req.messages.push(Message::new(Role::Assistant, parts));
                (req, Seam::exact(trimmed).verified_against(delivered))
            }
        }
    };
    if let (Some(left), Some(limit)) = (tokens_left(original, checkpoint), original.token_limit()) {
        // What a model repeats is its last word or two, not the 512 bytes the
        // seam looks through: the allowance covers the last 16 bytes at most (a
        // longer repetition leaves the reply a little short, never long), and
        // the continuation never asks for more than the request's own limit.
        let droppable = seam.droppable().min(REPEAT_ALLOWANCE_BYTES);
        let mut from = delivered.len().saturating_sub(droppable);
        while !delivered.is_char_boundary(from) {
            from = from.saturating_add(1);
        }
        let tail = delivered.get(from..).unwrap_or_default();
        let repeated = if droppable == 0 {
            0
        } else {
            estimate_tokens(tail).max(1)
        };
        let budget = left.saturating_add(repeated).min(limit).max(1);
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
        let (req, mut seam) = continuation_request(
            &original,
            &checkpoint,
            Continuation::Prefill,
            &[],
            false,
            &[],
        );
        assert_eq!(req.messages.last().unwrap().text(), "Hello there.");
        // 2 + 2 estimated, 96 tokens left, and one more for the trimmed
        // whitespace it repeats.
        assert_eq!(req.max_tokens, Some(97));
        assert_eq!(seam.push("\n\nNext".into()), vec!["Next"]);

        let checkpoint = delivered(&["Hello "]);
        let (req, _) = continuation_request(
            &original,
            &checkpoint,
            Continuation::Instruct,
            &[],
            false,
            &[],
        );
        let last = req.messages.last().unwrap();
        assert_eq!(last.role, crate::model::Role::User);
        assert_eq!(continue_message::read(&last.text()), Some("Hello "));
        assert_eq!(req.max_tokens, Some(100), "98 left, 2 it may repeat");
        // Never more than the request's own limit, whatever the seam may drop.
        let long = delivered(&["word "; 60]);
        let limited = original.clone().max_tokens(70);
        let (req, _) =
            continuation_request(&limited, &long, Continuation::Instruct, &[], false, &[]);
        assert_eq!(
            req.max_tokens,
            Some(10 + 3),
            "10 left, the 3 words of the last 16 bytes"
        );
    }

    #[test]
    fn the_budget_counts_delivered_tokens_high_and_what_the_seam_may_drop() {
        // A model whose tokenizer is not public: the estimate alone.
        let original = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
            .unwrap()
            .user("hi")
            .max_tokens(4);
        // One delta of several tokens counts them all (1 + 2), not one.
        let checkpoint = delivered(&["A river "]);
        assert_eq!(tokens_left(&original, &checkpoint), Some(1));
        let (req, _) = continuation_request(
            &original,
            &checkpoint,
            Continuation::Prefill,
            &[],
            false,
            &[],
        );
        assert_eq!(req.max_tokens, Some(2), "1 left, 1 for the trimmed space");
        assert!(!over_limit(&original, &checkpoint, "to "));
        assert!(over_limit(&original, &checkpoint, "to sea"));
        // A model with a public tokenizer counts by it where it says more.
        crate::tokens::preload("gpt-4o-mini");
        let openai = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
        let anthropic = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
            .unwrap()
            .user("hi");
        assert_eq!(estimate_tokens("Meadow,"), 2);
        assert_eq!(delta_tokens(&openai, "Meadow,"), 3, "Mead|ow|,");
        assert_eq!(delta_tokens(&anthropic, "Meadow,"), 2);
        assert_eq!(delta_tokens(&openai, "to sea"), estimate_tokens("to sea"));
        // A trailing space is a token of its own until the next word comes.
        assert_eq!(delta_tokens(&openai, "to "), 2);
        assert!(over_limit(
            &openai.clone().max_tokens(4),
            &checkpoint,
            "to "
        ));
        let all = delivered(&["A ", "b ", "c ", "d "]);
        assert_eq!(tokens_left(&original, &all), Some(0));
        let unlimited = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
        let (req, _) =
            continuation_request(&unlimited, &all, Continuation::Instruct, &[], false, &[]);
        assert_eq!(req.max_tokens, None);
    }

    #[test]
    fn auto_prefills_only_where_the_server_continues_a_prefill() {
        let s = |p| strategy_for(Continuation::Auto, p);
        assert_eq!(s(Prefill::None), Continuation::Instruct);
        for p in [
            Prefill::Trailing,
            Prefill::PrefixFlag,
            Prefill::ContinueFinalMessage,
        ] {
            assert_eq!(s(p), Continuation::Prefill);
        }
        assert_eq!(
            strategy_for(Continuation::Off, Prefill::Trailing),
            Continuation::Off
        );
        assert_eq!(
            strategy_for(Continuation::Prefill, Prefill::None),
            Continuation::Prefill,
            "asked for, it is the caller's to choose"
        );
    }

    #[test]
    fn a_prefill_is_trimmed_whatever_the_provider() {
        for model in ["openai/gpt-4o-mini", "anthropic-b/claude-3-5-haiku-latest"] {
            let original = ChatRequest::new(model).unwrap().user("hi");
            let checkpoint = delivered(&["kernel "]);
            let (req, mut seam) = continuation_request(
                &original,
                &checkpoint,
                Continuation::Prefill,
                &[],
                false,
                &[],
            );
            assert_eq!(req.messages.last().unwrap().text(), "kernel", "{model}");
            // A server (or a gateway) that continues the trimmed text repeats the
            // space: dropped once; one that does not, loses nothing.
            assert_eq!(seam.push(" ivory".into()), vec!["ivory"]);
        }
    }
}
