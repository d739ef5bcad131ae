//! What one request may do ([`RequestSpec`]): its identity, its time limits,
//! its retry policy and whether it goes through the breaker. Read by the
//! attempt loop and by both request actors, so it lives below them.

use std::sync::Arc;
use std::time::Duration;

use crate::retry::RetryPolicy;

/// What a request may do.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// steer's request id (on every span and error).
    pub request_id: Arc<str>,
    /// The provider's name.
    pub provider: Arc<str>,
    /// The model (its breaker and pauses are the model's own).
    pub model: Arc<str>,
    /// Longest time one attempt may take.
    pub attempt_timeout: Option<Duration>,
    /// Longest time the whole request may take, retries included.
    pub deadline: Option<Duration>,
    /// The request's own retry policy (else the provider's).
    pub policy: Option<Arc<RetryPolicy>>,
    /// Whether to go through the circuit breaker.
    pub use_breaker: bool,
    /// Longest wait for a provider paused by a rate limit (else fail at once).
    pub max_pause_wait: Duration,
    /// Whether a failure whose server asks for a wait ends the attempts at
    /// once ([`GiveUp::WaitElsewhere`](crate::retry::GiveUp::WaitElsewhere)):
    /// set by a group's route while another of its targets could answer now.
    pub wait_elsewhere: bool,
    /// Whether the request may wait in a deployment's queue for a slot under
    /// its concurrency limit (a group's route moves on instead).
    pub may_queue: bool,
    /// Its priority for such a slot: higher goes first (default 0).
    pub priority: i32,
}
