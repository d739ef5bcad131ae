//! The CircuitBreaker actor: one per provider, a thin shell around the [`Breaker`]s
//! it owns: one for the provider's endpoint (connection, DNS and TLS failures
//! speak for every model) and one per model (rate limits, overload and server
//! errors are metered per model). A call is admitted when both admit it. The actor
//! answers permit requests, runs the open and pause timers and publishes
//! transitions.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;

use crate::exec::clock::now;

use crate::MAILBOX_CAPACITY;
use serde::Serialize;

use super::gate::{AdmissionGate, GateMap};
use super::scope::{failure_scope, Scope, Spread};
use super::state::{
    Breaker, BreakerConfig, BreakerState, BreakerStats, CallOutcome, Permit, Rejection, Transition,
    TransitionReason,
};
use super::wakeups::Wakeups;
use crate::telemetry::meters::Meters;

mod fleet;
#[cfg(test)]
mod tests;

pub use fleet::{ClaimProbe, FleetOpen, FleetRecovered, FleetReport, ProbeClaim, ShareState};

/// Models a breaker keeps state for, at most: past it, a new model replaces one
/// that is closed and quiet, or shares the overflow state.
pub const MAX_MODELS: usize = 1024;
/// The state models beyond [`MAX_MODELS`] share.
const OVERFLOW: &str = "*";

/// A state change, as published to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Message)]
#[rtype(result = "()")]
pub struct TransitionEvent {
    /// The provider whose breaker changed.
    pub provider: String,
    /// The model whose breaker changed; `None` for the provider's endpoint.
    pub model: Option<String>,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// When (wall clock).
    pub at: SystemTime,
}

struct ModelBreaker {
    breaker: Breaker,
    gate: AdmissionGate,
}

/// The circuit breaker of one provider.
pub struct CircuitBreaker {
    provider: String,
    config: BreakerConfig,
    endpoint: Breaker,
    models: HashMap<Arc<str>, ModelBreaker>,
    /// Subscribers, each to one model or (`None`) to all.
    subscribers: Vec<(Option<String>, Recipient<TransitionEvent>)>,
    endpoint_gate: AdmissionGate,
    gates: GateMap,
    /// Where transitions and pauses are counted.
    meters: Meters,
    /// The replica's shared state, when the breaker's state is shared with the
    /// fleet: where pauses and opens are reported, probe leases claimed.
    fleet: Option<ShareState>,
    /// When paused models wake, and the one timer set for the earliest.
    wakeups: Wakeups,
    wake_timer: Option<SpawnHandle>,
    /// The latest successes by model: whether a model's failure has a healthy
    /// sibling, or speaks for the provider too ([`Spread`]).
    spread: Spread,
    /// The endpoint's current open came from model failures spanning the
    /// provider: evidence the fleet already shares per model, so this open is
    /// neither reported to it nor half-opened through its probe lease (the
    /// model's lease holder must be free to probe through its endpoint).
    endpoint_local: bool,
}

impl CircuitBreaker {
    /// A closed breaker for `provider`.
    pub fn new(provider: &str, config: BreakerConfig) -> Self {
        let breaker = CircuitBreaker {
            provider: provider.to_string(),
            endpoint: Breaker::new(config.clone()),
            config,
            models: HashMap::new(),
            subscribers: Vec::new(),
            endpoint_gate: AdmissionGate::new(),
            gates: GateMap::default(),
            meters: Meters::new(),
            fleet: None,
            wakeups: Wakeups::default(),
            wake_timer: None,
            spread: Spread::default(),
            endpoint_local: false,
        };
        breaker.sync_endpoint_gate();
        breaker
    }

    /// Counts transitions and pauses into `meters` (else into families of its own).
    pub fn with_meters(mut self, meters: Meters) -> Self {
        meters.breaker_state(&self.provider, None, self.endpoint.state());
        self.meters = meters;
        self
    }

    /// Publishes whether calls may pass the endpoint without asking.
    fn sync_endpoint_gate(&self) {
        self.endpoint_gate.publish(self.endpoint.admits_all(now()));
    }

    /// Publishes whether calls to `model` may take permits without asking.
    fn sync_gate(&self, model: &str) {
        if let Some(m) = self.models.get(model) {
            m.gate.publish(m.breaker.admits_all(now()));
        }
    }

