//! Retries: the policy and backoff ([`policy`]), the budget ([`budget`]) and the
//! coordinator actor ([`coordinator`]).

pub mod budget;
pub mod coordinator;
pub mod policy;
pub mod progress;

pub use budget::{BudgetConfig, RetryBudget};
pub use coordinator::{
    AttemptAbandoned, AttemptFailed, GetMetrics, RequestEnd, RequestFinished, RetryCoordinator,
};
pub use policy::{decide, AttemptState, Backoff, Decision, GiveUp, Jitter, RetryPolicy};
pub use progress::{limit_at, AttemptLimit, Progress};
