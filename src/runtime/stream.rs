//! The stream actor: one per streamed request. It runs each attempt's event stream
//! itself, keeps the checkpoint (text delivered, chunks, usage, provider request id)
//! as its own state after every delta, and on a retryable failure after content
//! began sends a continuation request and splices its output at a `Resumed` seam.
//!
//! Its domain logic (checkpoint, seam) lives in `steer_actors::stream`; it sits in
//! this crate because the events it produces are the SDK's own `StreamEvent`s.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix::prelude::*;
use futures::channel::{mpsc, oneshot};
use futures::SinkExt;
use futures::{FutureExt, Stream, StreamExt};
use steer_actors::attempt_loop::{self, AttemptLoop, RequestCore, Stop};
use steer_actors::breaker::{report_failure, CallOutcome, PermitLease};
use steer_actors::meters::GaugeGuard;
use steer_actors::partials::{PartialResponse, PartialStore, StorePartial};
use steer_actors::request::RequestSpec;
use steer_actors::retry::{AttemptAbandoned, GiveUp, RequestEnd};
use steer_actors::stream::{Checkpoint, Seam};
use steer_actors::ProviderActors;
use steer_actors::{Category, Failure};
use tokio::sync::OwnedSemaphorePermit;

use super::continuation::{
    continuation_request, is_prefill_rejection, strategy_for, tokens_left, Continuation,
};
use super::group::{after_failure, earliest_back, recovery_wait, Group, Move};
use super::stream_calls::StreamCalls;
use super::trace;
use crate::classify::classify;
use crate::error::{Error, FailedRequest, ProviderError};
use crate::model::{ChatRequest, FinishReason, ModelId, RouteStep, StreamEvent, Usage};
use crate::provider::{EventStream, Provider};

/// Batches of events waiting for a slow consumer, at most (each at most `BATCH`
/// events): past this the actor stops reading the HTTP body (backpressure)
/// instead of buffering.
pub(crate) const STREAM_BUFFER: usize = 4;
/// The next event of a provider's stream, with a panic in provider code caught.
fn guarded_next(
    stream: &mut EventStream,
) -> futures::future::CatchUnwind<
    std::panic::AssertUnwindSafe<futures::stream::Next<'_, EventStream>>,
> {
    std::panic::AssertUnwindSafe(stream.next()).catch_unwind()
}

/// Events read from the body in one go before the actor handles them.
const BATCH: usize = 64;

/// Timeouts and policy of one stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamSettings {
    /// What every request has (its `attempt_timeout` runs until the response headers).
    pub spec: RequestSpec,
    pub first_token_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub continuation: Continuation,
    /// Whether the span records prompt and reply text.
    pub record_content: bool,
}

type Item = Result<StreamEvent, Error>;

/// Finds a target's provider and actors.
pub(crate) type Resolve =
    Arc<dyn Fn(&ModelId) -> Option<(Arc<dyn Provider>, Arc<ProviderActors>)> + Send + Sync>;

/// The route's next target (a forced fallback first), with its provider and actors.
fn pick_next(
    route: &mut StreamRoute,
    mut forced: Option<ModelId>,
) -> Option<(ModelId, Arc<dyn Provider>, Arc<ProviderActors>)> {
    loop {
        let target = match forced.take() {
            Some(t) => t,
            None => route.client.pick_target(&route.group, &route.tried)?,
        };
        route.tried.push(target.clone());
        if let Some((provider, actors)) = (route.resolve)(&target) {
            return Some((target, provider, actors));
        }
    }
}

/// The route of a stream that names a model group.
pub(crate) struct StreamRoute {
    /// The group's name (for logs).
    pub name: String,
    pub group: Group,
    /// For the targets' load (selection).
    pub client: super::Client,
    pub tried: Vec<ModelId>,
    pub steps: Vec<RouteStep>,
    pub resolve: Resolve,
    /// The continuation asked for (each target's strategy derives from it).
    pub continuation: Continuation,
    /// Whether the stream already waited for a target to come back.
    pub waited: bool,
}
/// What travels to the consumer: a batch of events, so that one channel slot is
/// small (a `Vec`) and a burst of events costs one send.
type EventBatch = Vec<Item>;