    /// The key a model's state is kept under (the overflow key past the cap).
    fn key(&mut self, model: &str) -> Arc<str> {
        if let Some((k, _)) = self.models.get_key_value(model) {
            return k.clone();
        }
        if self.models.len() >= MAX_MODELS {
            let now = now();
            let mut quiet = None;
            for (k, m) in self.models.iter_mut() {
                if &**k != OVERFLOW
                    && m.breaker.state() == BreakerState::Closed
                    && m.breaker.paused_until(now).is_none()
                    && m.breaker.stats(now).failures_in_window == 0
                {
                    quiet = Some(k.clone());
                    break;
                }
            }
            match quiet {
                Some(k) => {
                    self.models.remove(&k);
                    self.wakeups.forget(&k);
                }
                None => return self.overflow(),
            }
        }
        self.insert(Arc::from(model))
    }

    fn overflow(&mut self) -> Arc<str> {
        match self.models.get_key_value(OVERFLOW) {
            Some((k, _)) => k.clone(),
            None => self.insert(Arc::from(OVERFLOW)),
        }
    }

    fn insert(&mut self, key: Arc<str>) -> Arc<str> {
        let gate = AdmissionGate::new();
        let breaker = Breaker::new(self.config.clone());
        gate.publish(breaker.admits_all(now()));
        self.meters
            .breaker_state(&self.provider, Some(&key), breaker.state());
        self.models
            .insert(key.clone(), ModelBreaker { breaker, gate });
        self.publish_gates();
        key
    }

    /// Publishes the map of model gates (copy on write: only when models change).
    fn publish_gates(&self) {
        let map: HashMap<Arc<str>, AdmissionGate> = self
            .models
            .iter()
            .map(|(k, m)| (k.clone(), m.gate.clone()))
            .collect();
        self.gates.store(map);
    }

    fn breaker_mut(&mut self, model: Option<&Arc<str>>) -> Option<&mut Breaker> {
        match model {
            None => Some(&mut self.endpoint),
            Some(m) => self.models.get_mut(m).map(|m| &mut m.breaker),
        }
    }

    fn publish(&mut self, model: Option<Arc<str>>, t: Transition, ctx: &mut Context<Self>) {
        match &model {
            None => self.sync_endpoint_gate(),
            Some(m) => self.sync_gate(m),
        }
        tracing::info!(provider = %self.provider, model = model.as_deref().unwrap_or("*endpoint*"),
            from = ?t.from, to = ?t.to, reason = ?t.reason, "breaker transition");
        self.meters
            .transition(&self.provider, model.as_deref(), t.from, t.to);
        self.tell_fleet(model.as_deref(), &t);
        if let Some(open_for) = t.open_for {
            let generation = t.generation;
            let key = model.clone();
            // A local open of the endpoint ends on time, never after the opens
            // of the models whose failures caused it (theirs are jittered): a
            // model's probe finds its endpoint half-open.
            let wait = if model.is_none() && self.endpoint_local {
                open_for
            } else {
                self.with_fleet_jitter(open_for)
            };
            ctx.run_later(wait, move |act, ctx| {
                act.open_time_over(key, generation, ctx)
            });
        }
        let event = TransitionEvent {
            provider: self.provider.clone(),
            model: model.as_deref().map(str::to_string),
            from: t.from,
            to: t.to,
            reason: t.reason,
            at: SystemTime::now(),
        };
        self.subscribers.retain(|(_, s)| s.connected());
        for (filter, s) in &self.subscribers {
            let wanted = match filter {
                None => true,
                Some(f) => event.model.as_deref() == Some(f.as_str()),
            };
            if wanted {
                s.do_send(event.clone());
            }
        }
    }

    /// Runs a handler's body; a panic in it stops the actor, and its supervisor
    /// restarts it with fresh state ([`Supervised::restarting`]). The provider is
    /// never left unprotected.
    fn guarded<R>(
        &mut self,
        ctx: &mut Context<Self>,
        body: impl FnOnce(&mut Self, &mut Context<Self>) -> R,
    ) -> Option<R> {
        let who = format!("circuit breaker of {}", self.provider);
        crate::exec::supervise::guarded(self, ctx, &who, body)
    }
}

