//! The one-way reports of successful requests, gathered where the requests ran.
//!
//! A request's actor runs where its caller runs (a user's actor, an actix-web
//! worker, one of the client's arbiters), while its provider's breaker and
//! coordinator live on their home arbiter. Each success sends both a report
//! (`Report`, `RequestFinished`), and a message to a parked thread wakes it: at
//! load, one wake-up of the home thread per request, measured at about a third of
//! a bare client's CPU per request. A `ReportRelay` (one per provider and
//! runtime: an arbiter's, or a plain tokio one's) takes those reports on the
//! requests' own runtime, left in its inbox (`RelayInbox`, which wakes the relay
//! only for the first report after a flush), and sends them on in one message
//! each per [`FLUSH_AFTER`]. Only outcomes that cannot move a breaker by
//! themselves wait (successes of permits from the admission gate, successful
//! ends), never longer than [`FLUSH_AFTER`]; a failure of a gate permit is sent
//! at once behind the successes held, so the breaker sees one runtime's outcomes
//! in order; probes (permits the breaker gave by message) report directly. Whoever reads the
//! breaker's or the coordinator's state through the client first flushes the
//! relays ([`ProviderActors::flush_reports`](crate::ProviderActors::flush_reports)),
//! so a reply is never ahead of its own report for them.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use actix::prelude::*;

use crate::breaker::actor::{Report, Reports};
use crate::breaker::CircuitBreaker;
use crate::retry::coordinator::RequestsFinished;
use crate::retry::{RequestFinished, RetryCoordinator};

/// The longest a gathered report waits. 10 ms, not 1: each flush wakes the
/// home arbiter's thread, which on a small machine preempts a worker; at 1 ms
/// that tipped plain tokio at 64 concurrent into its costly regime in 60% of
/// short rounds, at 10 ms in 8-28% (BENCHMARKS.md). What waits cannot move a
/// breaker by itself, and whoever reads the breaker or the coordinator flushes.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(10);

/// A report the relay passes on.
#[derive(Debug)]
pub(crate) enum Relayed {
    /// A call's outcome, for the breaker.
    Report(Report),
    /// A request's end, for the coordinator.
    Finished(RequestFinished),
    /// A request's successful last call, for the breaker, and its end, for the
    /// coordinator: one trip through the inbox for both.
    Succeeded(Report, RequestFinished),
}

impl Relayed {
    /// Sends it straight to the breaker and the coordinator (no relay to hold it).
    pub(crate) fn deliver(
        self,
        breaker: &Addr<CircuitBreaker>,
        coordinator: &Addr<RetryCoordinator>,
    ) {
        match self {
            Relayed::Report(r) => breaker.do_send(r),
            Relayed::Finished(f) => coordinator.do_send(f),
            Relayed::Succeeded(r, f) => {
                breaker.do_send(r);
                coordinator.do_send(f);
            }
        }
    }
}

/// Where a runtime's requests leave their reports for its relay.
///
/// Not the relay's mailbox: a message to an actor wakes its task, and from a
/// plain tokio worker that wake-up, next to the request's own wake of its HTTP
/// connection, hands one of the two to another worker (measured: 0.56 of the
/// 2.3 context switches a request, one at a time, before this inbox). Reports
/// wait in a channel the relay empties when it flushes; only the first report
/// after a flush sends the relay a message (to start its timer).
pub(crate) struct RelayInbox {
    reports: mpsc::Sender<Relayed>,
    /// Whether the relay has been told that reports wait (cleared as it flushes).
    armed: Arc<AtomicBool>,
    relay: Addr<ReportRelay>,
    /// Where reports go if the relay is gone (its runtime stopped).
    breaker: Addr<CircuitBreaker>,
    coordinator: Addr<RetryCoordinator>,
}

impl RelayInbox {
    /// Leaves `report` for the relay to send within [`FLUSH_AFTER`]; whether
    /// this woke the relay (the first since its last flush).
    pub(crate) fn hold(&self, report: Relayed) -> bool {
        if let Err(mpsc::SendError(report)) = self.reports.send(report) {
            report.deliver(&self.breaker, &self.coordinator);
            return false;
        }
        // Read before it is written: while the relay is armed (most reports at
        // load) this leaves the flag's cache line shared, where a swap would take
        // it from the other workers each time. The fences pair with the relay's
        // in `flush` (a store, then a load, on each side): either this load sees
        // the flush's `false`, or the flush's drain sees the report just sent.
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) {
            return false;
        }
        let woke = !self.armed.swap(true, Ordering::AcqRel);
        if woke {
            self.relay.do_send(Arm);
        }
        woke
    }

    /// Leaves `report` and has the relay send it now, behind what it holds.
    pub(crate) fn send_now(&self, report: Relayed) {
        match self.reports.send(report) {
            Ok(()) => self.relay.do_send(FlushReports),
            Err(mpsc::SendError(report)) => report.deliver(&self.breaker, &self.coordinator),
        }
    }

    /// The relay, to ask for a flush.
    pub(crate) fn relay(&self) -> &Addr<ReportRelay> {
        &self.relay
    }
}