/// What one read from the body produced.
enum Batch {
    Items {
        items: Vec<Result<StreamEvent, ProviderError>>,
        /// The provider's stream panicked after these items.
        panicked: bool,
    },
    TimedOut {
        first_token: bool,
        /// The request's deadline, not the stream's own timeout, cut the wait.
        by_deadline: bool,
    },
}

pub(crate) struct StreamActor {
    provider: Arc<dyn Provider>,
    original: Arc<ChatRequest>,
    core: RequestCore,
    first_token_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    strategy: Continuation,
    partials: Addr<PartialStore>,
    tx: mpsc::Sender<EventBatch>,
    /// Resolves when the consumer drops its stream.
    consumer_gone: Option<oneshot::Receiver<()>>,
    checkpoint: Checkpoint,
    finished_usage: Usage,
    attempt_usage: Option<Usage>,
    attempt_deltas: u64,
    seam: Option<Seam>,
    /// Seam events (`Resumed`, `ToolCallDiscarded`) waiting for the continuation's
    /// first event, or for its end.
    pending_seam: Vec<StreamEvent>,
    calls: StreamCalls,
    start_sent: bool,
    lease: Option<PermitLease>,
    done: bool,
    route: Option<Box<StreamRoute>>,
    /// A grouped stream counts as in flight at its current target.
    in_flight_at: Option<super::target_load::InFlight>,
    /// Counts the stream open at its provider while it lives.
    open_gauge: GaugeGuard,
    /// When the first content reached the consumer, from the stream's start.
    first_content: Option<Duration>,
    /// The finish reason of the completed stream.
    finish_reason: Option<FinishReason>,
    record_content: bool,
}

