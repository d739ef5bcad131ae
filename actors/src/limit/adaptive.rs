//! The limit of one deployment's concurrent calls, and how it moves: cut
//! multiplicatively on a drop (a 429, an overload, a 503, a timeout), grown by
//! one per limit's worth of clean completions while the calls use at least
//! half of it (Netflix's AIMD, slowed to TCP's congestion avoidance; until the
//! deployment first pushes back, by one per clean completion, as TCP's slow
//! start: the initial limit is a guess that must not hold a healthy deployment
//! down for minutes; the drop that ends slow start halves, as TCP's), cut in
//! proportion when time to first token rises well above its long-run average
//! (Netflix's Gradient2 and Envoy's gradient, on TTFT rather than total
//! latency, which grows with the output), and capped at once at what is in
//! flight by a rate-limit header that says nothing is left, until its reset.
//! One cut per round trip: a drop or a slow first token of a call that started
//! before the last cut does not cut again (the calls in flight then saw the old
//! limit), as TCP cuts once per window.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use steer_actors::limit::{AdaptiveLimit, LimitConfig, Signal};
//! let t0 = Instant::now();
//! let mut l = AdaptiveLimit::new(LimitConfig { initial: 20, ..LimitConfig::default() });
//! l.on_end(Signal::Drop, t0, 20, t0);
//! assert_eq!(l.limit(t0), 10, "the first drop halves");
//! let t1 = t0 + Duration::from_millis(50);
//! l.on_end(Signal::Drop, t1, 10, t1);
//! assert_eq!(l.limit(t1), 9, "later ones × 0.9");
//! ```

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::exec::clock::later;

/// How a deployment's concurrency limit adapts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitConfig {
    /// The limit to start from (default 20).
    pub initial: u32,
    /// The least it falls to (default 1).
    pub min: u32,
    /// The most it grows to (default 200).
    pub max: u32,
    /// What a drop multiplies it by (default 0.9; the drop that ends slow
    /// start by at most [`SLOW_START_EXIT`]).
    pub backoff: f64,
    /// How far above its long-run average the recent TTFT may rise before it
    /// cuts the limit (default 2.0: twice).
    pub tolerance: f64,
    /// Calls that may wait for a slot (default 100, at most 100,000; 0: none
    /// wait).
    pub max_queue: u32,
    /// How long a call waits for a slot at most (default 5 s; at most
    /// [`MAX_QUEUE_TIMEOUT`]).
    pub queue_timeout: Duration,
    /// A limit per model of the deployment rather than one for it all
    /// (default off; at most 64 models have their own, the rest share one).
    pub per_model: bool,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            initial: 20,
            min: 1,
            max: 200,
            backoff: 0.9,
            tolerance: 2.0,
            max_queue: 100,
            queue_timeout: Duration::from_secs(5),
            per_model: false,
        }
    }
}

impl LimitConfig {
    /// Checks the settings: `1 <= min <= initial <= max`, `backoff` in (0, 1),
    /// `tolerance` at least 1, `max_queue` at most 100,000, `queue_timeout`
    /// at most [`MAX_QUEUE_TIMEOUT`].
    pub fn validate(&self) -> Result<(), String> {
        if !(1 <= self.min && self.min <= self.initial && self.initial <= self.max) {
            return Err(format!(
                "need 1 <= min ({}) <= initial ({}) <= max ({})",
                self.min, self.initial, self.max
            ));
        }
        if !(self.backoff.is_finite() && self.backoff > 0.0 && self.backoff < 1.0) {
            return Err(format!(
                "backoff {} must be above 0 and below 1",
                self.backoff
            ));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 1.0) {
            return Err(format!("tolerance {} must be at least 1", self.tolerance));
        }
        if self.queue_timeout > MAX_QUEUE_TIMEOUT {
            return Err(format!(
                "queue_timeout {:?} must be at most {MAX_QUEUE_TIMEOUT:?}",
                self.queue_timeout
            ));
        }
        if self.max_queue > 100_000 {
            return Err(format!(
                "max_queue {} must be at most 100000",
                self.max_queue
            ));
        }
        Ok(())
    }
}

/// What a call's end says about the deployment's capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// It completed cleanly; a stream's time to its first token, if known.
    Clean {
        /// Time to the first content token.
        ttft: Option<Duration>,
    },
    /// Too much: a 429, an overload, a 503, a timeout.
    Drop,
    /// Nothing about capacity (a cancelled call, the caller's mistake, a
    /// server error, a hedge that lost).
    Ignore,
}

