//! What a stream decides between its attempts, as a plain state machine: the
//! request each attempt sends (the original, or a continuation behind a seam),
//! what a break means (complete at the limit, continue at once with the
//! instruction, give up, or ask the coordinator), what a divergent continuation
//! leads to, and the seam the consumer is shown before a retry or a failover.
//! No runtime, no channel, no clock: the stream actor owns one, lends its
//! delivery to each attempt's reader, and carries out what it answers (the
//! attempts themselves are `steer_actors::lifecycle::Attempts`, the group route
//! [`crate::route::Route`]).
//!
//! A background response of the Responses API is resumed on the server first:
//! an attempt that broke after a resume point is taken up by a connection
//! resumed there (the same attempt, nothing generated again); only a resume
//! the server refuses falls back to the client-side continuation, saying so in
//! its seam, and the response it leaves is cancelled.

use std::sync::Arc;

use steer_actors::Failure;

use super::continuation::{
    continuation_request, is_prefill_rejection, strategy_for, Continuation, Divergence,
};
use super::delivery::Delivery;
use crate::model::{
    ChatRequest, FinishReason, ModelId, ResumePoint, ResumedBy, RouteStep, StreamEvent,
};
use crate::prefill::Prefill;

/// What a failed attempt means for the stream, before any coordinator is asked.
#[derive(Debug, PartialEq)]
pub(crate) enum AfterBreak {
    /// The break came after the last token `max_tokens` allows: nothing is
    /// missing, the stream is complete with these last events (one successful
    /// attempt everywhere, never a failure beside a success).
    Complete(Vec<StreamEvent>),
    /// The model refused the prefill: continue at once with the "continue"
    /// message (the attempt is abandoned, not counted as a failure).
    Again,
    /// Content was delivered and the stream may not continue: it gives up.
    GiveUp,
    /// The server refused to resume its response: continue client-side at
    /// once (the refusal is no failure of the stream's).
    Refused,
    /// A failure of the attempt: ask whether to retry.
    Ask,
}

/// What a continuation that restarted and differed leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterDivergence {
    /// The stream fails with the partial text (`Divergence::Fail`).
    Fail,
    /// The stream restarts: `Restarted`, then the original request again.
    Restart,
}

/// The seam shown before a retry after content.
#[derive(Debug, PartialEq)]
pub(crate) enum RetrySeam {
    /// Nothing was delivered: no seam.
    None,
    /// The stream starts again: send this `Restarted` event now.
    Restarted(StreamEvent),
    /// The next attempt continues at `offset` (its `Resumed` seam is pending).
    Resumed {
        /// Characters delivered before the seam.
        offset: usize,
        /// Whether the server resumes it (else a continuation request).
        server: bool,
    },
}

/// What an attempt calls.
pub(crate) enum AttemptCall {
    /// A request: the original, or a continuation.
    Send(Arc<ChatRequest>),
    /// The stored background response, resumed on the server after `point`.
    Resume(ResumePoint),
}

/// Where a server-side resume stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// None asked.
    Off,
    /// The next attempt resumes.
    Next,
    /// The current attempt is a resume.
    Running,
}

/// Whether a failure is the line's or a busy server's, not an answer about the
/// response: a resume that failed so is asked again (the server still has the
/// response); any other failure of a resume before it got anything new (a
/// refusal, a 404, a response that failed, one stuck that sends nothing until
/// a timeout) falls back to the client-side continuation.
fn line_failed(category: steer_actors::Category) -> bool {
    use steer_actors::Category::*;
    matches!(
        category,
        Network | StreamInterrupted | MalformedResponse | RateLimited | Overloaded | Conflict
    )
}

/// The stream's decisions between attempts.
pub(crate) struct StreamMachine {
    /// What the consumer has and gets next; lent to each attempt's reader (then
    /// this holds none) and handed back with its outcome.
    delivery: Option<Box<Delivery>>,
    /// The continuation asked for (each target's strategy derives from it).
    asked: Continuation,
    /// The strategy for the current target.
    strategy: Continuation,
    divergence: Divergence,
    resume: Resume,
    /// Why the server refused its resume, until the seam says so.
    refused: Option<String>,
    /// Background responses left running, to cancel.
    abandoned: Vec<String>,
    /// The server said the current attempt's response failed (in band).
    response_failed: bool,
}

impl StreamMachine {
    /// A stream that has delivered nothing, continued as `asked` on a target
    /// whose server continues a prefill as `prefill` says.
    pub(crate) fn new(asked: Continuation, prefill: Prefill, divergence: Divergence) -> Self {
        StreamMachine {
            delivery: None,
            asked,
            strategy: strategy_for(asked, prefill),
            divergence,
            resume: Resume::Off,
            refused: None,
            abandoned: Vec::new(),
            response_failed: false,
        }
    }

