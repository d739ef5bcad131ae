//! Hedging a stream, the actor's half (the reader's is
//! [`crate::stream::race`]): while an attempt that has delivered nothing waits
//! for its first content, a hedge delay runs on an actor timer; when it passes,
//! the same request goes to the next target of the group (or the same one; a
//! stream outside any group, to its own deployment again), after the group's
//! (or deployment's) hedge cap, the target's retry budget and throttle
//! (`SpendHedge`) and its breaker's permit allow it. The reader races the legs;
//! its news move the stream to the leg that won (or took the lead when the
//! leader failed), return the permits of the legs that lost unused, and report
//! a leg's own failure to its own breaker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use futures::channel::mpsc;
use steer_actors::breaker::PermitLease;
use steer_actors::lifecycle::shell;
use steer_actors::lifecycle::AttemptEnd;
use steer_actors::retry::{AttemptAbandoned, RequestEnd, SpendHedge};
use steer_actors::{Failure, ProviderActors};

use super::StreamActor;
use crate::model::{ChatRequest, ModelId};
use crate::provider::Provider;
use crate::route::hedge::{samples_for, Hedge, Hedging};
use crate::route::Targets;
use crate::stream::race::{HedgeLeg, RaceNews, RacePlan};

/// How a stream is hedged, and the race of its attempt in flight.
pub(crate) struct StreamHedge {
    /// The hedges it may still send, and when.
    hedging: Hedging,
    /// Its caps, loads and meters, and the scope they are kept under (its
    /// group, or its deployment).
    targets: Targets,
    scope: String,
    /// Its group's targets, whose pooled samples a percentile delay reads
    /// while its own target has too few (none for a deployment alone).
    peers: Vec<ModelId>,
    race: Option<RaceState>,
}

impl StreamHedge {
    /// The stream's first content at `target` came `ttft` after it started:
    /// the sample a percentile delay reads.
    pub(crate) fn note_first_token(&self, target: &ModelId, ttft: std::time::Duration) {
        if let Some(load) = self.targets.load(target) {
            load.record_first_token(ttft);
        }
    }

    /// A stream hedged as `settings` say, within `scope`'s cap; `peers`
    /// are its group's targets (empty for a deployment alone).
    pub(crate) fn new(
        settings: Hedge,
        targets: Targets,
        scope: String,
        peers: Vec<ModelId>,
    ) -> Self {
        StreamHedge {
            hedging: Hedging::new(settings),
            targets,
            scope,
            peers,
            race: None,
        }
    }
}

/// The actor's side of one attempt's race.
struct RaceState {
    legs: mpsc::UnboundedSender<HedgeLeg>,
    decided: Arc<AtomicBool>,
    timer: Option<SpawnHandle>,
    /// The hedges sent and still racing.
    sent: Vec<Sent>,
    next: u32,
}

/// A hedge sent: where, and the permit it holds there.
struct Sent {
    number: u32,
    target: ModelId,
    provider: Arc<dyn Provider>,
    actors: Arc<ProviderActors>,
    lease: Option<PermitLease>,
    started: tokio::time::Instant,
}

/// Counts a hedge's `outcome` in the stream's scope.
fn count(act: &StreamActor, outcome: &'static str) {
    if let Some(h) = &act.hedge {
        h.targets.hedged(&h.scope, outcome);
    }
}

impl StreamActor {
    /// The race of an attempt about to open, when it is hedged: a grouped
    /// stream with hedges left whose attempt has delivered nothing (and is no
    /// background response, whose hedges would leave responses running).
    pub(super) fn race_for(
        &mut self,
        delivered_anything: bool,
        ctx: &mut Context<Self>,
    ) -> Option<RacePlan> {
        let hedge = self.hedge.as_mut()?;
        if delivered_anything || self.original.background {
            return None;
        }
        let targets = &hedge.targets;
        let (model, peers) = (&self.original.model, &hedge.peers);
        let recent = || {
            samples_for(model, peers, |t| {
                targets
                    .load(t)
                    .map(|l| l.first_tokens_ms())
                    .unwrap_or_default()
            })
        };
        let delay = hedge.hedging.next_delay(recent)?;
        let (legs, receiver) = mpsc::unbounded();
        let decided = Arc::new(AtomicBool::new(false));
        let timer = shell::run_later_send(ctx, delay, |act: &mut Self, ctx| act.send_hedge(ctx));
        hedge.race = Some(RaceState {
            legs,
            decided: decided.clone(),
            timer: Some(timer),
            sent: Vec::new(),
            next: 1,
        });
        Some(RacePlan {
            legs: receiver,
            decided,
            news: ctx.address().recipient(),
        })
    }