/// Gathers the success reports of one provider's requests on one runtime.
pub(crate) struct ReportRelay {
    breaker: Addr<CircuitBreaker>,
    coordinator: Addr<RetryCoordinator>,
    inbox: mpsc::Receiver<Relayed>,
    armed: Arc<AtomicBool>,
    /// Whether a flush is due.
    scheduled: bool,
    /// How many reports and ends the last flush sent: the next one's batches
    /// are made that size at once (a flush carries up to 10 ms of requests).
    last: (usize, usize),
}

impl ReportRelay {
    /// A relay to `breaker` and `coordinator`, and the inbox its requests leave
    /// reports in; `start` turns the relay into the address the inbox needs.
    pub(crate) fn with_inbox(
        breaker: Addr<CircuitBreaker>,
        coordinator: Addr<RetryCoordinator>,
        start: impl FnOnce(ReportRelay) -> Option<Addr<ReportRelay>>,
    ) -> Option<RelayInbox> {
        let (tx, rx) = mpsc::channel();
        let armed = Arc::new(AtomicBool::new(false));
        let relay = start(ReportRelay {
            breaker: breaker.clone(),
            coordinator: coordinator.clone(),
            inbox: rx,
            armed: armed.clone(),
            scheduled: false,
            last: (0, 0),
        })?;
        Some(RelayInbox {
            reports: tx,
            armed,
            relay,
            breaker,
            coordinator,
        })
    }

    fn flush(&mut self) {
        // Cleared before the inbox is read, and with a read of the last
        // setter's write: a report left after this is either read below or
        // arms the relay again.
        self.armed.swap(false, Ordering::AcqRel);
        // Pairs with the fence in `RelayInbox::hold`.
        fence(Ordering::SeqCst);
        let (mut reports, mut finished) = (
            Vec::with_capacity(self.last.0),
            Vec::with_capacity(self.last.1),
        );
        while let Ok(held) = self.inbox.try_recv() {
            match held {
                Relayed::Report(r) => reports.push(r),
                Relayed::Finished(f) => finished.push(f),
                Relayed::Succeeded(r, f) => {
                    reports.push(r);
                    finished.push(f);
                }
            }
        }
        self.last = (reports.len(), finished.len());
        if !reports.is_empty() {
            self.breaker.do_send(Reports(reports));
        }
        if !finished.is_empty() {
            self.coordinator.do_send(RequestsFinished(finished));
        }
    }
}

impl Actor for ReportRelay {
    type Context = Context<Self>;
}

// SAFETY: its one timer (`flush`) is set through `run_later_send`; it spawns no
// future and no handler of it returns one (checked by `spawns_unchecked`).
unsafe impl crate::exec::in_place::SendContext for ReportRelay {}

