//! A deployment's bulkhead: calls run while fewer than the limit are in
//! flight; past it a call waits in a bounded queue (higher priority first,
//! then first come) until a slot frees or its wait runs out, or, when it may
//! not wait (a group's route moves on instead), is refused at once; a full
//! queue refuses at once. A plain machine: tickets in, admissions out.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use steer_actors::limit::{Admission, Bulkhead, LimitConfig, Signal};
//! let now = Instant::now();
//! let mut b = Bulkhead::new(LimitConfig { initial: 1, min: 1, max: 1, ..LimitConfig::default() });
//! assert_eq!(b.acquire(1, 0, true, None, now), Admission::Now);
//! assert!(matches!(b.acquire(2, 0, true, None, now), Admission::Queued { .. }));
//! assert_eq!(b.release(Signal::Ignore, now, now), vec![2]);
//! ```

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::adaptive::{AdaptiveLimit, LimitConfig, Signal};

/// What became of a call that asked for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// It runs now.
    Now,
    /// It waits; admitted by a later [`Bulkhead::release`], or refused by
    /// [`Bulkhead::expire`] at `until`.
    Queued {
        /// When its wait runs out.
        until: Instant,
    },
    /// It is refused.
    Refused(LimitRejection),
}

/// Why a call got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitRejection {
    /// Every slot is taken and the call may not wait.
    AtLimit {
        /// The limit.
        limit: u32,
    },
    /// Every slot is taken and the queue is full.
    QueueFull {
        /// The limit.
        limit: u32,
        /// The queue's size.
        queue: u32,
    },
    /// It waited its longest and got no slot.
    TimedOut {
        /// The limit.
        limit: u32,
    },
}

#[derive(Debug, Clone, Copy)]
struct Waiter {
    ticket: u64,
    priority: i32,
    until: Instant,
}

/// One deployment's bulkhead.
#[derive(Debug, Clone)]
pub struct Bulkhead {
    limit: AdaptiveLimit,
    in_flight: u32,
    /// Waiters, highest priority first, then in order of arrival.
    queue: Vec<Waiter>,
}

impl Bulkhead {
    /// An empty bulkhead at the configured initial limit.
    pub fn new(config: LimitConfig) -> Self {
        Bulkhead {
            limit: AdaptiveLimit::new(config),
            in_flight: 0,
            queue: Vec::new(),
        }
    }

    /// The limit now.
    pub fn limit(&self, now: Instant) -> u32 {
        self.limit.limit(now)
    }

    /// Calls running.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Calls waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Call `ticket` (unique) asks for a slot with `priority` (higher goes
    /// first); `may_wait` false refuses it at once when none is free; it waits
    /// the queue's timeout at most, or `max_wait` when that is shorter (what is
    /// left of its deadline).
    pub fn acquire(
        &mut self,
        ticket: u64,
        priority: i32,
        may_wait: bool,
        max_wait: Option<std::time::Duration>,
        now: Instant,
    ) -> Admission {
        let limit = self.limit(now);
        if self.in_flight < limit && self.queue.is_empty() {
            self.in_flight = self.in_flight.saturating_add(1);
            return Admission::Now;
        }
        let config = *self.limit.config();
        if !may_wait {
            return Admission::Refused(LimitRejection::AtLimit { limit });
        }
        if self.queue.len() >= config.max_queue as usize {
            return Admission::Refused(LimitRejection::QueueFull {
                limit,
                queue: config.max_queue,
            });
        }
        let wait = max_wait.map_or(config.queue_timeout, |w| w.min(config.queue_timeout));
        // Saturating: a wait too long for the clock waits, never ends at once
        // (a checked configuration is at most an hour anyway).
        let until = crate::exec::clock::later(now, wait);
        let at = self
            .queue
            .iter()
            .position(|w| w.priority < priority)
            .unwrap_or(self.queue.len());
        self.queue.insert(
            at,
            Waiter {
                ticket,
                priority,
                until,
            },
        );
        Admission::Queued { until }
    }

    /// A running call that started at `started` ended with `signal`: its
    /// slot frees; returns the tickets admitted now, in order.
    pub fn release(&mut self, signal: Signal, started: Instant, now: Instant) -> Vec<u64> {
        let before = self.in_flight;
        self.in_flight = self.in_flight.saturating_sub(1);
        self.limit.on_end(signal, started, before, now);
        self.admit(now)
    }