    /// The hedge delay passed with no content: a hedge goes, if the group's
    /// cap allows one, a target can take it now, and its coordinator spends
    /// its retry budget on it.
    fn send_hedge(&mut self, ctx: &mut Context<Self>) {
        let Some(hedge) = self.hedge.as_mut() else {
            return;
        };
        let settings = hedge.hedging.settings();
        let Some(race) = hedge.race.as_mut() else {
            return;
        };
        race.timer = None;
        if race.decided.load(Ordering::Relaxed) {
            return;
        }
        let (targets, scope) = (&hedge.targets, &hedge.scope);
        if !hedge.hedging.take(|| targets.try_hedge(scope, settings)) {
            return;
        }
        let (target, provider, actors) = match self.route.as_deref_mut() {
            Some(route) => {
                let (name, targets) = (route.route.name().to_string(), &route.targets);
                let pick = |g: &_, tried: &[ModelId]| targets.pick_now(&name, g, tried);
                let Some(target) = route.route.hedge(pick, settings.same_target) else {
                    return;
                };
                let Some((provider, actors)) = targets.resolve(&target) else {
                    route.route.withdraw_hedge(&target);
                    return;
                };
                (target, provider, actors)
            }
            // A stream alone hedges at its own deployment, once it can answer.
            None => {
                let target = self.original.model.clone();
                if self.core.actors.breaker.holds_back(target.model()) {
                    return;
                }
                (target, self.provider.clone(), self.core.actors.clone())
            }
        };
        let ask = actors.coordinator.send(SpendHedge);
        shell::spawn_send(
            ctx,
            actix::fut::wrap_future(ask).map(move |allowed, act: &mut Self, ctx| {
                if allowed != Ok(true) {
                    return act.hedge_refused(&target);
                }
                act.hedge_permit(target, provider, actors, ctx);
            }),
        );
    }

    /// Asks the hedge's breaker for a permit: an open, half-open or paused
    /// target takes no hedge.
    fn hedge_permit(
        &mut self,
        target: ModelId,
        provider: Arc<dyn Provider>,
        actors: Arc<ProviderActors>,
        ctx: &mut Context<Self>,
    ) {
        let model: Arc<str> = Arc::from(target.model());
        if let Some(lease) = actors.breaker.pass(&model) {
            return self.launch(target, provider, actors, Some(lease), ctx);
        }
        let ask = actors.breaker.acquire(&model);
        shell::spawn_send(
            ctx,
            actix::fut::wrap_future(ask).map(move |answer, act: &mut Self, ctx| match answer {
                Ok(Ok(lease)) => act.launch(target, provider, actors, Some(lease), ctx),
                _ => act.hedge_refused(&target),
            }),
        );
    }

    fn hedge_refused(&mut self, target: &ModelId) {
        if let Some(route) = self.route.as_deref_mut() {
            route.route.withdraw_hedge(target);
        }
        count(self, "refused");
    }