/// Nothing gathered is lost when the relay goes (its arbiter stopping included).
impl Drop for ReportRelay {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Reports wait in the inbox: flush within [`FLUSH_AFTER`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct Arm;

impl Handler<Arm> for ReportRelay {
    type Result = ();

    fn handle(&mut self, _: Arm, ctx: &mut Context<Self>) {
        if !self.scheduled {
            self.scheduled = true;
            crate::exec::in_place::run_later_send(ctx, FLUSH_AFTER, |act: &mut Self, _| {
                act.scheduled = false;
                act.flush();
            });
        }
    }
}

/// Sends what was gathered now; answered once it is in the breaker's and the
/// coordinator's mailboxes (so a question asked of them after the answer comes
/// after the reports).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub(crate) struct FlushReports;

impl Handler<FlushReports> for ReportRelay {
    type Result = ();

    fn handle(&mut self, _: FlushReports, _: &mut Context<Self>) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::breaker::{BreakerConfig, BreakerStatus, GetStatus};
    use crate::failure::{Category, Failure};
    use crate::retry::{BudgetConfig, RetryPolicy};
    use crate::telemetry::meters::Meters;
    use crate::ProviderActors;

    use super::{Relayed, ReportRelay, FLUSH_AFTER};
    use actix::Actor;

    /// The breaker's status of `model` once `counted` holds for it, or after 100
    /// turns of the runtime (reports reach it through the relay's and the
    /// breaker's mailboxes: a few turns, no time).
    async fn status_once(
        actors: &ProviderActors,
        model: &str,
        counted: impl Fn(&BreakerStatus) -> bool,
    ) -> BreakerStatus {
        let mut s = status(actors, model).await;
        for _ in 0..100 {
            if counted(&s) {
                break;
            }
            tokio::task::yield_now().await;
            s = status(actors, model).await;
        }
        s
    }

    /// An actix System on a current-thread runtime with tokio's clock paused.
    fn paused_system() -> actix::SystemRunner {
        actix::System::with_tokio_rt(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .expect("runtime")
        })
    }

    /// Provider "p"'s actors on the current arbiter, its breaker opening after
    /// `failure_threshold` failures.
    fn actors_with_threshold(failure_threshold: u32) -> Arc<ProviderActors> {
        ProviderActors::start(
            &actix::Arbiter::current(),
            crate::CircuitBreaker::new(
                "p",
                BreakerConfig {
                    failure_threshold,
                    ..BreakerConfig::default()
                },
            ),
            crate::RetryCoordinator::new(RetryPolicy::default(), BudgetConfig::default(), 1),
            Meters::new(),
        )
    }

    async fn status(actors: &ProviderActors, model: &str) -> BreakerStatus {
        actors
            .breaker
            .addr()
            .send(GetStatus {
                model: Some(model.into()),
            })
            .await
            .expect("breaker")
    }

    /// Successes wait in the relay (no time passes on the paused clock, so the
    /// flush timer has not fired), a flush sends them, and a failure goes at once
    /// behind the successes held, in order: the breaker opens on the failure
    /// count, never before it has counted the successes before it.
    #[test]
    fn successes_wait_in_the_relay_and_a_failure_takes_them_along() {
        let system = paused_system();
        system.block_on(relay_scenario());
    }

    async fn relay_scenario() {
        let actors = actors_with_threshold(1);
        let model: Arc<str> = Arc::from("m");
        // First sight of the model: asked of the actor, reported directly.
        let first = actors.breaker.acquire(&model).await.unwrap().unwrap();
        actors.report_success(first, std::time::Duration::ZERO);
        let started = tokio::time::Instant::now();
        assert_eq!(status(&actors, "m").await.stats.successes, 1);

        for _ in 0..3 {
            let lease = actors.breaker.pass(&model).expect("the gate admits");
            actors.report_success(lease, std::time::Duration::ZERO);
        }
        assert_eq!(status(&actors, "m").await.stats.successes, 1, "held");
        actors.flush_reports().await;
        assert_eq!(status(&actors, "m").await.stats.successes, 4, "flushed");

        let lease = actors.breaker.pass(&model).expect("the gate admits");
        actors.report_success(lease, std::time::Duration::ZERO);
        let lease = actors.breaker.pass(&model).expect("the gate admits");
        let boom = Failure::new(Category::ServerError, "p", "boom");
        actors.report_failure(Some(lease), &model, &boom, true);
        // The relay's turn comes, then the breaker's: no timer is needed.
        let s = status_once(&actors, "m", |s| s.stats.failures > 0).await;
        assert_eq!(tokio::time::Instant::now(), started, "no time passed");
        assert_eq!(s.stats.failures, 1);
        assert_eq!(s.stats.successes, 5, "the success before it came first");
        assert_eq!(s.state, crate::BreakerState::Open);
    }

    /// Only the first report after a flush wakes the relay (one message to
    /// start its timer); the rest wait in its inbox, and all of them reach the
    /// breaker when the timer fires.
    #[test]
    fn only_the_first_report_after_a_flush_wakes_the_relay() {
        let system = paused_system();
        system.block_on(async {
            let actors = actors_with_threshold(BreakerConfig::default().failure_threshold);
            let model: Arc<str> = Arc::from("m");
            let first = actors.breaker.acquire(&model).await.unwrap().unwrap();
            actors.report_success(first, std::time::Duration::ZERO);
            let inbox = ReportRelay::with_inbox(
                actors.breaker.addr().clone(),
                actors.coordinator.clone(),
                |relay| Some(relay.start()),
            )
            .expect("started");
            let success = || {
                let lease = actors.breaker.pass(&model).expect("the gate admits");
                let outcome = crate::breaker::CallOutcome::Success {
                    elapsed: std::time::Duration::ZERO,
                };
                Relayed::Report(
                    lease
                        .into_report(outcome, crate::breaker::Scope::Model)
                        .expect("a gate permit reports"),
                )
            };
            assert!(inbox.hold(success()), "the first wakes the relay");
            for _ in 0..9 {
                assert!(!inbox.hold(success()), "the rest only wait");
            }
            assert_eq!(status(&actors, "m").await.stats.successes, 1, "held");
            tokio::time::advance(FLUSH_AFTER * 2).await;
            let s = status_once(&actors, "m", |s| s.stats.successes == 11).await;
            assert_eq!(s.stats.successes, 11, "all ten sent by the timer");
            assert!(
                inbox.hold(success()),
                "after a flush, the next wakes it again"
            );
        });
    }

    /// On a tokio runtime without timers the relay's first `Arm` panics (its
    /// flush timer cannot be made): the relay sends what it holds as it goes,
    /// and reports left after that go straight to the breaker. None is lost.
    #[test]
    fn a_runtime_without_timers_loses_no_report() {
        let (tx, rx) = std::sync::mpsc::channel();
        let home = std::thread::spawn(move || {
            let system = actix::System::new();
            system.block_on(async {
                let _ = tx.send((actix::Arbiter::current(), actix::System::current()));
            });
            let _ = system.run();
        });
        let (arbiter, system) = rx.recv().expect("home arbiter");
        let actors = ProviderActors::start(
            &arbiter,
            crate::CircuitBreaker::new("p", BreakerConfig::default()),
            crate::RetryCoordinator::new(RetryPolicy::default(), BudgetConfig::default(), 1),
            Meters::new(),
        );
        let no_timers = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let counted = no_timers.block_on(async {
            let model: Arc<str> = Arc::from("m");
            let first = actors.breaker.acquire(&model).await.unwrap().unwrap();
            actors.report_success(first, std::time::Duration::ZERO);
            let success = || {
                let lease = actors.breaker.pass(&model).expect("the gate admits");
                actors.report_success(lease, std::time::Duration::ZERO);
            };
            // Held by the relay, which panics on its first turn.
            success();
            success();
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            // The relay is gone: straight to the breaker.
            success();
            actors.flush_reports().await;
            let s = status_once(&actors, "m", |s| s.stats.successes == 4).await;
            s.stats.successes
        });
        system.stop();
        home.join().expect("home thread");
        assert_eq!(counted, 4, "every success reached the breaker once");
    }

    /// What one step of a request does to the relay.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Success,
        Failure,
        /// Time passes (the relay's flush timer may fire).
        Wait(u64),
    }

