//! The route actor: one per request that names a model group. It owns the route
//! (the targets tried and how each ended), asks the group's rules
//! ([`super::group`]) for the next target, runs the request at that target as a
//! supervised request of its own (with that target's breaker, coordinator and
//! retries), and moves on, falls back or stops as the rules say. When every target
//! is unavailable it waits for the earliest to come back, if the deadline allows.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::group::{after_failure, earliest_back, recovery_wait, Group, Move};
use super::options::GenerateOptions;
use super::Client;
use crate::error::Error;
use crate::model::{ChatRequest, ChatResponse, ModelId, RouteStep};

/// Cancels a route if its caller's future is dropped before the reply.
pub(crate) struct CancelOnDrop(pub(crate) Option<Addr<RouteActor>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(route) = self.0.take() {
            route.do_send(steer_actors::request::Cancel);
        }
    }
}

pub(crate) struct RouteActor {
    client: Client,
    name: String,
    group: Group,
    request: ChatRequest,
    options: GenerateOptions,
    tried: Vec<ModelId>,
    steps: Vec<RouteStep>,
    /// A fallback the rules chose for the next step.
    forced: Option<ModelId>,
    deadline: Option<tokio::time::Instant>,
    waited: bool,
    reply: Option<oneshot::Sender<Result<ChatResponse, Error>>>,
    /// The group request's span: each leg's request span is its child.
    span: tracing::Span,
}

impl RouteActor {
    pub(crate) fn new(
        client: Client,
        name: String,
        group: Group,
        request: ChatRequest,
        options: GenerateOptions,
        deadline: Option<Duration>,
        reply: oneshot::Sender<Result<ChatResponse, Error>>,
    ) -> Self {
        let span = tracing::info_span!(
            "steer.route",
            otel.name = %format_args!("chat group/{name}"),
            steer.group = %name,
            steer.request_id = %request.request_id,
            error.type = tracing::field::Empty,
        );
        RouteActor {
            span,
            client,
            name,
            group,
            request,
            options,
            tried: Vec::new(),
            steps: Vec::new(),
            forced: None,
            deadline: deadline.map(|d| tokio::time::Instant::now() + d),
            waited: false,
            reply: Some(reply),
        }
    }

    fn finish(&mut self, result: Result<ChatResponse, Error>, ctx: &mut Context<Self>) {
        if let Err(e) = &result {
            self.span.record("error.type", e.kind());
        }
        if let Some(tx) = self.reply.take() {
            let _ = tx.send(result);
        }
        ctx.stop();
    }

    fn exhausted(&mut self, ctx: &mut Context<Self>) {
        let time_left = self
            .deadline
            .map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        if let Some(wait) = recovery_wait(&self.steps, self.waited, time_left) {
            self.waited = true;
            self.tried.clear();
            tracing::debug!(group = %self.name, ?wait, "every target unavailable: waiting for the earliest");
            ctx.run_later(wait, |act, ctx| act.next(ctx));
            return;
        }
        let error = Error::GroupExhausted {
            group: self.name.clone(),
            back_in: earliest_back(&self.steps),
            steps: std::mem::take(&mut self.steps),
        };
        self.finish(Err(error), ctx);
    }

    fn next(&mut self, ctx: &mut Context<Self>) {
        let target = match self.forced.take() {
            Some(t) => t,
            None => match self.client.pick_target(&self.group, &self.tried) {
                Some(t) => t,
                None => return self.exhausted(ctx),
            },
        };
        if let Some(last) = self.steps.last() {
            let to = target.to_string();
            tracing::info!(parent: &self.span, from = %last.target, to = %to, "steer.failover");
            self.client.meters().failover(&self.name, &last.target, &to);
        }
        self.tried.push(target.clone());
        let mut leg = self.request.clone();
        leg.model = target.clone();
        let mut options = self.options.clone();
        // A paused target is skipped, not waited for: the route moves on.
        options.skip_pauses = true;
        if let Some(d) = self.deadline {
            options.deadline = Some(d.saturating_duration_since(tokio::time::Instant::now()));
        }
        let client = self.client.clone();
        let load = client.target_load(&target);
        let run = async move {
            let _in_flight = load.as_ref().map(|l| l.start());
            let started = tokio::time::Instant::now();
            let result = client.generate_with(leg, options).await;
            if let (Ok(reply), Some(l)) = (&result, &load) {
                l.record(started.elapsed());
                if let Some(wait) = reply.rate_limit.nearly_spent_for() {
                    l.spent_for(wait);
                }
            }
            result
        };
        ctx.spawn(
            actix::fut::wrap_future(tracing::Instrument::instrument(run, self.span.clone()))
                .map(move |result, act: &mut Self, ctx| act.on_leg(target, result, ctx)),
        );
    }

    fn on_leg(
        &mut self,
        target: ModelId,
        result: Result<ChatResponse, Error>,
        ctx: &mut Context<Self>,
    ) {
        match result {
            Ok(mut reply) => {
                self.steps.push(RouteStep::answered(&target));
                reply.route = std::mem::take(&mut self.steps);
                self.finish(Ok(reply), ctx)
            }
            Err(e) => {
                self.steps.push(RouteStep::failed(&target, &e));
                match after_failure(&self.group, &e) {
                    Move::Next => self.next(ctx),
                    Move::Fallback(t) if !self.tried.contains(&t) => {
                        self.forced = Some(t);
                        self.next(ctx)
                    }
                    Move::Fallback(_) | Move::Stop => self.finish(Err(e), ctx),
                }
            }
        }
    }
}

impl Actor for RouteActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.next(ctx);
    }
}

impl Handler<steer_actors::request::Cancel> for RouteActor {
    type Result = ();

    /// The caller went away: stopping drops the leg in flight, which cancels its
    /// request (its HTTP call is aborted and its permit handed back).
    fn handle(&mut self, _: steer_actors::request::Cancel, ctx: &mut Context<Self>) {
        self.reply.take();
        ctx.stop();
    }
}
