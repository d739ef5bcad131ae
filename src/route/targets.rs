//! What a route reaches its targets through: each target's provider and actors,
//! its load, and the client's meters. A handle (cheap to clone), so that route
//! and stream code hold what they use rather than the whole client.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use steer_actors::telemetry::meters::Meters;
use steer_actors::ProviderActors;

use super::group::Group;
use super::load::{Load, TargetLoad};
use crate::model::ModelId;
use crate::provider::Provider;

/// A registered provider and its actors.
pub(crate) type Resolved = (Arc<dyn Provider>, Arc<ProviderActors>);

/// The targets of a client's groups.
#[derive(Clone)]
pub(crate) struct Targets {
    providers: Arc<BTreeMap<String, Resolved>>,
    /// The load of every target of every group (fixed at build: no lock to read).
    loads: Arc<HashMap<ModelId, Arc<TargetLoad>>>,
    meters: Meters,
}

impl Targets {
    /// The targets of `groups` among `providers`.
    pub(crate) fn new<'a>(
        providers: BTreeMap<String, Resolved>,
        groups: impl IntoIterator<Item = &'a Group>,
        meters: Meters,
    ) -> Self {
        let loads = groups
            .into_iter()
            .flat_map(|g| {
                g.targets
                    .iter()
                    .map(|t| t.target.clone())
                    .chain(g.context_fallback.iter().cloned())
                    .chain(g.content_fallback.iter().cloned())
            })
            .map(|t| (t, Arc::new(TargetLoad::default())))
            .collect();
        Targets {
            providers: Arc::new(providers),
            loads: Arc::new(loads),
            meters,
        }
    }

    /// The provider and actors of `target`'s deployment, if it is registered.
    pub(crate) fn resolve(&self, target: &ModelId) -> Option<Resolved> {
        self.providers.get(target.provider()).cloned()
    }

    /// A group target's load counters.
    pub(crate) fn load(&self, target: &ModelId) -> Option<Arc<TargetLoad>> {
        self.loads.get(target).cloned()
    }

    /// The next target of `group` for a route that tried `tried`: one whose rate
    /// limit is not nearly spent, else (rather than failing) any untried one.
    pub(crate) fn pick(&self, group: &Group, tried: &[ModelId]) -> Option<ModelId> {
        let random = fastrand::f64();
        group
            .pick_by_load(tried, |t| self.available(t), random, |t| self.load_of(t))
            .or_else(|| group.pick_by_load(tried, |_| true, random, |t| self.load_of(t)))
            .cloned()
    }

    /// An untried target of `group` that can answer now (its rate limit not
    /// nearly spent), if there is one: no fallback to a spent one.
    pub(crate) fn pick_now(&self, group: &Group, tried: &[ModelId]) -> Option<ModelId> {
        group
            .pick_by_load(tried, |t| self.available(t), 0.0, |t| self.load_of(t))
            .cloned()
    }

    /// Counts and logs a failover of group `group` from `from` to `to`.
    pub(crate) fn failover(&self, span: &tracing::Span, group: &str, from: &ModelId, to: &ModelId) {
        let (from, to) = (from.to_string(), to.to_string());
        tracing::info!(parent: span, group = %group, from = %from, to = %to, "steer.failover");
        self.meters.failover(group, &from, &to);
    }

    /// Whether a group may pick `target` now: not while its rate limit is nearly spent.
    fn available(&self, target: &ModelId) -> bool {
        self.loads.get(target).is_none_or(|l| !l.is_spent())
    }

    /// A group target's load, for selection.
    fn load_of(&self, target: &ModelId) -> Load {
        self.loads.get(target).map(|l| l.load()).unwrap_or_default()
    }
}
