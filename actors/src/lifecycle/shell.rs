//! The shell both request actors run around their attempts: it carries out the
//! [`Step`]s of their [`Attempts`] machine (ask the breaker, run the attempt,
//! wait out a pause, ask the coordinator, back off, give up, stop) and feeds the
//! answers back in. What to do is the machine's; how (messages, actor timers,
//! metrics, spans) is here, once.
//!
//! The actors ([`RequestActor`](crate::lifecycle::request::RequestActor) and steer-llm's
//! `StreamActor`) supply the attempt itself and how a request ends, through
//! [`AttemptLoop`].

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::OwnedSemaphorePermit;

use crate::breaker::{CallOutcome, PermitLease, Rejection};
use crate::exec::in_place::SendContext;
pub use crate::exec::in_place::{run_later_send, spawn_send};
use crate::failure::{Category, Failure};
use crate::lifecycle::AttemptEnd;
pub use crate::lifecycle::{Attempts, Run, Step, Stop};
use crate::limit::{AcquireSlot, SlotLease};
use crate::provider::ProviderActors;
use crate::retry::{AttemptAbandoned, Decide, GiveUp, RequestEnd, RequestFinished};
use crate::spec::RequestSpec;
use crate::telemetry::meters::{GaugeGuard, TargetMeters};

/// What every request actor holds for the loop: what it may do, where it stands,
/// its provider's actors, its spans and metric labels, its last failure and its
/// in-flight slot.
pub struct RequestCore {
    /// What the request may do.
    pub spec: RequestSpec,
    /// Where it stands in its attempts and retries.
    pub attempts: Attempts,
    /// The provider's breaker and coordinator.
    pub actors: Arc<ProviderActors>,
    /// The request's tracing span.
    pub span: tracing::Span,
    /// The span of the attempt in flight (a child of `span`), if any.
    pub attempt_span: tracing::Span,
    /// The request's metric labels (its provider and bounded model label), with
    /// its success path's metrics resolved.
    pub target: TargetMeters,
    /// When the request started (its duration is measured from here).
    pub started: tokio::time::Instant,
    /// When the attempt in flight started.
    pub attempt_started: tokio::time::Instant,
    /// The caller's in-flight slot, freed when the actor goes.
    pub admission: Option<OwnedSemaphorePermit>,
    /// The attempt's slot under the deployment's concurrency limit, if it has one.
    slot: Option<SlotLease>,
    /// What the attempt in flight says for the limit at its end: its time to
    /// first token, and how long a rate-limit header said nothing is left.
    slot_notes: (Option<Duration>, Option<Duration>),
    /// Counts the request in flight at its provider while it lives.
    in_flight_gauge: GaugeGuard,
}

impl RequestCore {
    /// A request that has made no attempt yet; its deadline runs from now.
    pub fn new(
        spec: RequestSpec,
        actors: Arc<ProviderActors>,
        span: tracing::Span,
        admission: Option<OwnedSemaphorePermit>,
    ) -> Self {
        let now = tokio::time::Instant::now();
        let target = actors
            .meters
            .target_meters(spec.provider.clone(), &spec.model);
        RequestCore {
            attempts: Attempts::new(&spec, now),
            in_flight_gauge: target.in_flight(),
            target,
            spec,
            actors,
            span,
            attempt_span: tracing::Span::none(),
            started: now,
            attempt_started: now,
            admission,
            slot: None,
            slot_notes: (None, None),
        }
    }

    /// The attempt in flight reached its first content token `ttft` after it
    /// started (a stream's latency signal for the concurrency limit).
    pub fn note_first_token(&mut self, ttft: Duration) {
        self.slot_notes.0 = Some(ttft);
    }

    /// The attempt in flight failed with `failure`: a rate-limit header that
    /// says nothing is left caps the concurrency limit until its reset.
    pub fn note_failure(&mut self, failure: &Failure) {
        self.slot_notes.1 = failure.rate_limit.exhausted_until();
    }

