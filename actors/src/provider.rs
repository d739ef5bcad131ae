//! The actors of one provider as its requests hold them: the circuit breaker
//! and the retry coordinator, started side by side on one arbiter, shared behind
//! one reference count, and the relays that gather its requests' success reports
//! on the arbiters where they run.

use std::sync::Arc;
use std::time::Duration;

use crate::breaker::{failure_outcome, pause_for, Scope};
use crate::failure::Failure;
use actix::{Actor, Addr, Arbiter, ArbiterHandle};
use parking_lot::RwLock;

use crate::breaker::{BreakerRef, CallOutcome, CircuitBreaker, PermitLease};
use crate::in_place::InPlace;
use crate::meters::Meters;
use crate::relay::{FlushReports, RelayInbox, Relayed, ReportRelay};
use crate::retry::{RequestEnd, RequestFinished, RetryCoordinator};

/// Runtimes with a relay of their own, at most (past it the oldest goes, and
/// flushes as it goes).
const MAX_RELAYS: usize = 64;

/// A provider's CircuitBreaker and RetryCoordinator.
pub struct ProviderActors {
    /// The circuit breaker: its address and admission gate.
    pub breaker: BreakerRef,
    /// The retry coordinator.
    pub coordinator: Addr<RetryCoordinator>,
    /// The client's metric families, which its requests record into.
    pub meters: Meters,
    /// One relay per runtime its requests ran on (an arbiter's or a plain tokio one).
    relays: RwLock<Vec<(tokio::runtime::Id, Arc<RelayInbox>)>>,
}

impl std::fmt::Debug for ProviderActors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderActors")
            .field("breaker", &self.breaker)
            .field("relays", &self.relays.read().len())
            .finish_non_exhaustive()
    }
}

impl ProviderActors {
    /// Starts `breaker` and `coordinator` on `arbiter`, each under a supervisor,
    /// recording into `meters`. A request actor placed on the same arbiter
    /// exchanges its messages with them without crossing threads.
    pub fn start(
        arbiter: &ArbiterHandle,
        breaker: CircuitBreaker,
        coordinator: RetryCoordinator,
        meters: Meters,
    ) -> Arc<Self> {
        Arc::new(ProviderActors {
            breaker: BreakerRef::start(breaker.with_meters(meters.clone()), arbiter),
            // Supervised: restarted at the same address if a handler fails.
            coordinator: actix::Supervisor::start_in_arbiter(arbiter, move |_| coordinator),
            meters,
            relays: RwLock::new(Vec::new()),
        })
    }

