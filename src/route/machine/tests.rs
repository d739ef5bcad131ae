use std::time::Duration;

use proptest::prelude::*;
use steer_actors::{Category, Failure, GiveUp};

use super::*;
use crate::error::FailedRequest;
use crate::model::RequestId;

fn id(s: &str) -> ModelId {
    s.parse().unwrap()
}

fn in_order(g: &Group, tried: &[ModelId]) -> Option<ModelId> {
    g.pick(tried, |_| true, 0.0).cloned()
}

fn failed(category: Category, reason: GiveUp) -> Error {
    Error::Failed(Box::new(FailedRequest {
        failure: Failure::new(category, "p", "x"),
        reason,
        attempts: 1,
        last: None,
        partial: None,
        spend: Default::default(),
    }))
}

fn rejected(rejection: Rejection) -> Error {
    Error::Rejected {
        provider: "p".into(),
        request_id: RequestId::from("r"),
        rejection,
        attempts: 0,
        last: None,
        partial: None,
    }
}

/// Each step as (target, outcome).
fn outcomes(steps: &[RouteStep]) -> Vec<(&str, &str)> {
    steps
        .iter()
        .map(|s| (s.target.as_str(), s.outcome.as_str()))
        .collect()
}

fn go(next: Next) -> (ModelId, Option<ModelId>) {
    match next {
        Next::Go { target, from } => (target, from),
        other => panic!("expected a target, got {other:?}"),
    }
}

#[test]
fn a_route_moves_on_from_a_failing_target_and_reports_every_step() {
    let mut route = Route::new("g", Group::new(["a/m", "b/m"]).unwrap());
    assert_eq!(go(route.next(in_order, None)), (id("a/m"), None));
    let overloaded = failed(Category::Overloaded, GiveUp::AttemptsExhausted);
    assert_eq!(route.failed(&overloaded), Verdict::MoveOn);
    assert_eq!(
        go(route.next(in_order, None)),
        (id("b/m"), Some(id("a/m"))),
        "a failover leaves the target that failed"
    );
    let steps = route.answered();
    let outcomes = outcomes(&steps);
    assert_eq!(outcomes, [("a/m", "overloaded"), ("b/m", "answered")]);
}

#[test]
fn a_fallback_is_taken_once_and_a_request_error_stops_the_route() {
    let group = Group::new(["a/m", "b/m"])
        .unwrap()
        .context_fallback("c/big")
        .unwrap();
    let mut route = Route::new("g", group);
    go(route.next(in_order, None));
    let too_long = failed(Category::ContextLengthExceeded, GiveUp::NotRetryable);
    assert_eq!(route.failed(&too_long), Verdict::MoveOn);
    assert_eq!(go(route.next(in_order, None)).0, id("c/big"));
    assert_eq!(route.failed(&too_long), Verdict::Stop, "not twice");
    let mut route = Route::new("g", Group::new(["a/m", "b/m"]).unwrap());
    go(route.next(in_order, None));
    let invalid = failed(Category::InvalidRequest, GiveUp::NotRetryable);
    assert_eq!(route.failed(&invalid), Verdict::Stop);
}

#[test]
fn with_every_target_down_a_route_waits_once_for_the_earliest_then_is_exhausted() {
    let ms = Duration::from_millis;
    let mut route = Route::new("g", Group::new(["a/m", "b/m"]).unwrap());
    for back in [300, 100] {
        go(route.next(in_order, None));
        let open = rejected(Rejection::Open { retry_in: ms(back) });
        assert_eq!(route.failed(&open), Verdict::MoveOn);
    }
    let Next::Wait(wait) = route.next(in_order, Some(ms(1000))) else {
        panic!("waits")
    };
    assert_eq!(wait, ms(100) + super::super::group::RECOVERY_MARGIN);
    assert_eq!(go(route.next(in_order, None)).0, id("a/m"), "all again");
    route.failed(&rejected(Rejection::ProbesBusy));
    go(route.next(in_order, None));
    route.failed(&rejected(Rejection::ProbesBusy));
    let Next::Exhausted(Error::GroupExhausted {
        group,
        steps,
        back_in,
    }) = route.next(in_order, Some(ms(1000)))
    else {
        panic!("exhausted")
    };
    assert_eq!(group, "g");
    assert_eq!(steps.len(), 4);
    assert_eq!(back_in, Some(ms(100)));
}

