use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::failure::Category;

fn spec(deadline: Option<Duration>, use_breaker: bool) -> RequestSpec {
    RequestSpec {
        request_id: "r".into(),
        provider: "p".into(),
        model: "m".into(),
        attempt_timeout: Some(Duration::from_secs(10)),
        deadline,
        policy: None,
        use_breaker,
        max_pause_wait: Duration::from_secs(5),
        wait_elsewhere: false,
        may_queue: true,
        priority: 0,
    }
}

fn failure() -> Failure {
    Failure::new(Category::ServerError, "p", "boom")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_request_without_a_breaker_runs_at_once_and_with_one_asks_first() {
    let now = Instant::now();
    let mut open = Attempts::new(&spec(None, false), now);
    assert!(matches!(open.start(now), Step::Run(Run { number: 1, .. })));
    assert!(open.in_flight());
    let mut gated = Attempts::new(&spec(None, true), now);
    assert_eq!(gated.start(now), Step::AskPermit);
    assert!(!gated.in_flight());
    assert!(matches!(
        gated.permitted(now),
        Step::Run(Run { number: 1, .. })
    ));
}

#[test]
fn a_retry_backs_off_by_the_decided_delay_and_keeps_the_failure() {
    let now = Instant::now();
    let mut a = Attempts::new(&spec(None, true), now);
    a.start(now);
    a.permitted(now);
    let Step::Ask(question) = a.failed(failure(), now) else {
        panic!("asks the coordinator")
    };
    assert!(question.first_report);
    assert_eq!(question.state.attempts, 1);
    let retry = Decision::Retry {
        delay: ms(30),
        server_directed: false,
    };
    assert_eq!(a.decided(retry), Step::Backoff(ms(30)));
    assert_eq!(a.last_failure(), Some(&failure()));
    assert_eq!(a.progress().state_at(now).backoff_so_far, ms(30));
    a.start(now);
    a.permitted(now);
    let Step::Ask(question) = a.failed(failure(), now) else {
        panic!("asks again")
    };
    assert!(!question.first_report, "the request is counted once");
    assert_eq!(question.state.previous_delay, Some(ms(30)));
    assert_eq!(
        a.decided(Decision::GiveUp(GiveUp::AttemptsExhausted)),
        Step::GiveUp(failure(), GiveUp::AttemptsExhausted)
    );
    assert_eq!(a.phase(), Phase::Ended);
    assert_eq!(a.start(now), Step::Idle, "nothing after the end");
}

#[test]
fn a_pause_is_waited_out_within_the_cap_and_the_deadline_else_it_stops() {
    let now = Instant::now();
    let mut a = Attempts::new(&spec(Some(Duration::from_secs(3)), true), now);
    a.start(now);
    let paused = |s| Rejection::Paused {
        retry_in: Duration::from_secs(s),
    };
    assert_eq!(
        a.rejected(paused(1), now),
        Step::Pause(Duration::from_secs(1))
    );
    a.start(now);
    assert_eq!(
        a.rejected(paused(4), now),
        Step::Stop(Stop::Rejected(paused(4))),
        "past the deadline"
    );
    let mut b = Attempts::new(&spec(None, true), now);
    b.start(now);
    assert_eq!(
        b.rejected(paused(6), now),
        Step::Stop(Stop::Rejected(paused(6))),
        "above the cap"
    );
}

#[test]
fn the_deadline_stops_the_next_attempt_and_bounds_the_one_it_starts() {
    let start = Instant::now();
    let mut a = Attempts::new(&spec(Some(ms(500)), false), start);
    let Step::Run(run) = a.start(start + ms(100)) else {
        panic!("runs")
    };
    let limit = run.limit.unwrap();
    assert!(limit.by_deadline);
    assert_eq!(limit.duration, ms(400));
    a.failed(failure(), start + ms(200));
    a.decided(Decision::Retry {
        delay: ms(400),
        server_directed: false,
    });
    assert_eq!(a.start(start + ms(600)), Step::Stop(Stop::DeadlineExceeded));
}

#[test]
fn a_failover_starts_the_retries_afresh_within_the_time_left() {
    let start = Instant::now();
    let mut a = Attempts::new(&spec(Some(ms(1000)), true), start);
    a.start(start);
    a.permitted(start);
    a.failed(failure(), start);
    a.decided(Decision::GiveUp(GiveUp::AttemptsExhausted));
    a.retarget(&spec(None, true), start + ms(300));
    assert_eq!(a.attempts(), 0);
    assert_eq!(a.progress().time_left_at(start + ms(300)), Some(ms(700)));
    assert_eq!(a.start(start + ms(300)), Step::AskPermit);
}

/// One input of the machine, as a property test draws them.
#[derive(Debug, Clone)]
enum Input {
    Start,
    Permitted,
    Rejected(Rejection),
    Failed,
    Retry(u64),
    GiveUp,
    Succeeded,
    Cut,
    Again,
    GiveUpNow,
    Lost,
    Cancel,
    Retarget,
    Advance(u64),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        3 => Just(Input::Start),
        3 => Just(Input::Permitted),
        1 => (0u64..8_000).prop_map(|ms| Input::Rejected(Rejection::Paused { retry_in: Duration::from_millis(ms) })),
        1 => (0u64..8_000).prop_map(|ms| Input::Rejected(Rejection::Open { retry_in: Duration::from_millis(ms) })),
        1 => Just(Input::Rejected(Rejection::ProbesBusy)),
        3 => Just(Input::Failed),
        3 => (0u64..2_000).prop_map(Input::Retry),
        1 => Just(Input::GiveUp),
        1 => Just(Input::Succeeded),
        1 => Just(Input::Cut),
        1 => Just(Input::Again),
        1 => Just(Input::GiveUpNow),
        1 => Just(Input::Lost),
        1 => Just(Input::Cancel),
        1 => Just(Input::Retarget),
        2 => (0u64..3_000).prop_map(Input::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Over any sequence of inputs: every `Run` is counted as an attempt and
    /// numbered in order, no two run at once, nothing runs past the deadline,
    /// no pause is longer than the cap or the time left, the backoff spent is
    /// the sum of the backoffs given, a question carries the failure it is
    /// about and is counted first once, and nothing but a failover follows the end.
    #[test]
    fn the_machine_keeps_its_rules_over_any_inputs(
        inputs in proptest::collection::vec(input(), 1..80),
        deadline in proptest::option::of(0u64..6_000),
        use_breaker in any::<bool>(),
    ) {
        let start = Instant::now();
        let mut now = start;
        let spec = spec(deadline.map(Duration::from_millis), use_breaker);
        let mut a = Attempts::new(&spec, now);
        let mut runs = 0u32;
        let mut backoff = Duration::ZERO;
        let mut first_reports = 0u32;
        let mut ended = false;
        for input in inputs {
            // `again` ends the attempt in flight before it starts the next.
            let was_running = a.in_flight() && !matches!(input, Input::Again);
            let step = match input {
                Input::Start => a.start(now),
                Input::Permitted => a.permitted(now),
                Input::Rejected(r) => a.rejected(r, now),
                Input::Failed => a.failed(failure(), now),
                Input::Retry(d) => a.decided(Decision::Retry { delay: ms(d), server_directed: false }),
                Input::GiveUp => a.decided(Decision::GiveUp(GiveUp::AttemptsExhausted)),
                Input::Succeeded => { a.succeeded(); Step::Idle }
                Input::Cut => a.cut_by_deadline(),
                Input::Again => a.again(now),
                Input::GiveUpNow => a.give_up_now(failure(), GiveUp::NotRetryable),
                Input::Lost => a.lost("gone"),
                Input::Cancel => { a.cancel(); Step::Idle }
                Input::Retarget => {
                    a.retarget(&spec, now);
                    runs = 0;
                    backoff = Duration::ZERO;
                    first_reports = 0;
                    ended = false;
                    Step::Idle
                }
                Input::Advance(d) => { now += ms(d); Step::Idle }
            };
            if ended {
                prop_assert_eq!(&step, &Step::Idle, "a step after the end");
            }
            match &step {
                Step::Run(run) => {
                    prop_assert!(!was_running, "two attempts at once");
                    runs += 1;
                    prop_assert_eq!(run.number, runs);
                    prop_assert!(!a.progress().past_deadline_at(now) || a.progress().deadline().is_none());
                    if let Some(limit) = run.limit {
                        if let Some(left) = a.progress().time_left_at(now) {
                            prop_assert!(limit.duration <= left || !limit.by_deadline);
                            prop_assert!(limit.duration <= left.max(Duration::from_secs(10)));
                        }
                    }
                }
                Step::Pause(wait) => {
                    prop_assert!(*wait <= spec.max_pause_wait);
                    if let Some(left) = a.progress().time_left_at(now) {
                        prop_assert!(*wait < left);
                    }
                }
                Step::Ask(q) => {
                    prop_assert!(a.phase() == Phase::Deciding);
                    prop_assert_eq!(&q.failure, &failure());
                    prop_assert_eq!(q.state.attempts, runs);
                    if q.first_report { first_reports += 1; }
                    prop_assert!(first_reports <= 1);
                }
                Step::Backoff(d) => backoff += *d,
                Step::GiveUp(..) | Step::Stop(_) => ended = true,
                Step::AskPermit | Step::Idle => {}
            }
            if matches!(input, Input::Succeeded | Input::Cancel) && a.phase() == Phase::Ended {
                ended = true;
            }
            prop_assert_eq!(a.attempts(), runs);
            prop_assert_eq!(a.progress().state_at(now).backoff_so_far, backoff);
            prop_assert_eq!(a.in_flight(), a.phase() == Phase::Running);
        }
    }
}

#[test]
fn a_servers_wait_ends_the_attempts_at_once_only_when_the_route_has_elsewhere_to_go() {
    let now = Instant::now();
    let limited = |wait: Option<Duration>| {
        let mut f = Failure::new(Category::RateLimited, "p", "slow");
        f.retry_after = wait;
        f
    };
    let running = |elsewhere: bool| {
        let mut a = Attempts::new(
            &RequestSpec {
                wait_elsewhere: elsewhere,
                ..spec(None, false)
            },
            now,
        );
        a.start(now);
        a
    };
    let mut a = running(true);
    assert_eq!(
        a.failed(limited(Some(ms(500))), now),
        Step::GiveUp(
            limited(Some(ms(500))),
            GiveUp::WaitElsewhere { wait: ms(500) }
        )
    );
    assert_eq!(a.phase(), Phase::Ended);
    // No wait, a zero wait, a failure that is not retryable, or no elsewhere:
    // the coordinator decides as always.
    for (elsewhere, failure) in [
        (true, limited(None)),
        (true, limited(Some(Duration::ZERO))),
        (false, limited(Some(ms(500)))),
        (
            true,
            Failure {
                retryable: false,
                ..limited(Some(ms(500)))
            },
        ),
    ] {
        let mut a = running(elsewhere);
        assert!(matches!(a.failed(failure, now), Step::Ask(_)));
    }
    // The route can switch it on and off between targets.
    let mut a = running(false);
    a.wait_elsewhere(true);
    assert!(matches!(
        a.failed(limited(Some(ms(5))), now),
        Step::GiveUp(_, GiveUp::WaitElsewhere { .. })
    ));
}

#[test]
fn an_attempt_taken_over_by_another_target_runs_there_as_its_first() {
    let now = Instant::now();
    let mut a = Attempts::new(&spec(Some(ms(1_000)), true), now);
    // Nothing runs: nothing to take over.
    a.take_over(&spec(None, true), now);
    assert_eq!((a.phase(), a.attempts()), (Phase::Ready, 0));
    a.start(now);
    a.permitted(now);
    a.failed(failure(), now);
    a.decided(Decision::Retry {
        delay: ms(10),
        server_directed: false,
    });
    a.start(now + ms(10));
    a.permitted(now + ms(10));
    assert_eq!(a.attempts(), 2);
    // A hedge took the lead at 400 ms: its attempt runs, the first there,
    // within what is left of the deadline.
    let later = now + ms(400);
    a.take_over(&spec(None, true), later);
    assert!(a.in_flight());
    assert_eq!(a.attempts(), 1);
    assert_eq!(a.progress().time_left_at(later), Some(ms(600)));
    let Step::Ask(question) = a.failed(failure(), later) else {
        panic!("its failure is asked about as any attempt's")
    };
    assert_eq!(question.state.attempts, 1);
}
