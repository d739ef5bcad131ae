//! Per-request overrides.

use std::sync::Arc;
use std::time::Duration;

use steer_actors::RetryPolicy;

/// Per-request overrides of the client's settings.
///
/// ```
/// use std::time::Duration;
/// use steer_llm::runtime::GenerateOptions;
/// use steer_llm::RetryPolicy;
/// let opts = GenerateOptions::default()
///     .deadline(Duration::from_secs(20))
///     .retry(RetryPolicy::default().max_attempts(5))
///     .breaker(false);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    pub(crate) retry: Option<Arc<RetryPolicy>>,
    pub(crate) breaker: Option<bool>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
}

impl GenerateOptions {
    /// This request's retry policy instead of the provider's.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(Arc::new(policy));
        self
    }
    /// Whether this request goes through the circuit breaker (default yes).
    pub fn breaker(mut self, on: bool) -> Self {
        self.breaker = Some(on);
        self
    }
    /// Total time for this request, retries included.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }
    /// Time for each attempt.
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.attempt_timeout = Some(d);
        self
    }
}
