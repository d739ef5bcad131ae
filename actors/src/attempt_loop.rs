//! The loop both request actors run around their attempts: check the deadline,
//! take a permit (or wait out a pause), attempt, report the failure, ask the
//! coordinator, then back off and go round again or give up.
//!
//! The actors ([`RequestActor`](crate::request::RequestActor) and steer-llm's
//! `StreamActor`) supply the attempt itself and how a request ends; the steps
//! between are here, once. Each step is a function over an actor that implements
//! [`AttemptLoop`], run inside that actor's context.

use std::time::Duration;

use actix::prelude::*;

use crate::breaker::{PermitLease, Rejection};
use crate::failure::Failure;
use crate::provider::ProviderActors;
use crate::request::RequestSpec;
use crate::retry::{AttemptFailed, Decision, GiveUp, Progress, RequestEnd, RequestFinished};

/// Why a request ends before an attempt's failure could decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed before the next attempt.
    DeadlineExceeded,
    /// The breaker did not admit the call.
    Rejected(Rejection),
    /// An actor the request depends on is gone.
    Internal(&'static str),
}

/// What an actor running the attempt loop provides.
pub trait AttemptLoop: Actor<Context = Context<Self>> {
    /// The raw error of a failed attempt, handed back when the request gives up.
    type Raw: Send + 'static;

    /// What the request may do.
    fn spec(&self) -> &RequestSpec;
    /// Where the request stands in its retries.
    fn progress(&mut self) -> &mut Progress;
    /// The provider's breaker and coordinator.
    fn actors(&self) -> &ProviderActors;
    /// The request's tracing span.
    fn span(&self) -> &tracing::Span;

    /// Runs one attempt with this permit (`None` when the breaker is off).
    fn attempt(&mut self, lease: Option<PermitLease>, ctx: &mut Context<Self>);
    /// A retry of `failure` is granted; the next attempt starts after the backoff.
    fn retrying(&mut self, failure: Failure, ctx: &mut Context<Self>);
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

/// Starts the next attempt: stops past the deadline, takes a permit from the
/// breaker's gate or asks for one, waits out a pause it may wait for, or stops on
/// a rejection.
pub fn next_attempt<A: AttemptLoop>(act: &mut A, ctx: &mut Context<A>) {
    if act.progress().past_deadline() {
        return act.stop(Stop::DeadlineExceeded, ctx);
    }
    if !act.spec().use_breaker {
        return act.attempt(None, ctx);
    }
    if let Some(lease) = act.actors().breaker.pass() {
        return act.attempt(Some(lease), ctx);
    }
    let ask = act.actors().breaker.acquire();
    ctx.spawn(
        actix::fut::wrap_future(ask).map(|answer, act: &mut A, ctx| match answer {
            Ok(Ok(lease)) => act.attempt(Some(lease), ctx),
            Ok(Err(rejection)) => rejected(act, rejection, ctx),
            Err(_) => act.stop(Stop::Internal("the circuit breaker is gone"), ctx),
        }),
    );
}

fn rejected<A: AttemptLoop>(act: &mut A, rejection: Rejection, ctx: &mut Context<A>) {
    if let Rejection::Paused { retry_in } = rejection {
        let max_wait = act.spec().max_pause_wait;
        if let Some(wait) = act.progress().pause_wait(retry_in, max_wait) {
            tracing::debug!(parent: act.span(), ?wait, "provider paused: waiting");
            ctx.run_later(wait, next_attempt);
            return;
        }
    }
    act.stop(Stop::Rejected(rejection), ctx);
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
    let question = AttemptFailed {
        failure: failure.clone(),
        state: act.progress().state(),
        policy: act.spec().policy.clone(),
        first_report: act.progress().first_report(),
    };
    let ask = act.actors().coordinator.send(question);
    ctx.spawn(
        actix::fut::wrap_future(ask).map(move |decision, act: &mut A, ctx| match decision {
            Ok(Decision::Retry { delay, .. }) => retry_after(act, failure, delay, ctx),
            Ok(Decision::GiveUp(reason)) => act.give_up(failure, reason, raw, ctx),
            Err(_) => act.stop(Stop::Internal("the retry coordinator is gone"), ctx),
        }),
    );
}

fn retry_after<A: AttemptLoop>(
    act: &mut A,
    failure: Failure,
    delay: Duration,
    ctx: &mut Context<A>,
) {
    act.progress().backed_off(delay);
    act.retrying(failure, ctx);
    ctx.run_later(delay, next_attempt);
}

/// Tells the coordinator how the request ended (one-way); the request is counted
/// then if it never reported before.
pub fn report_end<A: AttemptLoop>(act: &mut A, end: RequestEnd) {
    let first_report = act.progress().first_report();
    act.actors()
        .coordinator
        .do_send(RequestFinished { end, first_report });
}
