//! Client-side adaptive throttling, as the Google SRE book gives it
//! ("Handling Overload"): each deployment counts, over a window (default two
//! minutes), the calls its requests asked for and the calls its server
//! accepted (anything but a rate limit or an overload); a call is shed at the
//! client, before it is sent, with probability
//! `max(0, (requests - K * accepts) / (requests + 1))` (K = 2 by default).
//! A server rejecting most calls then costs its clients little: past K times
//! what it accepts, they stop sending; as it accepts again, they send again.
//! Off by default, beside the retry budget and the gRPC retry throttle (which
//! govern retries only): this sheds first attempts too.
//!
//! ```
//! use steer_actors::limit::throttle::rejection_probability;
//! assert_eq!(rejection_probability(100, 50, 2.0), 0.0, "accepting half: K = 2 keeps sending");
//! let p = rejection_probability(100, 10, 2.0);
//! assert!((p - 80.0 / 101.0).abs() < 1e-9);
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::window::WindowCounts;

/// Adaptive throttling settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveThrottleConfig {
    /// How many calls per accepted call may be sent before any is shed
    /// (the SRE book's K: 2; from 1 to 100; lower sheds sooner).
    pub k: f64,
    /// The window the counts cover (default 2 minutes; 10 ms to 1 hour).
    pub window: Duration,
}

impl Default for AdaptiveThrottleConfig {
    fn default() -> Self {
        AdaptiveThrottleConfig {
            k: 2.0,
            window: Duration::from_secs(120),
        }
    }
}

impl AdaptiveThrottleConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.k.is_finite() && (1.0..=100.0).contains(&self.k)) {
            return Err(format!("k {} must be from 1 to 100", self.k));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3_600)).contains(&self.window) {
            return Err("window must be from 10 ms to 1 hour".into());
        }
        Ok(())
    }
}

/// The probability of shedding a call after `requests` asked and `accepts`
/// accepted, with `k`: `max(0, (requests - k * accepts) / (requests + 1))`,
/// below 1 always.
pub fn rejection_probability(requests: u64, accepts: u64, k: f64) -> f64 {
    // Counts of a window are far below 2^53: exact as f64.
    let (requests, accepts) = (requests as f64, accepts as f64);
    ((requests - k * accepts) / (requests + 1.0)).max(0.0)
}

/// The throttle of one deployment: its counts, read and written by every
/// request without a lock.
#[derive(Debug)]
pub struct AdaptiveThrottle {
    config: AdaptiveThrottleConfig,
    /// Requests (0) and accepts (1).
    counts: WindowCounts,
}

impl AdaptiveThrottle {
    /// A throttle that has seen nothing.
    pub fn new(config: AdaptiveThrottleConfig) -> Self {
        AdaptiveThrottle {
            config,
            counts: WindowCounts::new(config.window),
        }
    }

    /// A call is asked for: counted, and shed when `draw` (uniform in
    /// [0, 1)) falls below the probability the counts give.
    pub fn sheds(&self, draw: f64) -> bool {
        let [requests, accepts] = self.counts.sums();
        let p = rejection_probability(requests, accepts, self.config.k);
        self.counts.add(0);
        draw < p
    }

    /// A call the server accepted (it answered with anything but a rate limit
    /// or an overload).
    pub fn accepted(&self) {
        self.counts.add(1);
    }

    /// The probability of shedding the next call.
    pub fn probability(&self) -> f64 {
        let [requests, accepts] = self.counts.sums();
        rejection_probability(requests, accepts, self.config.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn settings_out_of_range_are_refused() {
        assert!(AdaptiveThrottleConfig::default().validate().is_ok());
        let base = AdaptiveThrottleConfig::default();
        for wrong in [
            AdaptiveThrottleConfig { k: 0.5, ..base },
            AdaptiveThrottleConfig {
                k: f64::NAN,
                ..base
            },
            AdaptiveThrottleConfig {
                k: f64::INFINITY,
                ..base
            },
            AdaptiveThrottleConfig {
                window: Duration::ZERO,
                ..base
            },
            AdaptiveThrottleConfig {
                window: Duration::from_secs(86_400),
                ..base
            },
        ] {
            assert!(wrong.validate().is_err(), "{wrong:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_rejecting_everything_is_sent_ever_less_and_again_once_it_accepts() {
        let t = AdaptiveThrottle::new(AdaptiveThrottleConfig::default());
        // Nothing accepted: the first call goes, then ever more are shed.
        assert!(!t.sheds(0.0), "no count yet: p = 0");
        for _ in 0..99 {
            let _ = t.sheds(0.999);
        }
        assert!(t.probability() > 0.98, "{}", t.probability());
        // It accepts again: half the calls accepted is below K = 2.
        for _ in 0..60 {
            t.accepted();
        }
        assert_eq!(t.probability(), 0.0);
        // Two minutes on, the old counts are gone.
        tokio::time::advance(Duration::from_secs(121)).await;
        assert_eq!(t.probability(), 0.0);
    }

    proptest! {
        /// Never certain, never negative, and never shedding while the server
        /// accepts at least one call in K.
        #[test]
        fn the_probability_stays_below_one_and_is_zero_while_enough_is_accepted(
            requests in 0u64..1_000_000,
            accepted in 0u64..1_000_000,
            k in 1.0f64..100.0,
        ) {
            let p = rejection_probability(requests, accepted, k);
            prop_assert!((0.0..1.0).contains(&p), "{p}");
            if (accepted as f64) * k >= requests as f64 {
                prop_assert_eq!(p, 0.0);
            }
        }
    }
}