impl Actor for CircuitBreaker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Permit requests are small and many: do not let the mailbox push back.
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl Supervised for CircuitBreaker {
    /// Fresh state (closed, empty counters, no pause, no model kept), the same
    /// subscribers and gates; subscribers are told with a
    /// [`TransitionReason::Restarted`] event.
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        let from = self.endpoint.state();
        self.endpoint = self.endpoint.restarted();
        self.sync_endpoint_gate();
        let now = now();
        for m in self.models.values_mut() {
            // The generation moves on: permits from before cannot move the new state.
            m.breaker = m.breaker.restarted();
            m.gate.publish(m.breaker.admits_all(now));
        }
        // The context's timers are gone with the old run (and the pauses with it).
        self.wakeups.clear();
        self.wake_timer = None;
        let t = Transition {
            from,
            to: self.endpoint.state(),
            reason: TransitionReason::Restarted,
            open_for: None,
            generation: self.endpoint.generation(),
        };
        self.publish(None, t, ctx);
    }
}

/// A provider's breaker as its requests hold it: the actor's address and its
/// admission gates behind one reference count, so that holding one allocates
/// nothing.
#[derive(Clone)]
pub struct BreakerRef(Arc<BreakerLink>);

struct BreakerLink {
    addr: Addr<CircuitBreaker>,
    endpoint_gate: AdmissionGate,
    gates: GateMap,
}

impl BreakerRef {
    /// Starts `breaker` on `arbiter`, under a supervisor: if the actor stops (a
    /// handler failed) it is restarted with fresh state, at the same address.
    pub fn start(breaker: CircuitBreaker, arbiter: &ArbiterHandle) -> Self {
        let endpoint_gate = breaker.endpoint_gate.clone();
        let gates = breaker.gates.clone();
        let addr = Supervisor::start_in_arbiter(arbiter, move |_| breaker);
        BreakerRef(Arc::new(BreakerLink {
            addr,
            endpoint_gate,
            gates,
        }))
    }

    /// The actor's address: status, subscriptions, operator messages.
    pub fn addr(&self) -> &Addr<CircuitBreaker> {
        &self.0.addr
    }

    /// A permit for `model` taken without asking, while the endpoint and the model
    /// admit every call (closed and not paused, or disabled); `None` means: ask
    /// with [`BreakerRef::acquire`].
    pub fn pass(&self, model: &Arc<str>) -> Option<PermitLease> {
        let endpoint = self.0.endpoint_gate.pass()?;
        let (permit, model) = self.0.gates.pass(model)?;
        Some(PermitLease {
            endpoint,
            permit,
            model,
            from_gate: true,
            breaker: Some(self.clone()),
        })
    }

    /// Asks the actor for a permit for `model`.
    pub fn acquire(&self, model: &Arc<str>) -> actix::dev::Request<CircuitBreaker, Acquire> {
        self.0.addr.send(Acquire {
            breaker: self.clone(),
            model: model.clone(),
        })
    }
}

impl std::fmt::Debug for BreakerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerRef")
            .field("endpoint_gate", &self.0.endpoint_gate)
            .finish_non_exhaustive()
    }
}

/// A granted permit. Report the call's outcome with [`PermitLease::report`]; if the
/// lease is dropped unreported (a cancelled request, a dead actor), the permit is
/// handed back.
#[derive(Debug)]
pub struct PermitLease {
    /// The endpoint's permit.
    endpoint: Permit,
    /// The model's permit.
    permit: Permit,
    model: Arc<str>,
    /// Taken from the gate: the breaker counts it when its outcome arrives.
    from_gate: bool,
    breaker: Option<BreakerRef>,
}

impl PermitLease {
    /// The model's permit.
    pub fn permit(&self) -> Permit {
        self.permit
    }

    /// Reports the outcome (one-way); a health failure counts against the model.
    pub fn report(self, outcome: CallOutcome) {
        self.report_in(outcome, Scope::Model);
    }

    /// Reports the outcome (one-way); a health failure counts in `scope`.
    pub fn report_in(mut self, outcome: CallOutcome, scope: Scope) {
        self.send(outcome, scope);
    }

    /// The report of `outcome`, to send another way (the lease then sends
    /// nothing, not even on drop); `None` when it was already reported.
    pub(crate) fn into_report(mut self, outcome: CallOutcome, scope: Scope) -> Option<Report> {
        self.take_report(outcome, scope).map(|(_, report)| report)
    }

    /// The report of `outcome` and where it goes, once: the lease reports
    /// nothing after it.
    fn take_report(&mut self, outcome: CallOutcome, scope: Scope) -> Option<(BreakerRef, Report)> {
        let breaker = self.breaker.take()?;
        let report = Report {
            endpoint: self.endpoint,
            permit: self.permit,
            model: self.model.clone(),
            outcome,
            scope,
            from_gate: self.from_gate,
        };
        Some((breaker, report))
    }

