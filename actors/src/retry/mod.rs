//! Retries: the policy and backoff ([`policy`]), the budget ([`budget`]), what is
//! counted ([`counters`]) and the coordinator actor ([`coordinator`]).

pub mod budget;
pub mod coordinator;
pub mod counters;
pub mod policy;
pub mod progress;
pub mod throttle;

pub use budget::BudgetConfig;
pub use coordinator::{AttemptAbandoned, AttemptFailed, GetMetrics, RetryCoordinator, SpendHedge};
pub(crate) use coordinator::{Decide, RequestFinished};
pub use counters::{ProviderMetrics, RequestEnd};
pub use policy::{decide, AttemptState, Backoff, Decision, GiveUp, Jitter, RetryPolicy};
pub use progress::{limit_at, AttemptLimit, Progress};
pub use throttle::{RetryThrottle, ThrottleConfig};