    /// Hands the hedge to the reader, unless the race was decided meanwhile
    /// (its permit then goes back unused).
    fn launch(
        &mut self,
        target: ModelId,
        provider: Arc<dyn Provider>,
        actors: Arc<ProviderActors>,
        lease: Option<PermitLease>,
        ctx: &mut Context<Self>,
    ) {
        let Some(race) = self.undecided_race() else {
            return self.hedge_refused(&target);
        };
        let number = race.next;
        race.next = race.next.saturating_add(1);
        let mut request = self.original.as_ref().clone();
        request.model = target.clone();
        let span = tracing::info_span!(
            parent: &self.core.span,
            "steer.attempt",
            steer.hedge = number,
            steer.target = %target,
        );
        let request = Arc::new(request);
        let ticket = self.spend.as_ref().map(|l| l.open(request.clone()));
        let sent = Sent {
            number,
            target,
            provider,
            actors,
            lease,
            started: tokio::time::Instant::now(),
        };
        match (&self.budgets, &self.spend, ticket) {
            // A hedge is an attempt: what it may cost is reserved first.
            (Some(budgets), Some(log), Some(ticket)) => {
                let (budgets, log) = (budgets.clone(), log.clone());
                let (req, at) = (request.clone(), sent.target.provider().to_string());
                let admit = async move { budgets.admit(&req, &at, &log).await };
                shell::spawn_send(
                    ctx,
                    actix::fut::wrap_future(admit).map(move |answer, act: &mut Self, ctx| {
                        let mut ticket = ticket;
                        match answer {
                            Ok(hold) => {
                                if let Some(hold) = hold {
                                    ticket.hold(hold);
                                }
                                act.send_leg(sent, request, span, Some(ticket), ctx)
                            }
                            Err(_) => {
                                ticket.withdraw();
                                act.hedge_refused(&sent.target)
                            }
                        }
                    }),
                );
            }
            (_, _, ticket) => self.send_leg(sent, request, span, ticket, ctx),
        }
    }

    /// Hands a hedge admitted by its budgets to the reader, unless the race
    /// was decided meanwhile.
    fn send_leg(
        &mut self,
        sent: Sent,
        request: Arc<ChatRequest>,
        span: tracing::Span,
        ticket: Option<crate::budget::Ticket>,
        ctx: &mut Context<Self>,
    ) {
        let Some(race) = self.undecided_race() else {
            return self.hedge_refused(&sent.target);
        };
        let (number, provider, target) = (sent.number, sent.provider.clone(), sent.target.clone());
        let leg = HedgeLeg {
            number,
            provider: provider.clone(),
            request,
            span,
            ticket,
        };
        if race.legs.unbounded_send(leg).is_err() {
            return self.hedge_refused(&target);
        }
        race.sent.push(sent);
        tracing::info!(parent: &self.core.span, target = %target, "steer.hedge");
        count(self, "sent");
        self.arm_next_hedge(ctx);
    }

    /// The race of the attempt in flight, while it is undecided.
    fn undecided_race(&mut self) -> Option<&mut RaceState> {
        self.hedge
            .as_mut()
            .and_then(|h| h.race.as_mut())
            .filter(|r| !r.decided.load(Ordering::Relaxed))
    }

    /// Sets the timer of the next hedge, if the stream may send one.
    fn arm_next_hedge(&mut self, ctx: &mut Context<Self>) {
        let Some(hedge) = self.hedge.as_mut() else {
            return;
        };
        let (targets, model) = (&hedge.targets, &self.original.model);
        let recent = || {
            targets
                .load(model)
                .map(|l| l.first_tokens_ms())
                .unwrap_or_default()
        };
        let (Some(delay), Some(race)) = (hedge.hedging.next_delay(recent), hedge.race.as_mut())
        else {
            return;
        };
        race.timer = Some(shell::run_later_send(ctx, delay, |act: &mut Self, ctx| {
            act.send_hedge(ctx)
        }));
    }

    /// The race of the attempt in flight ends (decided, or the attempt
    /// ended): its timer stops, and every hedge still held is returned
    /// unused (counted cancelled, recorded as lost in the route).
    fn end_race(&mut self, ctx: &mut Context<Self>) -> Vec<Sent> {
        let Some(race) = self.hedge.as_mut().and_then(|h| h.race.take()) else {
            return Vec::new();
        };
        race.decided.store(true, Ordering::Relaxed);
        if let Some(timer) = race.timer {
            ctx.cancel_future(timer);
        }
        race.sent
    }

    /// The attempt ended while its race was undecided (every leg running had
    /// handed over or failed): hedges sent but never read are withdrawn, their
    /// permits returned unused, their targets free to be picked again.
    pub(super) fn race_over(&mut self, ctx: &mut Context<Self>) {
        let unread = self.end_race(ctx);
        for _ in &unread {
            count(self, "cancelled");
        }
        if let Some(route) = self.route.as_deref_mut() {
            route.route.withdraw_hedges();
        }
    }