    /// Whether the permit came from the admission gate (the breaker admitted
    /// every call): its outcome then decides no transition on its own.
    pub fn from_gate(&self) -> bool {
        self.from_gate
    }

    fn send(&mut self, outcome: CallOutcome, scope: Scope) {
        if let Some((breaker, report)) = self.take_report(outcome, scope) {
            breaker.addr().do_send(report);
        }
    }
}

impl Drop for PermitLease {
    fn drop(&mut self) {
        self.send(CallOutcome::Cancelled, Scope::Model);
    }
}

/// Reports a failed call: a health failure counts against the model, or against
/// the endpoint for a network failure; anything else (a caller's mistake, a rate
/// limit) is neutral; a rate limit with a server-directed wait pauses the model.
pub fn report_failure(
    lease: Option<PermitLease>,
    breaker: &BreakerRef,
    model: &Arc<str>,
    failure: &crate::failure::Failure,
    pause: bool,
) {
    if let Some(lease) = lease {
        let (outcome, scope) = failure_outcome(failure);
        lease.report_in(outcome, scope);
    }
    if pause {
        pause_for(breaker, model, failure);
    }
}

/// What a failed call tells the breaker, and where it counts: a health failure
/// against its model, or its endpoint for a network failure; anything else (a
/// caller's mistake, a rate limit) is neutral.
pub fn failure_outcome(failure: &crate::failure::Failure) -> (CallOutcome, Scope) {
    use crate::failure::Category;
    let outcome = if failure.category != Category::RateLimited && failure.affects_health {
        CallOutcome::HealthFailure
    } else {
        CallOutcome::Neutral
    };
    (outcome, failure_scope(failure.category))
}

/// Pauses `model` for a rate limit's server-directed wait, if it has one.
pub fn pause_for(breaker: &BreakerRef, model: &Arc<str>, failure: &crate::failure::Failure) {
    if let (crate::failure::Category::RateLimited, Some(wait)) =
        (failure.category, failure.retry_after)
    {
        breaker.addr().do_send(Pause {
            model: model.clone(),
            wait,
            from_fleet: false,
        });
    }
}

/// Asks for a permit to call `model`; the lease reports back through the
/// reference it carries. (While the gates admit every call,
/// [`BreakerRef::pass`] gives one without asking.)
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<PermitLease, Rejection>")]
pub struct Acquire {
    /// Where the lease reports.
    pub breaker: BreakerRef,
    /// The model.
    pub model: Arc<str>,
}

impl Handler<Acquire> for CircuitBreaker {
    type Result = Result<PermitLease, Rejection>;

    fn handle(&mut self, msg: Acquire, ctx: &mut Context<Self>) -> Self::Result {
        let granted = self.guarded(ctx, |act, _| {
            let key = act.key(&msg.model);
            let now = now();
            let endpoint = act.endpoint.try_acquire(now)?;
            let Some(m) = act.models.get_mut(&key) else {
                return Ok((endpoint, endpoint, key));
            };
            match m.breaker.try_acquire(now) {
                Ok(permit) => Ok((endpoint, permit, key)),
                Err(rejection) => {
                    // The endpoint's permit goes back unused: the call was
                    // never admitted (the model's breaker counts the rejection).
                    act.endpoint.give_back(endpoint, now);
                    Err(rejection)
                }
            }
        });
        // A breaker that failed restarts closed: the call is admitted, as the
        // fresh breaker would admit it (its permits cannot move the new state).
        let (endpoint, permit, model) = granted.unwrap_or(Ok((
            Permit {
                generation: u64::MAX,
                probe: false,
            },
            Permit {
                generation: u64::MAX,
                probe: false,
            },
            msg.model.clone(),
        )))?;
        Ok(PermitLease {
            endpoint,
            permit,
            model,
            from_gate: false,
            breaker: Some(msg.breaker),
        })
    }
}

/// The outcome of a permitted call (sent by [`PermitLease`], or gathered by a
/// [`ReportRelay`](crate::exec::relay::ReportRelay)).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub(crate) struct Report {
    endpoint: Permit,
    permit: Permit,
    model: Arc<str>,
    outcome: CallOutcome,
    scope: Scope,
    from_gate: bool,
}

/// Reports gathered on another arbiter, in the order they were made.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Reports(pub Vec<Report>);

