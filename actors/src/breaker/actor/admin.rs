//! What operators send the breaker: subscriptions to its transitions, its
//! status, a forced state, a reset.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::exec::clock::now;

use serde::Serialize;

use super::*;
use crate::breaker::state::{BreakerState, BreakerStats};

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
pub(super) struct Crash;

#[cfg(test)]
impl Handler<Crash> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        self.guarded(ctx, |_, _| panic!("injected failure"));
    }
}
