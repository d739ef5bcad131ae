//! Model-based test of the breaker: random sequences of acquires, outcomes
//! (of current and stale permits), hand-backs, pauses, forced states,
//! resets, open timers and clock advances, applied to [`Breaker`] and to a
//! small reference model written from its documentation here; their states,
//! generations, answers and counters never differ.
//!
//! The model keeps every failure of the window (the breaker keeps only the
//! last `failure_threshold`), and counts failures only (rates off: their
//! buckets are an approximation the model would repeat, not check).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::state::{Breaker, BreakerConfig, BreakerState, CallOutcome, Permit, Rejection};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Success,
    Slow,
    Health,
    Neutral,
    Cancelled,
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    /// The outcome of the `n`-th permit held (modulo how many are held).
    Outcome(usize, Kind),
    GiveBack(usize),
    Advance(u64),
    Pause(u64),
    Force(BreakerState),
    Reset,
    /// The actor's open timer fires (if one is due).
    OpenTimer,
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        4 => Just(Kind::Success),
        1 => Just(Kind::Slow),
        4 => Just(Kind::Health),
        1 => Just(Kind::Neutral),
        1 => Just(Kind::Cancelled),
    ];
    prop_oneof![
        6 => Just(Op::Acquire),
        8 => (0usize..8, kind).prop_map(|(n, k)| Op::Outcome(n, k)),
        1 => (0usize..8).prop_map(Op::GiveBack),
        // Steps of 100 ms: a failure at the window's edge, a pause as long
        // as the cap, an open timer due exactly, come up often.
        3 => (0u64..15).prop_map(|k| Op::Advance(k * 100)),
        1 => (0u64..30).prop_map(|k| Op::Pause(k * 100)),
        1 => prop_oneof![
            Just(BreakerState::ForcedOpen),
            Just(BreakerState::Disabled),
            Just(BreakerState::Closed),
        ]
        .prop_map(Op::Force),
        1 => Just(Op::Reset),
        2 => Just(Op::OpenTimer),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (1u32..5, 1u32..4, 1u32..4, 1.0f64..3.0).prop_map(|(threshold, permits, successes, mult)| {
        BreakerConfig {
            failure_threshold: threshold,
            window: Duration::from_millis(2_000),
            open_for: Duration::from_millis(500),
            open_multiplier: mult,
            max_open_for: Duration::from_millis(3_000),
            half_open_permits: permits,
            success_threshold: successes,
            max_pause: Duration::from_millis(2_000),
            slow_call_threshold: Duration::from_millis(100),
            ..BreakerConfig::default()
        }
    })
}

/// The reference: the breaker as its documentation describes it.
#[derive(Debug)]
struct Model {
    c: BreakerConfig,
    state: BreakerState,
    generation: u64,
    failures: VecDeque<Instant>,
    reopens: u32,
    open_until: Option<Instant>,
    paused_until: Option<Instant>,
    probes_admitted: u32,
    probe_successes: u32,
    admitted: u64,
    rejected: u64,
    opened: u64,
}

impl Model {
    fn new(c: BreakerConfig) -> Self {
        Model {
            c,
            state: BreakerState::Closed,
            generation: 0,
            failures: VecDeque::new(),
            reopens: 0,
            open_until: None,
            paused_until: None,
            probes_admitted: 0,
            probe_successes: 0,
            admitted: 0,
            rejected: 0,
            opened: 0,
        }
    }

    fn open_time(&self) -> Duration {
        let secs = self.c.open_for.as_secs_f64() * self.c.open_multiplier.powi(self.reopens as i32);
        Duration::from_secs_f64(secs.min(self.c.max_open_for.as_secs_f64()))
    }

    fn go(&mut self, to: BreakerState, now: Instant) -> (BreakerState, BreakerState) {
        let from = self.state;
        self.state = to;
        self.generation += 1;
        self.probes_admitted = 0;
        self.probe_successes = 0;
        match to {
            BreakerState::Open => {
                self.open_until = Some(now + self.open_time());
                self.reopens += 1;
                self.opened += 1;
            }
            BreakerState::Closed => {
                self.reopens = 0;
                self.failures.clear();
                self.open_until = None;
            }
            BreakerState::HalfOpen => self.open_until = None,
            BreakerState::ForcedOpen | BreakerState::Disabled => {
                self.open_until = None;
                self.failures.clear();
            }
        }
        (from, to)
    }

    fn acquire(&mut self, now: Instant) -> Result<Permit, Rejection> {
        let permit = |probe| Permit {
            generation: self.generation,
            probe,
        };
        if self.state == BreakerState::Disabled {
            self.admitted += 1;
            return Ok(permit(false));
        }
        if let Some(until) = self.paused_until.filter(|t| *t > now) {
            self.rejected += 1;
            return Err(Rejection::Paused {
                retry_in: until - now,
            });
        }
        let answer = match self.state {
            BreakerState::Closed => Ok(permit(false)),
            BreakerState::HalfOpen if self.probes_admitted < self.c.half_open_permits => {
                self.probes_admitted += 1;
                Ok(permit(true))
            }
            BreakerState::HalfOpen => Err(Rejection::ProbesBusy),
            BreakerState::Open => Err(Rejection::Open {
                retry_in: self
                    .open_until
                    .map(|t| t.saturating_duration_since(now))
                    .unwrap_or_default(),
            }),
            BreakerState::ForcedOpen => Err(Rejection::ForcedOpen),
            BreakerState::Disabled => unreachable!("answered above"),
        };
        match answer {
            Ok(_) => self.admitted += 1,
            Err(_) => self.rejected += 1,
        }
        answer
    }

