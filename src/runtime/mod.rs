//! The reliability runtime: the client facade, the `Generate` message and its
//! router, provider health, metrics and their HTTP endpoint.
//!
//! Every provider gets a CircuitBreaker and a RetryCoordinator actor, on one
//! arbiter (its home); every request runs as a supervised `RequestActor` (a
//! stream as a `StreamActor`) in its caller's own future or stream (`InPlace`),
//! on whatever runtime polls it. It reaches its provider's actors through the
//! admission gate and one-way reports, gathered per runtime; a stream's attempts
//! are read by the task that polls it (docs/design/placement.md).

mod client;
/// How a broken stream continues (it lives in [`crate::stream`]).
pub use crate::stream::continuation;
mod generate;
/// Model groups (they live in [`crate::route`]; kept here for the paths in use).
pub use crate::route::group;
#[cfg(feature = "http-endpoint")]
pub mod http;
mod options;
mod outlier_actor;
mod request_run;
mod route_actor;
mod system;
/// Spans (they live in [`crate::observe`]).
pub use crate::observe::trace;

pub use crate::model::RateFloor;
pub use crate::stream::SteerStream;
pub use client::{Breakers, Client, ClientBuilder, Overload, MAX_ARBITERS};
pub use continuation::{Continuation, Divergence};
pub use generate::{Generate, GenerateStream, Router, StreamItem, StreamTo};
pub use options::GenerateOptions;
pub use outlier_actor::EjectionEvent;
pub use steer_actors::breaker::{
    BreakerStats, BreakerStatus, Rejection, TransitionEvent, TransitionReason,
};
pub use steer_actors::partials::PartialResponse;
pub use steer_actors::telemetry::meters::Meters;

/// A serialisable snapshot of every provider's breaker and counters, and of
/// every group's ejected targets.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricsSnapshot {
    /// One report per provider, sorted by name.
    pub providers: Vec<steer_actors::ProviderReport>,
    /// One report per group, sorted by name.
    pub groups: Vec<GroupReport>,
}

/// Where a group stands: the targets it has ejected as outliers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GroupReport {
    /// The group's name.
    pub group: String,
    /// Each target out of its rotation, and for how long yet.
    pub ejected: Vec<EjectedTarget>,
}

/// A target a group has ejected.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EjectedTarget {
    /// The target, `deployment/model`.
    pub target: String,
    /// Until it is back, in milliseconds.
    pub back_in_ms: u64,
}

impl MetricsSnapshot {
    /// The report of one provider.
    pub fn provider(&self, name: &str) -> Option<&steer_actors::ProviderReport> {
        self.providers.iter().find(|r| r.provider == name)
    }
}