    /// Gives the attempt's slot back, with what its end `outcome` says about
    /// capacity: a clean success, a drop (a 429, an overload, a timeout), or
    /// nothing.
    fn release_slot(&mut self, end: AttemptEnd) {
        // What the server did not refuse, it accepted (for adaptive throttling).
        if let (Some(t), true) = (self.actors.throttle.as_ref(), end.accepted()) {
            t.accepted();
        }
        let (ttft, spent_for) = std::mem::take(&mut self.slot_notes);
        if let Some(slot) = self.slot.take() {
            slot.release(end.limit_signal(ttft), spent_for);
        }
    }

    /// Moves the request to another provider and model (a failover): its actors,
    /// labels and in-flight count go there, and its retries start afresh within
    /// what is left of its deadline.
    pub fn retarget(&mut self, actors: Arc<ProviderActors>, provider: &str, model: &str) {
        self.move_to(actors, provider, model);
        self.attempts
            .retarget(&self.spec, tokio::time::Instant::now());
    }

    /// Moves the request's actors, labels and in-flight count to `provider`
    /// and `model`.
    fn move_to(&mut self, actors: Arc<ProviderActors>, provider: &str, model: &str) {
        self.spec.provider = Arc::from(provider);
        self.spec.model = Arc::from(model);
        self.target = actors
            .meters
            .target_meters(self.spec.provider.clone(), model);
        self.in_flight_gauge = self.target.in_flight();
        // A slot under the old deployment's limit goes back there.
        self.slot = None;
        self.actors = actors;
    }

    /// Moves the attempt in flight to another provider and model (a stream's
    /// hedge that took the lead there): as [`RequestCore::retarget`], the
    /// attempt counted running there from `started` (when the hedge went).
    pub fn take_over(
        &mut self,
        actors: Arc<ProviderActors>,
        provider: &str,
        model: &str,
        started: tokio::time::Instant,
    ) {
        self.move_to(actors, provider, model);
        let now = tokio::time::Instant::now();
        self.attempts.take_over(&self.spec, now);
        let number = self.attempts.attempts();
        self.begin_attempt(number, started);
    }

    /// Opens the span of attempt number `attempt`, started at `now` (a child of
    /// the request's, with the attempt number and the resend count of the
    /// OpenTelemetry HTTP conventions).
    fn begin_attempt(&mut self, attempt: u32, now: tokio::time::Instant) {
        self.attempt_started = now;
        // Held as `Span::none()` when disabled (`spans`).
        self.attempt_span = if crate::exec::spans::info_wanted() {
            crate::exec::spans::kept(tracing::info_span!(
                parent: &self.span,
                "steer.attempt",
                steer.attempt = attempt,
                http.request.resend_count = attempt.saturating_sub(1),
                error.type = tracing::field::Empty,
                steer.retry.delay_ms = tracing::field::Empty,
            ))
        } else {
            tracing::Span::none()
        };
    }

    /// The attempt in flight ended as `end` says: counted and timed, its span
    /// closed with the outcome as `error.type` unless it succeeded, its slot
    /// and throttle told.
    pub fn end_attempt(&mut self, end: AttemptEnd) {
        let elapsed = self.attempt_started.elapsed();
        self.end_attempt_after(end, elapsed);
    }

    /// [`end_attempt`](Self::end_attempt), with the attempt's duration already read.
    pub(crate) fn end_attempt_after(&mut self, end: AttemptEnd, elapsed: Duration) {
        self.release_slot(end);
        let outcome = end.outcome();
        self.actors
            .meters
            .attempt_at(&self.target, outcome, elapsed);
        if end != AttemptEnd::Success {
            self.attempt_span.record("error.type", outcome);
        }
    }

    /// The last failure, taken out.
    pub(crate) fn take_last_failure(&mut self) -> Option<Failure> {
        self.attempts.take_last_failure()
    }
}

