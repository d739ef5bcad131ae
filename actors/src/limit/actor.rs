//! The ConcurrencyLimiter actor: one per deployment whose concurrency adapts.
//! It owns the deployment's [`Bulkhead`], answers [`AcquireSlot`] at once or
//! when a slot frees (a waiter's answer goes back on its oneshot), refuses a
//! wait that ran out on an actor timer, and takes back every slot a
//! [`SlotLease`] held, with what its call's end said about capacity.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::adaptive::{LimitConfig, Signal};
use super::bulkhead::{Admission, Bulkhead, LimitRejection};
use crate::exec::clock::now;

/// The answer to a slot asked for.
pub type SlotAnswer = Result<SlotLease, LimitRejection>;

/// A slot held by one call; dropped unreleased, it goes back with nothing
/// said about capacity (a cancelled call).
#[derive(Debug)]
pub struct SlotLease {
    limiter: Option<Addr<ConcurrencyLimiter>>,
    started: Instant,
}

impl SlotLease {
    /// The call ended: the slot goes back with `signal`, and the limit is
    /// capped for `spent_for` when a rate-limit header said nothing is left.
    pub fn release(mut self, signal: Signal, spent_for: Option<Duration>) {
        if let Some(limiter) = self.limiter.take() {
            limiter.do_send(Release {
                signal,
                started: self.started,
                spent_for,
            });
        }
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        if let Some(limiter) = self.limiter.take() {
            limiter.do_send(Release {
                signal: Signal::Ignore,
                started: self.started,
                spent_for: None,
            });
        }
    }
}

/// Asks for a slot; the answer goes back on `answer` (at once, or when a
/// slot frees or the wait runs out).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct AcquireSlot {
    /// Higher goes first.
    pub priority: i32,
    /// Whether the call may wait (a group's route moves on instead).
    pub may_wait: bool,
    /// The longest it may wait (what is left of its deadline), if shorter
    /// than the queue's timeout.
    pub max_wait: Option<Duration>,
    /// Where the answer goes (closed: the caller went away).
    pub answer: oneshot::Sender<SlotAnswer>,
}

/// A slot comes back.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Release {
    signal: Signal,
    started: Instant,
    spent_for: Option<Duration>,
}

/// Where a deployment's bulkhead stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitStatus {
    /// The limit now.
    pub limit: u32,
    /// Calls running.
    pub in_flight: u32,
    /// Calls waiting.
    pub queued: usize,
}

/// Asks where the bulkhead stands.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "LimitStatus")]
pub struct GetLimit;

/// One deployment's limiter.
pub struct ConcurrencyLimiter {
    bulkhead: Bulkhead,
    waiting: HashMap<u64, oneshot::Sender<SlotAnswer>>,
    next_ticket: u64,
    timer: Option<SpawnHandle>,
}

impl ConcurrencyLimiter {
    /// A limiter with `config` (checked by the caller).
    pub fn new(config: LimitConfig) -> Self {
        ConcurrencyLimiter {
            bulkhead: Bulkhead::new(config),
            waiting: HashMap::new(),
            next_ticket: 0,
            timer: None,
        }
    }

    fn lease(&self, ctx: &Context<Self>, started: Instant) -> SlotLease {
        SlotLease {
            limiter: Some(ctx.address()),
            started,
        }
    }

    /// Hands the admitted waiters their slots; a waiter gone gives its back.
    fn admit(&mut self, tickets: Vec<u64>, ctx: &mut Context<Self>) {
        let at = now();
        for ticket in tickets {
            let Some(answer) = self.waiting.remove(&ticket) else {
                continue;
            };
            // A waiter gone: its lease drops here and gives the slot back.
            let _ = answer.send(Ok(self.lease(ctx, at)));
        }
    }

