//! The classified failure: what went wrong with one attempt, in provider-neutral terms.
//!
//! The retry coordinator, the circuit breaker and failover decide everything from
//! this type. The rules that build it from a provider's status, headers and body
//! live in `steer-llm` (`steer_llm::classify`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What kind of failure it was.
///
/// Each category has a default retryability ([`Category::retryable_by_default`]) and
/// says whether it speaks about the provider's health ([`Category::affects_health`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The key is missing or wrong: OpenAI 401 `invalid_api_key`, Anthropic 401
    /// `authentication_error`, xAI 400 "Incorrect API key" and 401.
    Authentication,
    /// The key may not do this: OpenAI 403 (e.g. unsupported region), Anthropic 403
    /// `permission_error`, xAI 403 `permission-denied` (unless about credits).
    PermissionDenied,
    /// No such model or endpoint: 404 `model_not_found` / `not_found_error`.
    NotFound,
    /// A concurrent request conflicted: 409 `conflict_error` (retried, like the official client).
    Conflict,
    /// Too many requests for now: 429 `rate_limit_exceeded`, `slow_down`,
    /// `rate_limit_error`, xAI 429 `resource-exhausted`.
    RateLimited,
    /// Out of credits or over a spend cap: OpenAI 429 `insufficient_quota`,
    /// Anthropic 402 `billing_error` and spend limits, xAI 402, 403/429 "used all
    /// available credits". Never retried, never confused with a rate limit.
    QuotaExceeded,
    /// The request is invalid: 400 `invalid_request_error`, 405, 415, 422, and
    /// Anthropic's prefill rejection.
    InvalidRequest,
    /// The request can never fit: OpenAI 429 "Request too large", 413 (Anthropic
    /// `request_too_large` or a proxy's page).
    RequestTooLarge,
    /// The prompt is longer than the model's context: OpenAI 400
    /// `context_length_exceeded`, "prompt is too long". A larger-context model can help.
    ContextLengthExceeded,
    /// Content was withheld by a safety system (`content_filter`, content policy).
    ContentFiltered,
    /// The provider failed: 500 `server_error` / `api_error`, other 5xx.
    ServerError,
    /// The provider is overloaded: 503 `server_is_overloaded`, 529 `overloaded_error`.
    Overloaded,
    /// The connection failed: refused, DNS, TLS, reset.
    Network,
    /// A timeout: connect, read or idle timeouts, 408, 504 `timeout_error`.
    Timeout,
    /// The request's total deadline ran out: nothing is left to retry with.
    DeadlineExceeded,
    /// A stream ended without its terminal event (`[DONE]`, `message_stop`).
    StreamInterrupted,
    /// The response could not be read (malformed JSON or SSE).
    MalformedResponse,
    /// A stream delivered content more slowly than its rate floor after its
    /// first token (a trickling target): a failure of that target.
    SlowStream,
    /// The client's own spend budget had no room for the attempt: it was not
    /// sent. Not retried, no sign of the provider's health.
    BudgetExceeded,
    /// Nothing more specific is known.
    Unknown,
}

impl Category {
    /// Every category, for tables and metrics.
    pub const ALL: [Category; 20] = [
        Category::Authentication,
        Category::PermissionDenied,
        Category::NotFound,
        Category::Conflict,
        Category::RateLimited,
        Category::QuotaExceeded,
        Category::InvalidRequest,
        Category::RequestTooLarge,
        Category::ContextLengthExceeded,
        Category::ContentFiltered,
        Category::ServerError,
        Category::Overloaded,
        Category::Network,
        Category::Timeout,
        Category::DeadlineExceeded,
        Category::StreamInterrupted,
        Category::MalformedResponse,
        Category::SlowStream,
        Category::BudgetExceeded,
        Category::Unknown,
    ];

    /// Whether a failure of this category is worth another attempt, absent any
    /// server instruction (`x-should-retry`) to the contrary.
    pub fn retryable_by_default(self) -> bool {
        matches!(
            self,
            Category::Conflict
                | Category::RateLimited
                | Category::ServerError
                | Category::Overloaded
                | Category::Network
                | Category::Timeout
                | Category::StreamInterrupted
                | Category::MalformedResponse
                | Category::SlowStream
        )
    }

    /// Whether it says something about the provider's health (the breaker counts
    /// it). A caller's bad request, bad key or long prompt does not; neither does a
    /// rate limit (it pauses the provider instead).
    pub fn affects_health(self) -> bool {
        matches!(
            self,
            Category::ServerError
                | Category::Overloaded
                | Category::Network
                | Category::Timeout
                | Category::StreamInterrupted
                | Category::MalformedResponse
                | Category::SlowStream
        )
    }