/// What an actor running the attempt loop provides.
pub trait AttemptLoop: SendContext {
    /// The raw error of a failed attempt, handed back when the request gives up.
    type Raw: Send + 'static;

    /// The state the loop works on.
    fn core(&mut self) -> &mut RequestCore;

    /// Runs `run` with this permit (`None` when the breaker is off); its span is
    /// open and its start is [`RequestCore::attempt_started`].
    fn attempt(&mut self, lease: Option<PermitLease>, run: Run, ctx: &mut Context<Self>);
    /// A retry is granted (the failure is [`Attempts::last_failure`]); the next
    /// attempt starts after the backoff.
    fn retrying(&mut self, _ctx: &mut Context<Self>) {}
    /// No retry: the request ends with `failure`.
    fn give_up(
        &mut self,
        failure: Failure,
        reason: GiveUp,
        raw: Option<Self::Raw>,
        ctx: &mut Context<Self>,
    );
    /// The request ends for a reason of [`Stop`].
    fn stop(&mut self, why: Stop, ctx: &mut Context<Self>);
}

/// Starts the next attempt (at first, and after a backoff or a pause).
pub fn next_attempt<A: AttemptLoop>(act: &mut A, ctx: &mut Context<A>) {
    let step = act.core().attempts.start(tokio::time::Instant::now());
    execute(act, step, ctx);
}

/// The attempt in flight ended without a verdict to ask for (a continuation
/// that changes strategy, one that diverged): the next starts at once.
pub fn again<A: AttemptLoop>(act: &mut A, ctx: &mut Context<A>) {
    let step = act.core().attempts.again(tokio::time::Instant::now());
    execute(act, step, ctx);
}

/// Carries out one step of the request's [`Attempts`].
pub(crate) fn execute<A: AttemptLoop>(act: &mut A, step: Step, ctx: &mut Context<A>) {
    match step {
        Step::AskPermit => ask_permit(act, ctx),
        Step::Run(run) => start_run(act, None, run, ctx),
        Step::Pause(wait) => {
            tracing::debug!(parent: &act.core().span, ?wait, "provider paused: waiting");
            run_later_send(ctx, wait, next_attempt);
        }
        Step::Backoff(delay) => backoff(act, delay, ctx),
        Step::GiveUp(failure, reason) => act.give_up(failure, reason, None, ctx),
        Step::Stop(Stop::Rejected(rejection)) => {
            let core = act.core();
            core.actors
                .meters
                .rejection(core.target.labels(), rejection.name());
            tracing::info!(parent: &core.span, rejection = rejection.name(), "steer.breaker.rejected");
            act.stop(Stop::Rejected(rejection), ctx);
        }
        Step::Stop(why) => act.stop(why, ctx),
        // Asked only through `retry_or_give_up`, which carries the raw error.
        Step::Ask(_) | Step::Idle => {}
    }
}

/// Takes a slot under the deployment's concurrency limit, when it has one
/// (and the request holds none yet), then a permit.
fn ask_permit<A: AttemptLoop>(act: &mut A, ctx: &mut Context<A>) {
    let core = act.core();
    // A deployment that rejects most calls sheds some here, before the call.
    if core.slot.is_none()
        && core
            .actors
            .throttle
            .as_ref()
            .is_some_and(|t| t.sheds(fastrand::f64()))
    {
        let now = tokio::time::Instant::now();
        let step = core.attempts.rejected(Rejection::Throttled, now);
        return execute(act, step, ctx);
    }
    let limiter = core
        .actors
        .limiters
        .as_ref()
        .filter(|_| core.slot.is_none());
    let Some(limiter) = limiter.map(|l| l.for_model(&core.spec.model)) else {
        return ask_breaker(act, ctx);
    };
    let (answer, slot) = tokio::sync::oneshot::channel();
    limiter.do_send(AcquireSlot {
        priority: core.spec.priority,
        may_wait: core.spec.may_queue,
        max_wait: core.attempts.progress().time_left(),
        answer,
    });
    spawn_send(
        ctx,
        actix::fut::wrap_future(slot).map(|answer, act: &mut A, ctx| match answer {
            Ok(Ok(slot)) => {
                act.core().slot = Some(slot);
                ask_breaker(act, ctx)
            }
            Ok(Err(why)) => {
                let now = tokio::time::Instant::now();
                let rejection = Rejection::ConcurrencyLimit(why);
                let step = act.core().attempts.rejected(rejection, now);
                execute(act, step, ctx)
            }
            Err(_) => {
                let step = act.core().attempts.lost("the concurrency limiter is gone");
                execute(act, step, ctx)
            }
        }),
    );
}