#[test]
fn a_wait_past_the_deadline_is_not_taken() {
    let mut route = Route::new("g", Group::new(["a/m"]).unwrap());
    go(route.next(in_order, None));
    route.failed(&rejected(Rejection::Open {
        retry_in: Duration::from_secs(5),
    }));
    assert!(matches!(
        route.next(in_order, Some(Duration::from_secs(1))),
        Next::Exhausted(_)
    ));
}

/// How one target of a property's route ends.
#[derive(Debug, Clone)]
enum End {
    Answered,
    Failed(Category),
    Open(u64),
    Paused(u64),
    Busy,
    Internal,
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        1 => Just(End::Answered),
        4 => prop::sample::select(vec![
            Category::Overloaded, Category::ServerError, Category::RateLimited,
            Category::ContextLengthExceeded, Category::ContentFiltered,
            Category::InvalidRequest, Category::Network, Category::QuotaExceeded,
        ]).prop_map(End::Failed),
        2 => (1u64..2_000).prop_map(End::Open),
        1 => (1u64..2_000).prop_map(End::Paused),
        1 => Just(End::Busy),
        1 => Just(End::Internal),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Over any group and any ends of its targets: no target is tried twice
    /// between waits, the route waits at most once and only for a target that
    /// said when it is back, a move after a failure names the target it
    /// leaves, the steps a route reports are one per target it went to in
    /// order, and a route that stops or is exhausted ends there.
    #[test]
    fn the_route_keeps_its_rules_over_any_ends(
        size in 1usize..5,
        tiers in proptest::collection::vec(0u32..2, 5),
        ends in proptest::collection::vec(end(), 1..16),
        fallback in any::<bool>(),
        time_left in proptest::option::of(0u64..3_000),
    ) {
        let names: Vec<String> = (0..size).map(|i| format!("t{i}/m")).collect();
        let mut group = Group::new(&names).unwrap().tiers(&tiers[..size]);
        if fallback {
            group = group.context_fallback("fb/m").unwrap();
        }
        let time_left = time_left.map(Duration::from_millis);
        let mut route = Route::new("g", group);
        let mut since_wait: Vec<ModelId> = Vec::new();
        let mut went: Vec<String> = Vec::new();
        let mut waits = 0;
        let mut last_failed: Option<ModelId> = None;
        for end in ends {
            let target = match route.next(in_order, time_left) {
                Next::Go { target, from } => {
                    prop_assert_eq!(&from, &last_failed);
                    prop_assert!(!since_wait.contains(&target), "{} twice", target);
                    since_wait.push(target.clone());
                    went.push(target.to_string());
                    target
                }
                Next::Wait(wait) => {
                    waits += 1;
                    prop_assert_eq!(waits, 1, "waits once");
                    let back = route.steps().iter().filter_map(|s| s.back_in).min();
                    prop_assert!(back.is_some());
                    if let Some(left) = time_left { prop_assert!(wait < left); }
                    since_wait.clear();
                    continue;
                }
                Next::Exhausted(Error::GroupExhausted { steps, .. }) => {
                    let targets: Vec<_> = steps.iter().map(|s| s.target.clone()).collect();
                    prop_assert_eq!(targets, went);
                    return Ok(());
                }
                Next::Exhausted(other) => panic!("{other}"),
            };
            let error = match end {
                End::Answered => {
                    let steps = route.answered();
                    let targets: Vec<_> = steps.iter().map(|s| s.target.clone()).collect();
                    prop_assert_eq!(targets, went);
                    prop_assert_eq!(steps.last().map(|s| s.outcome.as_str()), Some("answered"));
                    return Ok(());
                }
                End::Failed(c) => failed(c, GiveUp::AttemptsExhausted),
                End::Open(ms) => rejected(Rejection::Open { retry_in: Duration::from_millis(ms) }),
                End::Paused(ms) => rejected(Rejection::Paused { retry_in: Duration::from_millis(ms) }),
                End::Busy => rejected(Rejection::ProbesBusy),
                End::Internal => Error::Internal("x".into()),
            };
            last_failed = Some(target);
            if route.failed(&error) == Verdict::Stop {
                let stops = matches!(
                    &error,
                    Error::Internal(_)
                ) || error.failure().is_some_and(|f| matches!(
                    f.category,
                    Category::InvalidRequest | Category::ContextLengthExceeded | Category::ContentFiltered
                ));
                prop_assert!(stops, "{error} stopped the route");
                return Ok(());
            }
        }
    }
}

