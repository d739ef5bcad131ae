//! The CircuitBreaker actor: one per provider, a thin shell around [`Breaker`] that
//! owns it, answers permit requests, runs the open timer and publishes transitions.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;

use crate::clock::now;

use crate::MAILBOX_CAPACITY;
use serde::Serialize;

use super::gate::AdmissionGate;
use super::state::{
    Breaker, BreakerConfig, BreakerState, BreakerStats, CallOutcome, Permit, Rejection, Transition,
    TransitionReason,
};

#[cfg(test)]
mod tests;

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
    gate: AdmissionGate,
    /// The timer that opens the gate when the current pause ends (one, however
    /// many 429s a storm brings).
    pause_timer: Option<SpawnHandle>,
}

impl CircuitBreaker {
    /// A closed breaker for `provider`.
    pub fn new(provider: &str, config: BreakerConfig) -> Self {
        let breaker = CircuitBreaker {
            provider: provider.to_string(),
            breaker: Breaker::new(config),
            subscribers: Vec::new(),
            gate: AdmissionGate::new(),
            pause_timer: None,
        };
        breaker.sync_gate();
        breaker
    }

    /// Publishes whether calls may take permits without asking. Called after
    /// every message or timer that may change the state or the pause.
    fn sync_gate(&self) {
        self.gate.publish(self.breaker.admits_all(now()));
    }

    fn publish(&mut self, t: Transition, ctx: &mut Context<Self>) {
        self.sync_gate();
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

impl CircuitBreaker {
    /// Runs a handler's body; a panic in it stops the actor, and its supervisor
    /// restarts it with fresh state ([`Supervised::restarting`]). The provider is
    /// never left unprotected.
    fn guarded<R>(
        &mut self,
        ctx: &mut Context<Self>,
        body: impl FnOnce(&mut Self, &mut Context<Self>) -> R,
    ) -> Option<R> {
        let who = format!("circuit breaker of {}", self.provider);
        crate::supervise::guarded(self, ctx, &who, body)
    }
}

impl Actor for CircuitBreaker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Permit requests are small and many: do not let the mailbox push back.
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl Supervised for CircuitBreaker {
    /// Fresh state (closed, empty counters, no pause), the same subscribers and
    /// gate; subscribers are told with a [`TransitionReason::Restarted`] event.
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        let from = self.breaker.state();
        self.breaker = self.breaker.restarted();
        // The context's timers are gone with the old run.
        self.pause_timer = None;
        let t = Transition {
            from,
            to: self.breaker.state(),
            reason: TransitionReason::Restarted,
            open_for: None,
            generation: self.breaker.generation(),
        };
        self.publish(t, ctx);
    }
}

/// A provider's breaker as its requests hold it: the actor's address and its
/// admission gate behind one reference count, so that holding one allocates
/// nothing.
#[derive(Clone)]
pub struct BreakerRef(Arc<BreakerLink>);

struct BreakerLink {
    addr: Addr<CircuitBreaker>,
    gate: AdmissionGate,
}

impl BreakerRef {
    /// Starts `breaker` on `arbiter`, under a supervisor: if the actor stops (a
    /// handler failed) it is restarted with fresh state, at the same address.
    pub fn start(breaker: CircuitBreaker, arbiter: &ArbiterHandle) -> Self {
        let gate = breaker.gate.clone();
        let addr = Supervisor::start_in_arbiter(arbiter, move |_| breaker);
        BreakerRef(Arc::new(BreakerLink { addr, gate }))
    }

    /// The actor's address: status, subscriptions, operator messages.
    pub fn addr(&self) -> &Addr<CircuitBreaker> {
        &self.0.addr
    }

    /// A permit taken without asking, while the breaker admits every call
    /// (closed and not paused, or disabled); `None` means: ask with [`BreakerRef::acquire`].
    pub fn pass(&self) -> Option<PermitLease> {
        self.0.gate.pass().map(|permit| PermitLease {
            permit,
            from_gate: true,
            breaker: Some(self.clone()),
        })
    }

    /// Asks the actor for a permit.
    pub fn acquire(&self) -> actix::dev::Request<CircuitBreaker, Acquire> {
        self.0.addr.send(Acquire(self.clone()))
    }
}

impl std::fmt::Debug for BreakerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerRef")
            .field("gate", &self.0.gate)
            .finish_non_exhaustive()
    }
}

/// A granted permit. Report the call's outcome with [`PermitLease::report`]; if the
/// lease is dropped unreported (a cancelled request, a dead actor), the permit is
/// handed back.
#[derive(Debug)]
pub struct PermitLease {
    permit: Permit,
    /// Taken from the gate: the breaker counts it when its outcome arrives.
    from_gate: bool,
    breaker: Option<BreakerRef>,
}

