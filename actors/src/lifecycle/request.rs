//! The supervised request actor: one per request. It asks the provider's breaker
//! for a permit, runs one attempt, reports the outcome to the breaker and the
//! failure to the coordinator, waits on an actor timer when told to, and repeats.
//! It replies exactly once.
//!
//! The attempt itself is a closure handed in by the provider side: the actor knows
//! no provider, it sees a future that yields a value or a classified [`Failure`].

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::breaker::{CallOutcome, PermitLease};
use crate::exec::clock::later_tokio;
use crate::exec::guarded::{Guarded, Outcome};
use crate::failure::{Category, Failure};
pub use crate::lifecycle::reply::{
    AttemptError, Cancel, Completed, MakeAttempt, RequestError, RequestResult,
};
use crate::lifecycle::shell::{self, Answered, AttemptLoop, RequestCore, Run, Stop};
use crate::lifecycle::AttemptEnd;
use crate::provider::ProviderActors;
use crate::retry::{GiveUp, RequestEnd};
use crate::spec::RequestSpec;

mod attempt_run;
use crate::telemetry::meters::TargetMeters;
use attempt_run::AttemptRun;

/// A supervised request, whose attempts `A` makes.
pub struct RequestActor<T: Send + 'static, E: Send + 'static, A: MakeAttempt<T, E>> {
    core: RequestCore,
    attempt: A,
    reply: Option<oneshot::Sender<RequestResult<T, E>>>,
}

impl<T: Send + 'static, E: Send + 'static, A: MakeAttempt<T, E>> RequestActor<T, E, A> {
    /// A request actor; `admission` (the caller's in-flight slot) is held until it
    /// stops. Its attempts' spans are children of `span` (the caller's request
    /// span; `tracing::Span::none()` for none).
    pub fn new(
        spec: RequestSpec,
        actors: Arc<ProviderActors>,
        attempt: A,
        reply: oneshot::Sender<RequestResult<T, E>>,
        admission: Option<OwnedSemaphorePermit>,
        span: tracing::Span,
    ) -> Self {
        RequestActor {
            core: RequestCore::new(spec, actors, span, admission),
            attempt,
            reply: Some(reply),
        }
    }

    /// The request's metric series (its provider and model), for what its caller
    /// counts of the reply (tokens) without looking them up again.
    pub fn target_meters(&self) -> TargetMeters {
        self.core.target.clone()
    }

    /// Replies and stops; `succeeded`, the attempt that answered, is reported
    /// with the request's end (one trip through the relay for both).
    fn finish(
        &mut self,
        result: Result<Completed<T>, RequestError<E>>,
        succeeded: Option<Answered>,
        ctx: &mut Context<Self>,
    ) {
        let end = match &result {
            Ok(c) => RequestEnd::Succeeded {
                attempts: c.attempts,
            },
            Err(e) => e.end(),
        };
        shell::report_end_after(self, end, succeeded);
        if let Some(tx) = self.reply.take() {
            let _ = tx.send(result.map_err(Box::new));
        }
        ctx.stop();
    }

    fn run(&mut self, lease: Option<PermitLease>, run: Run, ctx: &mut Context<Self>) {
        // One reading of the clock starts the attempt, bounds it and sets its timer.
        let limit_at = run.limit.map(|l| later_tokio(run.started, l.duration));
        let deadline_bound = run.limit.is_some_and(|l| l.by_deadline);
        let future = self.attempt.attempt(run.number, &self.core.target);
        let guarded = Guarded::new(future, limit_at, self.core.attempt_span.clone());
        shell::spawn_send(
            ctx,
            AttemptRun {
                guarded,
                lease,
                deadline_bound,
            },
        );
    }

