#![warn(missing_docs)]
// Time and counters here are fed by servers and users (`retry-after`, deadlines,
// open times): every operation that can overflow saturates or is checked.
#![cfg_attr(not(test), warn(clippy::arithmetic_side_effects))]
//! steer-actors: the reliability actors of steer and the domain logic they own.
//!
//! This crate knows no provider and no HTTP: it decides from a classified
//! [`Failure`] (category, retryability, health signal, server-directed wait), which
//! the provider side (`steer-llm`) builds from raw responses.
//!
//! - [`breaker`]: the circuit breaker state machine and its actor, one per provider.
//! - [`retry`]: retry policy, backoff, budget, and the RetryCoordinator actor.
//! - [`metrics`]: per-provider counters (the snapshot); [`meters`]: the
//!   Prometheus families (histograms, counters, gauges) of a client.
//! - [`provider`]: a provider's two actors, as its requests hold them.
//! - [`in_place`]: an actor run by the task that awaits it (no arbiter needed).
//! - [`spec`]: what one request may do ([`spec::RequestSpec`]).
//! - [`request`]: the supervised request actor, and [`attempt_loop`]: the steps
//!   around its attempts, shared with the stream actor; [`guarded`]: an
//!   attempt's future as the request actor polls it.

/// Mailbox capacity of the per-provider actors: large, because every request
/// asks them something; bounded, because actix's channel needs it to be.
pub(crate) const MAILBOX_CAPACITY: usize = 1 << 20;

pub mod attempt_loop;
pub mod breaker;
pub mod clock;
pub mod failure;
pub mod guarded;
pub mod in_place;
pub mod lifecycle;
pub mod meters;
pub mod metrics;
pub mod own_wakes;
pub mod partials;
pub mod provider;
pub mod relay;
pub mod request;
pub mod retry;
pub mod spans;
pub mod spec;
mod supervise;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker, TransitionEvent};
pub use failure::{Category, Failure, Phase, RateLimitHints};
pub use metrics::ProviderReport;
pub use provider::ProviderActors;
pub use retry::{
    Backoff, BudgetConfig, GiveUp, Jitter, ProviderMetrics, RetryCoordinator, RetryPolicy,
};