impl StreamActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        provider: Arc<dyn Provider>,
        original: ChatRequest,
        settings: StreamSettings,
        actors: Arc<ProviderActors>,
        partials: Addr<PartialStore>,
        tx: mpsc::Sender<EventBatch>,
        consumer_gone: oneshot::Receiver<()>,
        admission: OwnedSemaphorePermit,
    ) -> Self {
        let StreamSettings {
            spec,
            first_token_timeout,
            idle_timeout,
            continuation,
            record_content,
        } = settings;
        let span = trace::request_span(&original, trace::Kind::Stream, record_content);
        let open_gauge = actors.meters.open_stream(spec.provider.clone());
        let strategy = strategy_for(continuation, provider.name(), original.model.model());
        StreamActor {
            core: RequestCore::new(spec, actors, span, Some(admission)),
            first_token_timeout,
            idle_timeout,
            strategy,
            provider,
            original: Arc::new(original),
            partials,
            tx,
            consumer_gone: Some(consumer_gone),
            checkpoint: Checkpoint::default(),
            finished_usage: Usage::default(),
            attempt_usage: None,
            attempt_deltas: 0,
            seam: None,
            pending_seam: Vec::new(),
            calls: StreamCalls::default(),
            start_sent: false,
            lease: None,
            done: false,
            route: None,
            in_flight_at: None,
            open_gauge,
            first_content: None,
            finish_reason: None,
            record_content,
        }
    }

    /// Carries the stream through a model group's targets.
    pub(crate) fn with_route(mut self, route: StreamRoute) -> Self {
        self.in_flight_at = route
            .client
            .target_load(&self.original.model)
            .map(|l| l.start());
        self.route = Some(Box::new(route));
        self
    }

    /// The stream's target gave up with `error`: moves to the next target of its
    /// group, if it has one and the group's rules say so, continuing from the
    /// checkpoint in the new target's wire format behind a `FailedOver` seam.
    /// `false` when the stream ends here.
    fn fail_over(&mut self, error: &Error, end: RequestEnd, ctx: &mut Context<Self>) -> bool {
        let Some(mut route) = self.route.take() else {
            return false;
        };
        let current = self.original.model.clone();
        route.steps.push(RouteStep::failed(&current, error));
        let forced = match after_failure(&route.group, error) {
            Move::Next => None,
            Move::Fallback(t) if !route.tried.contains(&t) => Some(t),
            Move::Fallback(_) | Move::Stop => {
                self.route = Some(route);
                return false;
            }
        };
        if self.delivered_anything() && self.strategy == Continuation::Off {
            self.route = Some(route);
            return false;
        }
        match pick_next(&mut route, forced) {
            Some((target, provider, actors)) => {
                tracing::info!(parent: &self.core.span, group = %route.name, from = %current, to = %target, "steer.failover");
                self.core.actors.meters.failover(
                    &route.name,
                    &current.to_string(),
                    &target.to_string(),
                );
                // The leg ends at its target (its coordinator counts it there).
                attempt_loop::report_end(self, end);
                self.switch(route, target, provider, actors, ctx);
            }
            None => self.route_exhausted(route, end, ctx),
        }
        true
    }

    /// Every target is unavailable: waits, once, for the earliest to come back if
    /// that fits the deadline, else ends with [`Error::GroupExhausted`].
    fn route_exhausted(
        &mut self,
        mut route: Box<StreamRoute>,
        end: RequestEnd,
        ctx: &mut Context<Self>,
    ) {
        let time_left = self.core.progress.time_left();
        if let Some(wait) = recovery_wait(&route.steps, route.waited, time_left) {
            route.waited = true;
            route.tried.clear();
            self.route = Some(route);
            ctx.run_later(wait, move |act, ctx| {
                let Some(mut route) = act.route.take() else {
                    return;
                };
                match pick_next(&mut route, None) {
                    Some((target, provider, actors)) => {
                        attempt_loop::report_end(act, end);
                        act.switch(route, target, provider, actors, ctx)
                    }
                    None => act.route_exhausted(route, end, ctx),
                }
            });
            return;
        }
        let e = Error::GroupExhausted {
            group: route.name.clone(),
            steps: route.steps.clone(),
            back_in: earliest_back(&route.steps),
        };
        self.route = Some(route);
        self.end(Some(e), end, ctx);
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
        self.strategy = strategy_for(route.continuation, target.provider(), target.model());
        self.in_flight_at = route.client.target_load(&target).map(|l| l.start());
        if self.delivered_anything() {
            if self.strategy == Continuation::Restart {
                self.checkpoint = Checkpoint::default();
                self.calls.reset();
                self.pending_seam = vec![StreamEvent::Restarted { attempt: 1 }];
            } else {
                self.pending_seam = vec![StreamEvent::FailedOver {
                    attempt: 1,
                    offset: self.checkpoint.chars,
                    target: target.to_string(),
                }];
                if let Some(index) = self.calls.interrupted() {
                    self.pending_seam
                        .push(StreamEvent::ToolCallDiscarded { index });
                }
            }
        }
        self.route = Some(route);
        attempt_loop::next_attempt(self, ctx);
    }

    fn total_usage(&self) -> Usage {
        let current = self.attempt_usage.unwrap_or_default();
        self.finished_usage.plus(current)
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
        attempt_loop::report_end(self, end);
        let store = error.as_ref().and_then(|_| self.partial_record());
        let partials = self.partials.clone();
        let mut tx = self.tx.clone();
        ctx.spawn(
            actix::fut::wrap_future(async move {
                if let Some(record) = store {
                    let _ = partials.send(StorePartial(record)).await;
                }
                if let Some(e) = error {
                    let _ = tx.send(vec![Err(e)]).await;
                }
            })
            .map(|_, _: &mut Self, ctx: &mut Context<Self>| ctx.stop()),
        );
    }

    /// Records how the stream ended on its span and meters: its outcome, time to
    /// first content, finish reason and tokens.
    fn record_end(&mut self, error: Option<&Error>, end: RequestEnd) {
        let span = &self.core.span;
        let usage = self.total_usage();
        match error {
            Some(e) => trace::record_error(span, e),
            None => {
                span.record("gen_ai.response.model", self.original.model.model());
                let finish = self.finish_reason.clone().unwrap_or(FinishReason::Stop);
                trace::record_end(span, &finish, usage);
                if self.record_content {
                    span.record("gen_ai.output.messages", self.checkpoint.text.as_str());
                }
            }
        }
        let outcome = end.outcome();
        let meters = &self.core.actors.meters;
        if let Some(first) = self.first_content {
            meters.first_token(&self.core.labels, outcome, first);
        }
        meters.tokens(
            &self.core.labels,
            usage.prompt_tokens,
            usage.completion_tokens,
        );
    }

    /// The text delivered so far, if any (the error that ends the stream carries it).
    fn partial(&self) -> Option<String> {
        (!self.checkpoint.text.is_empty()).then(|| self.checkpoint.text.clone())
    }

    /// What the client's partial store keeps of a failed stream, if it delivered text.
    fn partial_record(&self) -> Option<PartialResponse> {
        self.partial().map(|text| PartialResponse {
            request_id: self.original.request_id.to_string(),
            provider: self.provider.name().to_string(),
            text,
            attempts: self.core.progress.attempts(),
            failure: self.core.last_failure.as_deref().cloned(),
        })
    }

    /// Whether anything (text or a tool call's events) reached the consumer.
    fn delivered_anything(&self) -> bool {
        !self.checkpoint.text.is_empty() || self.calls.any()
    }

    /// Whether the consumer has every token the request's `max_tokens` allows.
    fn budget_spent(&self) -> bool {
        tokens_left(&self.original, &self.checkpoint) == Some(0)
    }

    fn open(&mut self, lease: Option<PermitLease>, ctx: &mut Context<Self>) {
        self.core.begin_attempt();
        self.attempt_usage = None;
        self.attempt_deltas = 0;
        let continuing = self.delivered_anything();
        self.calls.begin_attempt(continuing);
        let request = if !continuing {
            self.seam = None;
            self.original.as_ref().clone()
        } else {
            let (req, seam) = continuation_request(
                &self.original,
                &self.checkpoint,
                self.strategy,
                self.calls.delivered(),
                self.calls.any(),
            );
            self.seam = Some(seam);
            req
        };
        self.lease = lease;
        self.core.in_flight = true;
        let provider = self.provider.clone();
        let limit = self
            .core
            .progress
            .attempt_limit(self.core.spec.attempt_timeout);
        let by_deadline = limit.is_some_and(|l| l.by_deadline);
        let timeout = limit.map(|l| l.duration);
        let connect = async move {
            let opening = std::panic::AssertUnwindSafe(provider.stream(&request)).catch_unwind();
            match timeout {
                Some(t) => tokio::time::timeout(t, opening).await.ok(),
                None => Some(opening.await),
            }
        };
        ctx.spawn(
            actix::fut::wrap_future(tracing::Instrument::instrument(
                connect,
                self.core.attempt_span.clone(),
            ))
            .map(move |opened, act: &mut Self, ctx| match opened {
                Some(Ok(Ok(stream))) => act.pump(stream, ctx),
                Some(Ok(Err(e))) => act.failed(classify(&e), Some(e), ctx),
                Some(Err(_panic)) => {
                    act.failed_with(Category::Unknown, "the provider panicked", ctx)
                }
                None if by_deadline => {
                    let lease = act.lease.take();
                    attempt_loop::deadline_cut(act, lease, ctx)
                }
                None => act.failed_with(Category::Timeout, "no response headers in time", ctx),
            }),
        );
    }

    /// Reads the next batch of events (waiting for the first under the idle or
    /// first-token timeout), unless the consumer goes away.
    fn pump(&mut self, mut stream: EventStream, ctx: &mut Context<Self>) {
        let first_token = self.attempt_deltas == 0;
        let wait = if first_token {
            self.first_token_timeout
        } else {
            self.idle_timeout
        };
        let limit = self.core.progress.attempt_limit(wait);
        let by_deadline = limit.is_some_and(|l| l.by_deadline);
        let wait = limit.map(|l| l.duration);
        // The consumer going away stops the actor (see `started`), which drops this.
        // Each poll of the provider's stream is guarded: a panic in provider code
        // ends the batch (keeping the events before it) and becomes this stream's error.
        let read = async move {
            let first = match wait {
                Some(t) => tokio::time::timeout(t, guarded_next(&mut stream))
                    .await
                    .ok(),
                None => Some(guarded_next(&mut stream).await),
            };
            let Some(first) = first else {
                return (
                    Batch::TimedOut {
                        first_token,
                        by_deadline,
                    },
                    stream,
                );
            };
            let mut items = Vec::with_capacity(8);
            let mut panicked = false;
            let mut ended = match first {
                Err(_) => {
                    panicked = true;
                    true
                }
                Ok(None) => true,
                Ok(Some(item)) => {
                    let err = item.is_err();
                    items.push(item);
                    err
                }
            };
            while !ended && items.len() < BATCH {
                match guarded_next(&mut stream).now_or_never() {
                    Some(Ok(Some(item))) => {
                        ended = item.is_err();
                        items.push(item);
                    }
                    Some(Ok(None)) => ended = true,
                    Some(Err(_)) => {
                        panicked = true;
                        ended = true;
                    }
                    None => break,
                }
            }
            (Batch::Items { items, panicked }, stream)
        };
        ctx.spawn(
            actix::fut::wrap_future(read)
                .map(|(batch, stream), act: &mut Self, ctx| act.on_batch(batch, stream, ctx)),
        );
    }

    /// Delivers one delta, unless the consumer already has every token the
    /// request's `max_tokens` allows: then returns `false` (a continuation that
    /// would go past the limit is cut there).
    fn deliver(&mut self, text: String, out: &mut Vec<StreamEvent>) -> bool {
        if text.is_empty() {
            return true;
        }
        if self.budget_spent() {
            return false;
        }
        out.append(&mut self.pending_seam);
        if self.first_content.is_none() {
            self.first_content = Some(self.core.started.elapsed());
        }
        let offset = self.checkpoint.deliver(&text);
        out.push(StreamEvent::TextDelta { text, offset });
        true
    }

    /// The stream ends at the token limit: what the consumer has is the whole
    /// reply `max_tokens` allows.
    fn complete_at_limit(&mut self, out: &mut Vec<StreamEvent>) {
        self.finish_reason = Some(FinishReason::Length);
        if self.attempt_usage.is_none() {
            self.attempt_usage = Some(Usage::new(0, self.attempt_deltas));
        }
        out.push(StreamEvent::Complete {
            finish_reason: FinishReason::Length,
            usage: Some(self.total_usage()),
        });
    }

    fn on_batch(&mut self, batch: Batch, stream: EventStream, ctx: &mut Context<Self>) {
        let (items, panicked) = match batch {
            Batch::TimedOut {
                by_deadline: true, ..
            } => {
                drop(stream);
                let lease = self.lease.take();
                return attempt_loop::deadline_cut(self, lease, ctx);
            }
            Batch::TimedOut { first_token, .. } => {
                drop(stream);
                let what = if first_token {
                    "no first token in time"
                } else {
                    "the stream went idle"
                };
                return self.failed_with(Category::Timeout, what, ctx);
            }
            Batch::Items { items, panicked } => (items, panicked),
        };
        let mut out = Vec::with_capacity(items.len() + 2);
        let mut failure = None;
        let mut complete = false;
        let mut ended = items.is_empty() && !panicked;
        for item in items {
            match item {
                Ok(StreamEvent::Start {
                    provider_request_id,
                    ..
                }) => {
                    self.checkpoint.provider_request_id = provider_request_id.clone();
                    if !self.start_sent {
                        self.start_sent = true;
                        out.push(StreamEvent::Start {
                            request_id: self.original.request_id.clone(),
                            provider: self.provider.name().to_string(),
                            model: self.original.model.model().to_string(),
                            provider_request_id,
                        });
                    }
                }
                Ok(StreamEvent::TextDelta { text, .. }) => {
                    self.attempt_deltas = self.attempt_deltas.saturating_add(1);
                    let within_limit = match self.seam.as_mut() {
                        Some(seam) => {
                            let pieces = seam.push(text);
                            pieces.into_iter().all(|p| self.deliver(p, &mut out))
                        }
                        None => self.deliver(text, &mut out),
                    };
                    if !within_limit {
                        self.complete_at_limit(&mut out);
                        complete = true;
                        break;
                    }
                }
                Ok(StreamEvent::ResponseId { id }) => {
                    // The last attempt's id is the reply's: later records win.
                    self.core.span.record("gen_ai.response.id", id.as_str());
                }
                Ok(StreamEvent::Usage(u)) => {
                    self.attempt_usage = Some(u);
                    out.push(StreamEvent::Usage(self.total_usage()));
                }
                Ok(StreamEvent::Complete {
                    finish_reason,
                    usage,
                }) => {
                    let rest = self.seam.as_mut().map(Seam::finish).unwrap_or_default();
                    for piece in rest {
                        self.deliver(piece, &mut out);
                    }
                    // A continuation with nothing left to say: the seam is still
                    // where it took over.
                    out.append(&mut self.pending_seam);
                    if usage.is_some() {
                        self.attempt_usage = usage;
                    }
                    let total = self.total_usage();
                    if let Some(route) = self.route.as_mut() {
                        let mut steps = std::mem::take(&mut route.steps);
                        steps.push(RouteStep::answered(&self.original.model));
                        out.push(StreamEvent::Route { steps });
                    }
                    self.finish_reason = Some(finish_reason.clone());
                    out.push(StreamEvent::Complete {
                        finish_reason,
                        usage: Some(total),
                    });
                    complete = true;
                }
                Ok(
                    event @ (StreamEvent::ToolCallStart { .. }
                    | StreamEvent::ToolCallDelta { .. }
                    | StreamEvent::ToolCall { .. }),
                ) => {
                    let mut now = Vec::new();
                    self.calls.on_event(event, &mut now);
                    if !now.is_empty() {
                        out.append(&mut self.pending_seam);
                        out.append(&mut now);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    failure = Some(e);
                    ended = true;
                }
            }
        }
        let mut tx = self.tx.clone();
        let send = async move {
            out.is_empty() || tx.send(out.into_iter().map(Ok).collect()).await.is_ok()
        };
        ctx.spawn(
            actix::fut::wrap_future(send).map(move |consumer_alive, act: &mut Self, ctx| {
                if !consumer_alive {
                    return act.cancelled(ctx);
                }
                if complete {
                    act.core.in_flight = false;
                    act.core.end_attempt("success");
                    if let Some(lease) = act.lease.take() {
                        lease.report(CallOutcome::Success {
                            elapsed: Duration::ZERO,
                        });
                    }
                    let attempts = act.core.progress.attempts();
                    return act.end(None, RequestEnd::Succeeded { attempts }, ctx);
                }
                if let Some(e) = failure {
                    drop(stream);
                    return act.failed(classify(&e), Some(e), ctx);
                }
                if panicked {
                    drop(stream);
                    return act.failed_with(
                        Category::Unknown,
                        "the provider's stream panicked",
                        ctx,
                    );
                }
                if ended {
                    // Decoders always end with Complete or an error; be safe anyway.
                    return act.failed_with(
                        Category::StreamInterrupted,
                        "the stream ended without its terminal event",
                        ctx,
                    );
                }
                act.pump(stream, ctx);
            }),
        );
    }

    fn cancelled(&mut self, ctx: &mut Context<Self>) {
        if self.done {
            return;
        }
        tracing::debug!(parent: &self.core.span, "stream dropped by its consumer");
        self.done = true;
        attempt_loop::report_cancelled(self);
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
        self.core.in_flight = false;
        self.core.end_attempt(failure.category.as_str());
        failure.request_id = Some(self.original.request_id.to_string());
        // Usage adds up across attempts; a broken attempt that reported none is
        // counted by its deltas.
        let attempt = self
            .attempt_usage
            .take()
            .unwrap_or(Usage::new(0, self.attempt_deltas));
        self.finished_usage = self.finished_usage.plus(attempt);
        report_failure(
            self.lease.take(),
            &self.core.actors.breaker,
            &self.core.spec.model,
            &failure,
            self.core.spec.use_breaker,
        );
        let content_began = self.delivered_anything();
        // Only text counts against the budget here, so only a request that can
        // produce nothing but text is whole at its last allowed token.
        let text_only = self.original.tools.is_empty();
        if content_began && failure.retryable && text_only && self.budget_spent() {
            // The break came after the last token `max_tokens` allows: nothing is
            // missing, so nothing is asked for.
            tracing::debug!(parent: &self.core.span, category = %failure.category, "stream broke after its last allowed token: complete");
            self.core.actors.coordinator.do_send(AttemptAbandoned {
                outcome: failure.category.as_str(),
            });
            self.finish_reason = Some(FinishReason::Length);
            let out = vec![StreamEvent::Complete {
                finish_reason: FinishReason::Length,
                usage: Some(self.total_usage()),
            }];
            let mut tx = self.tx.clone();
            let attempts = self.core.progress.attempts();
            ctx.spawn(
                actix::fut::wrap_future(async move {
                    tx.send(out.into_iter().map(Ok).collect()).await.is_ok()
                })
                .map(move |alive, act: &mut Self, ctx| {
                    if alive {
                        act.end(None, RequestEnd::Succeeded { attempts }, ctx)
                    } else {
                        act.cancelled(ctx)
                    }
                }),
            );
            return;
        }
        // A model that rejects prefill: switch to the "continue" message at once.
        let prefill_rejected = is_prefill_rejection(&failure)
            && self.strategy == Continuation::Prefill
            && content_began;
        if prefill_rejected {
            self.strategy = Continuation::Instruct;
            self.core.actors.coordinator.do_send(AttemptAbandoned {
                outcome: failure.category.as_str(),
            });
            return attempt_loop::next_attempt(self, ctx);
        }
        tracing::debug!(parent: &self.core.span, attempt = self.core.progress.attempts(), category = %failure.category, content_began, "stream attempt failed");
        if content_began && self.strategy == Continuation::Off {
            self.core.actors.coordinator.do_send(AttemptAbandoned {
                outcome: failure.category.as_str(),
            });
            return self.give_up(failure, GiveUp::NotRetryable, raw, ctx);
        }
        attempt_loop::retry_or_give_up(self, failure, raw, ctx);
    }

    /// A retry after content: mark the seam (or announce the restart) for the
    /// consumer before the next attempt's text.
    fn mark_seam(&mut self, ctx: &mut Context<Self>) {
        if !self.delivered_anything() {
            return;
        }
        if self.strategy == Continuation::Restart {
            self.checkpoint = Checkpoint::default();
            self.calls.reset();
            self.pending_seam.clear();
            let attempt = self.core.progress.attempts().saturating_add(1);
            tracing::info!(parent: &self.core.span, attempt, "steer.stream.restarted");
            let restarted = StreamEvent::Restarted { attempt };
            let mut tx = self.tx.clone();
            ctx.spawn(actix::fut::wrap_future(async move {
                let _ = tx.send(vec![Ok(restarted)]).await;
            }));
        } else {
            let attempt = self.core.progress.attempts().saturating_add(1);
            let offset = self.checkpoint.chars;
            tracing::info!(parent: &self.core.span, attempt, offset, "steer.stream.resumed");
            self.core.actors.meters.resumption(&self.core.labels);
            self.pending_seam = vec![StreamEvent::Resumed {
                attempt,
                offset,
                provider: self.provider.name().to_string(),
            }];
            if let Some(index) = self.calls.interrupted() {
                self.pending_seam
                    .push(StreamEvent::ToolCallDiscarded { index });
            }
        }
    }
}

