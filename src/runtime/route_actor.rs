//! The route actor: one per request that names a model group. It owns the
//! group's route machine ([`crate::route::Route`]), runs the request at the
//! target the machine names as a supervised request of its own (with that
//! target's breaker, coordinator and retries), feeds the leg's end back, and
//! waits on an actor timer when the machine says every target is unavailable.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::future::BoxFuture;
use steer_actors::exec::clock::later_tokio;
use tokio::sync::oneshot;

use super::options::GenerateOptions;
use crate::error::Error;
use crate::model::{ChatRequest, ChatResponse, ModelId};
use crate::route::failure_sample;
use crate::route::hedge::{samples_for, Hedge, Hedging};
use crate::route::outliers::counts_against;
use crate::route::{Next, Route, Targets, Verdict};

/// Runs one leg of a route: the request at one target, with its options.
pub(crate) type Leg = Arc<
    dyn Fn(ChatRequest, GenerateOptions) -> BoxFuture<'static, Result<ChatResponse, Error>>
        + Send
        + Sync,
>;

/// Cancels a route if its caller's future is dropped before the reply.
pub(crate) struct CancelOnDrop(pub(crate) Option<Addr<RouteActor>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(route) = self.0.take() {
            route.do_send(steer_actors::lifecycle::request::Cancel);
        }
    }
}

/// A leg in flight: its number, target, task, and whether it is a hedge.
struct RunningLeg {
    number: u32,
    target: ModelId,
    task: SpawnHandle,
    hedge: bool,
}

pub(crate) struct RouteActor {
    route: Route,
    targets: Targets,
    leg: Leg,
    request: ChatRequest,
    options: GenerateOptions,
    deadline: Option<tokio::time::Instant>,
    reply: Option<oneshot::Sender<Result<ChatResponse, Error>>>,
    /// The group request's span: each leg's request span is its child.
    span: tracing::Span,
    /// How the request is hedged, if it is, and the hedges it may still send.
    hedge: Option<Hedging>,
    /// The legs running (cancelled when another wins).
    legs: Vec<RunningLeg>,
    next_leg: u32,
    /// Hedges sent so far.
    hedges_sent: u32,
    /// The timer of the next hedge.
    hedge_timer: Option<SpawnHandle>,
    /// A route of one request alone (a hedged request to a model outside any
    /// group): its legs wait out pauses as the request would, and it fails
    /// with its last leg's own error.
    alone: bool,
}

impl RouteActor {
    pub(crate) fn new(
        route: Route,
        targets: Targets,
        leg: Leg,
        request: ChatRequest,
        options: GenerateOptions,
        deadline: Option<Duration>,
        reply: oneshot::Sender<Result<ChatResponse, Error>>,
    ) -> Self {
        let span = tracing::info_span!(
            "steer.route",
            otel.name = %format_args!("chat group/{}", route.name()),
            steer.group = %route.name(),
            steer.request_id = %request.request_id,
            error.type = tracing::field::Empty,
        );
        RouteActor {
            span,
            route,
            targets,
            leg,
            request,
            options,
            // A deadline too far for the clock is the clock's last instant.
            deadline: deadline.map(|d| later_tokio(tokio::time::Instant::now(), d)),
            reply: Some(reply),
            hedge: None,
            legs: Vec::new(),
            next_leg: 0,
            hedges_sent: 0,
            hedge_timer: None,
            alone: false,
        }
    }

    /// Runs a request alone (see `alone`).
    pub(crate) fn alone(mut self) -> Self {
        self.alone = true;
        self
    }

    /// Hedges the request with `hedge` (checked by the caller).
    pub(crate) fn hedged(mut self, hedge: Hedge) -> Self {
        self.hedge = Some(Hedging::new(hedge));
        self
    }

    /// Sets the timer of the next hedge, if the request may send one: after
    /// the delay the current target's recent latencies give.
    fn arm_hedge(&mut self, ctx: &mut Context<Self>) {
        if let Some(t) = self.hedge_timer.take() {
            ctx.cancel_future(t);
        }
        let (Some(hedging), Some(current)) = (self.hedge, self.route.current()) else {
            return;
        };
        let targets = &self.targets;
        let peers = self.route.group().targets.iter().map(|t| &t.target);
        let recent = || {
            samples_for(current, peers, |t| {
                targets.load(t).map(|l| l.recent_ms()).unwrap_or_default()
            })
        };
        let Some(delay) = hedging.next_delay(recent) else {
            return;
        };
        self.hedge_timer = Some(ctx.run_later(delay, |act, ctx| {
            act.hedge_timer = None;
            act.send_hedge(ctx);
        }));
    }

