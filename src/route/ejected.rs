//! Which targets each group has ejected, as the routes read it: one atomic
//! "ejected until" a target of a group, fixed in shape when the client is
//! built, written only by the outlier actor, read by every pick without a lock
//! (as the breaker's admission gate is).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::Message;
use tokio::time::Instant;

use super::group::Group;
use crate::model::ModelId;

/// The ejection flags of every group that ejects outliers.
#[derive(Debug)]
pub(crate) struct EjectedFlags {
    epoch: Instant,
    /// Milliseconds after `epoch` until which a target is out; 0: in.
    groups: HashMap<String, HashMap<ModelId, AtomicU64>>,
}

impl EjectedFlags {
    /// Flags for the groups that eject outliers, every target in.
    pub(crate) fn new<'a>(groups: impl IntoIterator<Item = (&'a String, &'a Group)>) -> Self {
        let groups = groups
            .into_iter()
            .filter(|(_, g)| g.outliers.is_some())
            .map(|(name, g)| {
                let targets = g
                    .targets
                    .iter()
                    .map(|t| (t.target.clone(), AtomicU64::new(0)))
                    .collect();
                (name.clone(), targets)
            })
            .collect();
        EjectedFlags {
            epoch: Instant::now(),
            groups,
        }
    }

    /// Whether `group` ejects outliers.
    pub(crate) fn watches(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// Marks `target` of `group` out until `until` (`None`: back in).
    pub(crate) fn set(&self, group: &str, target: &ModelId, until: Option<Instant>) {
        if let Some(flag) = self.groups.get(group).and_then(|g| g.get(target)) {
            let ms = until.map_or(0, |u| self.ms(u).max(1));
            flag.store(ms, Ordering::Release);
        }
    }

    /// How long `target` of `group` stays out, if it is out now.
    pub(crate) fn left(&self, group: &str, target: &ModelId) -> Option<Duration> {
        let flag = self.groups.get(group)?.get(target)?;
        let until = flag.load(Ordering::Acquire);
        let now = self.ms(Instant::now());
        (until > now).then(|| Duration::from_millis(until.saturating_sub(now)))
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

/// How a leg of a route ended at a target (one-way, to the outlier actor).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct LegEnded {
    /// The group.
    pub group: String,
    /// The target.
    pub target: ModelId,
    /// `false` only for a failure that speaks for the target's health.
    pub success: bool,
}
