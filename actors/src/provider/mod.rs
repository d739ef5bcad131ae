//! The actors of one provider as its requests hold them: the circuit breaker
//! and the retry coordinator, started side by side on one arbiter, shared behind
//! one reference count, and the relays that gather its requests' success reports
//! on the arbiters where they run (`relay`), and its report ([`report`]: the
//! snapshot of its breaker and counters).

pub(crate) mod relay;
pub mod report;

use std::sync::Arc;
use std::time::Duration;

use crate::breaker::{failure_outcome, pause_for, Scope};
use crate::failure::Failure;
use actix::{Actor, Addr, Arbiter, ArbiterHandle};
use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::runtime::Id;

use relay::{FlushReports, RelayInbox, Relayed, ReportRelay};

use crate::breaker::actor::Report;
use crate::breaker::{BreakerRef, CallOutcome, CircuitBreaker, PermitLease};
use crate::exec::in_place::InPlace;
use crate::retry::{RequestEnd, RequestFinished, RetryCoordinator};
use crate::telemetry::meters::Meters;

/// Runtimes with a relay of their own, at most (past it the oldest goes, and
/// flushes as it goes).
const MAX_RELAYS: usize = 64;

/// A provider's CircuitBreaker and RetryCoordinator.
pub struct ProviderActors {
    /// The circuit breaker: its address and admission gate.
    pub breaker: BreakerRef,
    /// The retry coordinator.
    pub coordinator: Addr<RetryCoordinator>,
    /// The concurrency limiters, when the deployment's concurrency adapts.
    pub limiters: Option<crate::limit::Limiters>,
    /// Client-side adaptive throttling (the SRE book's), when it is on.
    pub throttle: Option<crate::limit::AdaptiveThrottle>,
    /// The client's metric families, which its requests record into.
    pub meters: Meters,
    /// One relay per runtime its requests ran on (an arbiter's or a plain tokio one).
    relays: RwLock<Vec<(Id, RelayInbox)>>,
}

impl std::fmt::Debug for ProviderActors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderActors")
            .field("breaker", &self.breaker)
            .field("relays", &self.relays.read().len())
            .finish_non_exhaustive()
    }
}

/// What bounds a deployment's calls beside its breaker: an adaptive
/// concurrency limit and client-side adaptive throttling, each when set.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// The concurrency limit.
    pub limit: Option<crate::limit::LimitConfig>,
    /// Adaptive throttling.
    pub throttle: Option<crate::limit::AdaptiveThrottleConfig>,
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
        Self::start_with_limit(arbiter, breaker, coordinator, Limits::default(), meters)
    }

    /// [`ProviderActors::start`], with a concurrency limiter and adaptive
    /// throttling as `limits` (checked by the caller) say.
    pub fn start_with_limit(
        arbiter: &ArbiterHandle,
        breaker: CircuitBreaker,
        coordinator: RetryCoordinator,
        limits: Limits,
        meters: Meters,
    ) -> Arc<Self> {
        let Limits { limit, throttle } = limits;
        Arc::new(ProviderActors {
            breaker: BreakerRef::start(breaker.with_meters(meters.clone()), arbiter),
            // Supervised: restarted at the same address if a handler fails.
            coordinator: actix::Supervisor::start_in_arbiter(arbiter, move |_| coordinator),
            limiters: limit.map(|l| crate::limit::Limiters::start(arbiter, l)),
            throttle: throttle.map(crate::limit::AdaptiveThrottle::new),
            meters,
            relays: RwLock::new(Vec::new()),
        })
    }

    /// The relay of the current runtime (an arbiter's, or a plain tokio
    /// runtime's), started on first use; `None` outside any runtime.
    ///
    /// Lent under the read guard, not cloned out: every request's report comes
    /// here, from every worker, and each reference count or lock word both
    /// workers write is a cache line they pass back and forth.
    fn current_relay(&self) -> Option<MappedRwLockReadGuard<'_, RelayInbox>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let me = runtime.id();
        if let Ok(relay) = RwLockReadGuard::try_map(self.relays.read(), |all| relay_of(all, me)) {
            return Some(relay);
        }
        let mut all = self.relays.write();
        if relay_of(&all, me).is_none() {
            let inbox = self.start_relay(&runtime)?;
            if all.len() >= MAX_RELAYS {
                all.remove(0);
            }
            all.push((me, inbox));
        }
        RwLockReadGuard::try_map(RwLockWriteGuard::downgrade(all), |all| relay_of(all, me)).ok()
    }

    /// Starts a relay on `runtime`: on its arbiter, or as a task of a plain
    /// tokio runtime.
    fn start_relay(&self, runtime: &tokio::runtime::Handle) -> Option<RelayInbox> {
        ReportRelay::with_inbox(
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
        )
    }

    /// Reports a successful call of `lease`: through the current arbiter's
    /// relay when the permit came from the admission gate (the breaker admitted
    /// every call, so one success moves nothing), else straight to the breaker.
    pub fn report_success(&self, lease: PermitLease, elapsed: Duration) {
        let outcome = CallOutcome::Success { elapsed };
        if let Some(report) = relayable(lease, outcome, Scope::Model) {
            self.relay(Relayed::Report(report), false);
        }
    }

    /// Reports how a request ended, with the success of its last attempt when
    /// it succeeded (`success`: its permit and how long the attempt took): both
    /// in one trip through the relay, since neither can move the breaker or the
    /// coordinator by itself; any other end goes at once.
    pub(crate) fn request_ended(
        &self,
        success: Option<(PermitLease, Duration)>,
        msg: RequestFinished,
    ) {
        let report = success.and_then(|(lease, elapsed)| {
            relayable(lease, CallOutcome::Success { elapsed }, Scope::Model)
        });
        if !matches!(msg.end, RequestEnd::Succeeded { .. }) {
            if let Some(report) = report {
                self.relay(Relayed::Report(report), false);
            }
            return self.coordinator.do_send(msg);
        }
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
        match self.current_relay() {
            Some(relay) if now => relay.send_now(held),
            Some(relay) => {
                relay.hold(held);
            }
            None => held.deliver(self.breaker.addr(), &self.coordinator),
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
            if let Some(report) = relayable(lease, outcome, scope) {
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

/// The report of `lease`'s outcome for the relay, when its permit came from the
/// admission gate; any other permit (a probe's, given by message) reports
/// straight to the breaker, and nothing is left to relay.
fn relayable(lease: PermitLease, outcome: CallOutcome, scope: Scope) -> Option<Report> {
    if lease.came_from_gate() {
        lease.into_report(outcome, scope)
    } else {
        lease.report_in(outcome, scope);
        None
    }
}

/// The relay of runtime `me` among `all`.
fn relay_of(all: &[(Id, RelayInbox)], me: Id) -> Option<&RelayInbox> {
    all.iter().find(|(t, _)| *t == me).map(|(_, r)| r)
}