/// Takes a permit from the breaker's gate, or asks the breaker for one.
fn ask_breaker<A: AttemptLoop>(act: &mut A, ctx: &mut Context<A>) {
    let core = act.core();
    if let Some(lease) = core.actors.breaker.pass(&core.spec.model) {
        return permitted(act, Some(lease), ctx);
    }
    let ask = core.actors.breaker.acquire(&core.spec.model);
    spawn_send(
        ctx,
        actix::fut::wrap_future(ask).map(|answer, act: &mut A, ctx| match answer {
            Ok(Ok(lease)) => permitted(act, Some(lease), ctx),
            Ok(Err(rejection)) => {
                // No call: a slot held for it goes back (not through a pause).
                act.core().slot = None;
                let now = tokio::time::Instant::now();
                let step = act.core().attempts.rejected(rejection, now);
                execute(act, step, ctx)
            }
            Err(_) => {
                let step = act.core().attempts.lost("the circuit breaker is gone");
                execute(act, step, ctx)
            }
        }),
    );
}

fn permitted<A: AttemptLoop>(act: &mut A, lease: Option<PermitLease>, ctx: &mut Context<A>) {
    let step = act.core().attempts.permitted(tokio::time::Instant::now());
    match step {
        Step::Run(run) => start_run(act, lease, run, ctx),
        // Not run: the lease, dropped, hands the permit back.
        other => execute(act, other, ctx),
    }
}

fn start_run<A: AttemptLoop>(
    act: &mut A,
    lease: Option<PermitLease>,
    run: Run,
    ctx: &mut Context<A>,
) {
    act.core().begin_attempt(run.number, run.started);
    act.attempt(lease, run, ctx);
}

/// Asks the coordinator whether to retry `failure` (already reported to the
/// breaker): on a retry, records the backoff, calls [`AttemptLoop::retrying`] and
/// starts the next attempt after the delay; else [`AttemptLoop::give_up`].
pub fn retry_or_give_up<A: AttemptLoop>(
    act: &mut A,
    failure: Failure,
    raw: Option<A::Raw>,
    ctx: &mut Context<A>,
) {
    let now = tokio::time::Instant::now();
    // A wait to take elsewhere ends the attempts without asking; anything
    // else but `Ask` is `Idle`: no attempt was running (the request has ended
    // or is already deciding), so nothing waits on this failure.
    let question = match act.core().attempts.failed(failure, now) {
        Step::Ask(question) => question,
        Step::GiveUp(failure, reason) => return act.give_up(failure, reason, raw, ctx),
        _ => return,
    };
    let (answer, decision) = tokio::sync::oneshot::channel();
    act.core()
        .actors
        .coordinator
        .do_send(Decide { question, answer });
    spawn_send(
        ctx,
        actix::fut::wrap_future(decision).map(move |decision, act: &mut A, ctx| {
            let step = match decision {
                Ok(decision) => act.core().attempts.decided(decision),
                Err(_) => act.core().attempts.lost("the retry coordinator is gone"),
            };
            match step {
                Step::GiveUp(failure, reason) => {
                    let core = act.core();
                    match reason {
                        GiveUp::BudgetExhausted => {
                            core.actors.meters.budget_rejection(core.target.labels())
                        }
                        GiveUp::Throttled => core.actors.meters.throttled(core.target.labels()),
                        _ => {}
                    }
                    act.give_up(failure, reason, raw, ctx)
                }
                other => execute(act, other, ctx),
            }
        }),
    );
}

