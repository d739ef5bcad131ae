//! What a stream has delivered and what it delivers next: the checkpoint, the
//! seam of a continuation, seam events waiting for their first text, tool calls,
//! usage and the finish reason. Plain logic: one provider event in, the events
//! for the consumer out.
//!
//! The stream actor owns a [`Delivery`] between attempts; for each attempt it
//! lends it to that attempt's reader (which runs where the consumer reads) and
//! gets it back with the attempt's outcome, so that exactly one of them holds it
//! at any time.

use std::time::Duration;

use super::checkpoint::{estimate_tokens, Checkpoint, Seam};

use super::calls::StreamCalls;
use super::continuation::{delta_limit, tokens_left, DeltaLimit};
use super::reasoning::StreamReasoning;
use crate::model::{
    ChatRequest, FinishReason, ModelId, ProviderEvent, ResumePoint, RouteStep, StreamEvent, Usage,
};
use crate::wire::stop::StopScan;

/// The delivery state of one stream.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// What the consumer has.
    pub checkpoint: Checkpoint,
    /// Usage of the attempts that ended.
    pub finished_usage: Usage,
    /// Usage the current attempt reported.
    pub attempt_usage: Option<Usage>,
    /// Text deltas the current attempt produced.
    pub attempt_deltas: u64,
    /// Whether the current attempt's usage came after its latest text delta
    /// (a count of all it generated, not a count from its start).
    usage_current: bool,
    /// Removes what a continuation repeats of the delivered text (boxed: only
    /// continuations have one, and every open stream carries the field).
    pub seam: Option<Box<Seam>>,
    /// Seam events (`Resumed`, `FailedOver`, `ToolCallDiscarded`) waiting for
    /// the continuation's first event, or for its end.
    pub pending_seam: Vec<StreamEvent>,
    /// Tool calls across attempts, once the stream has one (boxed: most streams
    /// have none, and every open stream carries the field).
    calls: Option<Box<StreamCalls>>,
    /// Whether the current attempt continues delivered content (a tool call's
    /// state made later starts from it).
    continuing: bool,
    /// Characters the consumer had when the current attempt began.
    chars_at_attempt: usize,
    /// A continuation's scan for the request's stop sequences (boxed: only
    /// continuations of requests with stop sequences have one).
    stop_scan: Option<Box<StopScan>>,
    /// Whether the consumer has its `Start`.
    pub start_sent: bool,
    /// When the first content reached the consumer, from the stream's start.
    pub first_content: Option<Duration>,
    /// The finish reason of the completed stream.
    pub finish_reason: Option<FinishReason>,
    /// Where the current attempt's background response can be resumed on the
    /// server (boxed: only background streams have one).
    resume: Option<Box<ResumeTrack>>,
    /// Text deltas of the current attempt's connections before a server-side
    /// resume.
    earlier_deltas: u64,
    /// A background response left running by a client-side stop: cancelled.
    pub left_running: Option<String>,
    /// Reasoning blocks across attempts (boxed: most streams have none).
    reasoning: Option<Box<StreamReasoning>>,
    /// Times the reply started again from its beginning (the consumer told
    /// to discard what it had).
    pub restarts: u32,
}

/// A background response's last resume point, and the content after it.
#[derive(Debug)]
struct ResumeTrack {
    point: ResumePoint,
    /// Content events handled after the point.
    since: u64,
    /// Content events a resumed connection repeats (handled before it broke).
    skip: u64,
    /// Whether a resumed connection got anything new.
    progressed: bool,
}

/// Who the stream is and what it asked: what the events it makes name.
pub(crate) struct Asked<'a> {
    /// The request as the caller made it (at the current target).
    pub original: &'a ChatRequest,
    /// The provider's name.
    pub provider: &'a str,
    /// When the stream started (time to first content runs from here).
    pub started: tokio::time::Instant,
    /// A grouped stream's route so far (its `Route` event precedes `Complete`).
    pub route: Option<&'a [RouteStep]>,
}

