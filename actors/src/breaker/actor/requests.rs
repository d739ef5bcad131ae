//! What requests send the breaker, and how it answers: a permit asked for
//! ([`Acquire`]), the outcomes of calls (`Report`, gathered as `Reports`), a
//! pause a server asked for ([`Pause`]).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::exec::clock::now;

use super::*;
use crate::breaker::scope::Scope;
use crate::breaker::state::{BreakerState, CallOutcome, Permit, Rejection};

/// Asks for a permit to call `model`; the lease reports back through the
/// reference it carries. (While the gates admit every call,
/// [`BreakerRef::pass`] gives one without asking.)
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<PermitLease, Rejection>")]
pub struct Acquire {
    /// Where the lease reports.
    pub breaker: BreakerRef,
    /// The model.
    pub model: Arc<str>,
}

impl Handler<Acquire> for CircuitBreaker {
    type Result = Result<PermitLease, Rejection>;

    fn handle(&mut self, msg: Acquire, ctx: &mut Context<Self>) -> Self::Result {
        let granted = self.guarded(ctx, |act, _| {
            let key = act.key(&msg.model);
            let now = now();
            let endpoint = act.endpoint.try_acquire(now)?;
            let Some(m) = act.models.get_mut(&key) else {
                return Ok((endpoint, endpoint, key));
            };
            match m.breaker.try_acquire(now) {
                Ok(permit) => Ok((endpoint, permit, key)),
                Err(rejection) => {
                    // The endpoint's permit goes back unused: the call was
                    // never admitted (the model's breaker counts the rejection).
                    act.endpoint.give_back(endpoint, now);
                    Err(rejection)
                }
            }
        });
        // A breaker that failed restarts closed: the call is admitted, as the
        // fresh breaker would admit it (its permits cannot move the new state).
        let (endpoint, permit, model) = granted.unwrap_or(Ok((
            Permit {
                generation: u64::MAX,
                probe: false,
            },
            Permit {
                generation: u64::MAX,
                probe: false,
            },
            msg.model.clone(),
        )))?;
        Ok(PermitLease {
            endpoint,
            permit,
            model,
            from_gate: false,
            breaker: Some(msg.breaker),
        })
    }
}

/// The outcome of a permitted call (sent by [`PermitLease`], or gathered by a
/// [`ReportRelay`](crate::provider::relay::ReportRelay)).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub(crate) struct Report {
    pub(super) endpoint: Permit,
    pub(super) permit: Permit,
    pub(super) model: Arc<str>,
    pub(super) outcome: CallOutcome,
    pub(super) scope: Scope,
    pub(super) from_gate: bool,
}

/// Reports gathered on another arbiter, in the order they were made.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Reports(pub Vec<Report>);

impl Handler<Reports> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Reports, ctx: &mut Context<Self>) {
        // One reading of the clock for the batch: its reports came together.
        let now = now();
        for report in msg.0 {
            self.reported(report, now, ctx);
        }
    }
}

impl Handler<Report> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Report, ctx: &mut Context<Self>) {
        self.reported(msg, now(), ctx);
    }
}