    /// A rate-limit header said nothing is left for `spent_for`: the limit is
    /// capped at what is in flight (see [`AdaptiveLimit::cap`]).
    pub fn spent(&mut self, spent_for: Duration, now: Instant) {
        self.limit.cap(self.in_flight, spent_for, now);
    }

    /// Waiters whose wait ran out by `now`, refused; returns them and the
    /// earliest wait still running.
    pub fn expire(&mut self, now: Instant) -> (Vec<(u64, LimitRejection)>, Option<Instant>) {
        let limit = self.limit(now);
        let mut out = Vec::new();
        self.queue.retain(|w| {
            let over = w.until <= now;
            if over {
                out.push((w.ticket, LimitRejection::TimedOut { limit }));
            }
            !over
        });
        (out, self.next_deadline())
    }

    /// A waiter went away (its caller cancelled): it leaves the queue.
    /// Returns whether it was waiting.
    pub fn withdraw(&mut self, ticket: u64) -> bool {
        let before = self.queue.len();
        self.queue.retain(|w| w.ticket != ticket);
        self.queue.len() != before
    }

    /// Every waiter, refused (the limiter restarts): returns their tickets.
    pub fn clear_queue(&mut self) -> Vec<u64> {
        self.queue.drain(..).map(|w| w.ticket).collect()
    }

    /// The earliest wait that runs out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.iter().map(|w| w.until).min()
    }

    fn admit(&mut self, now: Instant) -> Vec<u64> {
        let limit = self.limit(now);
        let mut admitted = Vec::new();
        while self.in_flight < limit && !self.queue.is_empty() {
            let w = self.queue.remove(0);
            self.in_flight = self.in_flight.saturating_add(1);
            admitted.push(w.ticket);
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn one_slot(max_queue: u32) -> Bulkhead {
        Bulkhead::new(LimitConfig {
            initial: 1,
            min: 1,
            max: 1,
            max_queue,
            queue_timeout: Duration::from_millis(100),
            ..LimitConfig::default()
        })
    }

    #[test]
    fn past_the_limit_calls_wait_by_priority_then_arrival_and_a_full_queue_refuses() {
        let now = Instant::now();
        let mut b = one_slot(3);
        assert_eq!(b.acquire(1, 0, true, None, now), Admission::Now);
        for (ticket, priority) in [(2, 0), (3, 5), (4, 0)] {
            assert!(matches!(
                b.acquire(ticket, priority, true, None, now),
                Admission::Queued { .. }
            ));
        }
        assert_eq!(
            b.acquire(5, 9, true, None, now),
            Admission::Refused(LimitRejection::QueueFull { limit: 1, queue: 3 })
        );
        assert_eq!(
            b.acquire(6, 0, false, None, now),
            Admission::Refused(LimitRejection::AtLimit { limit: 1 }),
            "a call that may not wait"
        );
        let order: Vec<u64> = (0..3)
            .flat_map(|_| b.release(Signal::Ignore, now, now))
            .collect();
        assert_eq!(order, [3, 2, 4]);
        assert_eq!((b.in_flight(), b.queued()), (1, 0));
    }

    #[test]
    fn a_wait_runs_out_at_its_timeout_or_its_deadline_and_a_withdrawn_one_is_gone() {
        let now = Instant::now();
        let mut b = one_slot(10);
        b.acquire(1, 0, true, None, now);
        let Admission::Queued { until } = b.acquire(2, 0, true, None, now) else {
            panic!()
        };
        assert_eq!(until, now + Duration::from_millis(100));
        let Admission::Queued { until: sooner } =
            b.acquire(3, 0, true, Some(Duration::from_millis(30)), now)
        else {
            panic!()
        };
        assert_eq!(sooner, now + Duration::from_millis(30));
        b.acquire(4, 0, true, None, now);
        assert!(b.withdraw(4));
        assert_eq!(b.next_deadline(), Some(sooner));
        let (out, next) = b.expire(now + Duration::from_millis(30));
        assert_eq!(out, vec![(3, LimitRejection::TimedOut { limit: 1 })]);
        assert_eq!(next, Some(until));
        assert_eq!(b.release(Signal::Ignore, now, now), vec![2]);
        assert_eq!(b.expire(now + Duration::from_secs(1)).0, vec![]);
    }
}
