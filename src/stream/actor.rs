//! The stream actor: one per streamed request, a shell around three machines:
//! its [`Attempts`](steer_actors::lifecycle::Attempts) (permit, attempt,
//! decision, backoff: run by `lifecycle::shell`), its [`StreamMachine`] (the
//! request each attempt sends, what a break means, the seams) and, for a group,
//! its [`Route`]. It lends the delivery state to each attempt's reader (the
//! consumer's task), turns the reader's report into the machines' inputs, and
//! carries out their answers: the breaker's report, the coordinator's question,
//! the consumer's events, the partial store, the actor timers.
//!
//! This file is the shell: its state, its start, the attempt it opens and the
//! report it receives. What a failed attempt leads to is in `breaks.rs`,
//! moving to another target of a group in `failover.rs`, and the end in
//! `finish.rs`.

mod breaks;
mod failover;
mod finish;
mod hedging;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::channel::{mpsc, oneshot};
use steer_actors::breaker::PermitLease;
use steer_actors::lifecycle::request::RequestError;
use steer_actors::lifecycle::shell::{self, AttemptLoop, RequestCore, Run, Stop};
use steer_actors::lifecycle::AttemptEnd;
use steer_actors::partials::PartialStore;
use steer_actors::retry::{GiveUp, RequestEnd};
use steer_actors::telemetry::meters::GaugeGuard;
use steer_actors::Failure;
use steer_actors::ProviderActors;
use tokio::sync::OwnedSemaphorePermit;

use super::machine::{AttemptCall, StreamMachine};
use super::reader::{AttemptEnded, AttemptPlan, Command, Outcome};
pub(crate) use super::settings::{StreamRoute, StreamSettings};
use crate::budget::SpendLog;
use crate::classify::classify;
use crate::error::ProviderError;
use crate::model::ChatRequest;
use crate::observe::trace;
use crate::provider::Provider;
use crate::route::InFlight;
pub(crate) use hedging::StreamHedge;

/// An attempt about to be sent: its request (or where it resumes) and the
/// delivery state it borrows.
type AttemptParts = (
    Arc<ChatRequest>,
    Option<crate::model::ResumePoint>,
    Box<super::delivery::Delivery>,
);

