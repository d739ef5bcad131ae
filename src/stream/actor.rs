//! The stream actor: one per streamed request, a shell around three machines:
//! its [`Attempts`](steer_actors::lifecycle::Attempts) (permit, attempt,
//! decision, backoff: run by `lifecycle::shell`), its [`StreamMachine`] (the
//! request each attempt sends, what a break means, the seams) and, for a group,
//! its [`Route`]. It lends the delivery state to each attempt's reader (the
//! consumer's task), turns the reader's report into the machines' inputs, and
//! carries out their answers: the breaker's report, the coordinator's question,
//! the consumer's events, the partial store, the actor timers.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::channel::{mpsc, oneshot};
use steer_actors::breaker::PermitLease;
use steer_actors::lifecycle::request::RequestError;
use steer_actors::lifecycle::shell::{self, AttemptLoop, RequestCore, Run, Stop};
use steer_actors::partials::{PartialResponse, PartialStore, StorePartial};
use steer_actors::retry::{AttemptAbandoned, GiveUp, RequestEnd};
use steer_actors::telemetry::meters::GaugeGuard;
use steer_actors::ProviderActors;
use steer_actors::{Category, Failure};
use tokio::sync::OwnedSemaphorePermit;

use super::ending;
use super::machine::{AfterBreak, AfterDivergence, RetrySeam, StreamMachine};
use super::reader::{AttemptEnded, AttemptPlan, Command, Outcome};
pub(crate) use super::settings::{StreamRoute, StreamSettings};
use crate::classify::classify;
use crate::error::{Error, ProviderError};
use crate::model::{ChatRequest, ModelId};
use crate::observe::trace;
use crate::provider::Provider;
use crate::route::{InFlight, Next, Verdict};

pub(crate) struct StreamActor {
    provider: Arc<dyn Provider>,
    original: Arc<ChatRequest>,
    core: RequestCore,
    first_token_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    machine: StreamMachine,
    partials: Arc<Addr<PartialStore>>,
    tx: mpsc::UnboundedSender<Command>,
    /// Resolves when the consumer drops its stream.
    consumer_gone: Option<oneshot::Receiver<()>>,
    lease: Option<PermitLease>,
    done: bool,
    route: Option<Box<StreamRoute>>,
    /// A grouped stream counts as in flight at its current target.
    in_flight_at: Option<InFlight>,
    /// Counts the stream open at its provider while it lives.
    open_gauge: GaugeGuard,
    record_content: bool,
}