impl Handler<Reports> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Reports, ctx: &mut Context<Self>) {
        for report in msg.0 {
            <Self as Handler<Report>>::handle(self, report, ctx);
        }
    }
}

impl Handler<Report> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Report, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let now = now();
            // A health failure counts where it belongs: an endpoint's (network)
            // for the endpoint alone (the model was never reached); a model's for
            // the model, and for the provider too while no sibling model is well
            // (its failures span the provider: see `scope`).
            let (for_endpoint, for_model) = match (msg.outcome, msg.scope) {
                (CallOutcome::HealthFailure, Scope::Endpoint) => {
                    (CallOutcome::HealthFailure, CallOutcome::Neutral)
                }
                (CallOutcome::HealthFailure, Scope::Model) => {
                    let spans = act.spread.speaks_for_provider(
                        &msg.model,
                        now,
                        act.endpoint.config().window,
                    );
                    let endpoint = if spans {
                        CallOutcome::HealthFailure
                    } else {
                        CallOutcome::Neutral
                    };
                    (endpoint, CallOutcome::HealthFailure)
                }
                (other, _) => (other, other),
            };
            if let CallOutcome::Success { .. } = msg.outcome {
                act.spread.success(msg.model.clone(), now);
            }
            let spanning = msg.scope == Scope::Model && for_endpoint == CallOutcome::HealthFailure;
            if msg.from_gate {
                act.endpoint.count_admitted();
            }
            if let Some(t) = act.endpoint.on_outcome(msg.endpoint, for_endpoint, now) {
                if t.to == BreakerState::Open {
                    act.endpoint_local = spanning;
                }
                act.publish(None, t, ctx);
            }
            let key = act.key(&msg.model);
            let moved = act.models.get_mut(&key).and_then(|m| {
                if msg.from_gate {
                    m.breaker.count_admitted();
                }
                m.breaker.on_outcome(msg.permit, for_model, now)
            });
            if let Some(t) = moved {
                act.publish(Some(key), t, ctx);
            }
        });
    }
}

/// A server-directed wait: every call to this model waits (or fails over) until
/// it ends. A wait longer than the breaker's `max_pause` is refused (logged and
/// counted), never obeyed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Pause {
    /// The model the wait is for.
    pub model: Arc<str>,
    /// The wait.
    pub wait: Duration,
    /// Whether it came from the fleet (another replica's pause, through shared
    /// state) rather than from a response this process saw: a fleet pause is not
    /// shared again.
    pub from_fleet: bool,
}

impl Handler<Pause> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Pause, ctx: &mut Context<Self>) {
        let obeyed = self
            .guarded(ctx, |act, ctx| act.pause(&msg.model, msg.wait, ctx))
            .unwrap_or(false);
        if let (true, false, Some(fleet)) = (obeyed, msg.from_fleet, &self.fleet) {
            fleet.reports.do_send(FleetReport::Paused {
                provider: self.provider.clone(),
                model: msg.model.to_string(),
                wait: msg.wait,
            });
        }
    }
}

impl CircuitBreaker {
    /// Pauses `model` for `wait`; `false` when the wait is refused (above the cap).
    fn pause(&mut self, model: &str, wait: Duration, ctx: &mut Context<Self>) -> bool {
        let key = self.key(model);
        let now = now();
        let provider = self.provider.clone();
        let Some(m) = self.models.get_mut(&key) else {
            return false;
        };
        let before = m.breaker.paused_until(now);
        if !m.breaker.pause(wait, now) {
            tracing::warn!(%provider, model = %key, ?wait, max_pause = ?m.breaker.config().max_pause,
                "server-directed wait above the cap: reported, not obeyed");
            return false;
        }
        m.gate.publish(m.breaker.admits_all(now));
        self.meters.pause(&provider, &key, wait);
        // The gate opens again when the pause ends: one queue of wake-ups and
        // one timer for the whole breaker, set for the earliest.
        let until = m.breaker.paused_until(now);
        if let (Some(until), true) = (until, until != before) {
            if self.wakeups.schedule(&key, until) {
                self.set_wake_timer(now, ctx);
            }
        }
        true
    }

    /// (Re)sets the one wake-up timer for the earliest pause end.
    fn set_wake_timer(&mut self, at: std::time::Instant, ctx: &mut Context<Self>) {
        if let Some(timer) = self.wake_timer.take() {
            ctx.cancel_future(timer);
        }
        let Some(next) = self.wakeups.next() else {
            return;
        };
        let wait = next.saturating_duration_since(at);
        self.wake_timer = Some(ctx.run_later(wait, |act, ctx| {
            act.wake_timer = None;
            let woke_at = now();
            for model in act.wakeups.due(woke_at) {
                act.sync_gate(&model);
            }
            act.set_wake_timer(woke_at, ctx);
        }));
    }
}

