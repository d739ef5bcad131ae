//! What a failed attempt leads to: complete after the last allowed token, a
//! retry with its seam, a restart after a divergence, a question to the
//! coordinator, or giving up.

use std::time::Duration;

use actix::prelude::*;
use steer_actors::lifecycle::request::RequestError;
use steer_actors::lifecycle::shell;
use steer_actors::lifecycle::AttemptEnd;
use steer_actors::retry::{AttemptAbandoned, GiveUp, RequestEnd};
use steer_actors::{Category, Failure};

use super::StreamActor;
use crate::error::ProviderError;
use crate::stream::ending;
use crate::stream::machine::{AfterBreak, AfterDivergence, RetrySeam};
use crate::stream::reader::Command;

impl StreamActor {
    /// An attempt failed in steer's own reading of it (a timeout, a panic, a
    /// stream that stopped short): no provider error to classify.
    pub(super) fn failed_with(
        &mut self,
        category: Category,
        message: &str,
        ctx: &mut Context<Self>,
    ) {
        let failure = Failure::new(category, self.provider.name(), message);
        self.failed(failure, None, ctx);
    }

    pub(super) fn failed(
        &mut self,
        mut failure: Failure,
        raw: Option<ProviderError>,
        ctx: &mut Context<Self>,
    ) {
        failure.request_id = Some(self.original.request_id.to_string());
        let route = self.route.as_ref().map(|r| r.route.steps());
        if raw
            .as_ref()
            .is_some_and(|e| matches!(e.kind, crate::FailureKind::InBand { .. }))
        {
            self.machine.response_failed();
        }
        let after = self.machine.after_break(&failure, &self.original, route);
        self.cancel_abandoned();
        if let AfterBreak::Complete(last) = after {
            // The attempt delivered all it could: one successful attempt.
            tracing::debug!(parent: &self.core.span, category = %failure.category, "stream broke after its last allowed token: complete");
            let attempts = self.core.attempts.succeeded();
            self.core.end_attempt(AttemptEnd::Success);
            if let Some(lease) = self.lease.take() {
                self.core.actors.report_success(lease, Duration::ZERO);
            }
            let mut last: std::collections::VecDeque<_> = last.into_iter().map(Ok).collect();
            if let Some(log) = &self.spend {
                crate::stream::reader::insert_spend(&mut last, log.spend());
            }
            let last = last.into_iter().collect();
            return match self.tx.unbounded_send(Command::Events(last)) {
                Ok(()) => self.end(None, RequestEnd::Succeeded { attempts }, ctx),
                Err(_) => self.cancelled(ctx),
            };
        }
        self.core.note_failure(&failure);
        self.core.end_attempt(AttemptEnd::Failed(failure.category));
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
            AfterBreak::Refused => {
                tracing::info!(parent: &self.core.span, category = %failure.category, "steer.stream.resume_refused: continuing client-side");
                self.core.actors.coordinator.do_send(abandoned);
                self.mark_seam(ctx);
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

    /// The continuation restarted and differed from what the consumer has (a
    /// server that answered afresh): it cannot be spliced, and nothing of it
    /// was delivered. The server answered, so its permit goes back as a
    /// success; the stream then restarts: the consumer gets `Restarted` and the
    /// original request is sent again (a fresh reply to the conversation, tool
    /// calls and all, rather than one to the continuation).
    pub(super) fn diverged(&mut self, ctx: &mut Context<Self>) {
        self.core.end_attempt(AttemptEnd::Diverged);
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

    /// A retry after content: mark the seam (or announce the restart) for the
    /// consumer before the next attempt's text.
    pub(super) fn mark_seam(&mut self, ctx: &mut Context<Self>) {
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
            RetrySeam::Resumed { offset, server } => {
                let core = &self.core;
                let by = if server { "server" } else { "continuation" };
                tracing::info!(parent: &core.span, attempt, offset, by, "steer.stream.resumed");
                core.actors.meters.resumption(core.target.labels());
            }
        }
    }
}
