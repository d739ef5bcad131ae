//! What a route reaches its targets through: each target's provider and actors,
//! its load, and the client's meters. A handle (cheap to clone), so that route
//! and stream code hold what they use rather than the whole client.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use steer_actors::telemetry::meters::Meters;
use steer_actors::ProviderActors;

use super::ejected::{EjectedFlags, LegEnded};
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
    /// The targets each group has ejected as outliers.
    ejected: Arc<EjectedFlags>,
    /// Where the ends of legs go, for the groups that eject outliers.
    outliers: Option<actix::Recipient<LegEnded>>,
    /// Each group's hedge cap (every group has one: a request may hedge),
    /// then each deployment's (for requests to a model of it that hedge).
    hedge_caps: Arc<HashMap<String, crate::route::hedge::HedgeCap>>,
    deployment_caps: Arc<HashMap<String, crate::route::hedge::HedgeCap>>,
    /// Each deployment's recent latencies, for the percentile delay of
    /// hedges of requests to a model of it (not in a group).
    deployment_loads: Arc<HashMap<String, Arc<TargetLoad>>>,
    meters: Meters,
}

impl Targets {
    /// The targets of `groups` among `providers`; the ends of their legs go to
    /// `outliers` for the groups `ejected` watches.
    pub(crate) fn new(
        providers: BTreeMap<String, Resolved>,
        groups: &BTreeMap<String, Group>,
        ejected: Arc<EjectedFlags>,
        outliers: Option<actix::Recipient<LegEnded>>,
        meters: Meters,
    ) -> Self {
        let hedge_caps = groups
            .keys()
            .map(|name| (name.clone(), crate::route::hedge::HedgeCap::default()))
            .collect();
        let loads = groups
            .values()
            .flat_map(|g| {
                g.targets
                    .iter()
                    .map(|t| t.target.clone())
                    .chain(g.context_fallback.iter().cloned())
                    .chain(g.content_fallback.iter().cloned())
            })
            .map(|t| (t, Arc::new(TargetLoad::default())))
            .collect();
        let deployment_caps = providers
            .keys()
            .map(|name| (name.clone(), crate::route::hedge::HedgeCap::default()))
            .collect();
        let deployment_loads = providers
            .keys()
            .map(|name| (name.clone(), Arc::new(TargetLoad::default())))
            .collect();
        Targets {
            providers: Arc::new(providers),
            loads: Arc::new(loads),
            ejected,
            outliers,
            hedge_caps: Arc::new(hedge_caps),
            deployment_caps: Arc::new(deployment_caps),
            deployment_loads: Arc::new(deployment_loads),
            meters,
        }
    }

    /// A leg of group `group` ended at `target`: a success, or a failure that
    /// speaks for the target's health, is told to the outlier actor.
    pub(crate) fn leg_ended(&self, group: &str, target: &ModelId, success: bool) {
        if let (Some(o), true) = (&self.outliers, self.ejected.watches(group)) {
            o.do_send(LegEnded {
                group: group.to_string(),
                target: target.clone(),
                success,
            });
        }
    }

    /// The hedge cap of `scope`: a group's, else a deployment's.
    fn cap(&self, scope: &str) -> Option<&crate::route::hedge::HedgeCap> {
        self.hedge_caps
            .get(scope)
            .or_else(|| self.deployment_caps.get(scope))
    }

    /// Takes a hedge for `scope` (a group, or a deployment for requests to a
    /// model of it) if its cap allows one.
    pub(crate) fn try_hedge(&self, scope: &str, hedge: crate::route::hedge::Hedge) -> bool {
        self.cap(scope)
            .is_some_and(|c| c.try_hedge(hedge.max_share_percent))
    }

    /// Counts a request of `scope` (the base of its hedge cap).
    pub(crate) fn count_request(&self, scope: &str) {
        if let Some(c) = self.cap(scope) {
            c.request();
        }
    }

    /// Counts a hedge of `scope`: `sent`, `won`, `primary_won`, `cancelled`,
    /// `refused`.
    pub(crate) fn hedged(&self, scope: &str, outcome: &'static str) {
        self.meters.hedge(scope, outcome);
    }

    /// How long `target` stays ejected from `group`, if it is out now.
    pub(crate) fn ejected_for(&self, group: &str, target: &ModelId) -> Option<std::time::Duration> {
        self.ejected.left(group, target)
    }

    /// The provider and actors of `target`'s deployment, if it is registered.
    pub(crate) fn resolve(&self, target: &ModelId) -> Option<Resolved> {
        self.providers.get(target.provider()).cloned()
    }

    /// A group target's load counters; for a model in no group, its
    /// deployment's (the latencies of its hedged requests).
    pub(crate) fn load(&self, target: &ModelId) -> Option<Arc<TargetLoad>> {
        self.loads
            .get(target)
            .or_else(|| self.deployment_loads.get(target.provider()))
            .cloned()
    }

    /// The next target of group `name` for a route that tried `tried`: one
    /// neither ejected nor with its rate limit nearly spent, else (rather than
    /// failing) one not ejected, else any untried one.
    pub(crate) fn pick(&self, name: &str, group: &Group, tried: &[ModelId]) -> Option<ModelId> {
        let random = fastrand::f64();
        let load = |t: &ModelId| self.load_of(t);
        let kept = |t: &ModelId| self.ejected.left(name, t).is_none();
        group
            .pick_by_load(tried, |t| kept(t) && self.available(t), random, load)
            .or_else(|| group.pick_by_load(tried, kept, random, load))
            .or_else(|| group.pick_by_load(tried, |_| true, random, load))
            .cloned()
    }

    /// An untried target of group `name` that can answer now (not ejected, its
    /// rate limit not nearly spent, its breaker not holding calls back), if
    /// there is one: no fallback.
    pub(crate) fn pick_now(&self, name: &str, group: &Group, tried: &[ModelId]) -> Option<ModelId> {
        let now = |t: &ModelId| {
            self.ejected.left(name, t).is_none() && self.available(t) && !self.held_back(t)
        };
        group
            .pick_by_load(tried, now, 0.0, |t| self.load_of(t))
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

    /// Whether `target`'s breaker holds calls back now (open, half-open,
    /// paused, forced open).
    fn held_back(&self, target: &ModelId) -> bool {
        self.providers
            .get(target.provider())
            .is_some_and(|(_, actors)| actors.breaker.holds_back(target.model()))
    }

    /// A group target's load, for selection.
    fn load_of(&self, target: &ModelId) -> Load {
        self.loads.get(target).map(|l| l.load()).unwrap_or_default()
    }
}