    /// Hedges that lost: their permits go back unused, each counted
    /// cancelled; the route records them.
    fn lost_race(&mut self, losers: Vec<Sent>) {
        for _ in &losers {
            count(self, "cancelled");
        }
        if let Some(route) = self.route.as_deref_mut() {
            if let Some(current) = route.route.current().cloned() {
                route.route.won(&current);
            }
        }
    }

    fn race_news(&mut self, news: RaceNews, ctx: &mut Context<Self>) {
        match news {
            RaceNews::Kept => {
                let losers = self.end_race(ctx);
                if !losers.is_empty() {
                    count(self, "primary_won");
                }
                self.lost_race(losers);
            }
            RaceNews::Won { number } => {
                let mut losers = self.end_race(ctx);
                let Some(i) = losers.iter().position(|s| s.number == number) else {
                    return;
                };
                let winner = losers.remove(i);
                count(self, "won");
                // The leg that led is cancelled at its target.
                count(self, "cancelled");
                self.lease = None;
                self.core.end_attempt(AttemptEnd::Cancelled);
                self.core
                    .actors
                    .coordinator
                    .do_send(AttemptAbandoned::CANCELLED);
                shell::report_end(self, RequestEnd::Cancelled);
                if let Some(route) = self.route.as_deref_mut() {
                    route.route.won(&winner.target);
                }
                self.lost_race(losers);
                self.take_lead(winner);
            }
            RaceNews::Took { number, failed } => {
                let Some(next) = self.take_sent(number) else {
                    return;
                };
                // The leader's failure is its target's: reported there.
                let failure = self.race_failure(failed);
                self.core.note_failure(&failure);
                self.core.end_attempt(AttemptEnd::Failed(failure.category));
                let lease = self.lease.take();
                let (model, pause) = (&self.core.spec.model, self.core.spec.use_breaker);
                self.core
                    .actors
                    .report_failure(lease, model, &failure, pause);
                shell::report_end(
                    self,
                    RequestEnd::Failed {
                        category: failure.category,
                    },
                );
                if let Some(route) = self.route.as_deref_mut() {
                    if let Some(leader) = route.route.current().cloned() {
                        route.route.leg_lost(&leader, failure.category.as_str());
                    }
                    route.route.lead(&next.target);
                }
                self.take_lead(next);
            }
            RaceNews::Lost { number, failed } => {
                let Some(lost) = self.take_sent(number) else {
                    return;
                };
                let failure = self.race_failure(failed);
                let model: Arc<str> = Arc::from(lost.target.model());
                let pause = self.core.spec.use_breaker;
                lost.actors
                    .report_failure(lost.lease, &model, &failure, pause);
                if let Some(route) = self.route.as_deref_mut() {
                    route
                        .route
                        .leg_lost(&lost.target, failure.category.as_str());
                }
            }
        }
    }

    /// The hedge numbered `number` of the race running, taken out of it.
    fn take_sent(&mut self, number: u32) -> Option<Sent> {
        let race = self.hedge.as_mut()?.race.as_mut()?;
        let i = race.sent.iter().position(|s| s.number == number)?;
        Some(race.sent.remove(i))
    }

    /// A leg's failure before its content, as its target's breaker hears it.
    fn race_failure(&self, mut failure: Failure) -> Failure {
        failure.request_id = Some(self.original.request_id.to_string());
        failure
    }

    /// The hedge `sent` leads the stream now: its provider, breaker and
    /// coordinator, its permit, and its attempt, running since it was sent.
    fn take_lead(&mut self, sent: Sent) {
        let Sent {
            target,
            provider,
            actors,
            lease,
            started,
            ..
        } = sent;
        self.machine.took_over(provider.prefill(target.model()));
        self.core
            .take_over(actors, target.provider(), target.model(), started);
        let in_flight = match (&self.route, &self.hedge) {
            (Some(_), Some(h)) => h.targets.load(&target).map(|l| l.start()),
            _ => self.in_flight_at.take(),
        };
        self.point_at(&target, provider, lease, in_flight);
    }
}

impl Handler<RaceNews> for StreamActor {
    type Result = ();

    fn handle(&mut self, news: RaceNews, ctx: &mut Context<Self>) {
        if !self.done {
            self.race_news(news, ctx);
        }
    }
}