    /// Refuses the waits that ran out; sets the timer for the next.
    fn expire(&mut self, ctx: &mut Context<Self>) {
        let (expired, next) = self.bulkhead.expire(now());
        for (ticket, why) in expired {
            if let Some(answer) = self.waiting.remove(&ticket) {
                let _ = answer.send(Err(why));
            }
        }
        self.set_timer(next, ctx);
    }

    fn set_timer(&mut self, at: Option<Instant>, ctx: &mut Context<Self>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        if let Some(at) = at {
            let wait = at.saturating_duration_since(now());
            self.timer = Some(ctx.run_later(wait, |act, ctx| {
                act.timer = None;
                act.expire(ctx);
            }));
        }
    }
}

impl Actor for ConcurrencyLimiter {
    type Context = Context<Self>;
}

impl Supervised for ConcurrencyLimiter {
    /// After a failed handler: the limit and the calls in flight are kept;
    /// the waiters (whose answers were dropped) have been refused.
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.waiting.clear();
        self.bulkhead.clear_queue();
        self.timer = None;
    }
}

impl Handler<AcquireSlot> for ConcurrencyLimiter {
    type Result = ();

    fn handle(&mut self, msg: AcquireSlot, ctx: &mut Context<Self>) {
        let at = now();
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        match self
            .bulkhead
            .acquire(ticket, msg.priority, msg.may_wait, msg.max_wait, at)
        {
            Admission::Now => {
                let _ = msg.answer.send(Ok(self.lease(ctx, at)));
            }
            Admission::Queued { until } => {
                self.waiting.insert(ticket, msg.answer);
                if self.timer.is_none() || self.bulkhead.next_deadline() == Some(until) {
                    self.set_timer(self.bulkhead.next_deadline(), ctx);
                }
            }
            Admission::Refused(why) => {
                let _ = msg.answer.send(Err(why));
            }
        }
    }
}

impl Handler<Release> for ConcurrencyLimiter {
    type Result = ();

    fn handle(&mut self, msg: Release, ctx: &mut Context<Self>) {
        let at = now();
        if let Some(spent_for) = msg.spent_for {
            self.bulkhead.spent(spent_for, at);
        }
        // Waiters whose callers went away are withdrawn first.
        let gone: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, a)| a.is_closed())
            .map(|(t, _)| *t)
            .collect();
        for t in gone {
            self.waiting.remove(&t);
            self.bulkhead.withdraw(t);
        }
        let admitted = self.bulkhead.release(msg.signal, msg.started, at);
        self.admit(admitted, ctx);
    }
}

impl Handler<GetLimit> for ConcurrencyLimiter {
    type Result = MessageResult<GetLimit>;

    fn handle(&mut self, _: GetLimit, _: &mut Context<Self>) -> Self::Result {
        MessageResult(LimitStatus {
            limit: self.bulkhead.limit(now()),
            in_flight: self.bulkhead.in_flight(),
            queued: self.bulkhead.queued(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn slot(limiter: &Addr<ConcurrencyLimiter>) -> SlotLease {
        let (answer, got) = oneshot::channel();
        limiter.do_send(AcquireSlot {
            priority: 0,
            may_wait: false,
            max_wait: None,
            answer,
        });
        match got.await {
            Ok(Ok(lease)) => lease,
            other => panic!("a slot: {other:?}"),
        }
    }

    #[test]
    fn a_reset_too_far_to_add_still_caps_the_limit_at_what_runs() {
        actix::System::new().block_on(async {
            for spent_for in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
                let limiter = ConcurrencyLimiter::new(LimitConfig::default()).start();
                let (first, second) = (slot(&limiter).await, slot(&limiter).await);
                // A 429 whose header says nothing is left for (nearly) ever,
                // with two calls running: capped at them, not ignored.
                first.release(Signal::Drop, Some(spent_for));
                let status = limiter.send(GetLimit).await.expect("the limiter");
                assert_eq!((status.limit, status.in_flight), (2, 1), "{spent_for:?}");
                drop(second);
            }
        });
    }
}