/// What became of a delta handed to the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivered {
    /// Sent (or held while it may begin a stop sequence).
    Sent,
    /// Not sent: a continuation's text past `max_tokens`.
    AtLimit,
    /// A stop sequence ended the reply: the text before it was sent.
    Stopped,
}

/// What one provider event did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// More to read.
    Continue,
    /// The stream is complete (its `Complete` is in the output).
    Complete,
    /// The continuation restarted and then differed from what the consumer
    /// has: it cannot be spliced, and nothing of it was delivered.
    Diverged,
}

impl Delivery {
    /// Whether any tool-call event reached the consumer.
    pub fn any_calls(&self) -> bool {
        self.calls.as_ref().is_some_and(|c| c.any())
    }

    /// The tool calls delivered whole.
    pub fn delivered_calls(&self) -> &[crate::tools::ToolCall] {
        self.calls.as_ref().map_or(&[], |c| c.delivered())
    }

    /// The attempt broke: the index of a call the consumer must discard, if one
    /// was being delivered.
    pub fn interrupted_call(&mut self) -> Option<usize> {
        self.calls.as_mut().and_then(|c| c.interrupted())
    }

    /// The reply starts again from scratch: the text and tool calls
    /// delivered are forgotten, and the restart counted.
    pub fn restart(&mut self) {
        self.checkpoint = Checkpoint::default();
        self.calls = None;
        self.restarts = self.restarts.saturating_add(1);
    }

    /// The current attempt's tokens as its server counted them, when it
    /// counted after its last delta or at its end; `None` when it did not.
    pub fn attempt_counted(&self) -> Option<Usage> {
        self.attempt_usage
            .filter(|_| self.usage_current || self.finish_reason.is_some())
    }

    /// Usage of every attempt so far.
    pub fn total_usage(&self) -> Usage {
        self.finished_usage
            .plus(self.attempt_usage.unwrap_or_default())
    }

    /// The reasoning state, made at the first block.
    fn reasoning_state(&mut self) -> &mut StreamReasoning {
        let continuing = self.continuing;
        self.reasoning.get_or_insert_with(|| {
            let mut r = Box::<StreamReasoning>::default();
            r.begin_attempt(continuing);
            r
        })
    }

    /// Whether anything (text or a tool call's events) reached the consumer.
    pub fn delivered_anything(&self) -> bool {
        !self.checkpoint.text.is_empty() || self.any_calls()
    }

    /// Whether the consumer has every token the request's `max_tokens` allows.
    pub fn budget_spent(&self, original: &ChatRequest) -> bool {
        tokens_left(original, &self.checkpoint) == Some(0)
    }

    /// Whether a stream that broke with a `retryable` failure is whole anyway:
    /// the consumer has text and every token `max_tokens` allows, so nothing is
    /// missing and nothing is asked for. Only text counts against the budget
    /// here, so only a request that can produce nothing but text (no tools) is
    /// whole at its last allowed token; a failure that is not retryable ends the
    /// stream as an error whatever was delivered.
    pub fn whole_at_break(&self, original: &ChatRequest, retryable: bool) -> bool {
        retryable
            && original.tools.is_empty()
            && self.delivered_anything()
            && self.budget_spent(original)
    }

    /// Counts the tokens the consumer has: as the provider counted them where
    /// every attempt reported its count ([`Checkpoint::provider_count`]), else
    /// as `model` would, with its tokenizer where it is public (OpenAI's, once
    /// loaded), else on the high side ([`estimate_tokens`] of the whole text: a
    /// failover from an OpenAI model must not keep that model's count). Later
    /// deltas add their estimates.
    pub fn recount(&mut self, model: &str) {
        let text = &self.checkpoint.text;
        self.checkpoint.tokens = self.checkpoint.provider_count().unwrap_or_else(|| {
            crate::tokens::count(model, text).unwrap_or_else(|| estimate_tokens(text))
        });
    }