impl AttemptLoop for StreamActor {
    type Raw = ProviderError;

    fn core(&mut self) -> &mut RequestCore {
        &mut self.core
    }

    fn attempt(&mut self, lease: Option<PermitLease>, ctx: &mut Context<Self>) {
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
        let category = failure.category;
        self.core.last_failure = Some(Box::new(failure.clone()));
        let e = Error::Failed(Box::new(FailedRequest {
            failure,
            reason,
            attempts: self.core.progress.attempts(),
            last: raw,
            partial: self.partial(),
        }));
        if self.fail_over(&e, RequestEnd::Failed { category }, ctx) {
            return;
        }
        self.end(Some(e), RequestEnd::Failed { category }, ctx);
    }

    fn stop(&mut self, why: Stop, ctx: &mut Context<Self>) {
        let rejected = matches!(why, Stop::Rejected(_));
        let partial = self.partial();
        let request_id = self.original.request_id.clone();
        let attempts = self.core.progress.attempts();
        let last = self.core.last_failure.clone();
        let (e, end) = match why {
            Stop::DeadlineExceeded => (
                Error::DeadlineExceeded {
                    request_id,
                    attempts,
                    last,
                    partial,
                },
                RequestEnd::Failed {
                    category: Category::DeadlineExceeded,
                },
            ),
            Stop::Rejected(rejection) => (
                Error::Rejected {
                    provider: self.provider.name().to_string(),
                    request_id,
                    rejection,
                    attempts,
                    last,
                    partial,
                },
                RequestEnd::Rejected,
            ),
            Stop::Internal(message) => (
                Error::Internal(message.into()),
                RequestEnd::Failed {
                    category: Category::Unknown,
                },
            ),
        };
        if rejected && self.fail_over(&e, end, ctx) {
            return;
        }
        self.end(Some(e), end, ctx);
    }
}