impl CircuitBreaker {
    /// A call's outcome, as its report says, at `now`.
    fn reported(&mut self, msg: Report, now: std::time::Instant, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            // A health failure counts where it belongs: an endpoint's (network)
            // for the endpoint alone (the model was never reached); a model's for
            // the model, and for the provider too while no sibling model is well
            // (its failures span the provider: see `scope`).
            let (for_endpoint, for_model) = match (msg.outcome, msg.scope) {
                (CallOutcome::HealthFailure, Scope::Endpoint) => {
                    (CallOutcome::HealthFailure, CallOutcome::Neutral)
                }
                (CallOutcome::HealthFailure, Scope::Model) => {
                    let spans = act.spread.speaks_for_provider(
                        &msg.model,
                        now,
                        act.endpoint.config().window,
                    );
                    let endpoint = if spans {
                        CallOutcome::HealthFailure
                    } else {
                        CallOutcome::Neutral
                    };
                    (endpoint, CallOutcome::HealthFailure)
                }
                (other, _) => (other, other),
            };
            if let CallOutcome::Success { .. } = msg.outcome {
                act.spread.success(msg.model.clone(), now);
            }
            let spanning = msg.scope == Scope::Model && for_endpoint == CallOutcome::HealthFailure;
            if msg.from_gate {
                act.endpoint.count_admitted();
            }
            if let Some(t) = act.endpoint.on_outcome(msg.endpoint, for_endpoint, now) {
                if t.to == BreakerState::Open {
                    act.endpoint_local = spanning;
                }
                act.publish(None, t, ctx);
            }
            let key = act.key(&msg.model);
            let moved = act.models.get_mut(&key).and_then(|m| {
                if msg.from_gate {
                    m.breaker.count_admitted();
                }
                m.breaker.on_outcome(msg.permit, for_model, now)
            });
            if let Some(t) = moved {
                act.publish(Some(key), t, ctx);
            }
        });
    }
}

/// A server-directed wait: every call to this model waits (or fails over) until
/// it ends. A wait longer than the breaker's `max_pause` is refused (logged and
/// counted), never obeyed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Pause {
    /// The model the wait is for.
    pub model: Arc<str>,
    /// The wait.
    pub wait: Duration,
    /// Whether it came from the fleet (another replica's pause, through shared
    /// state) rather than from a response this process saw: a fleet pause is not
    /// shared again.
    pub from_fleet: bool,
}

impl Handler<Pause> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Pause, ctx: &mut Context<Self>) {
        let obeyed = self
            .guarded(ctx, |act, ctx| act.pause(&msg.model, msg.wait, ctx))
            .unwrap_or(false);
        if let (true, false, Some(fleet)) = (obeyed, msg.from_fleet, &self.fleet) {
            fleet.reports.do_send(FleetReport::Paused {
                provider: self.provider.clone(),
                model: msg.model.to_string(),
                wait: msg.wait,
            });
        }
    }
}

impl CircuitBreaker {
    /// Pauses `model` for `wait`; `false` when the wait is refused (above the cap).
    fn pause(&mut self, model: &str, wait: Duration, ctx: &mut Context<Self>) -> bool {
        let key = self.key(model);
        let now = now();
        let provider = self.provider.clone();
        let Some(m) = self.models.get_mut(&key) else {
            return false;
        };
        let before = m.breaker.paused_until(now);
        if !m.breaker.pause(wait, now) {
            tracing::warn!(%provider, model = %key, ?wait, max_pause = ?m.breaker.config().max_pause,
                "server-directed wait above the cap: reported, not obeyed");
            return false;
        }
        m.gate.publish(m.breaker.admits_all(now));
        self.meters.pause(&provider, &key, wait);
        // The gate opens again when the pause ends: one queue of wake-ups and
        // one timer for the whole breaker, set for the earliest.
        let until = m.breaker.paused_until(now);
        if let (Some(until), true) = (until, until != before) {
            if self.wakeups.schedule(&key, until) {
                self.set_wake_timer(now, ctx);
            }
        }
        true
    }

    /// (Re)sets the one wake-up timer for the earliest pause end.
    fn set_wake_timer(&mut self, at: std::time::Instant, ctx: &mut Context<Self>) {
        if let Some(timer) = self.wake_timer.take() {
            ctx.cancel_future(timer);
        }
        let Some(next) = self.wakeups.next() else {
            return;
        };
        let wait = next.saturating_duration_since(at);
        self.wake_timer = Some(ctx.run_later(wait, |act, ctx| {
            act.wake_timer = None;
            let woke_at = now();
            for model in act.wakeups.due(woke_at) {
                act.sync_gate(&model);
            }
            act.set_wake_timer(woke_at, ctx);
        }));
    }
}