#[test]
fn a_target_takes_a_wait_elsewhere_only_while_another_can_answer_and_before_the_route_waited() {
    let group = Group::new(["a/m", "b/m"]).unwrap();
    let mut route = Route::new("g", group);
    let _ = route.next(in_order, None);
    assert!(route.wait_elsewhere(in_order), "b is untried");
    assert!(
        !route.wait_elsewhere(|_, _| None),
        "no target can answer now"
    );
    let asked = failed(
        Category::RateLimited,
        GiveUp::WaitElsewhere {
            wait: Duration::from_millis(300),
        },
    );
    assert_eq!(route.failed(&asked), Verdict::MoveOn);
    assert_eq!(route.steps()[0].outcome, "rate_limited");
    assert_eq!(route.steps()[0].back_in, Some(Duration::from_millis(300)));
    let _ = route.next(in_order, None);
    assert!(
        !route.wait_elsewhere(in_order),
        "the last target waits itself"
    );
    // Every target asked for a wait: the route waits for the earliest, once,
    // and then each target waits out its own.
    assert_eq!(route.failed(&asked), Verdict::MoveOn);
    assert!(matches!(
        route.next(in_order, None),
        Next::Wait(w) if w >= Duration::from_millis(300)
    ));
    let _ = route.next(in_order, None);
    assert!(!route.wait_elsewhere(in_order), "after the route waited");
}

#[test]
fn hedged_legs_race_the_first_answer_wins_and_a_failure_waits_for_the_others() {
    let group = Group::new(["a/m", "b/m", "c/m"]).unwrap();
    let mut route = Route::new("g", group.clone());
    let _ = route.next(in_order, None);
    assert_eq!(route.hedge(in_order, false), Some(id("b/m")));
    assert_eq!(
        route.hedge(in_order, true),
        Some(id("a/m")),
        "the same target"
    );
    assert_eq!(route.legs(), 3);
    // A failure while others run: wait for them.
    let down = failed(Category::ServerError, GiveUp::AttemptsExhausted);
    assert_eq!(route.leg_failed(&id("b/m"), &down), Verdict::Racing);
    assert_eq!(route.leg_failed(&id("a/m"), &down), Verdict::Racing);
    let steps = route.answered_by(&id("a/m"));
    let outcomes = outcomes(&steps);
    assert_eq!(
        outcomes,
        [
            ("b/m", "server_error"),
            ("a/m", "server_error"),
            ("a/m", "answered")
        ]
    );
    // Every leg failed: the last failure decides, the untried target is next.
    let mut route = Route::new("g", group);
    let _ = route.next(in_order, None);
    let _ = route.hedge(in_order, false);
    assert_eq!(route.leg_failed(&id("a/m"), &down), Verdict::Racing);
    assert_eq!(route.current(), Some(&id("b/m")), "the hedge runs on");
    assert_eq!(route.leg_failed(&id("b/m"), &down), Verdict::MoveOn);
    assert_eq!(go(route.next(in_order, None)).0, id("c/m"));
    let steps = route.answered();
    assert_eq!(steps.last().map(|s| s.outcome.as_str()), Some("answered"));
    assert_eq!(steps.len(), 3, "{steps:?}");
}