impl PermitLease {
    /// The permit.
    pub fn permit(&self) -> Permit {
        self.permit
    }

    /// Reports the outcome (one-way).
    pub fn report(mut self, outcome: CallOutcome) {
        self.send(outcome);
    }

    fn send(&mut self, outcome: CallOutcome) {
        if let Some(breaker) = self.breaker.take() {
            breaker.addr().do_send(Report {
                permit: self.permit,
                outcome,
                from_gate: self.from_gate,
            });
        }
    }
}

impl Drop for PermitLease {
    fn drop(&mut self) {
        self.send(CallOutcome::Cancelled);
    }
}

/// Reports a failed call: a health failure counts against the provider, anything
/// else (a caller's mistake, a rate limit) is neutral; a rate limit with a
/// server-directed wait pauses the whole provider.
pub fn report_failure(
    lease: Option<PermitLease>,
    breaker: &BreakerRef,
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
        breaker.addr().do_send(Pause(wait));
    }
}

/// Asks for a permit to make one call; the lease reports back through the
/// reference it carries. (While the gate admits every call, [`BreakerRef::pass`]
/// gives one without asking.)
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<PermitLease, Rejection>")]
pub struct Acquire(pub BreakerRef);

impl Handler<Acquire> for CircuitBreaker {
    type Result = Result<PermitLease, Rejection>;

    fn handle(&mut self, msg: Acquire, ctx: &mut Context<Self>) -> Self::Result {
        let permit = self
            .guarded(ctx, |act, _| act.breaker.try_acquire(now()))
            // The breaker failed and restarts closed: the call is admitted, as the
            // fresh breaker would admit it.
            .unwrap_or(Ok(Permit {
                generation: self.breaker.generation().wrapping_add(1),
                probe: false,
            }))?;
        Ok(PermitLease {
            permit,
            from_gate: false,
            breaker: Some(msg.0),
        })
    }
}

/// The outcome of a permitted call (sent by [`PermitLease`]).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct Report {
    permit: Permit,
    outcome: CallOutcome,
    from_gate: bool,
}

impl Handler<Report> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Report, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            if msg.from_gate {
                act.breaker.count_admitted();
            }
            if let Some(t) = act.breaker.on_outcome(msg.permit, msg.outcome, now()) {
                act.publish(t, ctx);
            }
        });
    }
}

/// A server-directed wait: every call to this provider waits (or fails over) until
/// it ends. A wait longer than the breaker's `max_pause` is refused (logged and
/// counted), never obeyed.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Pause(pub Duration);

impl Handler<Pause> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Pause, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| act.pause(msg.0, ctx));
    }
}

impl CircuitBreaker {
    fn pause(&mut self, wait: Duration, ctx: &mut Context<Self>) {
        let now = now();
        let before = self.breaker.paused_until(now);
        if !self.breaker.pause(wait, now) {
            tracing::warn!(provider = %self.provider, ?wait, max_pause = ?self.breaker.config().max_pause,
                "server-directed wait above the cap: reported, not obeyed");
            return;
        }
        self.sync_gate();
        // The gate opens again when the pause ends: one timer, moved when a pause
        // ends later (a shorter one changes nothing).
        let until = self.breaker.paused_until(now);
        if let (Some(until), true) = (until, until != before) {
            if let Some(timer) = self.pause_timer.take() {
                ctx.cancel_future(timer);
            }
            let wait = until.saturating_duration_since(now);
            self.pause_timer = Some(ctx.run_later(wait, |act, _| {
                act.pause_timer = None;
                act.sync_gate();
            }));
        }
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
            paused_for: self
                .breaker
                .paused_until(now)
                .map(|t| t.saturating_duration_since(now)),
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
        self.guarded(ctx, |act, ctx| {
            if let Some(t) = act.breaker.force(msg.0, now()) {
                act.publish(t, ctx);
            }
        });
    }
}

/// Resets the breaker to closed with empty counters.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ResetBreaker;

impl Handler<ResetBreaker> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: ResetBreaker, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            if let Some(t) = act.breaker.reset(now()) {
                act.publish(t, ctx);
            }
            // A reset also ends a pause, with or without a transition.
            act.sync_gate();
        });
    }
}

/// Makes the handler fail, to test the supervisor.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct Crash;

#[cfg(test)]
impl Handler<Crash> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        self.guarded(ctx, |_, _| panic!("injected failure"));
    }
}
