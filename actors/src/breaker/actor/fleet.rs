//! The breaker's side of state shared across replicas: what it reports (pauses,
//! its own opens, a recovery its probes found), what it takes from the fleet (an
//! open a quorum decided, a recovery), and the fleet-wide probe lease it claims
//! before half-opening. Without a [`ShareState`] none of this runs and the
//! breaker is the local one.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::CircuitBreaker;
use crate::breaker::state::{BreakerState, Transition, TransitionReason};
use crate::exec::clock::now;

/// What a breaker tells the replica's shared state.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum FleetReport {
    /// A server-directed pause this replica obeyed.
    Paused {
        /// The provider.
        provider: String,
        /// The model.
        model: String,
        /// The wait the server asked for.
        wait: Duration,
    },
    /// The breaker opened on its own evidence (a vote towards the fleet's quorum).
    Opened {
        /// The provider.
        provider: String,
        /// The model; `None` for the provider's endpoint.
        model: Option<String>,
        /// How long it stays open.
        open_for: Duration,
    },
    /// The breaker's probes found the target well (it closed).
    Recovered {
        /// The provider.
        provider: String,
        /// The model; `None` for the provider's endpoint.
        model: Option<String>,
    },
}

/// Asks the fleet for one of its probe leases before half-opening.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "ProbeClaim")]
pub struct ClaimProbe {
    /// The provider.
    pub provider: String,
    /// The model; `None` for the provider's endpoint.
    pub model: Option<String>,
}

/// The fleet's answer to [`ClaimProbe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeClaim {
    /// Probe (also when the shared state cannot be reached: fail open).
    Granted,
    /// Other replicas hold every lease: stay open this much longer.
    Denied {
        /// Until the leases expire.
        retry_in: Duration,
    },
}

/// Where a breaker shares its state: the replica's shared-state actor.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ShareState {
    /// Where pauses, opens and recoveries go.
    pub reports: Recipient<FleetReport>,
    /// Where probe leases are claimed.
    pub probes: Recipient<ClaimProbe>,
}

/// A quorum of replicas opened this target: open it here too.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct FleetOpen {
    /// The model; `None` for the provider's endpoint.
    pub model: Option<Arc<str>>,
}

/// A replica's probes found this target well: half-open it here (this
/// replica's own probes confirm it).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct FleetRecovered {
    /// The model; `None` for the provider's endpoint.
    pub model: Option<Arc<str>>,
}

impl Handler<ShareState> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: ShareState, _: &mut Context<Self>) {
        self.fleet = Some(msg);
    }
}

impl Handler<FleetOpen> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: FleetOpen, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let key = msg.model.as_deref().map(|m| act.key(m));
            if let Some(t) = act
                .breaker_mut(key.as_ref())
                .and_then(|b| b.fleet_open(now()))
            {
                if key.is_none() {
                    act.endpoint_local = false;
                }
                act.publish(key, t, ctx);
            }
        });
    }
}

impl Handler<FleetRecovered> for CircuitBreaker {
    type Result = ();

    fn handle(&mut self, msg: FleetRecovered, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let key = msg.model.as_deref().map(|m| act.key(m));
            if let Some(t) = act
                .breaker_mut(key.as_ref())
                .and_then(|b| b.fleet_recovered(now()))
            {
                act.publish(key, t, ctx);
            }
        });
    }
}

/// Whether a transition is this replica's own evidence to report: opens it
/// tripped (not the fleet's, an operator's or a restart's) and recoveries its
/// probes found.
pub(super) fn is_own_evidence(t: &Transition) -> Option<bool> {
    match (t.to, &t.reason) {
        (
            BreakerState::Open,
            TransitionReason::FailureThreshold { .. }
            | TransitionReason::FailureRate
            | TransitionReason::SlowCallRate
            | TransitionReason::ProbeFailed,
        ) => Some(true),
        (BreakerState::Closed, TransitionReason::ProbesSucceeded) => Some(false),
        _ => None,
    }
}

/// Up to a fifth more of `d`, at random: replicas whose opens ended together do
/// not all claim the probe lease in the same instant.
pub(super) fn jittered(d: Duration, random: f64) -> Duration {
    d.saturating_add(d.mul_f64(random.clamp(0.0, 1.0) * 0.2))
}

