//! Model-based test of a deployment's adaptive limit and its bulkhead:
//! random sequences of acquires (priorities, calls that may not wait, short
//! deadlines), releases of running calls with clean, dropped and ignored
//! ends, spent rate-limit headers, withdrawals, queue expiries and clock
//! advances, applied to [`Bulkhead`] and to a reference model written from
//! the documentation here (AIMD: a cut by `backoff` per round trip, by half
//! if that is deeper for the drop that ends slow start, one `1/limit` step a
//! clean end that used half the limit (one a clean end in slow start); a spent header caps
//! the limit at what is in flight until its reset, at most [`MAX_CAP`]);
//! their admissions, queues and limits never differ. (The TTFT gradient is
//! left out: the model would repeat its arithmetic, not check it.)

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::adaptive::{LimitConfig, Signal, MAX_CAP};
use super::bulkhead::{Admission, Bulkhead, LimitRejection};

#[derive(Debug, Clone, Copy)]
enum End {
    Clean,
    Drop,
    Ignore,
}

#[derive(Debug, Clone)]
enum Op {
    Acquire {
        priority: i32,
        may_wait: bool,
        max_wait: Option<u64>,
    },
    /// The `n`-th running call ends.
    Release(usize, End),
    /// A spent rate-limit header, resetting in this many milliseconds.
    Spent(u64),
    Withdraw(usize),
    Expire,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let end = prop_oneof![3 => Just(End::Clean), 2 => Just(End::Drop), 1 => Just(End::Ignore)];
    prop_oneof![
        6 => (0i32..3, prop::bool::weighted(0.8), prop::option::of((0u64..6).prop_map(|k| k * 50))).prop_map(
            |(priority, may_wait, max_wait)| Op::Acquire { priority, may_wait, max_wait }
        ),
        6 => (0usize..32, end).prop_map(|(n, e)| Op::Release(n, e)),
        1 => (0u64..120_000).prop_map(Op::Spent),
        1 => (0usize..8).prop_map(Op::Withdraw),
        1 => Just(Op::Expire),
        // Steps of 50 ms: a wait that ends exactly now comes up often.
        2 => (0u64..5).prop_map(|k| Op::Advance(k * 50)),
    ]
}

fn config() -> impl Strategy<Value = LimitConfig> {
    (1u32..4, 0u32..6, 0u32..8, 0u32..5, 0.3f64..0.95).prop_map(
        |(min, above_min, above_initial, max_queue, backoff)| LimitConfig {
            min,
            initial: min + above_min,
            max: min + above_min + above_initial,
            backoff,
            max_queue,
            queue_timeout: Duration::from_millis(200),
            ..LimitConfig::default()
        },
    )
}

/// The reference.
#[derive(Debug)]
struct Model {
    c: LimitConfig,
    limit: f64,
    last_cut: Option<Instant>,
    cap: Option<(u32, Instant)>,
    /// A cut or a cap happened: growth is one per limit's worth.
    pushed_back: bool,
    /// Running calls: (ticket, started).
    running: Vec<(u64, Instant)>,
    /// Waiting calls, first to be admitted first: (ticket, priority, until).
    queue: Vec<(u64, i32, Instant)>,
}

impl Model {
    fn limit(&self, now: Instant) -> u32 {
        let adapted = self.limit.floor() as u32;
        match self.cap {
            Some((cap, until)) if until > now => adapted.min(cap),
            _ => adapted,
        }
    }

    fn acquire(
        &mut self,
        ticket: u64,
        priority: i32,
        may_wait: bool,
        max_wait: Option<Duration>,
        now: Instant,
    ) -> Admission {
        let limit = self.limit(now);
        if (self.running.len() as u32) < limit && self.queue.is_empty() {
            self.running.push((ticket, now));
            return Admission::Now;
        }
        if !may_wait {
            return Admission::Refused(LimitRejection::AtLimit { limit });
        }
        if self.queue.len() >= self.c.max_queue as usize {
            return Admission::Refused(LimitRejection::QueueFull {
                limit,
                queue: self.c.max_queue,
            });
        }
        let until = now + max_wait.map_or(self.c.queue_timeout, |w| w.min(self.c.queue_timeout));
        // Behind every waiter of the same or a higher priority.
        let at = self
            .queue
            .iter()
            .position(|w| w.1 < priority)
            .unwrap_or(self.queue.len());
        self.queue.insert(at, (ticket, priority, until));
        Admission::Queued { until }
    }

