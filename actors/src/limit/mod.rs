//! Concurrency that adapts, per deployment: the limit's arithmetic
//! ([`adaptive`]: AIMD on drops, a TTFT gradient, a cap from rate-limit
//! headers), the bulkhead that admits calls under it or queues them by priority
//! ([`bulkhead`]), and the actor that owns one per deployment and runs the
//! queue's timeouts ([`actor`]); and client-side adaptive throttling, the SRE
//! book's ([`throttle`]), over counts kept in a sliding window ([`window`]).

pub mod actor;
pub mod adaptive;
pub mod bulkhead;
pub mod per_model;
pub mod throttle;
pub mod window;

pub use actor::{AcquireSlot, ConcurrencyLimiter, GetLimit, LimitStatus, SlotLease};
pub use adaptive::{AdaptiveLimit, LimitConfig, Signal, MAX_QUEUE_TIMEOUT};
pub use bulkhead::{Admission, Bulkhead, LimitRejection};
pub use per_model::Limiters;
pub use throttle::{AdaptiveThrottle, AdaptiveThrottleConfig};

#[cfg(test)]
mod model_tests;