impl Actor for StreamActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The consumer may go away at any moment: while connecting, reading or
        // waiting to retry. Then the request is cancelled.
        if let Some(gone) = self.consumer_gone.take() {
            ctx.spawn(
                actix::fut::wrap_future(async move {
                    let _ = gone.await;
                })
                .map(|_, act: &mut Self, ctx| act.cancelled(ctx)),
            );
        }
        attempt_loop::next_attempt(self, ctx);
    }
}

/// The events of a reliable stream; dropping it cancels the request (its HTTP call
/// is aborted and its breaker permit returned).
pub struct SteerStream {
    rx: mpsc::Receiver<EventBatch>,
    current: std::vec::IntoIter<Item>,
    /// Whether `Complete` or an error was yielded: the only two ways to end.
    ended: bool,
    /// Dropped with the stream: tells the actor its consumer is gone.
    _alive: oneshot::Sender<()>,
}

impl SteerStream {
    /// The stream's two ends: what the consumer holds, and what the actor holds.
    pub(crate) fn channel() -> (Self, mpsc::Sender<EventBatch>, oneshot::Receiver<()>) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let (alive, gone) = oneshot::channel();
        let stream = SteerStream {
            rx,
            current: Vec::new().into_iter(),
            ended: false,
            _alive: alive,
        };
        (stream, tx, gone)
    }
}

impl std::fmt::Debug for SteerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteerStream").finish_non_exhaustive()
    }
}

impl Stream for SteerStream {
    type Item = Result<StreamEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(item) = self.current.next() {
                if self.current.len() == 0 {
                    // Free the batch now, not when the consumer next polls.
                    self.current = Vec::new().into_iter();
                }
                if matches!(item, Err(_) | Ok(StreamEvent::Complete { .. })) {
                    self.ended = true;
                }
                return Poll::Ready(Some(item));
            }
            match self.rx.poll_next_unpin(cx) {
                Poll::Ready(Some(batch)) => self.current = batch.into_iter(),
                Poll::Ready(None) if self.ended => return Poll::Ready(None),
                Poll::Ready(None) => {
                    // The actor is gone without a last word: never a silent truncation.
                    self.ended = true;
                    return Poll::Ready(Some(Err(Error::Internal(
                        "the stream's actor stopped before the stream ended".into(),
                    ))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