    /// The background responses the stream has left running (a resume
    /// refused, a failover, a client-side stop), to cancel now.
    pub(crate) fn take_abandoned(&mut self) -> Vec<String> {
        // (A delivery lent to a reader is that reader's to answer for.)
        if let Some(id) = self.delivery.as_mut().and_then(|d| d.left_running.take()) {
            self.abandoned.push(id);
        }
        std::mem::take(&mut self.abandoned)
    }

    /// The server said, in band, that the attempt's response failed: it
    /// cannot be resumed (an attempt that was a resume was refused), and there
    /// is nothing left running to cancel.
    pub(crate) fn response_failed(&mut self) {
        self.response_failed = true;
        if self.resume != Resume::Running {
            if let Some(d) = self.delivery.as_mut() {
                d.take_resume();
            }
        }
    }

    /// The stream gives its background response up (it moves to another
    /// target, or ends): the broken attempt's usage counts as spent, and the
    /// response is to be cancelled.
    pub(crate) fn abandon_resume(&mut self) {
        let resume = std::mem::replace(&mut self.resume, Resume::Off);
        let Some(d) = self.delivery.as_mut() else {
            return;
        };
        if resume == Resume::Next {
            d.attempt_failed();
        }
        if let Some(point) = d.take_resume() {
            self.abandoned.push(point.response_id);
        }
    }

    /// The delivery state (an empty one if an attempt never handed it back).
    pub(crate) fn delivery(&mut self) -> &mut Delivery {
        self.delivery.get_or_insert_with(Box::default)
    }

    /// Whether the consumer has received any content.
    pub(crate) fn delivered_anything(&self) -> bool {
        self.delivery
            .as_ref()
            .is_some_and(|d| d.delivered_anything())
    }

    /// The text delivered so far, if any (the error that ends the stream carries it).
    pub(crate) fn partial(&self) -> Option<String> {
        let text = &self.delivery.as_ref()?.checkpoint.text;
        (!text.is_empty()).then(|| text.clone())
    }

    /// Whether the stream may move to another target after a failure: not once
    /// content was delivered that may not be continued.
    pub(crate) fn may_move(&self) -> bool {
        !(self.delivered_anything() && self.strategy == Continuation::Off)
    }

    /// Starts an attempt: the request it sends (the original, or the
    /// continuation of what was delivered, counted with `model`'s tokenizer),
    /// and the delivery state, lent to its reader until it ends.
    pub(crate) fn begin_attempt(
        &mut self,
        original: &Arc<ChatRequest>,
    ) -> (AttemptCall, Box<Delivery>) {
        let strategy = self.strategy;
        let resume = std::mem::replace(&mut self.resume, Resume::Off);
        let d = self.delivery.get_or_insert_with(Box::default);
        if let Some(point) = d.resume_point().filter(|_| resume == Resume::Next).cloned() {
            d.begin_resume();
            self.resume = Resume::Running;
            let delivery = self.delivery.take().unwrap_or_default();
            return (AttemptCall::Resume(point), delivery);
        }
        let continuing = d.delivered_anything();
        d.begin_attempt(continuing);
        let request = if !continuing {
            d.seam = None;
            original.clone()
        } else {
            // Counted with the target's tokenizer (a failover may change it).
            d.recount(original.model.model());
            let (req, seam) = continuation_request(
                original,
                &d.checkpoint,
                strategy,
                d.delivered_calls(),
                d.any_calls(),
                d.turn_reasoning(),
            );
            d.seam = Some(Box::new(seam));
            Arc::new(req)
        };
        (
            AttemptCall::Send(request),
            self.delivery.take().unwrap_or_default(),
        )
    }

    /// An attempt's reader handed the delivery state back.
    pub(crate) fn attempt_ended(&mut self, delivery: Box<Delivery>) {
        self.delivery = Some(delivery);
    }

    /// The attempt failed with `failure`: usage adds up across attempts (a
    /// broken one that reported none is counted by its deltas), and the break
    /// is judged: complete at the limit, a server-side resume where the attempt
    /// left a resume point, a client-side continuation where the server refused
    /// one, the instruction after a refused prefill, give up when content may
    /// not be continued, else ask.
    pub(crate) fn after_break(
        &mut self,
        failure: &Failure,
        original: &ChatRequest,
        route: Option<&[RouteStep]>,
    ) -> AfterBreak {
        let strategy = self.strategy;
        let resume = std::mem::replace(&mut self.resume, Resume::Off);
        let answered = std::mem::take(&mut self.response_failed);
        let d = self.delivery.get_or_insert_with(Box::default);
        // Not worth asking again is an answer too (a 2xx of the wrong shape: a
        // proxy that dropped the query and answered the poll).
        let refused = resume == Resume::Running
            && !d.resume_progressed()
            && (answered || !failure.retryable || !line_failed(failure.category));
        if refused {
            let left = d.take_resume();
            // A response that failed runs no more.
            self.abandoned
                .extend(left.filter(|_| !answered).map(|p| p.response_id));
            self.refused = Some(failure.message.clone());
        } else if answered {
            d.take_resume();
        }
        let resumable = d.resume_point().is_some();
        d.recount(original.model.model());
        if d.whole_at_break(original, failure.retryable || refused) {
            d.attempt_failed();
            if let Some(point) = d.take_resume() {
                self.abandoned.push(point.response_id);
            }
            let mut last = Vec::new();
            d.complete(FinishReason::Length, route, &original.model, &mut last);
            return AfterBreak::Complete(last);
        }
        if resumable {
            // Its usage comes with the resumed response's end.
            self.resume = Resume::Next;
            return AfterBreak::Ask;
        }
        d.attempt_failed();
        d.recount(original.model.model());
        let content_began = d.delivered_anything();
        if content_began && strategy == Continuation::Prefill && is_prefill_rejection(failure) {
            self.strategy = Continuation::Instruct;
            return AfterBreak::Again;
        }
        if content_began && strategy == Continuation::Off {
            return AfterBreak::GiveUp;
        }
        if refused && !failure.retryable {
            return AfterBreak::Refused;
        }
        AfterBreak::Ask
    }

