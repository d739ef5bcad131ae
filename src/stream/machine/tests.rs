use steer_actors::Category;

use super::*;
use crate::stream::delivery::Asked;

fn request(max_tokens: Option<u32>) -> Arc<ChatRequest> {
    let mut req = ChatRequest::new("openai/m").expect("model").user("hi");
    if let Some(n) = max_tokens {
        req = req.max_tokens(n);
    }
    Arc::new(req)
}

/// A machine whose first attempt delivered `pieces`, a delta each.
fn delivered(asked: Continuation, original: &Arc<ChatRequest>, pieces: &[&str]) -> StreamMachine {
    let mut m = StreamMachine::new(asked, Prefill::Trailing, Divergence::Restart);
    let (request, mut d) = m.begin_attempt(original);
    assert!(
        Arc::ptr_eq(&request, original),
        "a first attempt sends the original"
    );
    let asked = Asked {
        original,
        provider: "openai",
        started: tokio::time::Instant::now(),
        route: None,
    };
    for text in pieces {
        let delta = StreamEvent::TextDelta {
            text: (*text).into(),
            offset: 0,
        };
        d.on_event(delta, &asked, &tracing::Span::none(), &mut Vec::new());
    }
    m.attempt_ended(d);
    m
}

fn overloaded() -> Failure {
    Failure::new(Category::Overloaded, "openai", "busy")
}

#[test]
fn a_break_before_content_asks_and_a_retry_shows_no_seam() {
    let original = request(None);
    let mut m = StreamMachine::new(Continuation::Auto, Prefill::None, Divergence::Restart);
    let (_, d) = m.begin_attempt(&original);
    m.attempt_ended(d);
    assert_eq!(
        m.after_break(&overloaded(), &original, None),
        AfterBreak::Ask
    );
    assert_eq!(m.seam_for_retry(2, "openai"), RetrySeam::None);
    assert!(m.partial().is_none());
    assert!(m.may_move());
}

#[test]
fn a_break_after_content_continues_behind_a_resumed_seam() {
    let original = request(None);
    let mut m = delivered(Continuation::Auto, &original, &["Hello", " there"]);
    assert_eq!(
        m.after_break(&overloaded(), &original, None),
        AfterBreak::Ask
    );
    assert_eq!(
        m.seam_for_retry(2, "openai"),
        RetrySeam::Resumed { offset: 11 }
    );
    assert_eq!(
        m.delivery().pending_seam,
        [StreamEvent::Resumed {
            attempt: 2,
            offset: 11,
            provider: "openai".into()
        }]
    );
    assert_eq!(m.partial().as_deref(), Some("Hello there"));
    let (continuation, lent) = m.begin_attempt(&original);
    assert!(
        !Arc::ptr_eq(&continuation, &original),
        "a continuation, not the original"
    );
    assert!(lent.seam.is_some(), "behind a seam");
}

#[test]
fn a_refused_prefill_switches_to_the_instruction_at_once_and_off_gives_up() {
    let original = request(None);
    let mut m = delivered(Continuation::Prefill, &original, &["Hello"]);
    let refused = Failure::new(
        Category::InvalidRequest,
        "anthropic",
        "This model does not support assistant message prefill",
    );
    assert_eq!(m.after_break(&refused, &original, None), AfterBreak::Again);
    assert_eq!(
        m.after_break(&refused, &original, None),
        AfterBreak::Ask,
        "once: the instruction is no prefill"
    );
    let mut off = delivered(Continuation::Off, &original, &["Hello"]);
    assert!(!off.may_move());
    assert_eq!(
        off.after_break(&overloaded(), &original, None),
        AfterBreak::GiveUp
    );
}

#[test]
fn a_break_after_the_last_allowed_token_completes_at_the_limit() {
    let original = request(Some(1));
    let mut m = delivered(Continuation::Auto, &original, &["Hello"]);
    let AfterBreak::Complete(last) = m.after_break(&overloaded(), &original, None) else {
        panic!("complete")
    };
    assert!(matches!(
        last.last(),
        Some(StreamEvent::Complete {
            finish_reason: FinishReason::Length,
            ..
        })
    ));
    let unlimited = request(None);
    let mut m = delivered(Continuation::Auto, &unlimited, &["Hello"]);
    assert_eq!(
        m.after_break(&overloaded(), &unlimited, None),
        AfterBreak::Ask
    );
}

#[test]
fn a_divergence_restarts_and_clears_the_delivery_or_fails_as_asked() {
    let original = request(None);
    let mut m = delivered(Continuation::Auto, &original, &["Hello"]);
    assert_eq!(m.after_divergence(), AfterDivergence::Restart);
    assert_eq!(
        m.seam_for_retry(3, "openai"),
        RetrySeam::Restarted(StreamEvent::Restarted { attempt: 3 })
    );
    assert!(m.partial().is_none(), "the consumer discards what it had");
    let (again, _) = m.begin_attempt(&original);
    assert!(Arc::ptr_eq(&again, &original), "the original again");
    let mut failing = StreamMachine::new(Continuation::Auto, Prefill::None, Divergence::Fail);
    assert_eq!(failing.after_divergence(), AfterDivergence::Fail);
}

#[test]
fn a_failover_after_content_shows_failed_over_or_restarted_by_the_new_target() {
    let original = request(None);
    let target: ModelId = "anthropic/claude".parse().unwrap();
    let mut m = delivered(Continuation::Auto, &original, &["Hi"]);
    m.failed_over(&target, Prefill::Trailing);
    assert_eq!(
        m.delivery().pending_seam,
        [StreamEvent::FailedOver {
            attempt: 1,
            offset: 2,
            target: "anthropic/claude".into()
        }]
    );
    let mut r = delivered(Continuation::Restart, &original, &["Hi"]);
    r.failed_over(&target, Prefill::Trailing);
    assert_eq!(
        r.delivery().pending_seam,
        [StreamEvent::Restarted { attempt: 1 }]
    );
    assert!(r.partial().is_none());
    let mut quiet = StreamMachine::new(Continuation::Auto, Prefill::None, Divergence::Restart);
    quiet.failed_over(&target, Prefill::Trailing);
    assert!(
        quiet.delivery().pending_seam.is_empty(),
        "nothing delivered, no seam"
    );
}
