use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn ids(n: usize) -> Vec<ModelId> {
    (0..n).map(|i| format!("t{i}/m").parse().unwrap()).collect()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn failures_in_a_row_eject_for_longer_each_time_up_to_the_cap() {
    let targets = ids(10);
    let config = OutlierConfig {
        max_ejection: secs(70),
        ..OutlierConfig::default()
    };
    let mut o = Outliers::new(config, targets.clone());
    let t0 = Instant::now();
    let bad = &targets[3];
    for _ in 0..4 {
        assert_eq!(o.record(bad, false, t0), None);
    }
    // A success in between starts the count again.
    assert_eq!(o.record(bad, true, t0), None);
    for _ in 0..4 {
        assert_eq!(o.record(bad, false, t0), None);
    }
    let first = o.record(bad, false, t0).expect("the fifth in a row");
    assert_eq!(
        (first.reason, first.duration, first.count),
        (EjectReason::ConsecutiveFailures(5), secs(30), 1)
    );
    assert!(o.is_ejected(bad, t0 + secs(29)));
    assert!(!o.is_ejected(&targets[0], t0));
    // Calls while ejected (one already running) change nothing.
    assert_eq!(o.record(bad, false, t0 + secs(1)), None);
    // Back after 30 s (at the sweep), then 60 s, then the 70 s cap.
    let (_, back) = o.sweep(t0 + secs(30));
    assert_eq!(back, vec![bad.clone()]);
    let t1 = t0 + secs(31);
    let second = (0..5).find_map(|_| o.record(bad, false, t1)).unwrap();
    assert_eq!((second.duration, second.count), (secs(60), 2));
    o.sweep(t1 + secs(60));
    let t2 = t1 + secs(61);
    let third = (0..5).find_map(|_| o.record(bad, false, t2)).unwrap();
    assert_eq!((third.duration, third.count), (secs(70), 3));
}

#[test]
fn an_ejection_too_long_for_the_clock_still_ejects() {
    let targets = ids(5);
    let config = OutlierConfig {
        base_ejection: Duration::MAX,
        max_ejection: Duration::MAX,
        ..OutlierConfig::default()
    };
    assert_eq!(config.validate(), Ok(()));
    let mut o = Outliers::new(config, targets.clone());
    let t0 = Instant::now();
    let ejected = (0..5).find_map(|_| o.record(&targets[1], false, t0));
    assert_eq!(ejected.map(|e| e.duration), Some(Duration::MAX));
    assert!(o.is_ejected(&targets[1], t0 + secs(365 * 24 * 3600)));
    // An interval is added to the clock by the actor: bounded.
    for interval in [Duration::MAX, secs(3601), Duration::from_millis(9)] {
        let e = OutlierConfig { interval, ..config }
            .validate()
            .expect_err("out of range");
        assert!(e.contains("interval"), "{e}");
    }
}

#[test]
fn never_more_than_the_share_at_once_one_always_and_never_the_last() {
    let now = Instant::now();
    let fail_all = |o: &mut Outliers, targets: &[ModelId]| {
        targets
            .iter()
            .filter(|t| (0..5).find_map(|_| o.record(t, false, now)).is_some())
            .count()
    };
    // 10% of 10 is one; of 30, three; of 2, one (at least one may go).
    for (n, most) in [(10, 1), (30, 3), (2, 1)] {
        let targets = ids(n);
        let mut o = Outliers::new(OutlierConfig::default(), targets.clone());
        assert_eq!(fail_all(&mut o, &targets), most, "{n} targets");
    }
    // A group of one never ejects its only target.
    let one = ids(1);
    let mut o = Outliers::new(OutlierConfig::default(), one.clone());
    assert_eq!(fail_all(&mut o, &one), 0);
    // 50% of 4 is two.
    let four = ids(4);
    let half = OutlierConfig {
        max_ejected_percent: 50,
        ..OutlierConfig::default()
    };
    let mut o = Outliers::new(half, four.clone());
    assert_eq!(fail_all(&mut o, &four), 2);
}

#[test]
fn the_success_rate_rule_ejects_the_one_bad_target_of_five_and_needs_volume() {
    let targets = ids(5);
    let config = OutlierConfig {
        consecutive_failures: 0,
        max_ejected_percent: 20,
        ..OutlierConfig::default()
    };
    let mut o = Outliers::new(config, targets.clone());
    let now = Instant::now();
    // Four targets at 99%, one at 80%, 200 calls each, failures spread out.
    for (i, t) in targets.iter().enumerate() {
        let every = if i == 2 { 5 } else { 100 };
        for call in 0..200 {
            assert_eq!(o.record(t, call % every != 0, now), None);
        }
    }
    let (ejected, _) = o.sweep(now);
    assert_eq!(ejected.len(), 1, "{ejected:?}");
    assert_eq!(ejected[0].target, targets[2]);
    let EjectReason::SuccessRate { rate, threshold } = ejected[0].reason else {
        panic!("{ejected:?}")
    };
    assert!(
        (rate - 0.8).abs() < 1e-9 && threshold > 0.8,
        "{rate} {threshold}"
    );
    // Too few calls: the rule does not apply.
    let mut quiet = Outliers::new(config, targets.clone());
    for (i, t) in targets.iter().enumerate() {
        for call in 0..50 {
            quiet.record(t, i != 2 || call % 2 == 0, now);
        }
    }
    assert!(quiet.sweep(now).0.is_empty());
    // Too few targets with volume: neither.
    let mut few = Outliers::new(config, targets.clone());
    for (i, t) in targets.iter().enumerate().take(4) {
        for call in 0..200 {
            few.record(t, i != 2 || call % 2 == 0, now);
        }
    }
    assert!(few.sweep(now).0.is_empty());
}

#[test]
fn a_target_healthy_through_an_interval_has_an_ejection_forgiven() {
    let targets = ids(3);
    let mut o = Outliers::new(OutlierConfig::default(), targets.clone());
    let t0 = Instant::now();
    let bad = &targets[0];
    let _ = (0..5).find_map(|_| o.record(bad, false, t0)).unwrap();
    o.sweep(t0 + secs(30));
    // A clean interval forgives one: the next ejection is 30 s again.
    o.record(bad, true, t0 + secs(31));
    o.sweep(t0 + secs(40));
    let again = (0..5)
        .find_map(|_| o.record(bad, false, t0 + secs(41)))
        .unwrap();
    assert_eq!((again.count, again.duration), (1, secs(30)));
}

#[test]
fn settings_out_of_range_are_refused() {
    assert!(OutlierConfig::default().validate().is_ok());
    for wrong in [
        OutlierConfig {
            interval: Duration::ZERO,
            ..OutlierConfig::default()
        },
        OutlierConfig {
            base_ejection: Duration::ZERO,
            ..OutlierConfig::default()
        },
        OutlierConfig {
            max_ejection: secs(1),
            ..OutlierConfig::default()
        },
        OutlierConfig {
            max_ejected_percent: 101,
            ..OutlierConfig::default()
        },
        OutlierConfig {
            success_rate_stdev_factor: f64::NAN,
            ..OutlierConfig::default()
        },
    ] {
        assert!(wrong.validate().is_err(), "{wrong:?}");
    }
}

proptest! {
    /// Whatever happens, the ejected never exceed the share (at least one)
    /// and one target is always left; ejections never outlast the cap.
    #[test]
    fn the_share_and_the_cap_hold_for_any_sequence(
        n in 1usize..12,
        percent in 0u32..=100,
        events in proptest::collection::vec((0usize..12, any::<bool>(), 0u64..40, any::<bool>()), 0..300),
    ) {
        let targets = ids(n);
        let config = OutlierConfig {
            consecutive_failures: 2,
            max_ejected_percent: percent,
            success_rate_min_targets: 2,
            success_rate_min_calls: 3,
            max_ejection: secs(90),
            ..OutlierConfig::default()
        };
        let mut o = Outliers::new(config, targets.clone());
        let start = Instant::now();
        let mut now = start;
        for (i, ok, advance, sweep) in events {
            now += Duration::from_secs(advance);
            let target = &targets[i % n];
            let mut ejections = Vec::new();
            ejections.extend(o.record(target, ok, now));
            if sweep {
                ejections.extend(o.sweep(now).0);
            }
            for e in &ejections {
                prop_assert!(e.duration <= secs(90));
            }
            let out = targets.iter().filter(|t| o.is_ejected(t, now)).count();
            let share = (n * percent as usize / 100).max(1);
            prop_assert!(out <= share, "{out} of {n} out, share {share}");
            prop_assert!(n == 0 || out < n.max(1), "the last target stays");
        }
    }
}
