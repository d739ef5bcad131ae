use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_scripted_sequence_falls_on_drops_once_a_round_trip_and_grows_slowly_when_used() {
    let t0 = Instant::now();
    let mut l = AdaptiveLimit::new(LimitConfig {
        initial: 10,
        min: 2,
        max: 12,
        ..LimitConfig::default()
    });
    let at = |n: u64| t0 + ms(n);
    // The first 429 ends slow start: × 0.5 (TCP's), floored.
    l.on_end(Signal::Drop, at(0), 10, at(1));
    assert_eq!(l.limit(at(1)), 5);
    // Calls that started before that cut saw the old limit: no second cut.
    l.on_end(Signal::Drop, at(0), 5, at(2));
    l.on_end(Signal::Drop, at(1), 5, at(2));
    assert_eq!(l.limit(at(2)), 5);
    // A timeout of a later call cuts again, × 0.9 now.
    l.on_end(Signal::Drop, at(2), 5, at(3));
    assert_eq!(l.limit(at(3)), 4);
    for (i, step) in [3, 2, 2].into_iter().enumerate() {
        let now = at(10 + i as u64);
        l.on_end(Signal::Drop, now, 1, now);
        assert_eq!(l.limit(now), step, "never below min");
    }
    // Clean completions with few calls running: no growth.
    for _ in 0..50 {
        l.on_end(Signal::Clean { ttft: None }, at(30), 0, at(31));
    }
    assert_eq!(l.limit(at(31)), 2);
    // With the limit in use: +1 per limit's worth of completions.
    let mut seen = vec![];
    for _ in 0..30 {
        l.on_end(Signal::Clean { ttft: None }, at(40), 12, at(41));
        seen.push(l.limit(at(41)));
    }
    assert_eq!(&seen[..6], [2, 2, 3, 3, 3, 4], "{seen:?}");
    assert_eq!(*seen.last().unwrap(), 8, "{seen:?}");
    for _ in 0..100 {
        l.on_end(Signal::Clean { ttft: None }, at(40), 12, at(41));
    }
    assert_eq!(l.limit(at(41)), 12, "never above max");
    // Nothing about capacity moves nothing.
    l.on_end(Signal::Ignore, at(50), 12, at(51));
    assert_eq!(l.limit(at(51)), 12);
}

/// Clean completions (with `in_flight` running) until the limit grows by one.
fn completions_to_grow(l: &mut AdaptiveLimit, at: Instant, in_flight: u32) -> usize {
    let from = l.limit(at);
    (1..=1_000)
        .find(|_| {
            l.on_end(Signal::Clean { ttft: None }, at, in_flight, at);
            l.limit(at) > from
        })
        .unwrap_or(usize::MAX)
}

#[test]
fn a_new_limit_grows_one_a_completion_until_the_deployment_first_pushes_back() {
    let t0 = Instant::now();
    let config = LimitConfig {
        initial: 20,
        max: 200,
        ..LimitConfig::default()
    };
    let clean = Signal::Clean { ttft: None };
    // Slow start: every clean completion with at least half the limit in
    // use adds one, so a healthy deployment outgrows a low first guess in as
    // many completions as it needs slots, not in the thousands.
    let mut l = AdaptiveLimit::new(config);
    l.on_end(clean, t0, 9, t0);
    assert_eq!(l.limit(t0), 20, "under half in use: no growth");
    for n in 1..=30 {
        l.on_end(clean, t0, l.limit(t0), t0);
        assert_eq!(l.limit(t0), 20 + n);
    }
    // The first drop ends it: × 0.5, then one per limit's worth.
    let t1 = t0 + ms(1);
    l.on_end(Signal::Drop, t1, 50, t1);
    assert_eq!(l.limit(t1), 25);
    let t2 = t0 + ms(2);
    let needed = completions_to_grow(&mut l, t2, 25);
    assert!((25..=27).contains(&needed), "a limit's worth: {needed}");
    assert_eq!(l.limit(t2), 26);
    // A backoff deeper than a half keeps its own.
    let mut deep = AdaptiveLimit::new(LimitConfig {
        backoff: 0.3,
        ..config
    });
    deep.on_end(Signal::Drop, t1, 20, t1);
    assert_eq!(deep.limit(t1), 6);
    // A rate-limit header that says nothing is left ends it too, even
    // after the cap runs out.
    let mut l = AdaptiveLimit::new(config);
    l.cap(30, ms(10), t0);
    let later = t0 + ms(20);
    let needed = completions_to_grow(&mut l, later, 20);
    assert!(
        (20..=21).contains(&needed),
        "one per limit's worth: {needed}"
    );
}

#[test]
fn a_spent_rate_limit_caps_the_limit_at_what_runs_until_its_reset() {
    let t0 = Instant::now();
    let mut l = AdaptiveLimit::new(LimitConfig::default());
    l.cap(3, ms(500), t0);
    assert_eq!(l.limit(t0), 3);
    // A later, looser cap before the first ends does not lift it.
    l.cap(8, ms(200), t0);
    assert_eq!(l.limit(t0 + ms(100)), 3);
    assert_eq!(l.limit(t0 + ms(500)), 20, "uncapped at the reset");
    l.cap(0, ms(900), t0);
    assert_eq!(l.limit(t0 + ms(600)), 1, "never below min");
    // A hostile reset (ten years, or past the clock) caps it for MAX_CAP
    // at most, never less.
    for hostile in [Duration::from_secs(86_400 * 3650), Duration::MAX] {
        let t = t0 + ms(1_000);
        l.cap(1, hostile, t);
        assert_eq!(l.limit(t + MAX_CAP - ms(1)), 1, "{hostile:?}");
        assert_eq!(l.limit(t + MAX_CAP), 20, "uncapped after MAX_CAP");
    }
}