    /// Sets the seam the next content comes behind. One the consumer has not
    /// seen yet is replaced, but not its discards: a reasoning block or a
    /// tool call the consumer holds is still taken back (an attempt that broke
    /// before its first content would otherwise drop them).
    pub fn set_seam(&mut self, seam: Vec<StreamEvent>) {
        let mut kept: Vec<StreamEvent> = std::mem::take(&mut self.pending_seam)
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    StreamEvent::ReasoningDiscarded { .. } | StreamEvent::ToolCallDiscarded { .. }
                )
            })
            .collect();
        for e in seam {
            if !kept.contains(&e) {
                kept.push(e);
            }
        }
        self.pending_seam = kept;
    }

    /// The attempt broke: the seam events that discard its reasoning (the
    /// block it broke in; every block of it when `restarts`).
    pub fn reasoning_broken(&mut self, restarts: bool) -> Vec<StreamEvent> {
        let Some(r) = self.reasoning.as_mut() else {
            return Vec::new();
        };
        let discarded = r.broken(restarts);
        // What the turn still holds counts toward the limit.
        self.checkpoint.reasoning_tokens = r
            .turn()
            .iter()
            .map(|b| estimate_tokens(&b.text()).max(1))
            .fold(0u64, u64::saturating_add);
        discarded
    }

    /// The whole reasoning blocks of the turn (a prefill carries them).
    pub fn turn_reasoning(&self) -> &[crate::reasoning::Reasoning] {
        self.reasoning.as_ref().map_or(&[], |r| r.turn())
    }

    /// Where the current attempt's background response can be resumed.
    pub fn resume_point(&self) -> Option<&ResumePoint> {
        self.resume.as_ref().map(|r| &r.point)
    }

    /// Forgets the resume point (the response is abandoned), returning it.
    pub fn take_resume(&mut self) -> Option<ResumePoint> {
        self.resume.take().map(|r| r.point)
    }

    /// Whether the connection resumed last got anything new.
    pub fn resume_progressed(&self) -> bool {
        self.resume.as_ref().is_some_and(|r| r.progressed)
    }

    /// The current attempt goes on in a connection resumed at its point: the
    /// content it repeats (read after the point before the break) is skipped,
    /// and everything else (usage, seam, calls, stop scan) carries on.
    pub fn begin_resume(&mut self) {
        self.earlier_deltas = self.earlier_deltas.saturating_add(self.attempt_deltas);
        self.attempt_deltas = 0;
        self.usage_current = false;
        if let Some(r) = self.resume.as_mut() {
            r.skip = r.since;
            r.since = 0;
            r.progressed = false;
        }
    }

    /// Whether `event` is content a resumed connection repeats (then skipped);
    /// counts content after the resume point either way.
    fn replayed(&mut self, event: &ProviderEvent) -> bool {
        let content = matches!(
            event,
            ProviderEvent::TextDelta { .. }
                | ProviderEvent::ToolCallStart { .. }
                | ProviderEvent::ToolCallDelta { .. }
                | ProviderEvent::ToolCall { .. }
                | ProviderEvent::ReasoningDelta { .. }
                | ProviderEvent::Reasoning { .. }
        );
        let Some(r) = self.resume.as_mut().filter(|_| content) else {
            return false;
        };
        r.since = r.since.saturating_add(1);
        if r.skip > 0 {
            r.skip -= 1;
            return true;
        }
        r.progressed = true;
        false
    }

    /// A new resume point: content is counted after it.
    fn resumable(&mut self, point: ResumePoint) {
        match self.resume.as_mut() {
            Some(r) if r.point.response_id == point.response_id && r.point.after >= point.after => {
            }
            Some(r) => {
                r.progressed |= r.skip == 0;
                r.point = point;
                r.since = 0;
            }
            None => {
                self.resume = Some(Box::new(ResumeTrack {
                    point,
                    since: 0,
                    skip: 0,
                    progressed: false,
                }))
            }
        }
    }

    /// A new attempt starts: its usage and deltas count from zero.
    pub fn begin_attempt(&mut self, continuing: bool) {
        self.chars_at_attempt = self.checkpoint.chars;
        self.attempt_usage = None;
        self.attempt_deltas = 0;
        self.earlier_deltas = 0;
        self.resume = None;
        if let Some(r) = self.reasoning.as_mut() {
            r.begin_attempt(continuing);
        }
        self.usage_current = false;
        self.continuing = continuing;
        self.stop_scan = None;
        if let Some(calls) = self.calls.as_mut() {
            calls.begin_attempt(continuing);
        }
    }

    /// The attempt failed: its usage (or, when it reported none, its deltas)
    /// joins the finished attempts'.
    pub fn attempt_failed(&mut self) {
        // What it delivered, as the provider counted it, if it said so after
        // its last delta.
        let deltas = self.attempt_deltas.saturating_add(self.earlier_deltas);
        self.earlier_deltas = 0;
        if deltas > 0 {
            match self.attempt_usage.filter(|_| self.usage_current) {
                Some(u) => {
                    self.checkpoint.provider_tokens = self
                        .checkpoint
                        .provider_tokens
                        .saturating_add(u.completion_tokens)
                }
                None => self.checkpoint.provider_uncounted = true,
            }
        }
        let attempt = self.attempt_usage.take().unwrap_or(Usage::new(0, deltas));
        self.finished_usage = self.finished_usage.plus(attempt);
    }

    /// Delivers one delta of the attempt. A continuation's text is scanned for
    /// the request's stop sequences (its server counts its tokens from the
    /// seam, so a stop sequence its limit cuts may still be one the whole reply
    /// ends before): what might begin one is held until the next delta says,
    /// and at one the reply ends before it.
    fn deliver(
        &mut self,
        text: String,
        asked: &Asked<'_>,
        out: &mut Vec<StreamEvent>,
    ) -> Delivered {
        if !self.continuing || asked.original.stop.is_empty() {
            return self.deliver_now(text, asked, out);
        }
        let scan = self
            .stop_scan
            .get_or_insert_with(|| Box::new(StopScan::new(asked.original.stop.clone())));
        let (pass, stopped) = scan.push(&text);
        match self.deliver_now(pass, asked, out) {
            Delivered::Sent if stopped => Delivered::Stopped,
            other => other,
        }
    }

    /// What a continuation's stop scan held back, now that the text ended:
    /// text of the reply up to a stop sequence it holds (one that waited on a
    /// longer one beginning before it), which then ends the reply.
    fn deliver_held(&mut self, asked: &Asked<'_>, out: &mut Vec<StreamEvent>) -> Delivered {
        match self.stop_scan.as_mut().map(|scan| scan.finish()) {
            Some((held, stopped)) => match self.deliver_now(held, asked, out) {
                Delivered::Sent if stopped => Delivered::Stopped,
                other => other,
            },
            None => Delivered::Sent,
        }
    }

    /// Delivers `text`, unless it is a continuation's and would take the
    /// consumer past the request's `max_tokens` (counted on the high side):
    /// then the continuation is cut there. A first attempt is never cut: the
    /// server keeps its own count.
    fn deliver_now(
        &mut self,
        text: String,
        asked: &Asked<'_>,
        out: &mut Vec<StreamEvent>,
    ) -> Delivered {
        if text.is_empty() {
            return Delivered::Sent;
        }
        // A continuation's text counts by its model's tokenizer too, where
        // that is public (a first attempt's is recounted whole at a break).
        let counted = if self.continuing {
            delta_limit(asked.original, &self.checkpoint, &text)
        } else {
            DeltaLimit::Unlimited
        };
        if counted == DeltaLimit::Over {
            return Delivered::AtLimit;
        }
        out.append(&mut self.pending_seam);
        if self.first_content.is_none() {
            self.first_content = Some(asked.started.elapsed());
        }
        let offset = match counted {
            DeltaLimit::Within(tokens) => self.checkpoint.deliver_counted(&text, tokens),
            DeltaLimit::Unlimited | DeltaLimit::Over => self.checkpoint.deliver(&text),
        };
        out.push(StreamEvent::TextDelta { text, offset });
        Delivered::Sent
    }

    /// The usage of every attempt, if the last one reported its own: the
    /// server's count (broken attempts before it that reported none count their
    /// deltas). `None` when the server reported nothing: unknown, never zero.
    pub fn reported_usage(&self) -> Option<Usage> {
        self.attempt_usage.map(|u| self.finished_usage.plus(u))
    }

    /// The stream ends at the token limit: what the consumer has is the whole
    /// reply `max_tokens` allows.
    pub fn complete_at_limit(&mut self, asked: &Asked<'_>, out: &mut Vec<StreamEvent>) {
        self.complete(
            FinishReason::Length,
            asked.route,
            &asked.original.model,
            out,
        );
    }

    /// The stream's last events, however it ends well: a grouped stream's route
    /// (`route` so far, then `answered`, the target asked last), then `Complete`
    /// with the usage of every attempt.
    pub fn complete(
        &mut self,
        finish_reason: FinishReason,
        route: Option<&[RouteStep]>,
        answered: &ModelId,
        out: &mut Vec<StreamEvent>,
    ) {
        if let Some(route) = route {
            let mut steps = route.to_vec();
            steps.push(RouteStep::answered(answered));
            out.push(StreamEvent::Route { steps });
        }
        self.finish_reason = Some(finish_reason.clone());
        out.push(StreamEvent::Complete {
            finish_reason,
            usage: self.reported_usage(),
        });
    }

    /// One event of the provider's stream: what the consumer gets of it goes to
    /// `out`. A response id is recorded on `span` (the last attempt's wins).
    pub fn on_event(
        &mut self,
        event: ProviderEvent,
        asked: &Asked<'_>,
        span: &tracing::Span,
        out: &mut Vec<StreamEvent>,
    ) -> Step {
        if self.replayed(&event) {
            return Step::Continue;
        }
        match event {
            ProviderEvent::Resumable(point) => self.resumable(point),
            ProviderEvent::ReasoningDelta { index, text } => {
                // Thinking is billed as output, and shows the stream alive.
                self.attempt_deltas = self.attempt_deltas.saturating_add(1);
                let event = self.reasoning_state().delta(index, text);
                out.append(&mut self.pending_seam);
                out.push(event);
            }
            ProviderEvent::Reasoning { index, block } => {
                if !self.continuing {
                    let tokens = estimate_tokens(&block.text()).max(1);
                    let c = &mut self.checkpoint;
                    c.reasoning_tokens = c.reasoning_tokens.saturating_add(tokens);
                }
                if let Some(event) = self.reasoning_state().whole(index, block) {
                    out.append(&mut self.pending_seam);
                    out.push(event);
                }
            }
            ProviderEvent::LeftRunning { response_id } => self.left_running = Some(response_id),
            ProviderEvent::Start {
                provider_request_id,
                ..
            } => {
                self.checkpoint.provider_request_id = provider_request_id.clone();
                if !self.start_sent {
                    self.start_sent = true;
                    out.push(StreamEvent::Start {
                        request_id: asked.original.request_id.clone(),
                        provider: asked.provider.to_string(),
                        model: asked.original.model.model().to_string(),
                        provider_request_id,
                    });
                }
            }
            ProviderEvent::TextDelta { text, .. } => {
                self.attempt_deltas = self.attempt_deltas.saturating_add(1);
                self.usage_current = false;
                let delivered = match self.seam.as_mut() {
                    Some(seam) => {
                        let pieces = seam.push(text);
                        if seam.diverged() {
                            return Step::Diverged;
                        }
                        let mut delivered = Delivered::Sent;
                        for p in pieces {
                            delivered = self.deliver(p, asked, out);
                            if delivered != Delivered::Sent {
                                break;
                            }
                        }
                        delivered
                    }
                    None => self.deliver(text, asked, out),
                };
                match delivered {
                    Delivered::Sent => {}
                    Delivered::AtLimit => {
                        self.complete_at_limit(asked, out);
                        return Step::Complete;
                    }
                    Delivered::Stopped => {
                        out.append(&mut self.pending_seam);
                        self.complete(FinishReason::Stop, asked.route, &asked.original.model, out);
                        return Step::Complete;
                    }
                }
            }
            ProviderEvent::ResponseId { id } => {
                span.record("gen_ai.response.id", id.as_str());
            }
            ProviderEvent::Usage(u) => {
                self.attempt_usage = Some(u);
                self.usage_current = true;
                out.push(StreamEvent::Usage(self.total_usage()));
            }
            ProviderEvent::Complete {
                finish_reason,
                usage,
            } => {
                // The response ended: nothing to resume or cancel.
                self.resume = None;
                // A continuation its limit cut may have been cut while it
                // repeated delivered text; one that ended on its own said
                // what it held.
                let cut = matches!(
                    finish_reason,
                    FinishReason::Length | FinishReason::ContentFilter
                );
                let rest = match self.seam.as_mut() {
                    Some(seam) if cut => seam.finish_cut(),
                    Some(seam) => seam.finish(),
                    None => Vec::new(),
                };
                if self.seam.as_ref().is_some_and(|s| s.diverged()) {
                    return Step::Diverged;
                }
                let mut stopped = false;
                for piece in rest {
                    if self.deliver(piece, asked, out) == Delivered::Stopped {
                        stopped = true;
                        break;
                    }
                }
                if !stopped {
                    stopped = self.deliver_held(asked, out) == Delivered::Stopped;
                }
                // A continuation asked for when the consumer already had every
                // token the limit allows (a request that offers tools is asked
                // rather than closed at its last token, for the calls that may
                // follow) that added no text and said `stop` ends cut by the
                // limit: the reply a server gives at its limit. (Calls it
                // brought keep their `tool_calls`.)
                let at_limit = self.continuing
                    && finish_reason == FinishReason::Stop
                    && self.checkpoint.chars == self.chars_at_attempt
                    && self.budget_spent(asked.original);
                let finish_reason = if stopped {
                    FinishReason::Stop
                } else if at_limit {
                    FinishReason::Length
                } else {
                    finish_reason
                };
                // A continuation with nothing left to say: the seam is still
                // where it took over.
                out.append(&mut self.pending_seam);
                if usage.is_some() {
                    self.attempt_usage = usage;
                }
                self.complete(finish_reason, asked.route, &asked.original.model, out);
                return Step::Complete;
            }
            event @ (ProviderEvent::ToolCallStart { .. }
            | ProviderEvent::ToolCallDelta { .. }
            | ProviderEvent::ToolCall { .. }) => {
                let mut now = Vec::new();
                let continuing = self.continuing;
                let calls = self.calls.get_or_insert_with(|| {
                    let mut calls = Box::<StreamCalls>::default();
                    calls.begin_attempt(continuing);
                    calls
                });
                calls.on_event(event, &mut now);
                if !now.is_empty() {
                    out.append(&mut self.pending_seam);
                    out.append(&mut now);
                }
            }
        }
        Step::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(req: &ChatRequest) -> Asked<'_> {
        Asked {
            original: req,
            provider: "openai",
            started: tokio::time::Instant::now(),
            route: None,
        }
    }

    fn delta(text: &str) -> ProviderEvent {
        ProviderEvent::TextDelta {
            text: text.into(),
            offset: 0,
        }
    }

    #[test]
    fn text_is_delivered_at_its_offset_and_the_seam_waits_for_it() {
        let req = ChatRequest::new("openai/m").expect("model").user("hi");
        let mut d = Delivery {
            pending_seam: vec![StreamEvent::Restarted { attempt: 2 }],
            ..Delivery::default()
        };
        let mut out = Vec::new();
        let span = tracing::Span::none();
        assert_eq!(
            d.on_event(delta(""), &asked(&req), &span, &mut out),
            Step::Continue
        );
        assert!(out.is_empty(), "an empty delta releases nothing");
        d.on_event(delta("Hello"), &asked(&req), &span, &mut out);
        d.on_event(delta(" world"), &asked(&req), &span, &mut out);
        assert!(matches!(out[0], StreamEvent::Restarted { attempt: 2 }));
        assert!(matches!(&out[1], StreamEvent::TextDelta { text, offset: 0 } if text == "Hello"));
        assert!(matches!(&out[2], StreamEvent::TextDelta { text, offset: 5 } if text == " world"));
        assert_eq!(d.checkpoint.text, "Hello world");
        assert!(d.first_content.is_some());
    }

    #[test]
    fn a_break_is_whole_only_after_the_last_allowed_token_of_a_text_only_request() {
        let limited = ChatRequest::new("openai/m")
            .expect("model")
            .user("hi")
            .max_tokens(2);
        let (span, mut out) = (tracing::Span::none(), Vec::new());
        let mut d = Delivery::default();
        assert!(!d.whole_at_break(&limited, true), "nothing delivered yet");
        d.on_event(delta("a"), &asked(&limited), &span, &mut out);
        assert!(!d.whole_at_break(&limited, true), "one token of two");
        d.on_event(delta("b"), &asked(&limited), &span, &mut out);
        assert!(d.whole_at_break(&limited, true));
        assert!(
            !d.whole_at_break(&limited, false),
            "a failure that is not retryable stays an error"
        );
        let tool = crate::tools::Tool::new("f", serde_json::json!({"type": "object"}));
        let with_tools = limited.clone().tool(tool);
        assert!(
            !d.whole_at_break(&with_tools, true),
            "a tool call may still be owed"
        );
        let unlimited = ChatRequest::new("openai/m").expect("model").user("hi");
        assert!(!d.whole_at_break(&unlimited, true), "no limit, never whole");
    }

    #[test]
    fn a_first_attempt_is_never_cut_client_side() {
        let req = ChatRequest::new("openai/m")
            .expect("model")
            .user("hi")
            .max_tokens(1);
        let mut d = Delivery::default();
        d.begin_attempt(false);
        let (span, mut out) = (tracing::Span::none(), Vec::new());
        for piece in ["Several tokens ", "in one chunk"] {
            assert_eq!(
                d.on_event(delta(piece), &asked(&req), &span, &mut out),
                Step::Continue
            );
        }
        assert_eq!(d.checkpoint.text, "Several tokens in one chunk");
        d.on_event(
            ProviderEvent::Complete {
                finish_reason: FinishReason::Stop,
                usage: None,
            },
            &asked(&req),
            &span,
            &mut out,
        );
        assert_eq!(
            out.last(),
            Some(&StreamEvent::Complete {
                finish_reason: FinishReason::Stop,
                usage: None
            }),
            "the server's finish reason, and no usage made up"
        );
    }

    #[test]
    fn a_continuation_is_cut_at_max_tokens_and_completes_there() {
        let req = ChatRequest::new("openai/m")
            .expect("model")
            .user("hi")
            .max_tokens(2);
        let mut d = Delivery::default();
        d.begin_attempt(true);
        let (span, mut out) = (tracing::Span::none(), Vec::new());
        assert_eq!(
            d.on_event(delta("a"), &asked(&req), &span, &mut out),
            Step::Continue
        );
        assert_eq!(
            d.on_event(delta("b"), &asked(&req), &span, &mut out),
            Step::Continue
        );
        assert_eq!(
            d.on_event(delta("c"), &asked(&req), &span, &mut out),
            Step::Complete
        );
        assert_eq!(d.checkpoint.text, "ab");
        assert!(matches!(
            out.last(),
            Some(StreamEvent::Complete {
                finish_reason: FinishReason::Length,
                ..
            })
        ));
    }

    #[test]
    fn a_continuation_ends_before_a_stop_sequence_even_one_split_across_deltas() {
        let req = ChatRequest::new("openai/m")
            .expect("model")
            .user("hi")
            .stop("ivory");
        let (span, mut out) = (tracing::Span::none(), Vec::new());
        let mut d = Delivery::default();
        d.begin_attempt(true);
        for piece in ["Quiver i", "v"] {
            assert_eq!(
                d.on_event(delta(piece), &asked(&req), &span, &mut out),
                Step::Continue
            );
        }
        assert_eq!(
            d.checkpoint.text, "Quiver ",
            "what may begin the stop waits"
        );
        assert_eq!(
            d.on_event(delta("ory and more"), &asked(&req), &span, &mut out),
            Step::Complete
        );
        assert_eq!(d.checkpoint.text, "Quiver ");
        assert!(matches!(
            out.last(),
            Some(StreamEvent::Complete {
                finish_reason: FinishReason::Stop,
                ..
            })
        ));
        // Held text that turned out not to be one is delivered at the end.
        let (mut d, mut out) = (Delivery::default(), Vec::new());
        d.begin_attempt(true);
        d.on_event(delta("an iv"), &asked(&req), &span, &mut out);
        let end = ProviderEvent::Complete {
            finish_reason: FinishReason::Length,
            usage: None,
        };
        assert_eq!(
            d.on_event(end, &asked(&req), &span, &mut out),
            Step::Complete
        );
        assert_eq!(d.checkpoint.text, "an iv");
        // A first attempt is the server's to stop: it passes as it comes.
        let (mut d, mut out) = (Delivery::default(), Vec::new());
        d.begin_attempt(false);
        d.on_event(delta("an iv"), &asked(&req), &span, &mut out);
        assert_eq!(d.checkpoint.text, "an iv");
    }

    #[test]
    fn a_grouped_stream_cut_at_max_tokens_sends_its_route_before_complete() {
        let req = ChatRequest::new("anthropic/m")
            .expect("model")
            .user("hi")
            .max_tokens(1);
        let before = [RouteStep {
            target: "openai/m".into(),
            outcome: "server_error".into(),
            back_in: None,
        }];
        let asked = Asked {
            route: Some(&before),
            ..asked(&req)
        };
        let mut d = Delivery::default();
        d.begin_attempt(true);
        let (span, mut out) = (tracing::Span::none(), Vec::new());
        d.on_event(delta("a"), &asked, &span, &mut out);
        assert_eq!(
            d.on_event(delta("b"), &asked, &span, &mut out),
            Step::Complete
        );
        let steps = out.iter().find_map(|e| match e {
            StreamEvent::Route { steps } => Some(steps),
            _ => None,
        });
        let targets: Vec<_> = steps
            .expect("a Route event")
            .iter()
            .map(|s| (s.target.as_str(), s.outcome.as_str()))
            .collect();
        assert_eq!(
            targets,
            [("openai/m", "server_error"), ("anthropic/m", "answered")]
        );
        assert!(matches!(
            out.last(),
            Some(StreamEvent::Complete {
                finish_reason: FinishReason::Length,
                ..
            })
        ));
    }

    #[test]
    fn a_continuation_that_restarts_and_differs_is_never_delivered() {
        let req = ChatRequest::new("openai/m").expect("model").user("hi");
        let mut d = Delivery::default();
        let (span, mut out) = (tracing::Span::none(), Vec::new());
        d.on_event(
            delta("The river runs to the sea. "),
            &asked(&req),
            &span,
            &mut out,
        );
        d.attempt_failed();
        d.begin_attempt(true);
        d.seam = Some(Box::new(
            Seam::overlap("The river runs to the sea. ").verified_against(&d.checkpoint.text),
        ));
        out.clear();
        assert_eq!(
            d.on_event(delta("The river runs "), &asked(&req), &span, &mut out),
            Step::Continue
        );
        assert_eq!(
            d.on_event(delta("north."), &asked(&req), &span, &mut out),
            Step::Diverged
        );
        assert!(out.is_empty(), "nothing of it delivered: {out:?}");
        assert_eq!(d.checkpoint.text, "The river runs to the sea. ");
    }

    #[test]
    fn usage_adds_up_across_attempts() {
        let req = ChatRequest::new("openai/m").expect("model").user("hi");
        let mut d = Delivery::default();
        let (span, mut out) = (tracing::Span::none(), Vec::new());
        d.on_event(delta("a"), &asked(&req), &span, &mut out);
        d.attempt_failed();
        d.begin_attempt(true);
        d.on_event(
            ProviderEvent::Usage(Usage::new(5, 3)),
            &asked(&req),
            &span,
            &mut out,
        );
        assert_eq!(
            d.total_usage(),
            Usage::new(5, 4),
            "one delta of the broken attempt, then 3"
        );
    }
}