    fn on_result(
        &mut self,
        outcome: Outcome<Result<T, AttemptError<E>>>,
        lease: Option<PermitLease>,
        ended: Instant,
        deadline_bound: bool,
        ctx: &mut Context<Self>,
    ) {
        let elapsed = ended.saturating_duration_since(self.core.attempt_started);
        let (failure, raw) = match outcome {
            Outcome::Done(Ok(value)) => {
                self.core.end_attempt_after(AttemptEnd::Success, elapsed);
                // Reported with the request's end, in `finish`.
                let succeeded = Some(Answered { lease, ended });
                let attempts = self.core.attempts.succeeded();
                return self.finish(Ok(Completed { value, attempts }), succeeded, ctx);
            }
            Outcome::Done(Err(error)) => {
                let (failure, raw) = *error;
                (failure, Some(raw))
            }
            Outcome::Panicked(panic) => {
                if let Some(l) = lease {
                    l.report(CallOutcome::Neutral);
                }
                self.core.end_attempt_after(AttemptEnd::Panicked, elapsed);
                let message = crate::exec::supervise::panic_message(panic.as_ref());
                tracing::error!(parent: &self.core.span, %message, "attempt panicked");
                self.core.attempts.end();
                let attempts = self.core.attempts.attempts();
                return self.finish(Err(RequestError::Panicked { message, attempts }), None, ctx);
            }
            Outcome::TimedOut if deadline_bound => return shell::deadline_cut(self, lease, ctx),
            Outcome::TimedOut => {
                let mut f = Failure::new(
                    Category::Timeout,
                    &self.core.spec.provider,
                    &format!("attempt timed out after {elapsed:?}"),
                );
                f.request_id = Some(self.core.spec.request_id.to_string());
                (f, None)
            }
        };
        self.core.note_failure(&failure);
        self.core
            .end_attempt_after(AttemptEnd::Failed(failure.category), elapsed);
        self.core.actors.report_failure(
            lease,
            &self.core.spec.model,
            &failure,
            self.core.spec.use_breaker,
        );
        tracing::debug!(parent: &self.core.span, attempt = self.core.attempts.attempts(), category = %failure.category, "attempt failed");
        shell::retry_or_give_up(self, failure, raw, ctx);
    }
}

impl<T: Send + 'static, E: Send + 'static, A: MakeAttempt<T, E>> AttemptLoop
    for RequestActor<T, E, A>
{
    type Raw = E;

    fn core(&mut self) -> &mut RequestCore {
        &mut self.core
    }

    fn attempt(&mut self, lease: Option<PermitLease>, run: Run, ctx: &mut Context<Self>) {
        self.run(lease, run, ctx);
    }

    fn give_up(
        &mut self,
        failure: Failure,
        reason: GiveUp,
        raw: Option<E>,
        ctx: &mut Context<Self>,
    ) {
        let attempts = self.core.attempts.attempts();
        let result = Err(RequestError::Failed {
            failure,
            reason,
            attempts,
            last: raw,
        });
        self.finish(result, None, ctx);
    }

    fn stop(&mut self, why: Stop, ctx: &mut Context<Self>) {
        let attempts = self.core.attempts.attempts();
        let last = self.core.take_last_failure();
        self.finish(Err(RequestError::stopped(why, attempts, last)), None, ctx);
    }
}

// SAFETY: every future and timer closure it and its shell spawn goes through
// `spawn_send` / `run_later_send`, which require `Send`, and no handler of it
// returns a future actix would spawn (checked by `spawns_unchecked`).
unsafe impl<T: Send + 'static, E: Send + 'static, A: MakeAttempt<T, E>>
    crate::exec::in_place::SendContext for RequestActor<T, E, A>
{
}

impl<T: Send + 'static, E: Send + 'static, A: MakeAttempt<T, E>> Actor for RequestActor<T, E, A> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        shell::next_attempt(self, ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        // Dropping the admission permit frees an in-flight slot. A reply still
        // pending here means the actor was stopped from outside: by its caller
        // going away (an actor run in place is stopped as its caller's future
        // drops, after the reply's receiver), counted cancelled; else an error.
        self.core.admission.take();
        if let Some(tx) = self.reply.take() {
            if tx.is_closed() {
                tracing::debug!(parent: &self.core.span, "cancelled by the caller");
                shell::report_cancelled(self);
            } else {
                let _ = tx.send(Err(Box::new(RequestError::Internal(
                    "the request actor stopped before it finished".into(),
                ))));
            }
        }
    }
}

/// An actor dropped without stopping (one started on an arbiter, not in place,
/// whose arbiter stopped under it) with its caller still waiting: the request is
/// counted cancelled, as a dropped caller's would be.
impl<T: Send + 'static, E: Send + 'static, A: MakeAttempt<T, E>> Drop for RequestActor<T, E, A> {
    fn drop(&mut self) {
        if self.reply.take().is_some() {
            shell::report_cancelled(self);
        }
    }
}

impl<T: Send + 'static, E: Send + 'static, A: MakeAttempt<T, E>> Handler<Cancel>
    for RequestActor<T, E, A>
{
    type Result = ();

    fn handle(&mut self, _: Cancel, ctx: &mut Context<Self>) {
        if self.reply.take().is_some() {
            tracing::debug!(parent: &self.core.span, "cancelled by the caller");
            shell::report_cancelled(self);
        }
        // Stopping drops the in-flight attempt (aborting its HTTP call) and its
        // permit lease (handing the permit back).
        ctx.stop();
    }
}

#[cfg(test)]
mod tests;