/// Subscribes to transitions: of one model (`Some`), or of the endpoint and
/// every model (`None`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    /// Who is told.
    pub recipient: Recipient<TransitionEvent>,
    /// The model, or every transition.
    pub model: Option<String>,
}

impl Handler<Subscribe> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.push((msg.model, msg.recipient));
    }
}

/// A breaker's state and counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerStatus {
    /// The provider.
    pub provider: String,
    /// The model, for a model's status; `None` for the provider's endpoint.
    pub model: Option<String>,
    /// Its state.
    pub state: BreakerState,
    /// Its counters.
    pub stats: BreakerStats,
    /// Time left on a server-directed pause.
    pub paused_for: Option<Duration>,
    /// For the provider: each model's status, by name.
    pub models: Vec<BreakerStatus>,
}

/// Asks for the status of the provider (with its models) or of one model.
#[derive(Debug, Clone, Default, Message)]
#[rtype(result = "BreakerStatus")]
pub struct GetStatus {
    /// The model, or the whole provider.
    pub model: Option<String>,
}

impl CircuitBreaker {
    fn status_of(&mut self, model: Option<&str>, now: std::time::Instant) -> BreakerStatus {
        let (state, stats, paused_for) = match model {
            None => (self.endpoint.state(), self.endpoint.stats(now), None),
            Some(name) => match self.models.get_mut(name) {
                Some(m) => (
                    m.breaker.state(),
                    m.breaker.stats(now),
                    m.breaker
                        .paused_until(now)
                        .map(|t| t.saturating_duration_since(now)),
                ),
                // A model not called yet: a fresh, closed breaker.
                None => (BreakerState::Closed, BreakerStats::default(), None),
            },
        };
        BreakerStatus {
            provider: self.provider.clone(),
            model: model.map(str::to_string),
            state,
            stats,
            paused_for,
            models: Vec::new(),
        }
    }
}

impl Handler<GetStatus> for CircuitBreaker {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, msg: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let now = now();
        let mut status = self.status_of(msg.model.as_deref(), now);
        if msg.model.is_none() {
            let mut names: Vec<Arc<str>> = self.models.keys().cloned().collect();
            names.sort();
            status.models = names.iter().map(|n| self.status_of(Some(n), now)).collect();
        }
        MessageResult(status)
    }
}

/// An operator sets the state (`ForcedOpen`, `Disabled`, or `Closed`) of the
/// provider's endpoint (`model: None`: every model) or of one model.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ForceState {
    /// The state.
    pub state: BreakerState,
    /// The model, or the whole provider.
    pub model: Option<String>,
}

impl Handler<ForceState> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: ForceState, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let key = msg.model.as_deref().map(|m| act.key(m));
            let moved = act
                .breaker_mut(key.as_ref())
                .and_then(|b| b.force(msg.state, now()));
            if let Some(t) = moved {
                act.publish(key, t, ctx);
            }
        });
    }
}

/// Resets to closed with empty counters: one model, or (`None`) the endpoint and
/// every model.
#[derive(Debug, Clone, Default, Message)]
#[rtype(result = "()")]
pub struct ResetBreaker {
    /// The model, or the whole provider.
    pub model: Option<String>,
}

impl Handler<ResetBreaker> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: ResetBreaker, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let keys: Vec<Option<Arc<str>>> = match &msg.model {
                Some(m) => vec![Some(act.key(m))],
                None => std::iter::once(None)
                    .chain(act.models.keys().cloned().map(Some))
                    .collect(),
            };
            for key in keys {
                let moved = act.breaker_mut(key.as_ref()).and_then(|b| b.reset(now()));
                if let Some(t) = moved {
                    act.publish(key.clone(), t, ctx);
                }
                // A reset also ends a pause, with or without a transition.
                match &key {
                    None => act.sync_endpoint_gate(),
                    Some(k) => act.sync_gate(k),
                }
            }
        });
    }
}

/// Makes the handler fail, to test the supervisor.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct Crash;

#[cfg(test)]
impl Handler<Crash> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        self.guarded(ctx, |_, _| panic!("injected failure"));
    }
}