/// The attempt in flight failed in a way no retry mends (the coordinator is not
/// asked): the request gives up with it.
pub fn give_up_now<A: AttemptLoop>(
    act: &mut A,
    failure: Failure,
    reason: GiveUp,
    raw: Option<A::Raw>,
    ctx: &mut Context<A>,
) {
    if let Step::GiveUp(failure, reason) = act.core().attempts.give_up_now(failure, reason) {
        act.give_up(failure, reason, raw, ctx);
    }
}

fn backoff<A: AttemptLoop>(act: &mut A, delay: Duration, ctx: &mut Context<A>) {
    let core = act.core();
    let category = core
        .attempts
        .last_failure()
        .map_or(Category::Unknown, |f| f.category);
    core.actors
        .meters
        .retry(core.target.labels(), category.as_str(), delay);
    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    core.attempt_span.record("steer.retry.delay_ms", delay_ms);
    core.attempt_span = tracing::Span::none();
    act.retrying(ctx);
    run_later_send(ctx, delay, next_attempt);
}

/// Tells the coordinator how the request ended (one-way); the request is counted
/// then if it never reported before.
pub fn report_end<A: AttemptLoop>(act: &mut A, end: RequestEnd) {
    report_end_after(act, end, None);
}

/// The attempt that answered a request (the one in flight, started at
/// [`RequestCore::attempt_started`]): its permit, and when it ended (the
/// request's end too: one reading of the clock).
pub(crate) struct Answered {
    pub lease: Option<PermitLease>,
    pub ended: tokio::time::Instant,
}

/// [`report_end`], after the attempt that `answered`: its permit's success and
/// the request's end make one trip through the relay.
pub(crate) fn report_end_after<A: AttemptLoop>(
    act: &mut A,
    end: RequestEnd,
    answered: Option<Answered>,
) {
    let core = act.core();
    core.attempt_span = tracing::Span::none();
    let outcome = end.outcome();
    let request_took = match &answered {
        Some(a) => a.ended.saturating_duration_since(core.started),
        None => core.started.elapsed(),
    };
    core.actors
        .meters
        .request_at(&core.target, outcome, request_took);
    let first_report = core.attempts.first_report();
    let succeeded = answered.and_then(|a| {
        let attempt_took = a.ended.saturating_duration_since(core.attempt_started);
        a.lease.map(|lease| (lease, attempt_took))
    });
    core.actors
        .request_ended(succeeded, RequestFinished { end, first_report });
}

/// The request's deadline cut the attempt in flight: the attempt is counted (as
/// `deadline_exceeded`), its permit reported without a verdict on the provider's
/// health (the caller's time ran out, not the provider's), and the request
/// stops with [`Stop::DeadlineExceeded`].
pub fn deadline_cut<A: AttemptLoop>(act: &mut A, lease: Option<PermitLease>, ctx: &mut Context<A>) {
    if let Some(lease) = lease {
        lease.report(CallOutcome::Neutral);
    }
    let core = act.core();
    let step = core.attempts.cut_by_deadline();
    core.end_attempt(AttemptEnd::Failed(Category::DeadlineExceeded));
    core.actors.coordinator.do_send(AttemptAbandoned {
        outcome: Category::DeadlineExceeded.as_str(),
    });
    execute(act, step, ctx);
}

/// Tells the coordinator the caller cancelled the request: an attempt in flight
/// is counted as abandoned, then the request as cancelled.
pub fn report_cancelled<A: AttemptLoop>(act: &mut A) {
    if act.core().attempts.cancel() {
        act.core().end_attempt(AttemptEnd::Cancelled);
        act.core()
            .actors
            .coordinator
            .do_send(AttemptAbandoned::CANCELLED);
    }
    report_end(act, RequestEnd::Cancelled);
}