/// The longest a call may wait for a slot (`queue_timeout`): an hour. A
/// request's own deadline bounds its wait too.
pub const MAX_QUEUE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The longest a spent rate-limit header caps the limit (the breaker's
/// default `max_pause`).
pub const MAX_CAP: Duration = Duration::from_secs(60);

/// Smoothing of the recent TTFT (per sample) and of the long-run one.
const SHORT: f64 = 0.2;
const LONG: f64 = 0.01;
/// What the drop that ends slow start multiplies the limit by (at most).
pub const SLOW_START_EXIT: f64 = 0.5;
/// Samples before the gradient may cut.
const WARM_UP: u32 = 10;

/// One deployment's limit.
#[derive(Debug, Clone)]
pub struct AdaptiveLimit {
    config: LimitConfig,
    limit: f64,
    last_cut: Option<Instant>,
    /// The cap a spent rate limit set, and until when.
    cap: Option<(u32, Instant)>,
    short_ttft: f64,
    long_ttft: f64,
    samples: u32,
    /// No cut and no cap yet: grows by one per clean completion.
    slow_start: bool,
}

impl AdaptiveLimit {
    /// A limit at `config.initial`.
    pub fn new(config: LimitConfig) -> Self {
        AdaptiveLimit {
            config,
            limit: f64::from(config.initial),
            last_cut: None,
            cap: None,
            short_ttft: 0.0,
            long_ttft: 0.0,
            samples: 0,
            slow_start: true,
        }
    }

    /// The settings.
    pub fn config(&self) -> &LimitConfig {
        &self.config
    }

    /// The limit now: the adapted one, under a rate-limit cap while it lasts.
    pub fn limit(&self, now: Instant) -> u32 {
        // The limit stays within [min, max] (both u32), so the cast is exact.
        let adapted = self.limit.floor() as u32;
        match self.cap {
            Some((cap, until)) if until > now => adapted.min(cap),
            _ => adapted,
        }
    }

    /// A call that started at `started` ended with `signal`, `in_flight`
    /// calls running just before it ended.
    pub fn on_end(&mut self, signal: Signal, started: Instant, in_flight: u32, now: Instant) {
        let (min, max) = (f64::from(self.config.min), f64::from(self.config.max));
        let after_cut = self.last_cut.is_none_or(|cut| started > cut);
        match signal {
            Signal::Ignore => {}
            Signal::Drop => {
                if after_cut {
                    // The drop that ends slow start halves, as TCP's does: a
                    // limit grown by one a completion doubled each round trip
                    // and may be twice what the deployment holds; the first
                    // guess (`initial`) was just shown too high.
                    let factor = if self.slow_start {
                        self.config.backoff.min(SLOW_START_EXIT)
                    } else {
                        self.config.backoff
                    };
                    self.cut(factor, now);
                }
            }
            Signal::Clean { ttft } => {
                let slow = ttft.and_then(|t| self.sample(t));
                match slow {
                    Some(gradient) if after_cut && self.samples >= WARM_UP => {
                        self.cut(gradient, now);
                    }
                    _ if f64::from(in_flight) * 2.0 >= self.limit => {
                        let step = if self.slow_start {
                            1.0
                        } else {
                            1.0 / self.limit.max(1.0)
                        };
                        self.limit = (self.limit + step).clamp(min, max);
                    }
                    _ => {}
                }
            }
        }
    }

    /// A response said the rate limit is spent for `spent_for` from `now`:
    /// the limit is capped at `in_flight` (at least `min`) until then, and
    /// never longer than [`MAX_CAP`]: no header holds a deployment down for a
    /// day, and a reset too far to add to the clock caps for `MAX_CAP` too.
    pub fn cap(&mut self, in_flight: u32, spent_for: Duration, now: Instant) {
        let until = later(now, spent_for.min(MAX_CAP));
        let cap = in_flight.max(self.config.min);
        self.slow_start = false;
        self.cap = match self.cap {
            Some((old, old_until)) if old_until >= until => Some((old.min(cap), old_until)),
            _ => Some((cap, until)),
        };
    }

    fn cut(&mut self, factor: f64, now: Instant) {
        let (min, max) = (f64::from(self.config.min), f64::from(self.config.max));
        self.limit = (self.limit * factor).floor().clamp(min, max);
        self.last_cut = Some(now);
        self.slow_start = false;
    }

    /// Folds a TTFT sample in; the gradient to cut by when the recent TTFT
    /// is above the tolerance times the long-run one.
    fn sample(&mut self, ttft: Duration) -> Option<f64> {
        let x = ttft.as_secs_f64();
        if self.samples == 0 {
            self.short_ttft = x;
            self.long_ttft = x;
        } else {
            self.short_ttft += SHORT * (x - self.short_ttft);
            self.long_ttft += LONG * (x - self.long_ttft);
        }
        self.samples = self.samples.saturating_add(1);
        let allowed = self.config.tolerance * self.long_ttft;
        (self.short_ttft > allowed && self.short_ttft > 0.0)
            .then(|| (allowed / self.short_ttft).clamp(0.5, 1.0))
    }
}

#[cfg(test)]
mod tests;