#[test]
fn a_withdrawn_hedge_is_forgotten_and_its_target_may_be_picked_again() {
    let group = Group::new(["a/m", "b/m"]).unwrap();
    let mut route = Route::new("g", group);
    let _ = route.next(in_order, None);
    assert_eq!(route.hedge(in_order, false), Some(id("b/m")));
    route.withdraw_hedge(&id("b/m"));
    assert_eq!(route.legs(), 1);
    assert_eq!(
        route.hedge(in_order, false),
        Some(id("b/m")),
        "untried again"
    );
    // A same-target hedge withdrawn leaves the target running.
    route.withdraw_hedge(&id("b/m"));
    assert_eq!(route.hedge(in_order, true), Some(id("a/m")));
    route.withdraw_hedge(&id("a/m"));
    assert_eq!(route.current(), Some(&id("a/m")));
    assert_eq!(route.hedge(in_order, false), Some(id("b/m")));
}

#[test]
fn a_streams_race_is_won_by_its_first_content_and_the_route_goes_on_from_the_winner() {
    let group = Group::new(["a/m", "b/m", "c/m"]).unwrap();
    let mut route = Route::new("g", group.clone());
    let _ = route.next(in_order, None);
    assert_eq!(route.hedge(in_order, false), Some(id("b/m")));
    // The hedge's first content came first: it leads, the primary lost.
    route.won(&id("b/m"));
    assert_eq!((route.current(), route.legs()), (Some(&id("b/m")), 1));
    // A later failure of the winner moves on from it, to the untried one.
    let down = failed(Category::StreamInterrupted, GiveUp::AttemptsExhausted);
    assert_eq!(route.failed(&down), Verdict::MoveOn);
    let (next, from) = go(route.next(in_order, None));
    assert_eq!((next, from), (id("c/m"), Some(id("b/m"))));
    let steps = route.answered();
    let outcomes = outcomes(&steps);
    assert_eq!(
        outcomes,
        [
            ("a/m", "hedge_lost"),
            ("b/m", "stream_interrupted"),
            ("c/m", "answered")
        ]
    );
    // The primary failed first: a named hedge takes the lead (not only the
    // last one), the others race on behind it.
    let mut route = Route::new("g", group);
    let _ = route.next(in_order, None);
    let _ = route.hedge(in_order, false);
    let _ = route.hedge(in_order, false);
    assert_eq!(route.leg_failed(&id("a/m"), &down), Verdict::Racing);
    route.lead(&id("b/m"));
    assert_eq!((route.current(), route.legs()), (Some(&id("b/m")), 2));
    route.lead(&id("z/m"));
    assert_eq!(
        route.current(),
        Some(&id("b/m")),
        "no leg there: nothing moves"
    );
    route.won(&id("b/m"));
    assert_eq!(route.legs(), 1);
    let outcomes: Vec<_> = route.answered().iter().map(|s| s.outcome.clone()).collect();
    assert_eq!(outcomes, ["stream_interrupted", "hedge_lost", "answered"]);
}

#[test]
fn hedges_withdrawn_together_leave_only_the_leader_and_may_be_picked_again() {
    let group = Group::new(["a/m", "b/m", "c/m"]).unwrap();
    let mut route = Route::new("g", group);
    let _ = route.next(in_order, None);
    let _ = route.hedge(in_order, false);
    let _ = route.hedge(in_order, false);
    assert_eq!(route.legs(), 3);
    route.withdraw_hedges();
    assert_eq!((route.legs(), route.current()), (1, Some(&id("a/m"))));
    // The leader fails: the route moves on to the hedges' targets, untried.
    let down = failed(Category::ServerError, GiveUp::AttemptsExhausted);
    assert_eq!(route.failed(&down), Verdict::MoveOn);
    assert_eq!(go(route.next(in_order, None)).0, id("b/m"));
    assert!(route.steps().iter().all(|s| s.outcome != "hedge_lost"));
}
