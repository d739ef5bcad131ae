//! The circuit breaker: its state machine ([`state`]) and its actor ([`actor`]).

pub mod actor;
pub mod gate;
pub mod scope;
pub mod state;
pub mod wakeups;

pub use actor::{failure_outcome, pause_for, report_failure};
pub use actor::{
    Acquire, BreakerRef, BreakerStatus, CircuitBreaker, ForceState, GetStatus, Pause, PermitLease,
    ResetBreaker, Subscribe, TransitionEvent,
};
pub use actor::{ClaimProbe, FleetOpen, FleetRecovered, FleetReport, ProbeClaim, ShareState};
pub use gate::{AdmissionGate, GateMap};
pub use scope::{failure_scope, Scope, Spread, Target};
pub use state::{
    Breaker, BreakerConfig, BreakerState, BreakerStats, CallOutcome, Permit, Rejection, Transition,
    TransitionReason,
};
