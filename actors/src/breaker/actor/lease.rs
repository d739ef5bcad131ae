//! How requests hold a provider's breaker: a [`BreakerRef`] (the address and
//! the admission gates) and the [`PermitLease`] of one admitted call, which
//! reports its outcome as it goes; and the plain rules of what a failure
//! reports (`failure_outcome`, `pause_for`).

use std::sync::Arc;

use actix::prelude::*;

use super::*;
use crate::breaker::gate::{AdmissionGate, GateMap};
use crate::breaker::scope::{failure_scope, Scope};
use crate::breaker::state::{CallOutcome, Permit};

/// A provider's breaker as its requests hold it: the actor's address and its
/// admission gates behind one reference count, so that holding one allocates
/// nothing.
#[derive(Clone)]
pub struct BreakerRef(Arc<BreakerLink>);

struct BreakerLink {
    pub(super) addr: Addr<CircuitBreaker>,
    pub(super) endpoint_gate: AdmissionGate,
    pub(super) gates: GateMap,
}

impl BreakerRef {
    /// Starts `breaker` on `arbiter`, under a supervisor: if the actor stops (a
    /// handler failed) it is restarted with fresh state, at the same address.
    pub fn start(breaker: CircuitBreaker, arbiter: &ArbiterHandle) -> Self {
        let endpoint_gate = breaker.endpoint_gate.clone();
        let gates = breaker.gates.clone();
        let addr = Supervisor::start_in_arbiter(arbiter, move |_| breaker);
        BreakerRef(Arc::new(BreakerLink {
            addr,
            endpoint_gate,
            gates,
        }))
    }

    /// The actor's address: status, subscriptions, operator messages.
    pub fn addr(&self) -> &Addr<CircuitBreaker> {
        &self.0.addr
    }

    /// A permit for `model` taken without asking, while the endpoint and the model
    /// admit every call (closed and not paused, or disabled); `None` means: ask
    /// with [`BreakerRef::acquire`].
    pub fn pass(&self, model: &Arc<str>) -> Option<PermitLease> {
        let endpoint = self.0.endpoint_gate.pass()?;
        let (permit, model) = self.0.gates.pass(model)?;
        Some(PermitLease {
            endpoint,
            permit,
            model,
            from_gate: true,
            breaker: Some(self.clone()),
        })
    }

    /// Whether a call to `model` would have to ask now because the endpoint
    /// or the model does not admit every call (open, half-open, paused or
    /// forced open): a hedge or a move to avoid a wait does not go there. A
    /// model the breaker has not seen yet is not held back.
    pub fn holds_back(&self, model: &str) -> bool {
        self.0.endpoint_gate.pass().is_none() || self.0.gates.holds_back(model)
    }

    /// Asks the actor for a permit for `model`.
    pub fn acquire(&self, model: &Arc<str>) -> actix::dev::Request<CircuitBreaker, Acquire> {
        self.0.addr.send(Acquire {
            breaker: self.clone(),
            model: model.clone(),
        })
    }
}

impl std::fmt::Debug for BreakerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerRef")
            .field("endpoint_gate", &self.0.endpoint_gate)
            .finish_non_exhaustive()
    }
}

/// A granted permit. Report the call's outcome with [`PermitLease::report`]; if the
/// lease is dropped unreported (a cancelled request, a dead actor), the permit is
/// handed back.
#[derive(Debug)]
pub struct PermitLease {
    /// The endpoint's permit.
    pub(super) endpoint: Permit,
    /// The model's permit.
    pub(super) permit: Permit,
    pub(super) model: Arc<str>,
    /// Taken from the gate: the breaker counts it when its outcome arrives.
    pub(super) from_gate: bool,
    pub(super) breaker: Option<BreakerRef>,
}

impl PermitLease {
    /// The model's permit.
    pub fn permit(&self) -> Permit {
        self.permit
    }

    /// Reports the outcome (one-way); a health failure counts against the model.
    pub fn report(self, outcome: CallOutcome) {
        self.report_in(outcome, Scope::Model);
    }

    /// Reports the outcome (one-way); a health failure counts in `scope`.
    pub(crate) fn report_in(mut self, outcome: CallOutcome, scope: Scope) {
        self.send(outcome, scope);
    }

    /// The report of `outcome`, to send another way (the lease then sends
    /// nothing, not even on drop); `None` when it was already reported.
    pub(crate) fn into_report(mut self, outcome: CallOutcome, scope: Scope) -> Option<Report> {
        self.take_report(outcome, scope).map(|(_, report)| report)
    }

    /// The report of `outcome` and where it goes, once: the lease reports
    /// nothing after it.
    fn take_report(&mut self, outcome: CallOutcome, scope: Scope) -> Option<(BreakerRef, Report)> {
        let breaker = self.breaker.take()?;
        let report = Report {
            endpoint: self.endpoint,
            permit: self.permit,
            model: self.model.clone(),
            outcome,
            scope,
            from_gate: self.from_gate,
        };
        Some((breaker, report))
    }

    /// Whether the permit came from the admission gate (the breaker admitted
    /// every call): its outcome then decides no transition on its own.
    pub(crate) fn came_from_gate(&self) -> bool {
        self.from_gate
    }

    fn send(&mut self, outcome: CallOutcome, scope: Scope) {
        if let Some((breaker, report)) = self.take_report(outcome, scope) {
            breaker.addr().do_send(report);
        }
    }
}

impl Drop for PermitLease {
    fn drop(&mut self) {
        self.send(CallOutcome::Cancelled, Scope::Model);
    }
}

/// Reports a failed call: a health failure counts against the model, or against
/// the endpoint for a network failure; anything else (a caller's mistake, a rate
/// limit) is neutral; a rate limit with a server-directed wait pauses the model.
pub fn report_failure(
    lease: Option<PermitLease>,
    breaker: &BreakerRef,
    model: &Arc<str>,
    failure: &crate::failure::Failure,
    pause: bool,
) {
    if let Some(lease) = lease {
        let (outcome, scope) = failure_outcome(failure);
        lease.report_in(outcome, scope);
    }
    if pause {
        pause_for(breaker, model, failure);
    }
}

/// What a failed call tells the breaker, and where it counts: a health failure
/// against its model, or its endpoint for a network failure; anything else (a
/// caller's mistake, a rate limit) is neutral.
pub(crate) fn failure_outcome(failure: &crate::failure::Failure) -> (CallOutcome, Scope) {
    use crate::failure::Category;
    let outcome = if failure.category != Category::RateLimited && failure.affects_health {
        CallOutcome::HealthFailure
    } else {
        CallOutcome::Neutral
    };
    (outcome, failure_scope(failure.category))
}

/// Pauses `model` for a rate limit's server-directed wait, if it speaks for
/// the key or the model ([`Failure::pause_wait`](crate::Failure::pause_wait)).
pub(crate) fn pause_for(breaker: &BreakerRef, model: &Arc<str>, failure: &crate::failure::Failure) {
    if let Some(wait) = failure.pause_wait() {
        breaker.addr().do_send(Pause {
            model: model.clone(),
            wait,
            from_fleet: false,
        });
    }
}
