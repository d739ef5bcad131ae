//! The outlier actor: one per client whose groups eject outliers. It owns each
//! such group's [`Outliers`] machine, is told how every leg ended (one-way),
//! runs the groups' intervals on an actor timer, and publishes the ejections
//! where the routes read them ([`EjectedFlags`]), in the metrics and logs, and
//! to subscribers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use steer_actors::exec::clock::later_tokio;
use steer_actors::telemetry::meters::Meters;

use crate::model::ModelId;
use crate::route::outliers::{EjectReason, Ejection, Outliers};
use crate::route::{EjectedFlags, Group, LegEnded};

/// A group's target left or rejoined its rotation.
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub enum EjectionEvent {
    /// Ejected.
    Ejected {
        /// The group.
        group: String,
        /// The ejection.
        ejection: Ejection,
    },
    /// Back in the rotation.
    Back {
        /// The group.
        group: String,
        /// The target.
        target: ModelId,
    },
}

/// Sends every later ejection event to `0`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SubscribeEjections(pub Recipient<EjectionEvent>);

pub(crate) struct OutlierActor {
    /// Each group's machine and when its next interval ends.
    groups: HashMap<String, (Outliers, tokio::time::Instant)>,
    flags: Arc<EjectedFlags>,
    meters: Meters,
    subscribers: Vec<Recipient<EjectionEvent>>,
}

impl OutlierActor {
    pub(crate) fn new<'a>(
        groups: impl IntoIterator<Item = (&'a String, &'a Group)>,
        flags: Arc<EjectedFlags>,
        meters: Meters,
    ) -> Self {
        let groups = groups
            .into_iter()
            .filter_map(|(name, g)| {
                let config = g.outliers?;
                let targets = g.targets.iter().map(|t| t.target.clone());
                let next = later_tokio(tokio::time::Instant::now(), config.interval);
                Some((name.clone(), (Outliers::new(config, targets), next)))
            })
            .collect();
        OutlierActor {
            groups,
            flags,
            meters,
            subscribers: Vec::new(),
        }
    }

    fn ejected(&mut self, group: &str, ejection: Ejection, now: tokio::time::Instant) {
        let reason = match ejection.reason {
            EjectReason::ConsecutiveFailures(_) => "consecutive_failures",
            EjectReason::SuccessRate { .. } => "success_rate",
        };
        self.flags.set(
            group,
            &ejection.target,
            Some(later_tokio(now, ejection.duration)),
        );
        self.meters
            .ejection(group, &ejection.target.to_string(), reason);
        tracing::warn!(group = %group, target = %ejection.target, reason, duration = ?ejection.duration,
            count = ejection.count, "steer.ejection: target out of the group's rotation");
        self.publish(EjectionEvent::Ejected {
            group: group.to_string(),
            ejection,
        });
    }

    fn publish(&mut self, event: EjectionEvent) {
        self.subscribers
            .retain(|s| s.try_send(event.clone()).is_ok() || s.connected());
    }

    /// Runs every group's interval that is due.
    fn sweep(&mut self) {
        let now = tokio::time::Instant::now();
        let mut events = Vec::new();
        for (name, (outliers, next)) in &mut self.groups {
            if now < *next {
                continue;
            }
            *next = later_tokio(now, outliers.config().interval);
            let (ejections, back) = outliers.sweep(now.into_std());
            events.extend(ejections.into_iter().map(|e| (name.clone(), Ok(e))));
            events.extend(back.into_iter().map(|t| (name.clone(), Err(t))));
        }
        for (group, event) in events {
            match event {
                Ok(ejection) => self.ejected(&group, ejection, now),
                Err(target) => {
                    self.flags.set(&group, &target, None);
                    tracing::info!(group = %group, target = %target, "steer.ejection: target back in the group's rotation");
                    self.publish(EjectionEvent::Back { group, target });
                }
            }
        }
    }
}

impl Actor for OutlierActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // One timer at the shortest interval of the groups.
        let every = self
            .groups
            .values()
            .map(|(o, _)| o.config().interval)
            .min()
            .unwrap_or(Duration::from_secs(10));
        ctx.run_interval(every, |act, _| act.sweep());
    }
}

impl Supervised for OutlierActor {}

impl Handler<LegEnded> for OutlierActor {
    type Result = ();

    fn handle(&mut self, msg: LegEnded, _: &mut Context<Self>) {
        let now = tokio::time::Instant::now();
        let Some((outliers, _)) = self.groups.get_mut(&msg.group) else {
            return;
        };
        if let Some(ejection) = outliers.record(&msg.target, msg.success, now.into_std()) {
            self.ejected(&msg.group, ejection, now);
        }
    }
}

impl Handler<SubscribeEjections> for OutlierActor {
    type Result = ();

    fn handle(&mut self, msg: SubscribeEjections, _: &mut Context<Self>) {
        self.subscribers.push(msg.0);
    }
}
