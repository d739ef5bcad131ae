//! The CircuitBreaker actor: one per provider, a thin shell around [`Breaker`] that
//! owns it, answers permit requests, runs the open timer and publishes transitions.

use std::time::{Duration, SystemTime};

use actix::prelude::*;

use crate::clock::now;

use crate::MAILBOX_CAPACITY;
use serde::Serialize;

use super::state::{
    Breaker, BreakerConfig, BreakerState, BreakerStats, CallOutcome, Permit, Rejection, Transition,
    TransitionReason,
};

/// A state change, as published to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Message)]
#[rtype(result = "()")]
pub struct TransitionEvent {
    /// The provider whose breaker changed.
    pub provider: String,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// When (wall clock).
    pub at: SystemTime,
}

/// The circuit breaker of one provider.
pub struct CircuitBreaker {
    provider: String,
    breaker: Breaker,
    subscribers: Vec<Recipient<TransitionEvent>>,
}

impl CircuitBreaker {
    /// A closed breaker for `provider`.
    pub fn new(provider: &str, config: BreakerConfig) -> Self {
        CircuitBreaker {
            provider: provider.to_string(),
            breaker: Breaker::new(config),
            subscribers: Vec::new(),
        }
    }

    fn publish(&mut self, t: Transition, ctx: &mut Context<Self>) {
        tracing::info!(provider = %self.provider, from = ?t.from, to = ?t.to, reason = ?t.reason, "breaker transition");
        if let Some(open_for) = t.open_for {
            let generation = t.generation;
            ctx.run_later(open_for, move |act, ctx| {
                if let Some(t) = act.breaker.on_open_timer(generation, now()) {
                    act.publish(t, ctx);
                }
            });
        }
        let event = TransitionEvent {
            provider: self.provider.clone(),
            from: t.from,
            to: t.to,
            reason: t.reason,
            at: SystemTime::now(),
        };
        self.subscribers.retain(|s| s.connected());
        for s in &self.subscribers {
            s.do_send(event.clone());
        }
    }
}

impl Actor for CircuitBreaker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Permit requests are small and many: do not let the mailbox push back.
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

/// A granted permit. Report the call's outcome with [`PermitLease::report`]; if the
/// lease is dropped unreported (a cancelled request, a dead actor), the permit is
/// handed back.
#[derive(Debug)]
pub struct PermitLease {
    permit: Permit,
    breaker: Option<Addr<CircuitBreaker>>,
}

impl PermitLease {
    /// The permit.
    pub fn permit(&self) -> Permit {
        self.permit
    }

    /// Reports the outcome (one-way).
    pub fn report(mut self, outcome: CallOutcome) {
        if let Some(addr) = self.breaker.take() {
            addr.do_send(Report {
                permit: self.permit,
                outcome,
            });
        }
    }
}

impl Drop for PermitLease {
    fn drop(&mut self) {
        if let Some(addr) = self.breaker.take() {
            addr.do_send(Report {
                permit: self.permit,
                outcome: CallOutcome::Cancelled,
            });
        }
    }
}

/// Reports a failed call: a health failure counts against the provider, anything
/// else (a caller's mistake, a rate limit) is neutral; a rate limit with a
/// server-directed wait pauses the whole provider.
pub fn report_failure(
    lease: Option<PermitLease>,
    breaker: &Addr<CircuitBreaker>,
    failure: &crate::failure::Failure,
    pause: bool,
) {
    use crate::failure::Category;
    if let Some(lease) = lease {
        let outcome = if failure.category != Category::RateLimited && failure.affects_health {
            CallOutcome::HealthFailure
        } else {
            CallOutcome::Neutral
        };
        lease.report(outcome);
    }
    if let (Category::RateLimited, Some(wait), true) =
        (failure.category, failure.retry_after, pause)
    {
        breaker.do_send(Pause(wait));
    }
}

/// Asks for a permit to make one call.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<PermitLease, Rejection>")]
pub struct Acquire;

impl Handler<Acquire> for CircuitBreaker {
    type Result = Result<PermitLease, Rejection>;

    fn handle(&mut self, _: Acquire, ctx: &mut Context<Self>) -> Self::Result {
        let permit = self.breaker.try_acquire(now())?;
        Ok(PermitLease {
            permit,
            breaker: Some(ctx.address()),
        })
    }
}

/// The outcome of a permitted call (sent by [`PermitLease`]).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct Report {
    permit: Permit,
    outcome: CallOutcome,
}

impl Handler<Report> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Report, ctx: &mut Context<Self>) {
        if let Some(t) = self.breaker.on_outcome(msg.permit, msg.outcome, now()) {
            self.publish(t, ctx);
        }
    }
}

/// A server-directed wait: every call to this provider waits (or fails over) until it ends.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Pause(pub Duration);

impl Handler<Pause> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Pause, _: &mut Context<Self>) {
        self.breaker.pause(msg.0, now());
    }
}

/// Subscribes to transitions.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<TransitionEvent>);

impl Handler<Subscribe> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.push(msg.0);
    }
}

/// A breaker's state and counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerStatus {
    /// The provider.
    pub provider: String,
    /// Its state.
    pub state: BreakerState,
    /// Its counters.
    pub stats: BreakerStats,
    /// Time left on a server-directed pause.
    pub paused_for: Option<Duration>,
}

/// Asks for the breaker's status.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "BreakerStatus")]
pub struct GetStatus;

impl Handler<GetStatus> for CircuitBreaker {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let now = now();
        MessageResult(BreakerStatus {
            provider: self.provider.clone(),
            state: self.breaker.state(),
            stats: self.breaker.stats(now),
            paused_for: self.breaker.paused_until(now).map(|t| t - now),
        })
    }
}

/// An operator sets the state: `ForcedOpen`, `Disabled`, or `Closed`.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ForceState(pub BreakerState);

impl Handler<ForceState> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: ForceState, ctx: &mut Context<Self>) {
        if let Some(t) = self.breaker.force(msg.0, now()) {
            self.publish(t, ctx);
        }
    }
}

/// Resets the breaker to closed with empty counters.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ResetBreaker;

impl Handler<ResetBreaker> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: ResetBreaker, ctx: &mut Context<Self>) {
        if let Some(t) = self.breaker.reset(now()) {
            self.publish(t, ctx);
        }
    }
}