impl StreamActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        provider: Arc<dyn Provider>,
        original: ChatRequest,
        settings: StreamSettings,
        actors: Arc<ProviderActors>,
        partials: Arc<Addr<PartialStore>>,
        tx: mpsc::UnboundedSender<Command>,
        consumer_gone: oneshot::Receiver<()>,
        admission: OwnedSemaphorePermit,
    ) -> Self {
        let StreamSettings {
            spec,
            first_token_timeout,
            idle_timeout,
            continuation,
            divergence,
            record_content,
        } = settings;
        let span = trace::request_span(&original, trace::Kind::Stream, record_content);
        let open_gauge = actors.meters.open_stream(spec.provider.clone());
        let prefill = provider.prefill(original.model.model());
        let machine = StreamMachine::new(continuation, prefill, divergence);
        StreamActor {
            core: RequestCore::new(spec, actors, span, Some(admission)),
            first_token_timeout,
            idle_timeout,
            machine,
            provider,
            original: Arc::new(original),
            partials,
            tx,
            consumer_gone: Some(consumer_gone),
            lease: None,
            done: false,
            route: None,
            in_flight_at: None,
            open_gauge,
            record_content,
        }
    }

    /// Carries the stream through a model group's targets.
    pub(crate) fn with_route(mut self, route: Box<StreamRoute>) -> Self {
        self.in_flight_at = route.targets.load(&self.original.model).map(|l| l.start());
        self.route = Some(route);
        self
    }

    /// The stream's target ended with `e`: the stream fails over when `movable`
    /// and its route says so, else ends with the caller's error.
    fn end_or_fail_over(
        &mut self,
        e: RequestError<ProviderError>,
        movable: bool,
        ctx: &mut Context<Self>,
    ) {
        let end = e.end();
        let (request_id, provider) = (&self.original.request_id, self.provider.name());
        let error = Error::from_request(e, request_id, provider, self.machine.partial());
        if movable && self.fail_over(&error, end, ctx) {
            return;
        }
        self.end(Some(error), end, ctx);
    }

    /// The stream's target gave up with `error`: moves to the next target of its
    /// group, if it has one and the route says so, continuing from the
    /// checkpoint in the new target's wire format behind a `FailedOver` seam.
    /// `false` when the stream ends here.
    fn fail_over(&mut self, error: &Error, end: RequestEnd, ctx: &mut Context<Self>) -> bool {
        let Some(route) = self.route.as_mut() else {
            return false;
        };
        if route.route.failed(error) == Verdict::Stop {
            return false;
        }
        // Content delivered that cannot be continued elsewhere ends the stream.
        if !self.machine.may_move() {
            return false;
        }
        self.next_target(end, ctx);
        true
    }

    /// Asks the route where to go next: to a target (the leg at the one before
    /// ends, a failover is counted), a wait for the earliest to come back, or
    /// the end with [`Error::GroupExhausted`].
    fn next_target(&mut self, end: RequestEnd, ctx: &mut Context<Self>) {
        let Some(mut route) = self.route.take() else {
            return;
        };
        let time_left = self.core.attempts.progress().time_left();
        loop {
            let StreamRoute { route: r, targets } = &mut *route;
            match r.next(|g, tried| targets.pick(g, tried), time_left) {
                Next::Go { target, from } => {
                    // A target no provider serves is passed over (groups are
                    // checked when the client is built).
                    let Some((provider, actors)) = targets.resolve(&target) else {
                        continue;
                    };
                    if let Some(from) = from {
                        targets.failover(&self.core.span, r.name(), &from, &target);
                    }
                    // The leg ends at its target (its coordinator counts it there).
                    shell::report_end(self, end);
                    return self.switch(route, target, provider, actors, ctx);
                }
                Next::Wait(wait) => {
                    self.route = Some(route);
                    shell::run_later_send(ctx, wait, move |act, ctx| act.next_target(end, ctx));
                    return;
                }
                Next::Exhausted(e) => {
                    self.route = Some(route);
                    return self.end(Some(e), end, ctx);
                }
            }
        }
    }

    /// Moves the stream to `target`: its provider, breaker and coordinator, a
    /// fresh retry progress within the deadline, its continuation strategy, and a
    /// seam for the consumer if content was delivered.
    fn switch(
        &mut self,
        route: Box<StreamRoute>,
        target: ModelId,
        provider: Arc<dyn Provider>,
        actors: Arc<ProviderActors>,
        ctx: &mut Context<Self>,
    ) {
        self.machine
            .failed_over(&target, provider.prefill(target.model()));
        self.provider = provider;
        self.core
            .retarget(actors, target.provider(), target.model());
        self.open_gauge = self
            .core
            .actors
            .meters
            .open_stream(self.core.spec.provider.clone());
        self.lease = None;
        let mut original = self.original.as_ref().clone();
        original.model = target.clone();
        self.original = Arc::new(original);
        self.in_flight_at = route.targets.load(&target).map(|l| l.start());
        self.route = Some(route);
        shell::next_attempt(self, ctx);
    }

    /// Ends the stream with an error (after delivering it) or with nothing more.
    /// A failed stream's partial text is stored before its error reaches the
    /// consumer, so `client.partial(id)` has it as soon as the error is seen.
    fn end(&mut self, error: Option<Error>, end: RequestEnd, ctx: &mut Context<Self>) {
        if self.done {
            return;
        }
        self.done = true;
        self.record_end(error.as_ref(), end);
        shell::report_end(self, end);
        let store = error.as_ref().and_then(|_| self.partial_record());
        let partials = self.partials.clone();
        let tx = self.tx.clone();
        shell::spawn_send(
            ctx,
            actix::fut::wrap_future(async move {
                if let Some(record) = store {
                    let _ = partials.send(StorePartial(record)).await;
                }
                if let Some(e) = error {
                    let _ = tx.unbounded_send(Command::Events(vec![Err(e)]));
                }
            })
            .map(|_, _: &mut Self, ctx: &mut Context<Self>| ctx.stop()),
        );
    }

    /// Records how the stream ended on its span and meters.
    fn record_end(&mut self, error: Option<&Error>, end: RequestEnd) {
        let model = self.original.model.model();
        let d = self.machine.delivery();
        ending::record(d, &self.core, model, self.record_content, error, end);
    }

    /// What the client's partial store keeps of a failed stream, if it delivered text.
    fn partial_record(&self) -> Option<PartialResponse> {
        self.machine.partial().map(|text| PartialResponse {
            request_id: self.original.request_id.to_string(),
            provider: self.provider.name().to_string(),
            text,
            attempts: self.core.attempts.attempts(),
            failure: self.core.attempts.last_failure().cloned(),
        })
    }

    /// Sends the consumer the next attempt to read: the request (or its
    /// continuation after delivered content), its timeouts, and the delivery
    /// state, lent until the attempt ends.
    fn open(&mut self, lease: Option<PermitLease>, ctx: &mut Context<Self>) {
        let (request, delivery) = self.machine.begin_attempt(&self.original);
        self.lease = lease;
        let plan = AttemptPlan {
            delivery: Some(delivery),
            provider: self.provider.clone(),
            request: Some(request),
            original: self.original.clone(),
            started: self.core.started,
            deadline: self.core.attempts.progress().deadline(),
            headers_timeout: self.core.spec.attempt_timeout,
            first_token_timeout: self.first_token_timeout,
            idle_timeout: self.idle_timeout,
            route: self.route.as_ref().map(|r| r.route.steps().to_vec()),
            span: self.core.span.clone(),
            attempt_span: self.core.attempt_span.clone(),
            report: ctx.address().recipient(),
        };
        if self
            .tx
            .unbounded_send(Command::Attempt(Box::new(plan)))
            .is_err()
        {
            self.cancelled(ctx);
        }
    }

    /// An attempt's reader handed the delivery state back with its outcome.
    fn attempt_ended(&mut self, ended: AttemptEnded, ctx: &mut Context<Self>) {
        self.machine.attempt_ended(ended.delivery);
        if self.done {
            return;
        }
        match ended.outcome {
            Outcome::Complete => {
                let attempts = self.core.attempts.succeeded();
                self.core.end_attempt("success");
                if let Some(lease) = self.lease.take() {
                    self.core.actors.report_success(lease, Duration::ZERO);
                }
                self.end(None, RequestEnd::Succeeded { attempts }, ctx)
            }
            Outcome::Failed(e) => self.failed(classify(&e), Some(e), ctx),
            Outcome::Steer { category, message } => self.failed_with(category, message, ctx),
            Outcome::DeadlineCut => {
                let lease = self.lease.take();
                shell::deadline_cut(self, lease, ctx)
            }
            Outcome::Diverged => self.diverged(ctx),
        }
    }

    /// The continuation restarted and differed from what the consumer has (a
    /// server that answered afresh): it cannot be spliced, and nothing of it
    /// was delivered. The server answered, so its permit goes back as a
    /// success; the stream then restarts: the consumer gets `Restarted` and the
    /// original request is sent again (a fresh reply to the conversation, tool
    /// calls and all, rather than one to the continuation).
    fn diverged(&mut self, ctx: &mut Context<Self>) {
        self.core.end_attempt("diverged");
        if let Some(lease) = self.lease.take() {
            self.core.actors.report_success(lease, Duration::ZERO);
        }
        self.core.actors.coordinator.do_send(AttemptAbandoned {
            outcome: "diverged",
        });
        tracing::info!(parent: &self.core.span, "steer.stream.diverged: the continuation restarted and differed");
        match self.machine.after_divergence() {
            AfterDivergence::Fail => {
                let request_id = &self.original.request_id;
                let failure = ending::diverged(self.provider.name(), request_id);
                self.core.attempts.set_last_failure(failure.clone());
                self.core.attempts.end();
                let e = RequestError::Failed {
                    failure,
                    reason: GiveUp::NotRetryable,
                    attempts: self.core.attempts.attempts(),
                    last: None,
                };
                self.end_or_fail_over(e, false, ctx)
            }
            AfterDivergence::Restart => {
                self.mark_seam(ctx);
                shell::again(self, ctx);
            }
        }
    }

    fn cancelled(&mut self, ctx: &mut Context<Self>) {
        if self.done {
            return;
        }
        tracing::debug!(parent: &self.core.span, "stream dropped by its consumer");
        self.done = true;
        shell::report_cancelled(self);
        // Stopping drops the HTTP body and the permit lease (handing the permit back).
        ctx.stop();
    }

    /// An attempt failed in steer's own reading of it (a timeout, a panic, a
    /// stream that stopped short): no provider error to classify.
    fn failed_with(&mut self, category: Category, message: &str, ctx: &mut Context<Self>) {
        let failure = Failure::new(category, self.provider.name(), message);
        self.failed(failure, None, ctx);
    }

    fn failed(
        &mut self,
        mut failure: Failure,
        raw: Option<ProviderError>,
        ctx: &mut Context<Self>,
    ) {
        failure.request_id = Some(self.original.request_id.to_string());
        let route = self.route.as_ref().map(|r| r.route.steps());
        let after = self.machine.after_break(&failure, &self.original, route);
        if let AfterBreak::Complete(last) = after {
            // The attempt delivered all it could: one successful attempt.
            tracing::debug!(parent: &self.core.span, category = %failure.category, "stream broke after its last allowed token: complete");
            let attempts = self.core.attempts.succeeded();
            self.core.end_attempt("success");
            if let Some(lease) = self.lease.take() {
                self.core.actors.report_success(lease, Duration::ZERO);
            }
            let last = last.into_iter().map(Ok).collect();
            return match self.tx.unbounded_send(Command::Events(last)) {
                Ok(()) => self.end(None, RequestEnd::Succeeded { attempts }, ctx),
                Err(_) => self.cancelled(ctx),
            };
        }
        self.core.end_attempt(failure.category.as_str());
        self.core.actors.report_failure(
            self.lease.take(),
            &self.core.spec.model,
            &failure,
            self.core.spec.use_breaker,
        );
        tracing::debug!(parent: &self.core.span, attempt = self.core.attempts.attempts(), category = %failure.category, ?after, "stream attempt failed");
        let abandoned = AttemptAbandoned {
            outcome: failure.category.as_str(),
        };
        match after {
            AfterBreak::Again => {
                self.core.actors.coordinator.do_send(abandoned);
                shell::again(self, ctx)
            }
            AfterBreak::GiveUp => {
                self.core.actors.coordinator.do_send(abandoned);
                shell::give_up_now(self, failure, GiveUp::NotRetryable, raw, ctx)
            }
            AfterBreak::Ask | AfterBreak::Complete(_) => {
                shell::retry_or_give_up(self, failure, raw, ctx)
            }
        }
    }

    /// A retry after content: mark the seam (or announce the restart) for the
    /// consumer before the next attempt's text.
    fn mark_seam(&mut self, ctx: &mut Context<Self>) {
        let attempt = self.core.attempts.attempts().saturating_add(1);
        match self.machine.seam_for_retry(attempt, self.provider.name()) {
            RetrySeam::None => {}
            RetrySeam::Restarted(restarted) => {
                tracing::info!(parent: &self.core.span, attempt, "steer.stream.restarted");
                if self
                    .tx
                    .unbounded_send(Command::Events(vec![Ok(restarted)]))
                    .is_err()
                {
                    self.cancelled(ctx);
                }
            }
            RetrySeam::Resumed { offset } => {
                let core = &self.core;
                tracing::info!(parent: &core.span, attempt, offset, "steer.stream.resumed");
                core.actors.meters.resumption(core.target.labels());
            }
        }
    }
}