    /// The continuation restarted and differed from what the consumer has
    /// (nothing of it was delivered): fail, or restart the stream.
    pub(crate) fn after_divergence(&mut self) -> AfterDivergence {
        self.delivery().attempt_failed();
        match self.divergence {
            Divergence::Fail => AfterDivergence::Fail,
            Divergence::Restart => {
                self.strategy = Continuation::Restart;
                AfterDivergence::Restart
            }
        }
    }

    /// A retry after content (attempt number `attempt` next, at `provider`):
    /// a restart clears what was delivered and is announced now; a
    /// continuation's `Resumed` seam (and a discarded tool call) is pending
    /// before its text.
    pub(crate) fn seam_for_retry(&mut self, attempt: u32, provider: &str) -> RetrySeam {
        let strategy = self.strategy;
        let server = self.resume == Resume::Next;
        let d = self.delivery.get_or_insert_with(Box::default);
        if !d.delivered_anything() {
            if !server {
                // Asked again: what reasoning it gave is thought again.
                let broken = d.reasoning_broken(true);
                d.set_seam(broken);
            }
            return RetrySeam::None;
        }
        let offset = d.checkpoint.chars;
        if server {
            // The same response goes on: no call is interrupted.
            d.set_seam(vec![StreamEvent::Resumed {
                attempt,
                offset,
                provider: provider.to_string(),
                by: ResumedBy::Server,
            }]);
            return RetrySeam::Resumed {
                offset,
                server: true,
            };
        }
        let by = match self.refused.take() {
            Some(refusal) => ResumedBy::ContinuationAfterRefusal { refusal },
            None => ResumedBy::Continuation,
        };
        if strategy == Continuation::Restart {
            d.restart();
            let broken = d.reasoning_broken(true);
            d.set_seam(broken);
            return RetrySeam::Restarted(StreamEvent::Restarted { attempt });
        }
        d.set_seam(vec![StreamEvent::Resumed {
            attempt,
            offset,
            provider: provider.to_string(),
            by,
        }]);
        let mut broken = d.reasoning_broken(false);
        d.pending_seam.append(&mut broken);
        if let Some(index) = d.interrupted_call() {
            d.pending_seam
                .push(StreamEvent::ToolCallDiscarded { index });
        }
        RetrySeam::Resumed {
            offset,
            server: false,
        }
    }

    /// The stream moves to `target` (whose server continues a prefill as
    /// `prefill` says): its strategy, and after content a pending seam
    /// (`FailedOver`, or `Restarted` where it starts again).
    /// The attempt in flight moved, before any content, to a target whose
    /// server continues a prefill as `prefill` says (a hedge that took the
    /// lead): only the continuation strategy changes (the delivery is lent).
    pub(crate) fn took_over(&mut self, prefill: Prefill) {
        self.strategy = strategy_for(self.asked, prefill);
    }

    pub(crate) fn failed_over(&mut self, target: &ModelId, prefill: Prefill) {
        self.abandon_resume();
        self.refused = None;
        self.strategy = strategy_for(self.asked, prefill);
        let strategy = self.strategy;
        let d = self.delivery();
        if !d.delivered_anything() {
            let broken = d.reasoning_broken(true);
            d.set_seam(broken);
            return;
        }
        if strategy == Continuation::Restart {
            d.restart();
            d.set_seam(vec![StreamEvent::Restarted { attempt: 1 }]);
            let mut broken = d.reasoning_broken(true);
            d.pending_seam.append(&mut broken);
        } else {
            d.set_seam(vec![StreamEvent::FailedOver {
                attempt: 1,
                offset: d.checkpoint.chars,
                target: target.to_string(),
            }]);
            let mut broken = d.reasoning_broken(false);
            d.pending_seam.append(&mut broken);
            if let Some(index) = d.interrupted_call() {
                d.pending_seam
                    .push(StreamEvent::ToolCallDiscarded { index });
            }
        }
    }
}

#[cfg(test)]
mod tests;
