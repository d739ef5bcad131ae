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
    pub(crate) continuation: Option<super::continuation::Continuation>,
    pub(crate) divergence: Option<super::continuation::Divergence>,
    pub(crate) first_token_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) min_rate: Option<crate::stream::rate::RateFloor>,
    /// A request routed through a group does not wait out a paused target.
    pub(crate) skip_pauses: bool,
    /// Set by a group's route while another target could answer now: a
    /// server-directed wait moves the request on instead of waiting.
    pub(crate) wait_elsewhere: bool,
    pub(crate) priority: i32,
    pub(crate) hedge: Option<crate::route::hedge::Hedge>,
    pub(crate) side_effects: bool,
    /// A leg of a route (a group's, or a hedged request's): its route hedges
    /// it, never its deployment.
    pub(crate) leg: bool,
    /// The spend log of the request these options run (set by the client:
    /// a route's legs share their request's).
    pub(crate) spend: Option<crate::budget::SpendLog>,
    /// The key the client's per-key budgets count this request under.
    pub(crate) budget_key: Option<Arc<str>>,
    /// This request's own spend budget.
    pub(crate) budget: Option<crate::budget::Budget>,
    /// The group the request names (its legs' budgets count it).
    pub(crate) group: Option<Arc<str>>,
}

impl GenerateOptions {
    /// Hedges this request (see [`Hedge`](crate::route::hedge::Hedge)): over
    /// its group's setting when it names a group, else over its deployment's
    /// ([`ClientBuilder::hedge_for`](crate::ClientBuilder::hedge_for)), at the
    /// same deployment.
    pub fn hedge(mut self, hedge: crate::route::hedge::Hedge) -> Self {
        self.hedge = Some(hedge);
        self
    }
    /// The key (a tenant, a user) this request counts under for the client's
    /// per-key budgets ([`Scope::Key`](crate::budget::Scope::Key),
    /// [`Scope::EveryKey`](crate::budget::Scope::EveryKey)); at most
    /// [`MAX_KEY`](crate::budget::MAX_KEY) bytes (a longer one is refused,
    /// `budget_exceeded`, when a budget is set).
    pub fn budget_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.budget_key = Some(key.into());
        self
    }
    /// This request's own spend budget across all its attempts (retries,
    /// continuations, a group's legs, hedges); its period is ignored.
    pub fn budget(mut self, budget: crate::budget::Budget) -> Self {
        self.budget = Some(budget);
        self
    }
    /// Marks this request as acting on the world: it is never hedged.
    pub fn side_effects(mut self, on: bool) -> Self {
        self.side_effects = on;
        self
    }
    /// This request's priority for a slot under a deployment's adaptive
    /// concurrency limit: higher goes first when calls wait (default 0).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
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
    /// Time for each attempt (for a stream: until its response headers).
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.attempt_timeout = Some(d);
        self
    }
    /// Streams: what to do when the stream breaks after content began.
    pub fn continuation(mut self, c: super::continuation::Continuation) -> Self {
        self.continuation = Some(c);
        self
    }
    /// Streams: what to do with a continuation that cannot be spliced (it
    /// started the reply again and then differed): restart (default) or fail.
    pub fn on_divergence(mut self, d: super::continuation::Divergence) -> Self {
        self.divergence = Some(d);
        self
    }
    /// Streams: time from the response headers to the first text.
    pub fn first_token_timeout(mut self, d: Duration) -> Self {
        self.first_token_timeout = Some(d);
        self
    }
    /// Streams: longest silence between two events.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }
    /// Streams: the least content a second after the first token (see
    /// [`RateFloor`](crate::runtime::RateFloor)); below it, the target is failed
    /// and the stream goes on elsewhere or again, with the exact seam.
    pub fn min_rate(mut self, floor: crate::stream::rate::RateFloor) -> Self {
        self.min_rate = Some(floor);
        self
    }
}