impl AttemptLoop for StreamActor {
    type Raw = ProviderError;

    fn core(&mut self) -> &mut RequestCore {
        &mut self.core
    }

    fn attempt(&mut self, lease: Option<PermitLease>, _: Run, ctx: &mut Context<Self>) {
        self.open(lease, ctx);
    }

    fn retrying(&mut self, ctx: &mut Context<Self>) {
        self.mark_seam(ctx);
    }

    fn give_up(
        &mut self,
        failure: Failure,
        reason: GiveUp,
        raw: Option<ProviderError>,
        ctx: &mut Context<Self>,
    ) {
        self.core.attempts.set_last_failure(failure.clone());
        let attempts = self.core.attempts.attempts();
        let e = RequestError::Failed {
            failure,
            reason,
            attempts,
            last: raw,
        };
        self.end_or_fail_over(e, true, ctx);
    }

    fn stop(&mut self, why: Stop, ctx: &mut Context<Self>) {
        let rejected = matches!(why, Stop::Rejected(_));
        let attempts = self.core.attempts.attempts();
        let last = self.core.attempts.last_failure().cloned();
        self.end_or_fail_over(RequestError::stopped(why, attempts, last), rejected, ctx);
    }
}

impl Actor for StreamActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The consumer may go away at any moment: while connecting, reading or
        // waiting to retry. Then the request is cancelled.
        // A consumer that read the stream to its end says so; one that drops
        // it before cancels it.
        if let Some(gone) = self.consumer_gone.take() {
            shell::spawn_send(
                ctx,
                actix::fut::wrap_future(gone).map(|read_to_end, act: &mut Self, ctx| {
                    if read_to_end.is_err() {
                        act.cancelled(ctx)
                    }
                }),
            );
        }
        shell::next_attempt(self, ctx);
    }
}

/// An actor dropped before its stream ended (with the `SteerStream` it runs in,
/// dropped by its consumer): the request is counted cancelled.
impl Drop for StreamActor {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            shell::report_cancelled(self);
        }
    }
}

// SAFETY: every future and timer closure it and its shell spawn goes through
// `spawn_send` / `run_later_send`, which require `Send`, and no handler of it
// returns a future actix would spawn (checked by `spawns_unchecked`, below).
unsafe impl steer_actors::exec::in_place::SendContext for StreamActor {}

impl Handler<AttemptEnded> for StreamActor {
    type Result = ();

    fn handle(&mut self, ended: AttemptEnded, ctx: &mut Context<Self>) {
        self.attempt_ended(ended, ctx);
    }
}

#[cfg(test)]
mod contract {
    /// The stream actor spawns only through the checked spawns (the contract
    /// of the `SendContext` it implements).
    #[test]
    fn the_stream_actor_spawns_only_through_the_checked_spawns() {
        let source = include_str!("actor.rs");
        let unchecked = steer_actors::exec::in_place::spawns_unchecked(source);
        assert_eq!(unchecked, Vec::<String>::new());
    }
}