    /// Runs `f` with the relay of the current runtime (an arbiter's, or a plain
    /// tokio runtime's), started on first use; `None` outside any runtime.
    ///
    /// The relay is used under the read guard, not cloned out: every request's
    /// report comes here, from every worker, and each reference count or lock
    /// word both workers write is a cache line they pass back and forth.
    fn with_relay<R>(&self, f: impl FnOnce(&RelayInbox) -> R) -> Option<R> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let me = runtime.id();
        if let Some((_, r)) = self.relays.read().iter().find(|(t, _)| *t == me) {
            return Some(f(r));
        }
        let inbox = self.start_relay(runtime)?;
        Some(f(&inbox))
    }

    /// Starts the relay of `runtime` (unless another caller just did).
    fn start_relay(&self, runtime: tokio::runtime::Handle) -> Option<Arc<RelayInbox>> {
        let me = runtime.id();
        let mut all = self.relays.write();
        if let Some((_, r)) = all.iter().find(|(t, _)| *t == me) {
            return Some(r.clone());
        }
        if all.len() >= MAX_RELAYS {
            all.remove(0);
        }
        let inbox = ReportRelay::with_inbox(
            self.breaker.addr().clone(),
            self.coordinator.clone(),
            |relay| match Arbiter::try_current() {
                Some(arbiter) => Some(ReportRelay::start_in_arbiter(&arbiter, move |_| relay)),
                // Plain tokio: the relay runs as a task of that runtime, so that
                // requests there wake no other thread; it flushes as the runtime
                // drops it.
                None => {
                    let relay = InPlace::new(relay);
                    let addr = relay.address()?;
                    runtime.spawn(relay);
                    Some(addr)
                }
            },
        )?;
        let inbox = Arc::new(inbox);
        all.push((me, inbox.clone()));
        Some(inbox)
    }

    /// Reports a successful call of `lease`: through the current arbiter's
    /// relay when the permit came from the admission gate (the breaker admitted
    /// every call, so one success moves nothing), else straight to the breaker.
    pub fn report_success(&self, lease: PermitLease, elapsed: Duration) {
        let outcome = CallOutcome::Success { elapsed };
        if lease.from_gate() {
            if let Some(report) = lease.into_report(outcome, Scope::Model) {
                self.relay(Relayed::Report(report), false);
            }
            return;
        }
        lease.report(outcome);
    }

    /// Reports how a request ended, with the success of its last attempt when
    /// it succeeded (`success`: its permit and how long the attempt took): both
    /// in one trip through the relay, since neither can move the breaker or the
    /// coordinator by itself; any other end goes at once.
    pub fn request_ended(&self, success: Option<(PermitLease, Duration)>, msg: RequestFinished) {
        if !matches!(msg.end, RequestEnd::Succeeded { .. }) {
            if let Some((lease, elapsed)) = success {
                self.report_success(lease, elapsed);
            }
            self.coordinator.do_send(msg);
            return;
        }
        let report = match success {
            Some((lease, elapsed)) if lease.from_gate() => {
                lease.into_report(CallOutcome::Success { elapsed }, Scope::Model)
            }
            Some((lease, elapsed)) => {
                lease.report(CallOutcome::Success { elapsed });
                None
            }
            None => None,
        };
        let held = match report {
            Some(report) => Relayed::Succeeded(report, msg),
            None => Relayed::Finished(msg),
        };
        self.relay(held, false);
    }

    /// Leaves `held` with the current runtime's relay (`now`: to be sent at
    /// once, behind what the relay holds); outside any runtime, sends it
    /// straight on.
    fn relay(&self, held: Relayed, now: bool) {
        let mut held = Some(held);
        self.with_relay(|relay| match held.take() {
            Some(h) if now => relay.send_now(h),
            Some(h) => {
                relay.hold(h);
            }
            None => {}
        });
        if let Some(h) = held {
            h.deliver(self.breaker.addr(), &self.coordinator);
        }
    }

    /// Reports a failed call (see [`report_failure`](crate::breaker::report_failure)):
    /// a gate permit's failure goes through the current arbiter's relay, which
    /// sends it at once behind the successes it holds, so that the breaker sees
    /// this arbiter's outcomes in the order they happened; a pause goes at once.
    pub fn report_failure(
        &self,
        lease: Option<PermitLease>,
        model: &Arc<str>,
        failure: &Failure,
        pause: bool,
    ) {
        if let Some(lease) = lease {
            let (outcome, scope) = failure_outcome(failure);
            if !lease.from_gate() {
                lease.report_in(outcome, scope);
            } else if let Some(report) = lease.into_report(outcome, scope) {
                self.relay(Relayed::Report(report), true);
            }
        }
        if pause {
            pause_for(&self.breaker, model, failure);
        }
    }

    /// Sends on every report the relays hold; once it returns, a question to
    /// the breaker or the coordinator comes after them.
    pub async fn flush_reports(&self) {
        let relays: Vec<Addr<ReportRelay>> = self
            .relays
            .read()
            .iter()
            .map(|(_, r)| r.relay().clone())
            .collect();
        for r in relays {
            // A relay that is gone flushed as it went.
            let _ = r.send(FlushReports).await;
        }
    }
}