    fn outcome(
        &mut self,
        permit: Permit,
        kind: Kind,
        now: Instant,
    ) -> Option<(BreakerState, BreakerState)> {
        if permit.generation != self.generation || self.state == BreakerState::Disabled {
            return None;
        }
        let no_verdict = matches!(kind, Kind::Neutral | Kind::Cancelled);
        if permit.probe && no_verdict {
            self.probes_admitted -= 1;
        }
        match self.state {
            BreakerState::Closed => {
                if !matches!(kind, Kind::Health) {
                    return None;
                }
                self.failures.push_back(now);
                while self
                    .failures
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.c.window)
                {
                    self.failures.pop_front();
                }
                (self.failures.len() as u32 >= self.c.failure_threshold)
                    .then(|| self.go(BreakerState::Open, now))
            }
            BreakerState::HalfOpen if permit.probe => match kind {
                Kind::Success | Kind::Slow => {
                    self.probe_successes += 1;
                    let needed = self.c.success_threshold.min(self.c.half_open_permits);
                    (self.probe_successes >= needed).then(|| self.go(BreakerState::Closed, now))
                }
                Kind::Health => Some(self.go(BreakerState::Open, now)),
                Kind::Neutral | Kind::Cancelled => None,
            },
            _ => None,
        }
    }

    fn pause(&mut self, wait: Duration, now: Instant) -> bool {
        if wait > self.c.max_pause {
            return false;
        }
        let until = now + wait;
        if self.paused_until.is_none_or(|t| t < until) {
            self.paused_until = Some(until);
        }
        true
    }
}

fn call_outcome(kind: Kind) -> CallOutcome {
    match kind {
        Kind::Success => CallOutcome::Success {
            elapsed: Duration::from_millis(5),
        },
        Kind::Slow => CallOutcome::Success {
            elapsed: Duration::from_millis(500),
        },
        Kind::Health => CallOutcome::HealthFailure,
        Kind::Neutral => CallOutcome::Neutral,
        Kind::Cancelled => CallOutcome::Cancelled,
    }
}

fn run(c: BreakerConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut now = Instant::now();
    let mut real = Breaker::new(c.clone());
    let mut model = Model::new(c);
    let mut held: Vec<Permit> = Vec::new();
    // The generation of the latest open, whose timer the actor would run.
    let mut timer: Option<u64> = None;
    for (step, op) in ops.into_iter().enumerate() {
        let said = format!("step {step}: {op:?}");
        match op {
            Op::Acquire => {
                let (a, b) = (real.try_acquire(now), model.acquire(now));
                prop_assert_eq!(a, b, "{}", said);
                if let Ok(p) = a {
                    held.push(p);
                }
            }
            Op::Outcome(n, kind) if !held.is_empty() => {
                let p = held.remove(n % held.len());
                let a = real
                    .on_outcome(p, call_outcome(kind), now)
                    .map(|t| (t.from, t.to, t.generation));
                let b = model.outcome(p, kind, now);
                prop_assert_eq!(a.map(|t| (t.0, t.1)), b, "{}", said);
                if let Some((_, BreakerState::Open, g)) = a {
                    timer = Some(g);
                }
            }
            Op::GiveBack(n) if !held.is_empty() => {
                let p = held.remove(n % held.len());
                real.give_back(p, now);
                model.admitted = model.admitted.saturating_sub(1);
                let _ = model.outcome(p, Kind::Cancelled, now);
            }
            Op::Outcome(..) | Op::GiveBack(_) => {}
            Op::Advance(ms) => now += Duration::from_millis(ms),
            Op::Pause(ms) => {
                let wait = Duration::from_millis(ms);
                prop_assert_eq!(real.pause(wait, now), model.pause(wait, now), "{}", said);
            }
            Op::Force(to) => {
                let a = real.force(to, now).map(|t| (t.from, t.to));
                let b = (model.state != to).then(|| model.go(to, now));
                prop_assert_eq!(a, b, "{}", said);
            }
            Op::Reset => {
                let a = real.reset(now).map(|t| (t.from, t.to));
                model.paused_until = None;
                model.reopens = 0;
                model.failures.clear();
                model.admitted = 0;
                model.rejected = 0;
                model.opened = 0;
                let b = (model.state != BreakerState::Closed)
                    .then(|| model.go(BreakerState::Closed, now));
                prop_assert_eq!(a, b, "{}", said);
            }
            Op::OpenTimer => {
                // It fires when due; a timer of an older open is stale.
                if let (Some(g), Some(until)) = (timer, model.open_until) {
                    now = now.max(until);
                    let a = real.on_open_timer(g, now).map(|t| (t.from, t.to));
                    let b = (model.state == BreakerState::Open && g == model.generation)
                        .then(|| model.go(BreakerState::HalfOpen, now));
                    prop_assert_eq!(a, b, "{}", said);
                }
            }
        }
        prop_assert_eq!(real.state(), model.state, "{}", said);
        prop_assert_eq!(real.generation(), model.generation, "{}", said);
        let stats = real.stats(now);
        prop_assert_eq!(
            (stats.admitted, stats.rejected, stats.opened),
            (model.admitted, model.rejected, model.opened),
            "{}",
            said
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_breaker_never_differs_from_its_model(
        c in config(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(c, ops)?;
    }
}