    /// The snake_case name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::PermissionDenied => "permission_denied",
            Category::NotFound => "not_found",
            Category::Conflict => "conflict",
            Category::RateLimited => "rate_limited",
            Category::QuotaExceeded => "quota_exceeded",
            Category::InvalidRequest => "invalid_request",
            Category::RequestTooLarge => "request_too_large",
            Category::ContextLengthExceeded => "context_length_exceeded",
            Category::ContentFiltered => "content_filtered",
            Category::ServerError => "server_error",
            Category::Overloaded => "overloaded",
            Category::Network => "network",
            Category::Timeout => "timeout",
            Category::DeadlineExceeded => "deadline_exceeded",
            Category::StreamInterrupted => "stream_interrupted",
            Category::MalformedResponse => "malformed_response",
            Category::SlowStream => "slow_stream",
            Category::BudgetExceeded => "budget_exceeded",
            Category::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the failure happened before or after text reached the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Nothing was delivered: a retry is invisible to the caller.
    BeforeContent,
    /// Text was delivered: only a resumption keeps the caller's text whole.
    AfterContent,
}

/// What the provider said about its rate limits, so a breaker can pause it until
/// the limit refills. Durations are from the moment of classification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitHints {
    /// Requests left in the current window.
    pub requests_remaining: Option<u64>,
    /// Tokens left in the current window.
    pub tokens_remaining: Option<u64>,
    /// Time until the request limit resets.
    pub requests_reset: Option<Duration>,
    /// Time until the token limit resets.
    pub tokens_reset: Option<Duration>,
}

impl RateLimitHints {
    /// Whether any hint is present.
    pub fn is_empty(&self) -> bool {
        *self == RateLimitHints::default()
    }

    /// How long a target should be skipped because its limit is (nearly) spent: at
    /// most one request left, or no tokens left, until the reset the provider gave
    /// (one second when it gave none).
    pub fn nearly_spent_for(&self) -> Option<Duration> {
        let fallback = Duration::from_secs(1);
        let requests = self
            .requests_remaining
            .filter(|n| *n <= 1)
            .map(|_| self.requests_reset.unwrap_or(fallback));
        let tokens = self
            .tokens_remaining
            .filter(|n| *n == 0)
            .map(|_| self.tokens_reset.unwrap_or(fallback));
        requests.max(tokens)
    }

    /// Whether the response said what is left of its limits, and something is:
    /// a 429 that came with such headers was that call's (a burst window, a
    /// concurrency limit), not the key's.
    pub fn capacity_left(&self) -> bool {
        let counts = [self.requests_remaining, self.tokens_remaining];
        counts.iter().any(Option::is_some) && !counts.contains(&Some(0))
    }

    /// When an exhausted limit refills: the reset of any limit whose remaining
    /// count is zero, the later one if both are.
    pub fn exhausted_until(&self) -> Option<Duration> {
        let requests = (self.requests_remaining == Some(0))
            .then_some(self.requests_reset)
            .flatten();
        let tokens = (self.tokens_remaining == Some(0))
            .then_some(self.tokens_reset)
            .flatten();
        requests.max(tokens)
    }
}

/// One classified failure.
///
/// ```
/// use steer_actors::{Category, Failure};
/// let f = Failure::new(Category::Overloaded, "anthropic", "Overloaded");
/// assert!(f.retryable && f.affects_health);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure.
    pub category: Category,
    /// Whether another attempt may succeed (after `x-should-retry` overrides).
    pub retryable: bool,
    /// Whether the breaker counts it against the provider's health.
    pub affects_health: bool,
    /// How long the server asked to wait (`retry-after-ms`, `retry-after`, or
    /// OpenAI's "try again in" text), uncapped: the retry policy decides the cap.
    pub retry_after: Option<Duration>,
    /// Rate-limit counts and resets the response carried.
    pub rate_limit: RateLimitHints,
    /// The provider's name.
    pub provider: String,
    /// The HTTP status, when the failure was a status (never 200 for in-band errors).
    pub status: Option<u16>,
    /// The provider's error type (`rate_limit_error`, `tokens`, ...), if it sent one.
    pub error_type: Option<String>,
    /// The provider's error code (`insufficient_quota`, `invalid-argument`, ...), if any.
    pub error_code: Option<String>,
    /// A one-line human message.
    pub message: String,
    /// steer's id of the request.
    pub request_id: Option<String>,
    /// The provider's id of the request.
    pub provider_request_id: Option<String>,
    /// Before or after content reached the caller.
    pub phase: Phase,
    /// Whether the failure names a limit of the key, its organization or
    /// team, or the model group (set by classification from the body: see
    /// [`Failure::pause_wait`]).
    #[serde(default)]
    pub key_limit: bool,
}

impl Failure {
    /// A failure with the category's defaults and nothing else known.
    pub fn new(category: Category, provider: &str, message: &str) -> Self {
        Failure {
            category,
            retryable: category.retryable_by_default(),
            affects_health: category.affects_health(),
            retry_after: None,
            rate_limit: RateLimitHints::default(),
            provider: provider.to_string(),
            status: None,
            error_type: None,
            error_code: None,
            message: message.to_string(),
            request_id: None,
            provider_request_id: None,
            phase: Phase::BeforeContent,
            key_limit: false,
        }
    }
}

