//! Retry policy: which failures are retried, how often, after how long. Pure
//! functions; the coordinator actor owns the randomness and the clock.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::failure::{Category, Failure};

/// How a backoff delay is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Exactly `base * multiplier^(n-1)`, capped.
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// Uniform in `[d/2, d]`.
    Equal,
    /// Uniform in `[base, previous * 3]`, capped (AWS's "decorrelated jitter").
    Decorrelated,
}

/// Exponential backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Attempts in all, the first included (default 3).
    pub max_attempts: u32,
    /// Delay before the first retry (default 0.5 s).
    pub base: Duration,
    /// Growth per retry (default 2).
    pub multiplier: f64,
    /// Cap on one delay (default 8 s).
    pub max_delay: Duration,
    /// Randomisation (default equal jitter: a delay in `[d/2, d]`, close to the
    /// official clients' `(0.75, 1.0]` factor).
    pub jitter: Jitter,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            max_attempts: 3,
            base: Duration::from_millis(500),
            multiplier: 2.0,
            max_delay: Duration::from_secs(8),
            jitter: Jitter::Equal,
        }
    }
}

impl Backoff {
    /// Sets the attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the delay before the first retry.
    pub fn base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// Sets the growth per retry.
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the cap on one delay.
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets the randomisation.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The un-jittered delay before retry number `retry` (1 for the first retry).
    pub fn raw_delay(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1).min(1000)).unwrap_or(1000);
        let secs = self.base.as_secs_f64() * self.multiplier.powi(exponent);
        if !secs.is_finite() || secs >= self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::try_from_secs_f64(secs).unwrap_or(self.max_delay)
        }
    }

    /// The delay before retry number `retry`, jittered with `random` in `[0, 1)`;
    /// `previous` is the last delay (for decorrelated jitter).
    pub fn delay(&self, retry: u32, previous: Option<Duration>, random: f64) -> Duration {
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let d = self.raw_delay(retry);
        match self.jitter {
            Jitter::None => d,
            Jitter::Full => scaled(d, random),
            Jitter::Equal => {
                let half = d.checked_div(2).unwrap_or_default();
                half.saturating_add(scaled(half, random))
            }
            Jitter::Decorrelated => {
                let low = self.base.as_secs_f64();
                let high = previous.unwrap_or(self.base).as_secs_f64() * 3.0;
                let secs = low + (high - low).max(0.0) * random;
                Duration::try_from_secs_f64(secs)
                    .unwrap_or(self.max_delay)
                    .min(self.max_delay)
            }
        }
    }
}

/// `d * factor` for a factor in `[0, 1]`, never above `d` (float rounding of a
/// huge `d` cannot overflow it).
fn scaled(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor)
        .unwrap_or(d)
        .min(d)
}