    fn steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![
                4 => Just(Step::Success),
                2 => Just(Step::Failure),
                1 => (0u64..3).prop_map(Step::Wait),
            ],
            1..40,
        )
    }

    async fn interleaving(steps: Vec<Step>) -> Result<(), String> {
        let actors = actors_with_threshold(1_000);
        let model: Arc<str> = Arc::from("m");
        let first = actors.breaker.acquire(&model).await.unwrap().unwrap();
        actors.report_success(first, std::time::Duration::ZERO);
        let (mut successes, mut failures) = (1u64, 0u64);
        for step in steps {
            match step {
                Step::Success => {
                    let lease = actors.breaker.pass(&model).ok_or("the gate admits")?;
                    actors.report_success(lease, std::time::Duration::ZERO);
                    successes += 1;
                }
                Step::Failure => {
                    let lease = actors.breaker.pass(&model).ok_or("the gate admits")?;
                    let boom = Failure::new(Category::ServerError, "p", "boom");
                    actors.report_failure(Some(lease), &model, &boom, true);
                    failures += 1;
                    // It goes at once (no time passes) and never ahead of the
                    // successes before it.
                    let s = status_once(&actors, "m", |s| s.stats.failures == failures).await;
                    if s.stats.failures != failures || s.stats.successes != successes {
                        return Err(format!(
                            "after failure {failures}: the breaker counted {:?}, {successes} successes were before it",
                            s.stats
                        ));
                    }
                }
                Step::Wait(ms) => tokio::time::advance(std::time::Duration::from_millis(ms)).await,
            }
        }
        actors.flush_reports().await;
        let s = status(&actors, "m").await;
        if (s.stats.successes, s.stats.failures) != (successes, failures) {
            return Err(format!(
                "at the end: {:?}, sent {successes} / {failures}",
                s.stats
            ));
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Any interleaving of successes, failures and time on one runtime: every
        /// report reaches the breaker exactly once, and a failure is counted
        /// with every success sent before it already counted.
        #[test]
        fn every_interleaving_reaches_the_breaker_once_and_in_order(steps in steps()) {
            let system = paused_system();
            let out = system.block_on(interleaving(steps));
            proptest::prop_assert!(out.is_ok(), "{}", out.unwrap_err());
        }
    }
}
