//! The actors of one provider as its requests hold them: the circuit breaker
//! and the retry coordinator, started side by side on one arbiter, shared behind
//! one reference count.

use std::sync::Arc;

use actix::{Addr, ArbiterHandle};

use crate::breaker::{BreakerRef, CircuitBreaker};
use crate::meters::Meters;
use crate::retry::RetryCoordinator;

/// A provider's CircuitBreaker and RetryCoordinator.
#[derive(Debug)]
pub struct ProviderActors {
    /// The circuit breaker: its address and admission gate.
    pub breaker: BreakerRef,
    /// The retry coordinator.
    pub coordinator: Addr<RetryCoordinator>,
    /// The client's metric families, which its requests record into.
    pub meters: Meters,
}

impl ProviderActors {
    /// Starts `breaker` and `coordinator` on `arbiter`, each under a supervisor,
    /// recording into `meters`. A request actor placed on the same arbiter
    /// exchanges its messages with them without crossing threads.
    pub fn start(
        arbiter: &ArbiterHandle,
        breaker: CircuitBreaker,
        coordinator: RetryCoordinator,
        meters: Meters,
    ) -> Arc<Self> {
        Arc::new(ProviderActors {
            breaker: BreakerRef::start(breaker.with_meters(meters.clone()), arbiter),
            // Supervised: restarted at the same address if a handler fails.
            coordinator: actix::Supervisor::start_in_arbiter(arbiter, move |_| coordinator),
            meters,
        })
    }
}
