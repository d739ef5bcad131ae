//! Concurrency that adapts, per deployment: the limit's arithmetic
//! ([`adaptive`]: AIMD on drops, a TTFT gradient, a cap from rate-limit
//! headers), the bulkhead that admits calls under it or queues them by priority
//! ([`bulkhead`]), and the actor that owns one per deployment and runs the
//! queue's timeouts ([`actor`]).

pub mod actor;
pub mod adaptive;
pub mod bulkhead;

pub use actor::{AcquireSlot, ConcurrencyLimiter, GetLimit, LimitStatus, SlotLease};
pub use adaptive::{AdaptiveLimit, LimitConfig, Signal};
pub use bulkhead::{Admission, Bulkhead, LimitRejection};