#[test]
fn a_first_token_far_above_its_average_cuts_in_proportion() {
    let t0 = Instant::now();
    let mut l = AdaptiveLimit::new(LimitConfig {
        initial: 100,
        max: 200,
        ..LimitConfig::default()
    });
    // A steady 100 ms, the limit in use: it grows (one a completion: nothing
    // has pushed back yet).
    for i in 0..20 {
        l.on_end(
            Signal::Clean {
                ttft: Some(ms(100)),
            },
            t0 + ms(i),
            100,
            t0 + ms(i),
        );
    }
    assert_eq!(l.limit(t0 + ms(20)), 120, "slow start: one a completion");
    // Then 1 s, for calls that all started before the first cut: the
    // recent average passes twice the long one and cuts once, in proportion
    // (at most by half).
    let started = t0 + ms(999);
    let mut seen = vec![];
    for i in 0..6 {
        let now = t0 + ms(1000 + i);
        l.on_end(
            Signal::Clean {
                ttft: Some(ms(1000)),
            },
            started,
            100,
            now,
        );
        seen.push(l.limit(now));
    }
    assert_eq!(seen[0], 93, "120 × 218/280: {seen:?}");
    assert!(seen.iter().all(|&c| c == 93), "once a round trip: {seen:?}");
    // A call that started after the cut, still slow: cut again.
    let later = t0 + ms(2000);
    l.on_end(
        Signal::Clean {
            ttft: Some(ms(1000)),
        },
        later,
        100,
        later,
    );
    assert!(
        l.limit(later) < 93 && l.limit(later) >= 46,
        "{}",
        l.limit(later)
    );
}

#[test]
fn settings_out_of_range_are_refused() {
    assert!(LimitConfig::default().validate().is_ok());
    for wrong in [
        LimitConfig {
            min: 0,
            ..LimitConfig::default()
        },
        LimitConfig {
            initial: 300,
            ..LimitConfig::default()
        },
        LimitConfig {
            min: 30,
            ..LimitConfig::default()
        },
        LimitConfig {
            backoff: 1.0,
            ..LimitConfig::default()
        },
        LimitConfig {
            backoff: f64::NAN,
            ..LimitConfig::default()
        },
        LimitConfig {
            tolerance: 0.5,
            ..LimitConfig::default()
        },
        LimitConfig {
            max_queue: 1_000_000,
            ..LimitConfig::default()
        },
    ] {
        assert!(wrong.validate().is_err(), "{wrong:?}");
    }
}

proptest! {
    /// Whatever the signals, the limit stays within [min, max] (and under a
    /// cap, within it too).
    #[test]
    fn the_limit_stays_within_its_bounds(
        min in 1u32..20,
        span in 0u32..200,
        events in proptest::collection::vec((0u8..4, 0u64..2000, 0u32..400), 0..300),
    ) {
        let max = min + span;
        let config = LimitConfig { min, initial: min, max, ..LimitConfig::default() };
        let mut l = AdaptiveLimit::new(config);
        let t0 = Instant::now();
        for (i, (kind, ttft, in_flight)) in events.into_iter().enumerate() {
            let now = t0 + ms(i as u64);
            let started = t0 + ms((i as u64).saturating_sub(u64::from(kind)));
            let signal = match kind {
                0 => Signal::Drop,
                1 => Signal::Ignore,
                2 => Signal::Clean { ttft: None },
                _ => Signal::Clean { ttft: Some(ms(ttft)) },
            };
            l.on_end(signal, started, in_flight, now);
            let limit = l.limit(now);
            prop_assert!((min..=max).contains(&limit), "{limit} not in {min}..={max}");
        }
    }
}

#[test]
fn settings_out_of_range_are_refused_with_what_is_wrong() {
    let ok = LimitConfig::default();
    assert_eq!(ok.validate(), Ok(()));
    let longest = LimitConfig {
        queue_timeout: MAX_QUEUE_TIMEOUT,
        ..ok
    };
    assert_eq!(longest.validate(), Ok(()));
    for (bad, says) in [
        (LimitConfig { min: 0, ..ok }, "min"),
        (LimitConfig { initial: 300, ..ok }, "initial"),
        (LimitConfig { backoff: 1.0, ..ok }, "backoff"),
        (
            LimitConfig {
                backoff: f64::NAN,
                ..ok
            },
            "backoff",
        ),
        (
            LimitConfig {
                tolerance: 0.5,
                ..ok
            },
            "tolerance",
        ),
        (
            LimitConfig {
                max_queue: 100_001,
                ..ok
            },
            "max_queue",
        ),
        // Once added to the time, past what an `Instant` holds: every wait
        // would have ended at once.
        (
            LimitConfig {
                queue_timeout: Duration::MAX,
                ..ok
            },
            "queue_timeout",
        ),
        (
            LimitConfig {
                queue_timeout: MAX_QUEUE_TIMEOUT + ms(1),
                ..ok
            },
            "queue_timeout",
        ),
    ] {
        let e = bad.validate().expect_err(says);
        assert!(e.contains(says), "{e}");
    }
}
