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
//! The domain, each a plain state machine or policy with its actor:
//!
//! - [`breaker`]: the circuit breaker state machine and its actor, one per provider.
//! - [`retry`]: retry policy, backoff, budget, and the RetryCoordinator actor.
//! - [`lifecycle`]: the life of one request's attempts as a machine
//!   ([`lifecycle::Attempts`]), the shell that runs it inside an actor, and the
//!   supervised request actor.
//! - [`failure`]: the classified failure everything decides from; [`spec`]:
//!   what one request may do; [`partials`]: failed streams' partial text.
//! - [`provider`]: a provider's two actors, as its requests hold them.
//!
//! Fenced apart: [`exec`], the execution machinery (actors run in place, guarded
//! attempt futures, spans, clock arithmetic, supervision), and [`telemetry`], the
//! metric families.

/// Mailbox capacity of the per-provider actors: large, because every request
/// asks them something; bounded, because actix's channel needs it to be.
pub(crate) const MAILBOX_CAPACITY: usize = 1 << 20;

pub mod breaker;
pub mod budget;
pub mod exec;
pub mod failure;
pub mod lifecycle;
pub mod partials;
pub mod provider;
pub mod retry;
pub mod spec;
pub mod telemetry;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker, TransitionEvent};
pub use failure::{Category, Failure, Phase, RateLimitHints};
pub use provider::report::ProviderReport;
pub use provider::ProviderActors;
pub mod limit;
pub use retry::{
    Backoff, BudgetConfig, GiveUp, Jitter, ProviderMetrics, RetryCoordinator, RetryPolicy,
    ThrottleConfig,
};
