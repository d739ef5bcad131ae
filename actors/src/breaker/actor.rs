//! The CircuitBreaker actor: one per provider, a thin shell around the [`Breaker`]s
//! it owns: one for the provider's endpoint (connection, DNS and TLS failures
//! speak for every model) and one per model (rate limits, overload and server
//! errors are metered per model). A call is admitted when both admit it. The actor
//! answers permit requests, runs the open and pause timers and publishes
//! transitions.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::time::SystemTime;

use actix::prelude::*;

use crate::exec::clock::now;

use crate::MAILBOX_CAPACITY;
use serde::Serialize;

use super::gate::{AdmissionGate, GateMap};
use super::scope::Spread;
use super::state::{Breaker, BreakerConfig, BreakerState, Transition, TransitionReason};
use super::wakeups::Wakeups;
use crate::telemetry::meters::Meters;

mod admin;
mod fleet;
mod lease;
mod requests;
#[cfg(test)]
mod tests;

#[cfg(test)]
use admin::Crash;
pub use admin::{BreakerStatus, ForceState, GetStatus, ResetBreaker, Subscribe};
pub use fleet::{ClaimProbe, FleetOpen, FleetRecovered, FleetReport, ProbeClaim, ShareState};
pub(crate) use lease::{failure_outcome, pause_for};
pub use lease::{report_failure, BreakerRef, PermitLease};
pub use requests::{Acquire, Pause};
pub(crate) use requests::{Report, Reports};

/// Models a breaker keeps state for, at most: past it, a new model replaces one
/// that is closed and quiet, or shares the overflow state.
pub(crate) const MAX_MODELS: usize = 1024;
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
    pub(crate) fn with_meters(mut self, meters: Meters) -> Self {
        meters.breaker_state(&self.provider, None, self.endpoint.state().label());
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
            .breaker_state(&self.provider, Some(&key), breaker.state().label());
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
        self.meters.transition(
            &self.provider,
            model.as_deref(),
            t.from.label(),
            t.to.label(),
        );
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
        let who = |act: &Self| format!("circuit breaker of {}", act.provider);
        crate::exec::supervise::guarded(self, ctx, who, body)
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