impl CircuitBreaker {
    /// Reports an own open or recovery to the fleet, when shared.
    pub(super) fn tell_fleet(&self, model: Option<&str>, t: &Transition) {
        let (Some(fleet), Some(opened)) = (&self.fleet, is_own_evidence(t)) else {
            return;
        };
        if model.is_none() && self.endpoint_local {
            // Model failures spanning the provider: the fleet has them per model.
            return;
        }
        let (provider, model) = (self.provider.clone(), model.map(str::to_string));
        let report = match (opened, t.open_for) {
            (true, Some(open_for)) => FleetReport::Opened {
                provider,
                model,
                open_for,
            },
            (true, None) => return,
            (false, _) => FleetReport::Recovered { provider, model },
        };
        fleet.reports.do_send(report);
    }

    /// The open time, with jitter when the state is shared (unchanged otherwise).
    pub(super) fn with_fleet_jitter(&self, open_for: Duration) -> Duration {
        if self.fleet.is_some() {
            jittered(open_for, fastrand::f64())
        } else {
            open_for
        }
    }

    /// The open time of `generation` is over: half-open, after claiming a probe
    /// lease from the fleet when shared. Denied, the breaker stays open until
    /// the leases expire (plus jitter) and claims again.
    pub(super) fn open_time_over(
        &mut self,
        key: Option<Arc<str>>,
        generation: u64,
        ctx: &mut Context<Self>,
    ) {
        let Some(fleet) = self
            .fleet
            .as_ref()
            .filter(|_| key.is_some() || !self.endpoint_local)
        else {
            return self.half_open(key, generation, ctx);
        };
        let claim = fleet.probes.send(ClaimProbe {
            provider: self.provider.clone(),
            model: key.as_deref().map(str::to_string),
        });
        ctx.spawn(actix::fut::wrap_future(claim).map(
            move |answer, act: &mut Self, ctx| match answer {
                Ok(ProbeClaim::Denied { retry_in }) => {
                    let wait = jittered(retry_in, fastrand::f64());
                    let still_open = act
                        .breaker_mut(key.as_ref())
                        .is_some_and(|b| b.stay_open(generation, wait, now()));
                    if still_open {
                        ctx.run_later(wait, move |act, ctx| {
                            act.open_time_over(key, generation, ctx)
                        });
                    }
                }
                // Granted, or the shared state is gone: probe (fail open).
                _ => act.half_open(key, generation, ctx),
            },
        ));
    }

    fn half_open(&mut self, key: Option<Arc<str>>, generation: u64, ctx: &mut Context<Self>) {
        let fired = self
            .breaker_mut(key.as_ref())
            .and_then(|b| b.on_open_timer(generation, now()));
        if let Some(t) = fired {
            self.publish(key, t, ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(to: BreakerState, reason: TransitionReason) -> Transition {
        Transition {
            from: BreakerState::Closed,
            to,
            reason,
            open_for: Some(Duration::from_secs(1)),
            generation: 1,
        }
    }

    #[test]
    fn only_own_opens_and_recoveries_are_reported() {
        use BreakerState::*;
        let own = TransitionReason::FailureThreshold { failures: 5 };
        assert_eq!(is_own_evidence(&t(Open, own)), Some(true));
        assert_eq!(
            is_own_evidence(&t(Open, TransitionReason::ProbeFailed)),
            Some(true)
        );
        assert_eq!(
            is_own_evidence(&t(Closed, TransitionReason::ProbesSucceeded)),
            Some(false)
        );
        for (to, reason) in [
            (Open, TransitionReason::Fleet),
            (ForcedOpen, TransitionReason::Forced),
            (Closed, TransitionReason::Reset),
            (Closed, TransitionReason::Restarted),
            (HalfOpen, TransitionReason::OpenTimeElapsed),
            (HalfOpen, TransitionReason::Fleet),
        ] {
            assert_eq!(
                is_own_evidence(&t(to, reason.clone())),
                None,
                "{to:?} {reason:?}"
            );
        }
    }

    #[test]
    fn jitter_adds_up_to_a_fifth() {
        let d = Duration::from_secs(10);
        assert_eq!(jittered(d, 0.0), d);
        assert_eq!(jittered(d, 1.0), Duration::from_secs(12));
        assert_eq!(jittered(d, 7.0), Duration::from_secs(12), "clamped");
        assert_eq!(jittered(Duration::MAX, 1.0), Duration::MAX, "saturates");
    }
}