pub(crate) struct StreamActor {
    provider: Arc<dyn Provider>,
    original: Arc<ChatRequest>,
    core: RequestCore,
    first_token_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    min_rate: Option<super::rate::RateFloor>,
    machine: StreamMachine,
    partials: Arc<Addr<PartialStore>>,
    tx: mpsc::UnboundedSender<Command>,
    /// Resolves when the consumer drops its stream.
    consumer_gone: Option<oneshot::Receiver<()>>,
    lease: Option<PermitLease>,
    done: bool,
    route: Option<Box<StreamRoute>>,
    /// How a grouped stream is hedged, and its attempt's race.
    hedge: Option<hedging::StreamHedge>,
    /// A grouped stream counts as in flight at its current target.
    in_flight_at: Option<InFlight>,
    /// Counts the stream open at its provider while it lives.
    open_gauge: GaugeGuard,
    record_content: bool,
    /// Where its attempts' spend goes, and the restarts it has counted.
    spend: Option<SpendLog>,
    restarts: u32,
    /// What admits its attempts against the budgets, when any could refuse.
    budgets: Option<crate::budget::gate::Admission>,
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
            min_rate,
            continuation,
            divergence,
            record_content,
            spend,
            budgets,
        } = settings;
        let span = trace::request_span(&original, trace::Kind::Stream, record_content);
        let open_gauge = actors.meters.open_stream(spec.provider.clone());
        let prefill = provider.prefill(original.model.model());
        let machine = StreamMachine::new(continuation, prefill, divergence);
        StreamActor {
            core: RequestCore::new(spec, actors, span, Some(admission)),
            first_token_timeout,
            idle_timeout,
            min_rate,
            machine,
            provider,
            original: Arc::new(original),
            partials,
            tx,
            consumer_gone: Some(consumer_gone),
            lease: None,
            done: false,
            route: None,
            hedge: None,
            in_flight_at: None,
            open_gauge,
            record_content,
            spend,
            restarts: 0,
            budgets,
        }
    }

    /// Sends the consumer the next attempt to read: the request (or its
    /// continuation after delivered content), its timeouts, and the delivery
    /// state, lent until the attempt ends.
    fn open(&mut self, lease: Option<PermitLease>, ctx: &mut Context<Self>) {
        let (call, delivery) = self.machine.begin_attempt(&self.original);
        self.lease = lease;
        let (request, resume) = match call {
            AttemptCall::Send(request) => (request, None),
            AttemptCall::Resume(point) => (self.original.clone(), Some(point)),
        };
        // A reply started again: what was delivered before is spent twice.
        if delivery.restarts > self.restarts {
            self.restarts = delivery.restarts;
            if let Some(log) = &self.spend {
                log.repeat_delivered();
            }
        }
        let deployment = self.original.model.provider();
        let ticket = self.spend.as_ref().map(|l| l.open(request.clone()));
        match (&self.budgets, &self.spend, ticket) {
            // What the attempt may cost is reserved before it is sent.
            (Some(budgets), Some(log), Some(ticket)) => {
                let (budgets, log) = (budgets.clone(), log.clone());
                let (req, at) = (request.clone(), deployment.to_string());
                let admit = async move { budgets.admit(&req, &at, &log).await };
                shell::spawn_send(
                    ctx,
                    actix::fut::wrap_future(admit).map(move |answer, act: &mut Self, ctx| {
                        act.admitted(answer, ticket, (request, resume, delivery), ctx)
                    }),
                );
            }
            (_, _, ticket) => self.send_attempt((request, resume, delivery), ticket, ctx),
        }
    }

    /// The budgets answered for the attempt about to be sent: held, it goes;
    /// refused, it is not sent and fails as a `budget_exceeded` attempt (not
    /// retried: the stream ends, its partial kept, or a group moves on past
    /// a deployment's own budget).
    fn admitted(
        &mut self,
        answer: Result<Option<crate::budget::gate::Hold>, steer_actors::budget::Refusal>,
        mut ticket: crate::budget::Ticket,
        attempt: AttemptParts,
        ctx: &mut Context<Self>,
    ) {
        if self.done {
            return ticket.withdraw();
        }
        match answer {
            Ok(hold) => {
                if let Some(hold) = hold {
                    ticket.hold(hold);
                }
                self.send_attempt(attempt, Some(ticket), ctx)
            }
            Err(refusal) => {
                ticket.withdraw();
                self.machine.attempt_ended(attempt.2);
                let e = crate::budget::gate::refused(self.provider.name(), &self.original, refusal);
                self.failed(classify(&e), Some(e), ctx)
            }
        }
    }

    /// Hands the attempt to the consumer's side to read.
    fn send_attempt(
        &mut self,
        (request, resume, delivery): AttemptParts,
        ticket: Option<crate::budget::Ticket>,
        ctx: &mut Context<Self>,
    ) {
        let text_start = delivery.checkpoint.text.len();
        let race = match resume {
            None => self.race_for(delivery.delivered_anything(), ctx),
            Some(_) => None,
        };
        let plan = AttemptPlan {
            delivery: Some(delivery),
            provider: self.provider.clone(),
            request: Some(request),
            resume,
            original: self.original.clone(),
            started: self.core.started,
            deadline: self.core.attempts.progress().deadline(),
            headers_timeout: self.core.spec.attempt_timeout,
            first_token_timeout: self.first_token_timeout,
            idle_timeout: self.idle_timeout,
            min_rate: self.min_rate,
            route: self.route.as_ref().map(|r| r.route.steps().to_vec()),
            span: self.core.span.clone(),
            attempt_span: self.core.attempt_span.clone(),
            report: ctx.address().recipient(),
            race,
            ticket,
            spend: self.spend.clone(),
            text_start,
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
        self.race_over(ctx);
        if self.done {
            return;
        }
        match ended.outcome {
            Outcome::Complete => {
                if let Some(route) = &self.route {
                    if let Some(target) = route.route.current() {
                        route.targets.leg_ended(route.route.name(), target, true);
                        // The selection learns the stream's first token and rate.
                        let d = self.machine.delivery();
                        if let (Some(ttft), Some(load)) =
                            (d.first_content, route.targets.load(target))
                        {
                            let chars = d.checkpoint.text.len();
                            let total = self.core.started.elapsed();
                            load.record(crate::route::stream_sample(ttft, total, chars));
                        }
                    }
                }
                // A hedged stream's next delays read its first tokens.
                if let (Some(h), Some(ttft)) = (&self.hedge, self.machine.delivery().first_content)
                {
                    h.note_first_token(&self.original.model, ttft);
                }
                self.cancel_abandoned();
                let attempts = self.core.attempts.succeeded();
                // A first attempt's first token is the deployment's TTFT.
                if let (1, Some(ttft)) = (attempts, self.machine.delivery().first_content) {
                    self.core.note_first_token(ttft);
                }
                self.core.end_attempt(AttemptEnd::Success);
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
}

impl StreamActor {
    /// Hedges a stream outside any group at its own deployment (see
    /// `hedging.rs`).
    pub(crate) fn hedged_alone(mut self, hedge: hedging::StreamHedge) -> Self {
        self.hedge = Some(hedge);
        self
    }

    /// Cancels the background responses the stream left running.
    fn cancel_abandoned(&mut self) {
        let ids = self.machine.take_abandoned();
        let span = self.core.span.clone();
        super::abandoned::cancel(self.provider.clone(), self.original.clone(), ids, span);
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
            self.machine.abandon_resume();
            self.cancel_abandoned();
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
        for source in [
            include_str!("actor.rs"),
            include_str!("actor/breaks.rs"),
            include_str!("actor/failover.rs"),
            include_str!("actor/finish.rs"),
            include_str!("actor/hedging.rs"),
        ] {
            let unchecked = steer_actors::exec::in_place::spawns_unchecked(source);
            assert_eq!(unchecked, Vec::<String>::new());
        }
    }
}