    fn cut(&mut self, now: Instant) {
        let (min, max) = (f64::from(self.c.min), f64::from(self.c.max));
        // The cut that ends slow start halves (at least).
        let factor = if self.pushed_back {
            self.c.backoff
        } else {
            self.c.backoff.min(0.5)
        };
        self.limit = (self.limit * factor).floor().clamp(min, max);
        self.last_cut = Some(now);
        self.pushed_back = true;
    }

    fn release(&mut self, n: usize, end: End, now: Instant) -> Vec<u64> {
        let in_flight = self.running.len() as u32;
        let (_, started) = self.running.remove(n);
        let after_cut = self.last_cut.is_none_or(|cut| started > cut);
        match end {
            End::Drop if after_cut => self.cut(now),
            End::Clean if f64::from(in_flight) * 2.0 >= self.limit => {
                let (min, max) = (f64::from(self.c.min), f64::from(self.c.max));
                // Slow start until the first cut or cap: one a completion.
                let step = if self.pushed_back {
                    1.0 / self.limit.max(1.0)
                } else {
                    1.0
                };
                self.limit = (self.limit + step).clamp(min, max);
            }
            _ => {}
        }
        let limit = self.limit(now);
        let mut admitted = Vec::new();
        while (self.running.len() as u32) < limit && !self.queue.is_empty() {
            let (ticket, _, _) = self.queue.remove(0);
            self.running.push((ticket, now));
            admitted.push(ticket);
        }
        admitted
    }

    fn spent(&mut self, spent_for: Duration, now: Instant) {
        let until = now + spent_for.min(MAX_CAP);
        let cap = (self.running.len() as u32).max(self.c.min);
        self.pushed_back = true;
        self.cap = match self.cap {
            Some((old, old_until)) if old_until >= until => Some((old.min(cap), old_until)),
            _ => Some((cap, until)),
        };
    }
}

fn signal(end: End) -> Signal {
    match end {
        End::Clean => Signal::Clean { ttft: None },
        End::Drop => Signal::Drop,
        End::Ignore => Signal::Ignore,
    }
}

fn run(c: LimitConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut now = Instant::now();
    let mut real = Bulkhead::new(c);
    let mut model = Model {
        c,
        limit: f64::from(c.initial),
        last_cut: None,
        pushed_back: false,
        cap: None,
        running: Vec::new(),
        queue: Vec::new(),
    };
    let mut next_ticket = 0u64;
    for (step, op) in ops.into_iter().enumerate() {
        let said = format!("step {step}: {op:?}");
        match op {
            Op::Acquire {
                priority,
                may_wait,
                max_wait,
            } => {
                next_ticket += 1;
                let wait = max_wait.map(Duration::from_millis);
                let a = real.acquire(next_ticket, priority, may_wait, wait, now);
                let b = model.acquire(next_ticket, priority, may_wait, wait, now);
                prop_assert_eq!(a, b, "{}", said);
            }
            Op::Release(n, end) if !model.running.is_empty() => {
                let n = n % model.running.len();
                let started = model.running[n].1;
                let a = real.release(signal(end), started, now);
                let b = model.release(n, end, now);
                prop_assert_eq!(a, b, "{}", said);
            }
            Op::Release(..) => {}
            Op::Spent(ms) => {
                let spent_for = Duration::from_millis(ms);
                real.spent(spent_for, now);
                model.spent(spent_for, now);
            }
            Op::Withdraw(n) if !model.queue.is_empty() => {
                let ticket = model.queue[n % model.queue.len()].0;
                prop_assert!(real.withdraw(ticket), "{}", said);
                model.queue.retain(|w| w.0 != ticket);
            }
            Op::Withdraw(_) => prop_assert!(!real.withdraw(u64::MAX), "{}", said),
            Op::Expire => {
                let limit = model.limit(now);
                let mut out = Vec::new();
                model.queue.retain(|w| {
                    let over = w.2 <= now;
                    if over {
                        out.push((w.0, LimitRejection::TimedOut { limit }));
                    }
                    !over
                });
                let next = model.queue.iter().map(|w| w.2).min();
                prop_assert_eq!(real.expire(now), (out, next), "{}", said);
            }
            Op::Advance(ms) => now += Duration::from_millis(ms),
        }
        prop_assert_eq!(real.limit(now), model.limit(now), "{}", said);
        prop_assert_eq!(real.in_flight() as usize, model.running.len(), "{}", said);
        prop_assert_eq!(real.queued(), model.queue.len(), "{}", said);
        let limit = real.limit(now);
        prop_assert!(
            (c.min..=c.max).contains(&limit),
            "{}: limit {}",
            said,
            limit
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_bulkhead_and_its_limit_never_differ_from_their_model(
        c in config(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(c, ops)?;
    }
}
