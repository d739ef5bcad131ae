//! The admission gate: where a breaker that admits every call (closed and not
//! paused, or disabled) says so, so that a request takes its permit without a
//! message round trip. Only the CircuitBreaker actor writes it; while it says
//! "ask", requests send [`Acquire`](super::Acquire) and the actor decides.
//!
//! This is the one shortcut around message passing on the request path; why it
//! is worth it is measured in BENCHMARKS.md ("The request path").

use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::state::Permit;

/// "Ask the actor": no generation is this large.
const ASK: u64 = u64::MAX;

/// A breaker's published admission: the generation whose permits may be taken
/// without asking, or "ask".
#[derive(Debug, Clone)]
pub(crate) struct AdmissionGate(Arc<AtomicU64>);

impl AdmissionGate {
    /// A gate that says "ask" until the breaker publishes.
    pub(crate) fn new() -> Self {
        AdmissionGate(Arc::new(AtomicU64::new(ASK)))
    }

    /// A permit of the published generation, if the breaker admits every call.
    pub fn pass(&self) -> Option<Permit> {
        let generation = self.0.load(Ordering::Acquire);
        (generation != ASK).then_some(Permit {
            generation,
            probe: false,
        })
    }

    /// Publishes what [`Breaker::admits_all`](super::Breaker::admits_all) says.
    pub(crate) fn publish(&self, admits_all: Option<u64>) {
        self.0.store(
            admits_all.filter(|g| *g != ASK).unwrap_or(ASK),
            Ordering::Release,
        );
    }
}

/// The gates of a provider's models, by name: written (replaced whole) by the
/// breaker actor when a model is added, read without a lock by every request.
#[derive(Clone, Default)]
pub(crate) struct GateMap(Arc<ArcSwap<HashMap<Arc<str>, AdmissionGate>>>);

impl GateMap {
    /// A permit for `model`, if its gate admits every call (`None` also for a
    /// model the actor has not seen yet: ask it), with the map's own name of the
    /// model: a lease that carries it to the breaker's thread carries no
    /// allocation of the request's, freed there.
    pub fn pass(&self, model: &str) -> Option<(Permit, Arc<str>)> {
        let map = self.0.load();
        let (name, gate) = map.get_key_value(model)?;
        Some((gate.pass()?, name.clone()))
    }

    /// Whether the breaker has seen `model` and its gate says "ask" (open,
    /// half-open, paused or forced open).
    pub fn holds_back(&self, model: &str) -> bool {
        self.0
            .load()
            .get(model)
            .is_some_and(|gate| gate.pass().is_none())
    }

    /// Replaces the map.
    pub(crate) fn store(&self, map: HashMap<Arc<str>, AdmissionGate>) {
        self.0.store(Arc::new(map));
    }
}

impl std::fmt::Debug for GateMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateMap")
            .field("models", &self.0.load().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_passes_only_the_published_generation() {
        let gate = AdmissionGate::new();
        assert_eq!(gate.pass(), None);
        gate.publish(Some(7));
        assert_eq!(gate.clone().pass().map(|p| p.generation), Some(7));
        assert_eq!(gate.pass().map(|p| p.probe), Some(false));
        gate.publish(None);
        assert_eq!(gate.pass(), None);
    }
}