impl Failure {
    /// The wait that pauses every call to this failure's model: a rate limit
    /// with a server-directed wait that speaks for the key or the model. Its
    /// rate-limit headers decide when it has them (nothing left: the key's;
    /// something left: that call's, retried on its own); without them, its
    /// body must name the key's limit (OpenAI's "in organization", Anthropic's
    /// "your per-minute rate limit", xAI's "rate limit of your team", a
    /// gateway's cooldown). A bare 429 is that call's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steer_actors::{Category, Failure};
    /// let mut f = Failure::new(Category::RateLimited, "x", "Too Many Requests");
    /// f.retry_after = Some(Duration::from_secs(1));
    /// assert_eq!(f.pause_wait(), None, "a bare 429 is the call's");
    /// f.rate_limit.requests_remaining = Some(0);
    /// assert_eq!(f.pause_wait(), Some(Duration::from_secs(1)));
    /// ```
    pub fn pause_wait(&self) -> Option<Duration> {
        let wait = self
            .retry_after
            .filter(|_| self.category == Category::RateLimited)?;
        let hints = &self.rate_limit;
        let for_key = if hints.requests_remaining.is_some() || hints.tokens_remaining.is_some() {
            !hints.capacity_left()
        } else {
            self.key_limit
        };
        for_key.then_some(wait)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.provider, self.category)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(wait) = self.retry_after {
            write!(f, "; server asked to wait {wait:?}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request {id}]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_categories_are_retryable_but_caller_mistakes_are_not() {
        for c in Category::ALL {
            if c.affects_health() {
                assert!(c.retryable_by_default(), "{c}");
            }
        }
        for c in [
            Category::Authentication,
            Category::InvalidRequest,
            Category::ContextLengthExceeded,
            Category::ContentFiltered,
            Category::QuotaExceeded,
            Category::RequestTooLarge,
            Category::NotFound,
        ] {
            assert!(!c.retryable_by_default() && !c.affects_health(), "{c}");
        }
        assert!(Category::RateLimited.retryable_by_default());
        assert!(!Category::RateLimited.affects_health());
    }

    #[test]
    fn a_rate_limit_pauses_the_model_only_when_it_speaks_for_the_key() {
        let wait = Duration::from_secs(1);
        // `key`: the body names the key's limit (classification says so).
        let limited = |key: bool, remaining: Option<u64>| {
            let mut f = Failure::new(Category::RateLimited, "p", "limited");
            f.retry_after = Some(wait);
            f.rate_limit.requests_remaining = remaining;
            f.key_limit = key;
            f
        };
        assert_eq!(limited(true, None).pause_wait(), Some(wait));
        // The headers decide when there are some: capacity left is the call's.
        assert_eq!(limited(true, Some(12)).pause_wait(), None);
        assert_eq!(limited(true, Some(0)).pause_wait(), Some(wait));
        assert_eq!(limited(false, None).pause_wait(), None, "a bare 429");
        assert_eq!(limited(false, Some(0)).pause_wait(), Some(wait));
        let mut tokens_spent = limited(false, Some(40));
        tokens_spent.rate_limit.tokens_remaining = Some(0);
        assert_eq!(tokens_spent.pause_wait(), Some(wait), "any limit spent");
        let mut no_wait = limited(true, Some(0));
        no_wait.retry_after = None;
        assert_eq!(no_wait.pause_wait(), None, "no wait, no pause");
        let mut overload = limited(true, Some(0));
        overload.category = Category::Overloaded;
        assert_eq!(overload.pause_wait(), None, "only rate limits pause");
    }

    #[test]
    fn exhausted_until_takes_the_later_reset_of_exhausted_limits() {
        let hints = RateLimitHints {
            requests_remaining: Some(0),
            tokens_remaining: Some(10),
            requests_reset: Some(Duration::from_secs(1)),
            tokens_reset: Some(Duration::from_secs(60)),
        };
        assert_eq!(hints.exhausted_until(), Some(Duration::from_secs(1)));
        let both = RateLimitHints {
            tokens_remaining: Some(0),
            ..hints
        };
        assert_eq!(both.exhausted_until(), Some(Duration::from_secs(60)));
        assert_eq!(RateLimitHints::default().exhausted_until(), None);
    }

    #[test]
    fn a_limit_is_nearly_spent_at_one_request_or_no_tokens_until_its_reset() {
        let s = Duration::from_secs;
        let hints = |requests, tokens| RateLimitHints {
            requests_remaining: requests,
            tokens_remaining: tokens,
            requests_reset: Some(s(2)),
            tokens_reset: Some(s(90)),
        };
        assert_eq!(hints(Some(50), Some(1000)).nearly_spent_for(), None);
        assert_eq!(hints(Some(1), Some(1000)).nearly_spent_for(), Some(s(2)));
        assert_eq!(hints(Some(50), Some(0)).nearly_spent_for(), Some(s(90)));
        assert_eq!(hints(Some(0), Some(0)).nearly_spent_for(), Some(s(90)));
        assert_eq!(RateLimitHints::default().nearly_spent_for(), None);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Category::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Category::ALL.len());
    }
}
