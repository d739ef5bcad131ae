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

/// Begins an attempt that sends a request (not a server-side resume).
fn begin(m: &mut StreamMachine, original: &Arc<ChatRequest>) -> (Arc<ChatRequest>, Box<Delivery>) {
    match m.begin_attempt(original) {
        (AttemptCall::Send(request), d) => (request, d),
        (AttemptCall::Resume(point), _) => panic!("resumed at {point:?}"),
    }
}

/// A machine whose first attempt delivered `pieces`, a delta each.
fn delivered(asked: Continuation, original: &Arc<ChatRequest>, pieces: &[&str]) -> StreamMachine {
    let mut m = StreamMachine::new(asked, Prefill::Trailing, Divergence::Restart);
    let (request, mut d) = begin(&mut m, original);
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
        let delta = crate::model::ProviderEvent::TextDelta {
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
    let (_, d) = begin(&mut m, &original);
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
        RetrySeam::Resumed {
            offset: 11,
            server: false
        }
    );
    assert_eq!(
        m.delivery().pending_seam,
        [StreamEvent::Resumed {
            attempt: 2,
            offset: 11,
            provider: "openai".into(),
            by: ResumedBy::Continuation,
        }]
    );
    assert_eq!(m.partial().as_deref(), Some("Hello there"));
    let (continuation, lent) = begin(&mut m, &original);
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
    let (again, _) = begin(&mut m, &original);
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

/// One input of a property's stream.
#[derive(Debug, Clone)]
enum Input {
    /// An attempt that delivers these pieces, then ends.
    Attempt(Vec<String>),
    /// A break with a retryable failure, a refused prefill, or one not retried.
    Break(u8),
    /// A continuation that restarted and differed.
    Diverge,
    /// The seam before a retry.
    Retry,
    /// A move to another target whose server continues a prefill, or not.
    FailOver(bool),
}

fn input() -> impl proptest::strategy::Strategy<Value = Input> {
    use proptest::prelude::*;
    prop_oneof![
        3 => proptest::collection::vec("[a-z ]{1,6}", 0..4).prop_map(Input::Attempt),
        3 => (0u8..3).prop_map(Input::Break),
        1 => Just(Input::Diverge),
        2 => Just(Input::Retry),
        1 => any::<bool>().prop_map(Input::FailOver),
    ]
}

fn continuation() -> impl proptest::strategy::Strategy<Value = Continuation> {
    proptest::sample::select(vec![
        Continuation::Auto,
        Continuation::Prefill,
        Continuation::Instruct,
        Continuation::Restart,
        Continuation::Off,
    ])
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Over any sequence of attempts, breaks, divergences, retries and
    /// failovers: the consumer's text only grows, except where a restart is
    /// announced (and then it starts from nothing); a first attempt, or one
    /// after a restart, sends the original request; a retry's seam is at the
    /// characters delivered; the stream gives up after content only when it
    /// may not continue, switches to the instruction only after a refused
    /// prefill, and is complete at a break only with a limit it reached.
    #[test]
    fn the_stream_machine_keeps_its_rules_over_any_inputs(
        asked in continuation(),
        continues in proptest::prelude::any::<bool>(),
        fail_on_divergence in proptest::prelude::any::<bool>(),
        max_tokens in proptest::option::of(1u32..40),
        inputs in proptest::collection::vec(input(), 1..24),
    ) {
        use proptest::prelude::*;
        let prefill = |c: bool| if c { Prefill::Trailing } else { Prefill::None };
        let divergence = if fail_on_divergence { Divergence::Fail } else { Divergence::Restart };
        let original = request(max_tokens);
        let mut m = StreamMachine::new(asked, prefill(continues), divergence);
        let mut strategy = strategy_for(asked, prefill(continues));
        let mut before = String::new();
        for input in inputs {
            let delivered = m.delivered_anything();
            prop_assert_eq!(m.may_move(), !(delivered && strategy == Continuation::Off));
            match input {
                Input::Attempt(pieces) => {
                    let (request, mut d) = begin(&mut m, &original);
                    prop_assert_eq!(Arc::ptr_eq(&request, &original), !delivered);
                    let asked_by = Asked {
                        original: &original,
                        provider: "openai",
                        started: tokio::time::Instant::now(),
                        route: None,
                    };
                    for text in pieces {
                        let delta = crate::model::ProviderEvent::TextDelta { text, offset: 0 };
                        d.on_event(delta, &asked_by, &tracing::Span::none(), &mut Vec::new());
                    }
                    m.attempt_ended(d);
                }
                Input::Break(kind) => {
                    let failure = match kind {
                        0 => overloaded(),
                        1 => Failure::new(Category::InvalidRequest, "p", "does not support assistant message prefill"),
                        _ => {
                            let mut f = overloaded();
                            f.retryable = false;
                            f
                        }
                    };
                    let after = m.after_break(&failure, &original, None);
                    match &after {
                        AfterBreak::Complete(last) => {
                            prop_assert!(delivered && max_tokens.is_some() && failure.retryable);
                            let ends_complete = matches!(last.last(), Some(StreamEvent::Complete { .. }));
                            prop_assert!(ends_complete, "{:?}", last);
                        }
                        AfterBreak::Again => {
                            prop_assert!(delivered && kind == 1 && strategy == Continuation::Prefill);
                            strategy = Continuation::Instruct;
                        }
                        AfterBreak::GiveUp => prop_assert!(delivered && strategy == Continuation::Off),
                        AfterBreak::Refused => prop_assert!(false, "no server-side resume was asked"),
                        AfterBreak::Ask => {}
                    }
                }
                Input::Diverge => match m.after_divergence() {
                    AfterDivergence::Fail => prop_assert!(fail_on_divergence),
                    AfterDivergence::Restart => {
                        prop_assert!(!fail_on_divergence);
                        strategy = Continuation::Restart;
                    }
                },
                Input::Retry => {
                    let chars = before.chars().count();
                    match m.seam_for_retry(2, "openai") {
                        RetrySeam::None => prop_assert!(!delivered),
                        RetrySeam::Restarted(_) => {
                            prop_assert!(delivered && strategy == Continuation::Restart);
                            prop_assert!(m.partial().is_none(), "a restart starts from nothing");
                            before.clear();
                        }
                        RetrySeam::Resumed { offset, .. } => {
                            prop_assert!(delivered && strategy != Continuation::Restart);
                            prop_assert_eq!(offset, chars);
                        }
                    }
                }
                Input::FailOver(c) => {
                    let target: ModelId = "anthropic/claude".parse().unwrap();
                    m.failed_over(&target, prefill(c));
                    strategy = strategy_for(asked, prefill(c));
                    if delivered && strategy == Continuation::Restart {
                        prop_assert!(m.partial().is_none(), "a restart starts from nothing");
                        before.clear();
                    }
                }
            }
            let now = m.partial().unwrap_or_default();
            prop_assert!(now.starts_with(&before), "lost text: {:?} then {:?}", before, now);
            before = now;
        }
    }
}

/// Feeds `events` to the delivery of a machine's current attempt.
fn feed(
    m: &mut StreamMachine,
    d: &mut Delivery,
    original: &Arc<ChatRequest>,
    events: Vec<crate::model::ProviderEvent>,
) {
    let asked = Asked {
        original,
        provider: "openai",
        started: tokio::time::Instant::now(),
        route: None,
    };
    let _ = m;
    for e in events {
        d.on_event(e, &asked, &tracing::Span::none(), &mut Vec::new());
    }
}

fn text(t: &str) -> crate::model::ProviderEvent {
    crate::model::ProviderEvent::TextDelta {
        text: t.into(),
        offset: 0,
    }
}

fn point(after: u64) -> crate::model::ProviderEvent {
    crate::model::ProviderEvent::Resumable(ResumePoint::new("resp_1", after))
}

#[test]
fn a_break_after_a_resume_point_resumes_on_the_server_with_no_continuation() {
    let original = request(None);
    let mut m = StreamMachine::new(Continuation::Auto, Prefill::None, Divergence::Restart);
    let (_, mut d) = begin(&mut m, &original);
    feed(
        &mut m,
        &mut d,
        &original,
        vec![point(0), text("Hello"), point(1), text(" there")],
    );
    m.attempt_ended(d);
    // The line broke: ask, then resume after event 1, the " there" it
    // delivered after that point to be skipped when it comes again.
    let network = Failure::new(Category::Network, "openai", "reset");
    assert_eq!(m.after_break(&network, &original, None), AfterBreak::Ask);
    assert_eq!(
        m.seam_for_retry(2, "openai"),
        RetrySeam::Resumed {
            offset: 11,
            server: true
        }
    );
    let (call, mut d) = m.begin_attempt(&original);
    let AttemptCall::Resume(at) = call else {
        panic!("a continuation where the server resumes");
    };
    assert_eq!(at.after, 1);
    let mut out = Vec::new();
    let asked = Asked {
        original: &original,
        provider: "openai",
        started: tokio::time::Instant::now(),
        route: None,
    };
    for e in [text(" there"), text("!")] {
        d.on_event(e, &asked, &tracing::Span::none(), &mut out);
    }
    assert_eq!(d.checkpoint.text, "Hello there!");
    assert!(matches!(
        &out[0],
        StreamEvent::Resumed {
            by: ResumedBy::Server,
            ..
        }
    ));
    // It broke again after progress: resumed again, nothing abandoned.
    m.attempt_ended(d);
    assert_eq!(m.after_break(&network, &original, None), AfterBreak::Ask);
    assert!(m.take_abandoned().is_empty());
    assert!(matches!(
        m.begin_attempt(&original).0,
        AttemptCall::Resume(_)
    ));
}

#[test]
fn a_refused_resume_falls_back_to_a_continuation_that_says_why_and_cancels_the_response() {
    let original = request(None);
    let mut m = StreamMachine::new(Continuation::Auto, Prefill::None, Divergence::Restart);
    let (_, mut d) = begin(&mut m, &original);
    feed(
        &mut m,
        &mut d,
        &original,
        vec![point(0), text("Hello"), point(1)],
    );
    m.attempt_ended(d);
    let network = Failure::new(Category::Network, "openai", "reset");
    assert_eq!(m.after_break(&network, &original, None), AfterBreak::Ask);
    let (_, d) = m.begin_attempt(&original);
    m.attempt_ended(d);
    // A busy server or a broken line: resume again.
    let busy = Failure::new(Category::Overloaded, "openai", "busy");
    assert_eq!(m.after_break(&busy, &original, None), AfterBreak::Ask);
    let (_, d) = m.begin_attempt(&original);
    m.attempt_ended(d);
    // A refusal (not retryable): continue client-side at once, cancel it.
    let mut late = Failure::new(
        Category::InvalidRequest,
        "openai",
        "can no longer be streamed",
    );
    late.retryable = false;
    assert_eq!(m.after_break(&late, &original, None), AfterBreak::Refused);
    assert_eq!(m.take_abandoned(), vec!["resp_1".to_string()]);
    let RetrySeam::Resumed { server: false, .. } = m.seam_for_retry(3, "openai") else {
        panic!("a continuation's seam");
    };
    assert!(matches!(
        &m.delivery().pending_seam[0],
        StreamEvent::Resumed { by: ResumedBy::ContinuationAfterRefusal { refusal }, .. }
            if refusal.contains("no longer")
    ));
    let (call, _) = m.begin_attempt(&original);
    assert!(matches!(call, AttemptCall::Send(req) if !Arc::ptr_eq(&req, &original)));
}

#[test]
fn a_response_that_failed_in_band_is_not_resumed_and_a_failover_cancels_the_one_left() {
    let original = request(None);
    let mut m = StreamMachine::new(Continuation::Auto, Prefill::None, Divergence::Restart);
    let (_, mut d) = begin(&mut m, &original);
    feed(
        &mut m,
        &mut d,
        &original,
        vec![point(0), text("Hello"), point(1)],
    );
    m.attempt_ended(d);
    m.response_failed();
    assert_eq!(
        m.after_break(&overloaded(), &original, None),
        AfterBreak::Ask
    );
    assert!(m.take_abandoned().is_empty(), "it runs no more");
    assert!(matches!(m.begin_attempt(&original).0, AttemptCall::Send(_)));
    // A resumable break, then a move to another target: the response is cancelled.
    let mut m = StreamMachine::new(Continuation::Auto, Prefill::None, Divergence::Restart);
    let (_, mut d) = begin(&mut m, &original);
    feed(
        &mut m,
        &mut d,
        &original,
        vec![point(0), text("Hello"), point(1)],
    );
    m.attempt_ended(d);
    assert_eq!(
        m.after_break(&overloaded(), &original, None),
        AfterBreak::Ask
    );
    m.failed_over(&"anthropic/claude".parse().expect("a model"), Prefill::None);
    assert_eq!(m.take_abandoned(), vec!["resp_1".to_string()]);
    let (call, d) = m.begin_attempt(&original);
    assert!(matches!(call, AttemptCall::Send(_)));
    // The broken attempt's text counts as spent (estimated from its delta).
    assert_eq!(d.total_usage().completion_tokens, 1);
}
