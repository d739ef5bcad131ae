//! The stream moving on: to the next target of its group, from the
//! checkpoint, behind a `FailedOver` seam; a wait for the earliest target to
//! come back; or the end with the caller's error.

use std::sync::Arc;

use actix::prelude::*;
use steer_actors::breaker::PermitLease;
use steer_actors::lifecycle::request::RequestError;
use steer_actors::lifecycle::shell;
use steer_actors::retry::RequestEnd;
use steer_actors::ProviderActors;

use super::{StreamActor, StreamRoute};
use crate::error::{Error, ProviderError};
use crate::model::ModelId;
use crate::provider::Provider;
use crate::route::outliers::counts_against;
use crate::route::{failure_sample, InFlight};
use crate::route::{Next, Verdict};

impl StreamActor {
    /// Carries the stream through a model group's targets.
    pub(crate) fn with_route(mut self, route: Box<StreamRoute>) -> Self {
        self.in_flight_at = route.targets.load(&self.original.model).map(|l| l.start());
        let scope = route.route.name().to_string();
        let peers = route.route.group().targets.iter().map(|t| t.target.clone());
        self.hedge = route.hedge.map(|h| {
            super::hedging::StreamHedge::new(h, route.targets.clone(), scope, peers.collect())
        });
        self.route = Some(route);
        self
    }

    /// The stream's target ended with `e`: the stream fails over when `movable`
    /// and its route says so, else ends with the caller's error.
    pub(super) fn end_or_fail_over(
        &mut self,
        e: RequestError<ProviderError>,
        movable: bool,
        ctx: &mut Context<Self>,
    ) {
        let end = e.end();
        let (request_id, provider) = (&self.original.request_id, self.provider.name());
        let error = Error::from_request(e, request_id, provider, self.machine.partial());
        if let Some(route) = &self.route {
            if let (Some(target), true) = (route.route.current(), counts_against(&error)) {
                route.targets.leg_ended(route.route.name(), target, false);
                if let Some(load) = route.targets.load(target) {
                    let elapsed = self.core.started.elapsed();
                    load.record(failure_sample(elapsed, &load));
                }
            }
        }
        if movable && self.fail_over(&error, end, ctx) {
            return;
        }
        self.end(Some(error), end, ctx);
    }

    /// The stream's target gave up with `error`: moves to the next target of its
    /// group, if it has one and the route says so, continuing from the
    /// checkpoint in the new target's wire format behind a `FailedOver` seam.
    /// `false` when the stream ends here.
    pub(super) fn fail_over(
        &mut self,
        error: &Error,
        end: RequestEnd,
        ctx: &mut Context<Self>,
    ) -> bool {
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
    pub(super) fn next_target(&mut self, end: RequestEnd, ctx: &mut Context<Self>) {
        let Some(mut route) = self.route.take() else {
            return;
        };
        let time_left = self.core.attempts.progress().time_left();
        loop {
            let StreamRoute {
                route: r, targets, ..
            } = &mut *route;
            let name = r.name().to_string();
            match r.next(|g, tried| targets.pick(&name, g, tried), time_left) {
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

    /// The stream reads from `target` now (its core already moved there):
    /// its provider, its open-stream gauge there, the permit it holds, its
    /// request at that model, and its count in flight in its group.
    pub(super) fn point_at(
        &mut self,
        target: &ModelId,
        provider: Arc<dyn Provider>,
        lease: Option<PermitLease>,
        in_flight: Option<InFlight>,
    ) {
        self.provider = provider;
        self.open_gauge = self
            .core
            .actors
            .meters
            .open_stream(self.core.spec.provider.clone());
        self.lease = lease;
        let mut original = self.original.as_ref().clone();
        original.model = target.clone();
        self.original = Arc::new(original);
        self.in_flight_at = in_flight;
    }

    /// Moves the stream to `target`: its provider, breaker and coordinator, a
    /// fresh retry progress within the deadline, its continuation strategy, and a
    /// seam for the consumer if content was delivered.
    pub(super) fn switch(
        &mut self,
        route: Box<StreamRoute>,
        target: ModelId,
        provider: Arc<dyn Provider>,
        actors: Arc<ProviderActors>,
        ctx: &mut Context<Self>,
    ) {
        // The background response left behind is cancelled at its own provider.
        self.machine.abandon_resume();
        self.cancel_abandoned();
        self.machine
            .failed_over(&target, provider.prefill(target.model()));
        let targets = &route.targets;
        let name = route.route.name();
        self.core.spec.wait_elsewhere = route
            .route
            .wait_elsewhere(|g, tried| targets.pick_now(name, g, tried));
        // The last target left queues the stream under its limit.
        self.core.spec.may_queue = !self.core.spec.wait_elsewhere;
        self.core
            .retarget(actors, target.provider(), target.model());
        let in_flight = route.targets.load(&target).map(|l| l.start());
        self.point_at(&target, provider, None, in_flight);
        self.route = Some(route);
        shell::next_attempt(self, ctx);
    }
}