    /// The delay passed without a reply: a hedge goes, if the group's cap
    /// allows one and a target can take it.
    fn send_hedge(&mut self, ctx: &mut Context<Self>) {
        let Some(hedging) = self.hedge.as_mut().filter(|_| !self.legs.is_empty()) else {
            return;
        };
        let (hedge, name) = (hedging.settings(), self.route.name().to_string());
        if !hedging.take(|| self.targets.try_hedge(&name, hedge)) {
            return;
        }
        let targets = &self.targets;
        let Some(target) = self.route.hedge(
            |g, tried| targets.pick_now(&name, g, tried),
            hedge.same_target,
        ) else {
            return;
        };
        // A hedge spends its target's retry budget (and needs its retry
        // throttle above half), as a retry would.
        let Some((_, actors)) = self.targets.resolve(&target) else {
            self.route.withdraw_hedge(&target);
            return;
        };
        let ask = actors.coordinator.send(steer_actors::retry::SpendHedge);
        ctx.spawn(
            actix::fut::wrap_future(ask).map(move |allowed, act: &mut Self, ctx| {
                let name = act.route.name().to_string();
                if allowed != Ok(true) || act.legs.is_empty() {
                    act.route.withdraw_hedge(&target);
                    act.targets.hedged(&name, "refused");
                    return;
                }
                tracing::info!(parent: &act.span, group = %name, target = %target, "steer.hedge");
                act.targets.hedged(&name, "sent");
                act.hedges_sent = act.hedges_sent.saturating_add(1);
                act.run_leg(target, true, ctx);
                act.arm_hedge(ctx);
            }),
        );
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

    /// Asks the route where to go next, and goes.
    fn next(&mut self, ctx: &mut Context<Self>) {
        let time_left = self
            .deadline
            .map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        let targets = &self.targets;
        let name = self.route.name().to_string();
        match self
            .route
            .next(|g, tried| targets.pick(&name, g, tried), time_left)
        {
            Next::Go { target, from } => {
                if let Some(from) = from {
                    targets.failover(&self.span, self.route.name(), &from, &target);
                }
                self.run_leg(target, false, ctx);
            }
            Next::Wait(wait) => {
                tracing::debug!(group = %self.route.name(), ?wait, "every target unavailable: waiting for the earliest");
                ctx.run_later(wait, |act, ctx| act.next(ctx));
            }
            Next::Exhausted(e) => self.finish(Err(e), ctx),
        }
    }

    /// Runs the request at `target`, counted in flight there, its latency and
    /// rate limit kept for the group's selection. A leg cancelled (a hedge
    /// that lost) is dropped before it records anything.
    fn run_leg(&mut self, target: ModelId, hedge: bool, ctx: &mut Context<Self>) {
        if self.legs.is_empty() {
            self.arm_hedge(ctx);
        }
        let mut leg = self.request.clone();
        leg.model = target.clone();
        let mut options = self.options.clone();
        options.leg = true;
        if !self.alone {
            // A paused target is skipped, not waited for: the route moves on;
            // so is a server's wait while another target could answer now.
            options.skip_pauses = true;
            let targets = &self.targets;
            let name = self.route.name();
            options.wait_elsewhere = self
                .route
                .wait_elsewhere(|g, tried| targets.pick_now(name, g, tried));
        }
        if let Some(d) = self.deadline {
            options.deadline = Some(d.saturating_duration_since(tokio::time::Instant::now()));
        }
        let load = self.targets.load(&target);
        let run = (self.leg)(leg, options);
        let run = async move {
            let _in_flight = load.as_ref().map(|l| l.start());
            let started = tokio::time::Instant::now();
            let result = run.await;
            match (&result, &load) {
                (Ok(reply), Some(l)) => {
                    l.record(started.elapsed());
                    if let Some(wait) = reply.rate_limit.nearly_spent_for() {
                        l.spent_for(wait);
                    }
                }
                // A failure of the target teaches the selection it is slow.
                (Err(e), Some(l)) if counts_against(e) => {
                    l.record(failure_sample(started.elapsed(), l));
                }
                _ => {}
            }
            result
        };
        let number = self.next_leg;
        self.next_leg = self.next_leg.wrapping_add(1);
        let handle = ctx.spawn(
            actix::fut::wrap_future(tracing::Instrument::instrument(run, self.span.clone()))
                .map(move |result, act: &mut Self, ctx| act.on_leg(number, result, ctx)),
        );
        self.legs.push(RunningLeg {
            number,
            target,
            task: handle,
            hedge,
        });
    }

    fn on_leg(
        &mut self,
        number: u32,
        result: Result<ChatResponse, Error>,
        ctx: &mut Context<Self>,
    ) {
        let Some(i) = self.legs.iter().position(|l| l.number == number) else {
            return;
        };
        let RunningLeg { target, hedge, .. } = self.legs.remove(i);
        let success = match &result {
            Ok(_) => Some(true),
            Err(e) => counts_against(e).then_some(false),
        };
        if let Some(success) = success {
            self.targets.leg_ended(self.route.name(), &target, success);
        }
        match result {
            Ok(mut reply) => {
                reply.route = self.route.answered_by(&target);
                if self.hedges_sent > 0 {
                    let won = if hedge { "won" } else { "primary_won" };
                    self.targets.hedged(self.route.name(), won);
                }
                self.cancel_legs(ctx);
                self.finish(Ok(reply), ctx)
            }
            Err(e) => match self.route.leg_failed(&target, &e) {
                Verdict::Racing => {}
                // A request alone fails as it would have unhedged.
                _ if self.alone => {
                    self.cancel_legs(ctx);
                    self.finish(Err(e), ctx)
                }
                Verdict::MoveOn => self.next(ctx),
                Verdict::Stop => {
                    self.cancel_legs(ctx);
                    self.finish(Err(e), ctx)
                }
            },
        }
    }

    /// Cancels every leg still running (hedges that lost): each task is
    /// dropped, its HTTP request aborted, its permit and slot given back
    /// unused, and nothing recorded for its target.
    fn cancel_legs(&mut self, ctx: &mut Context<Self>) {
        if let Some(t) = self.hedge_timer.take() {
            ctx.cancel_future(t);
        }
        for leg in self.legs.drain(..) {
            ctx.cancel_future(leg.task);
            self.targets.hedged(self.route.name(), "cancelled");
        }
    }
}

impl Actor for RouteActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.next(ctx);
    }
}

impl Handler<steer_actors::lifecycle::request::Cancel> for RouteActor {
    type Result = ();

    /// The caller went away: stopping drops the leg in flight, which cancels its
    /// request (its HTTP call is aborted and its permit handed back).
    fn handle(&mut self, _: steer_actors::lifecycle::request::Cancel, ctx: &mut Context<Self>) {
        self.reply.take();
        ctx.stop();
    }
}
