//! Retry throttling per target, in the gRPC style (gRPC proposal A6): a bucket
//! of tokens that every failed attempt drains by one and every successful
//! request refills by a fraction; retries (and, later, hedges) go only while
//! more than half the bucket is left. Where the retry budget
//! ([`super::budget`]) caps retries at a share of recent requests, the
//! throttle stops them outright while failures outrun successes by more than
//! the ratio: a target failing one call in five gets no retries at all with
//! the default ratio, instead of a fifth more load.
//!
//! ```
//! use steer_actors::retry::throttle::{RetryThrottle, ThrottleConfig};
//! let mut t = RetryThrottle::new(ThrottleConfig { max_tokens: 10, token_ratio: 0.1 });
//! for _ in 0..4 { t.failed(); }
//! assert!(t.allows(), "6 of 10 left");
//! t.failed();
//! assert!(!t.allows(), "5 of 10: not above half");
//! for _ in 0..10 { t.succeeded(); }
//! assert!(t.allows());
//! ```

use serde::{Deserialize, Serialize};

/// Retry throttling settings (gRPC's `retryThrottling`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// The bucket's size, 1 to 1000 (gRPC's example: 10).
    pub max_tokens: u32,
    /// What each successful request puts back, above 0 and at most
    /// `max_tokens` (gRPC's example: 0.1: retries stop while more than about
    /// one attempt in eleven fails).
    pub token_ratio: f64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_tokens: 10,
            token_ratio: 0.1,
        }
    }
}

impl ThrottleConfig {
    /// Checks the settings: `max_tokens` in 1..=1000, `token_ratio` finite,
    /// above 0 and at most `max_tokens`.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.max_tokens) {
            return Err(format!(
                "max_tokens {} must be from 1 to 1000",
                self.max_tokens
            ));
        }
        let ratio = self.token_ratio;
        if !(ratio.is_finite() && ratio > 0.0 && ratio <= f64::from(self.max_tokens)) {
            return Err(format!(
                "token_ratio {ratio} must be above 0 and at most max_tokens"
            ));
        }
        Ok(())
    }
}

/// The bucket of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryThrottle {
    config: ThrottleConfig,
    tokens: f64,
}

impl RetryThrottle {
    /// A full bucket.
    pub fn new(config: ThrottleConfig) -> Self {
        RetryThrottle {
            config,
            tokens: f64::from(config.max_tokens),
        }
    }

    /// The settings.
    pub fn config(&self) -> ThrottleConfig {
        self.config
    }

    /// An attempt failed in a way a retry could mend: one token less (never
    /// below zero).
    pub fn failed(&mut self) {
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    /// A request succeeded: `token_ratio` back (never above the bucket).
    pub fn succeeded(&mut self) {
        self.tokens =
            (self.tokens + self.config.token_ratio).min(f64::from(self.config.max_tokens));
    }

    /// Whether a retry (or a hedge) may go: more than half the bucket is left.
    pub fn allows(&self) -> bool {
        self.tokens > f64::from(self.config.max_tokens) / 2.0
    }

    /// The tokens left.
    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn settings_out_of_range_are_refused() {
        assert!(ThrottleConfig::default().validate().is_ok());
        for (max_tokens, token_ratio) in [
            (0, 0.1),
            (1001, 0.1),
            (10, 0.0),
            (10, -1.0),
            (10, f64::NAN),
            (10, f64::INFINITY),
            (10, 11.0),
        ] {
            let c = ThrottleConfig {
                max_tokens,
                token_ratio,
            };
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn a_failure_rate_above_the_ratio_stops_retries_and_successes_bring_them_back() {
        let mut t = RetryThrottle::new(ThrottleConfig::default());
        // One call in five fails: 0.8 × 0.1 back per 1 taken, per five calls.
        let mut refused = 0;
        for i in 0..200 {
            if i % 5 == 0 {
                t.failed();
                refused += usize::from(!t.allows());
            } else {
                t.succeeded();
            }
        }
        assert!(refused >= 30, "{refused} of 40 refused");
        assert!(!t.allows());
        // 51 clean requests refill above half from empty.
        for _ in 0..51 {
            t.succeeded();
        }
        assert!(t.allows(), "{}", t.tokens());
    }

    proptest! {
        /// The bucket stays within [0, max] whatever happens, and allows
        /// exactly while above half.
        #[test]
        fn the_bucket_stays_within_bounds(
            max_tokens in 1u32..=1000,
            ratio_share in 0.001f64..=1.0,
            events in proptest::collection::vec(any::<bool>(), 0..400),
        ) {
            let config = ThrottleConfig {
                max_tokens,
                token_ratio: ratio_share * f64::from(max_tokens),
            };
            let mut t = RetryThrottle::new(config);
            for ok in events {
                if ok { t.succeeded() } else { t.failed() }
                prop_assert!((0.0..=f64::from(max_tokens)).contains(&t.tokens()));
                prop_assert_eq!(t.allows(), t.tokens() > f64::from(max_tokens) / 2.0);
            }
        }
    }
}
