//! The circuit breaker: its state machine ([`state`]) and its actor ([`actor`]).

pub mod actor;
pub mod gate;
pub mod scope;
pub mod state;
pub(crate) mod wakeups;

#[cfg(test)]
mod model_tests;

pub use actor::report_failure;
pub(crate) use actor::{failure_outcome, pause_for};
pub use actor::{
    Acquire, BreakerRef, BreakerStatus, CircuitBreaker, ForceState, GetStatus, Pause, PermitLease,
    ResetBreaker, Subscribe, TransitionEvent,
};
pub use actor::{ClaimProbe, FleetOpen, FleetRecovered, FleetReport, ProbeClaim, ShareState};
pub use scope::{failure_scope, Scope, Spread, Target};
pub use state::{
    Breaker, BreakerConfig, BreakerState, BreakerStats, CallOutcome, Permit, Rejection, Transition,
    TransitionReason,
};