/// The retry policy of a provider (or of one request, as an override). Every
/// field has a builder method of the same name.
///
/// ```
/// use std::time::Duration;
/// use steer_actors::{Backoff, Category, RetryPolicy};
/// let policy = RetryPolicy::default()
///     .retry_on(Category::ServerError, false)
///     .max_attempts(5)
///     .max_server_wait(Duration::from_secs(30))
///     .max_total_backoff(Some(Duration::from_secs(20)))
///     .per_category(Category::RateLimited, Backoff::default().base(Duration::from_secs(1)));
/// assert!(!policy.retries(Category::ServerError));
/// assert!(policy.retries(Category::Overloaded));
/// assert_eq!(policy.backoff_for(Category::RateLimited).base, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Backoff for every category without its own.
    pub backoff: Backoff,
    /// Backoff per category (e.g. longer for rate limits).
    pub per_category: BTreeMap<Category, Backoff>,
    /// Per-category switches; a category not listed follows its default
    /// ([`Category::retryable_by_default`]). A switch that is off wins over the
    /// failure's own `retryable` flag.
    pub enabled: BTreeMap<Category, bool>,
    /// Longest server-directed wait that is honoured (default 60 s). Above it the
    /// request does not sleep: it fails (or fails over) at once, reporting the wait.
    pub max_server_wait: Duration,
    /// Cap on the sum of all backoff delays of one request (default none).
    pub max_total_backoff: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff: Backoff::default(),
            per_category: BTreeMap::new(),
            enabled: BTreeMap::new(),
            max_server_wait: Duration::from_secs(60),
            max_total_backoff: None,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        RetryPolicy {
            backoff: Backoff {
                max_attempts: 1,
                ..Backoff::default()
            },
            ..RetryPolicy::default()
        }
    }

    /// Turns retries of a category on or off.
    pub fn retry_on(mut self, category: Category, on: bool) -> Self {
        self.enabled.insert(category, on);
        self
    }

    /// Sets the number of attempts (first one included).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.backoff.max_attempts = n.max(1);
        self
    }

    /// Sets the backoff for every category without its own.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the backoff of one category (e.g. longer for rate limits).
    pub fn per_category(mut self, category: Category, backoff: Backoff) -> Self {
        self.per_category.insert(category, backoff);
        self
    }

    /// Sets the longest server-directed wait that is honoured.
    pub fn max_server_wait(mut self, wait: Duration) -> Self {
        self.max_server_wait = wait;
        self
    }

    /// Sets the cap on the sum of one request's backoff delays (`None`: no cap).
    pub fn max_total_backoff(mut self, limit: Option<Duration>) -> Self {
        self.max_total_backoff = limit;
        self
    }

    /// Whether retries of `category` were switched off explicitly with
    /// [`RetryPolicy::retry_on`].
    pub fn switched_off(&self, category: Category) -> bool {
        self.enabled.get(&category) == Some(&false)
    }

    /// Whether failures of `category` may be retried at all.
    pub fn retries(&self, category: Category) -> bool {
        self.enabled
            .get(&category)
            .copied()
            .unwrap_or(category.retryable_by_default())
    }

    /// The backoff that applies to `category`.
    pub fn backoff_for(&self, category: Category) -> &Backoff {
        self.per_category.get(&category).unwrap_or(&self.backoff)
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        for b in std::iter::once(&self.backoff).chain(self.per_category.values()) {
            if b.max_attempts == 0 {
                return Err("max_attempts must be at least 1".into());
            }
            if !(b.multiplier.is_finite() && b.multiplier >= 1.0) {
                return Err("multiplier must be a finite number >= 1".into());
            }
        }
        Ok(())
    }
}

/// Why a request stops retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GiveUp {
    /// The failure is not retryable: its category is not retried by default (a
    /// bad request, a bad key, ...) or the server said `x-should-retry: false`.
    NotRetryable,
    /// Retries of this category were switched off by the policy
    /// ([`RetryPolicy::retry_on`]).
    CategoryDisabled,
    /// Every allowed attempt was made.
    AttemptsExhausted,
    /// The server asked for a wait above the cap.
    ServerWaitTooLong {
        /// The wait it asked for.
        wait: Duration,
    },
    /// The next delay would pass the total backoff limit.
    BackoffLimit,
    /// The next attempt would start after the request's deadline.
    Deadline,
    /// The provider's retry budget is spent.
    BudgetExhausted,
    /// The target's retry throttle refused: its failures have outrun its
    /// successes ([`ThrottleConfig`](super::ThrottleConfig)).
    Throttled,
    /// The server asked for a wait while the request's group had another
    /// target that could answer now: the route moves on instead of waiting.
    WaitElsewhere {
        /// The wait it asked for (when the route may come back to it).
        wait: Duration,
    },
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after `delay`.
    Retry {
        /// How long to wait.
        delay: Duration,
        /// Whether the delay is the server's (`retry-after`), not backoff.
        server_directed: bool,
    },
    /// Stop.
    GiveUp(GiveUp),
}

/// Where a request stands when an attempt fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttemptState {
    /// Attempts made so far, the failed one included.
    pub attempts: u32,
    /// Backoff already spent.
    pub backoff_so_far: Duration,
    /// The previous delay, if any.
    pub previous_delay: Option<Duration>,
    /// Time left until the request's deadline, if it has one.
    pub time_left: Option<Duration>,
}

/// Decides whether and when to retry. `random` is uniform in `[0, 1)`.
///
/// The budget is not consulted here (the coordinator does that after a `Retry`).
pub fn decide(
    policy: &RetryPolicy,
    failure: &Failure,
    state: AttemptState,
    random: f64,
) -> Decision {
    if policy.switched_off(failure.category) {
        return Decision::GiveUp(GiveUp::CategoryDisabled);
    }
    if !policy.retries(failure.category) || !failure.retryable {
        return Decision::GiveUp(GiveUp::NotRetryable);
    }
    let backoff = policy.backoff_for(failure.category);
    if state.attempts >= backoff.max_attempts {
        return Decision::GiveUp(GiveUp::AttemptsExhausted);
    }
    let (delay, server_directed) = match failure.retry_after {
        Some(wait) if wait > policy.max_server_wait => {
            return Decision::GiveUp(GiveUp::ServerWaitTooLong { wait })
        }
        Some(wait) => (wait, true),
        None => (
            backoff.delay(state.attempts, state.previous_delay, random),
            false,
        ),
    };
    if let Some(limit) = policy.max_total_backoff {
        if state.backoff_so_far.saturating_add(delay) > limit {
            return Decision::GiveUp(GiveUp::BackoffLimit);
        }
    }
    if let Some(left) = state.time_left {
        if delay >= left {
            return Decision::GiveUp(GiveUp::Deadline);
        }
    }
    Decision::Retry {
        delay,
        server_directed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(category: Category) -> Failure {
        Failure::new(category, "p", "m")
    }

    fn state(attempts: u32) -> AttemptState {
        AttemptState {
            attempts,
            ..AttemptState::default()
        }
    }

    #[test]
    fn without_jitter_the_schedule_is_base_times_multiplier_powers() {
        let b = Backoff {
            max_attempts: 10,
            base: Duration::from_millis(100),
            multiplier: 3.0,
            max_delay: Duration::from_secs(2),
            jitter: Jitter::None,
        };
        let ms = |n| Duration::from_millis(n);
        let schedule: Vec<_> = (1..=5).map(|r| b.delay(r, None, 0.7)).collect();
        assert_eq!(
            schedule,
            vec![ms(100), ms(300), ms(900), ms(2000), ms(2000)]
        );
    }

    #[test]
    fn jitters_stay_in_their_ranges() {
        let b = |jitter| Backoff {
            jitter,
            ..Backoff::default()
        };
        let d = Duration::from_secs(2); // retry 3 of 0.5 s * 2^2
        assert_eq!(b(Jitter::Full).delay(3, None, 0.0), Duration::ZERO);
        assert_eq!(b(Jitter::Full).delay(3, None, 0.5), d / 2);
        assert_eq!(b(Jitter::Equal).delay(3, None, 0.0), d / 2);
        assert_eq!(b(Jitter::Equal).delay(3, None, 1.0), d);
        let dec = b(Jitter::Decorrelated);
        assert_eq!(dec.delay(1, None, 0.0), Duration::from_millis(500));
        assert_eq!(
            dec.delay(2, Some(Duration::from_secs(1)), 1.0),
            Duration::from_secs(3)
        );
        assert_eq!(
            dec.delay(9, Some(Duration::from_secs(100)), 1.0),
            Duration::from_secs(8)
        );
        assert_eq!(b(Jitter::Full).delay(1, None, f64::NAN), Duration::ZERO);
    }

    #[test]
    fn max_attempts_three_means_two_retries() {
        let p = RetryPolicy::default();
        let f = failure(Category::ServerError);
        assert!(matches!(
            decide(&p, &f, state(1), 0.5),
            Decision::Retry { .. }
        ));
        assert!(matches!(
            decide(&p, &f, state(2), 0.5),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide(&p, &f, state(3), 0.5),
            Decision::GiveUp(GiveUp::AttemptsExhausted)
        );
    }

    #[test]
    fn a_switched_off_category_wins_over_the_failures_flag() {
        let p = RetryPolicy::default().retry_on(Category::ServerError, false);
        let mut f = failure(Category::ServerError);
        f.retryable = true;
        assert_eq!(
            decide(&p, &f, state(1), 0.5),
            Decision::GiveUp(GiveUp::CategoryDisabled)
        );
        // And a switched-on category still needs the failure to be retryable.
        let p = RetryPolicy::default().retry_on(Category::InvalidRequest, true);
        assert_eq!(
            decide(&p, &failure(Category::InvalidRequest), state(1), 0.5),
            Decision::GiveUp(GiveUp::NotRetryable)
        );
    }

    #[test]
    fn a_category_not_retried_by_default_is_not_retryable_not_switched_off() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&p, &failure(Category::InvalidRequest), state(1), 0.5),
            Decision::GiveUp(GiveUp::NotRetryable)
        );
        let off = p.retry_on(Category::InvalidRequest, false);
        assert_eq!(
            decide(&off, &failure(Category::InvalidRequest), state(1), 0.5),
            Decision::GiveUp(GiveUp::CategoryDisabled)
        );
    }

    #[test]
    fn extreme_settings_and_waits_never_overflow() {
        let huge = Backoff {
            max_attempts: u32::MAX,
            base: Duration::MAX,
            multiplier: f64::MAX,
            max_delay: Duration::MAX,
            jitter: Jitter::Decorrelated,
        };
        for retry in [0, 1, 2, 1000, u32::MAX] {
            for random in [0.0, 0.5, 1.0, f64::NAN] {
                assert!(huge.delay(retry, Some(Duration::MAX), random) <= Duration::MAX);
                for jitter in [Jitter::None, Jitter::Full, Jitter::Equal] {
                    let b = Backoff { jitter, ..huge };
                    let _ = b.delay(retry, None, random);
                }
            }
        }
        let p = RetryPolicy {
            backoff: huge,
            max_server_wait: Duration::MAX,
            max_total_backoff: Some(Duration::MAX),
            ..RetryPolicy::default()
        };
        let mut f = failure(Category::RateLimited);
        f.retry_after = Some(Duration::MAX);
        let s = AttemptState {
            attempts: 1,
            backoff_so_far: Duration::MAX,
            previous_delay: Some(Duration::MAX),
            time_left: None,
        };
        assert!(matches!(
            decide(&p, &f, s, 0.5),
            Decision::Retry { .. } | Decision::GiveUp(_)
        ));
    }

    #[test]
    fn server_waits_are_honoured_up_to_the_cap_without_jitter() {
        let p = RetryPolicy::default();
        let mut f = failure(Category::RateLimited);
        f.retry_after = Some(Duration::from_secs(2));
        assert_eq!(
            decide(&p, &f, state(1), 0.9),
            Decision::Retry {
                delay: Duration::from_secs(2),
                server_directed: true
            }
        );
        f.retry_after = Some(Duration::from_secs(61));
        assert_eq!(
            decide(&p, &f, state(1), 0.9),
            Decision::GiveUp(GiveUp::ServerWaitTooLong {
                wait: Duration::from_secs(61)
            })
        );
    }

    #[test]
    fn no_retry_ends_after_the_deadline_or_past_the_backoff_limit() {
        let p = RetryPolicy {
            backoff: Backoff {
                jitter: Jitter::None,
                ..Backoff::default()
            },
            max_total_backoff: Some(Duration::from_millis(1200)),
            ..RetryPolicy::default()
        };
        let f = failure(Category::Overloaded);
        let s = AttemptState {
            attempts: 1,
            time_left: Some(Duration::from_millis(400)),
            ..AttemptState::default()
        };
        assert_eq!(decide(&p, &f, s, 0.0), Decision::GiveUp(GiveUp::Deadline));
        let s = AttemptState {
            attempts: 2,
            backoff_so_far: Duration::from_millis(500),
            ..AttemptState::default()
        };
        assert_eq!(
            decide(&p, &f, s, 0.0),
            Decision::GiveUp(GiveUp::BackoffLimit)
        );
    }
}
