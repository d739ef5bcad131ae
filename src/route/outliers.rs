//! Outlier ejection in a model group, as a plain state machine: a target that
//! fails N calls in a row, or whose success rate is far below its peers', is
//! taken out of the group's rotation for a while, longer each time, and never
//! more than a share of the group at once. After Envoy's outlier detection
//! (`consecutive_5xx`, the success-rate rule `mean − 1.9 × stdev` with at
//! least 5 hosts of 100 requests each, `base_ejection_time × ejections` up to
//! `max_ejection_time`, `max_ejection_percent` with at least one host). No
//! clock of its own: every input carries the time; the outlier actor owns one
//! per group and runs its interval.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use steer_llm::route::outliers::{OutlierConfig, Outliers};
//! let targets = ["a/m", "b/m"].map(|t| t.parse().unwrap());
//! let mut o = Outliers::new(OutlierConfig::default(), targets.clone());
//! let now = Instant::now();
//! let ejected = (0..5).filter_map(|_| o.record(&targets[0], false, now)).last();
//! assert_eq!(ejected.unwrap().duration, Duration::from_secs(30));
//! assert!(o.is_ejected(&targets[0], now));
//! ```

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::ModelId;

/// Whether a leg that ended with `error` counts against its target in the
/// outlier rules: a failure that speaks for the target's health (not a
/// rejection, a rate limit, the request's own fault or a deadline).
pub fn counts_against(error: &Error) -> bool {
    matches!(error, Error::Failed(f) if f.failure.affects_health)
}

/// When a group ejects a target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierConfig {
    /// Failures in a row that eject a target (default 5; 0: no such rule).
    pub consecutive_failures: u32,
    /// How often the success rates are compared and the counts start afresh
    /// (default 10 s).
    pub interval: Duration,
    /// The first ejection's length; the n-th lasts n times it (default 30 s).
    pub base_ejection: Duration,
    /// The longest ejection (default 300 s).
    pub max_ejection: Duration,
    /// The most of the group ejected at once, in percent (default 10); one
    /// target may always be ejected, and never the last one left.
    pub max_ejected_percent: u32,
    /// Targets with enough calls in an interval for the success-rate rule
    /// to apply (default 5).
    pub success_rate_min_targets: u32,
    /// Calls a target needs in an interval to count in it (default 100).
    pub success_rate_min_calls: u64,
    /// A target is ejected below `mean − factor × stdev` of its peers'
    /// success rates (default 1.9).
    pub success_rate_stdev_factor: f64,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_failures: 5,
            interval: Duration::from_secs(10),
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 10,
            success_rate_min_targets: 5,
            success_rate_min_calls: 100,
            success_rate_stdev_factor: 1.9,
        }
    }
}

impl OutlierConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval < Duration::from_millis(10) || self.interval > Duration::from_secs(3600) {
            return Err("interval must be from 10ms to 1h".into());
        }
        if self.base_ejection.is_zero() || self.max_ejection < self.base_ejection {
            return Err("base_ejection must be above 0 and at most max_ejection".into());
        }
        if self.max_ejected_percent > 100 {
            return Err("max_ejected_percent must be at most 100".into());
        }
        let f = self.success_rate_stdev_factor;
        if !(f.is_finite() && f >= 0.0) {
            return Err("success_rate_stdev_factor must be finite and at least 0".into());
        }
        Ok(())
    }
}

/// Why a target was ejected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EjectReason {
    /// This many failures in a row.
    ConsecutiveFailures(u32),
    /// Its success rate (0 to 1) in the last interval, below the threshold
    /// its peers' rates gave.
    SuccessRate {
        /// Its rate.
        rate: f64,
        /// The threshold.
        threshold: f64,
    },
}

/// A target taken out of its group's rotation.
#[derive(Debug, Clone, PartialEq)]
pub struct Ejection {
    /// The target.
    pub target: ModelId,
    /// Why.
    pub reason: EjectReason,
    /// For how long.
    pub duration: Duration,
    /// Its ejections so far, this one included (the length's multiplier).
    pub count: u32,
}

#[derive(Debug, Clone)]
struct Health {
    target: ModelId,
    consecutive: u32,
    ok: u64,
    failed: u64,
    ejections: u32,
    ejected_until: Option<Instant>,
}

/// The outlier state of one group.
#[derive(Debug, Clone)]
pub struct Outliers {
    config: OutlierConfig,
    targets: Vec<Health>,
}

impl Outliers {
    /// A group of `targets`, none ejected.
    pub fn new(config: OutlierConfig, targets: impl IntoIterator<Item = ModelId>) -> Self {
        let mut seen: Vec<Health> = Vec::new();
        for target in targets {
            if !seen.iter().any(|h| h.target == target) {
                seen.push(Health {
                    target,
                    consecutive: 0,
                    ok: 0,
                    failed: 0,
                    ejections: 0,
                    ejected_until: None,
                });
            }
        }
        Outliers {
            config,
            targets: seen,
        }
    }

    /// The settings.
    pub fn config(&self) -> &OutlierConfig {
        &self.config
    }

    /// A call to `target` ended (a failure only if it speaks for the target's
    /// health): returns the ejection it caused, if any. A target outside the
    /// group, or already ejected, changes nothing.
    pub fn record(&mut self, target: &ModelId, success: bool, now: Instant) -> Option<Ejection> {
        let i = self.targets.iter().position(|h| &h.target == target)?;
        let threshold = self.config.consecutive_failures;
        let h = &mut self.targets[i];
        if h.ejected_until.is_some_and(|t| t > now) {
            return None;
        }
        if success {
            h.consecutive = 0;
            h.ok = h.ok.saturating_add(1);
            return None;
        }
        h.consecutive = h.consecutive.saturating_add(1);
        h.failed = h.failed.saturating_add(1);
        let run = h.consecutive;
        if threshold == 0 || run < threshold || !self.may_eject(now) {
            return None;
        }
        Some(self.eject(i, EjectReason::ConsecutiveFailures(run), now))
    }

    /// The interval ended: targets whose ejection is over come back; the
    /// success-rate rule ejects the targets far below their peers; the counts
    /// start afresh (and a target healthy through it has one ejection
    /// forgiven). Returns the new ejections and the targets back.
    pub fn sweep(&mut self, now: Instant) -> (Vec<Ejection>, Vec<ModelId>) {
        let mut back = Vec::new();
        for h in &mut self.targets {
            if h.ejected_until.is_some_and(|t| t <= now) {
                h.ejected_until = None;
                h.consecutive = 0;
                back.push(h.target.clone());
            } else if h.ejected_until.is_none() && h.failed == 0 {
                h.ejections = h.ejections.saturating_sub(1);
            }
        }
        let mut ejected = Vec::new();
        if let Some(threshold) = self.success_rate_threshold(now) {
            let below: Vec<(usize, f64)> = self
                .targets
                .iter()
                .enumerate()
                .filter(|(_, h)| h.ejected_until.is_none() && self.has_volume(h))
                .map(|(i, h)| (i, rate(h)))
                .filter(|(_, r)| *r < threshold)
                .collect();
            for (i, rate) in below {
                if !self.may_eject(now) {
                    break;
                }
                ejected.push(self.eject(i, EjectReason::SuccessRate { rate, threshold }, now));
            }
        }
        for h in &mut self.targets {
            h.ok = 0;
            h.failed = 0;
        }
        (ejected, back)
    }

    /// Whether `target` is out of the rotation now.
    pub fn is_ejected(&self, target: &ModelId, now: Instant) -> bool {
        self.ejected_until(target).is_some_and(|t| t > now)
    }

    /// Until when `target` is ejected, if it is.
    pub fn ejected_until(&self, target: &ModelId) -> Option<Instant> {
        self.targets
            .iter()
            .find(|h| &h.target == target)
            .and_then(|h| h.ejected_until)
    }

    fn has_volume(&self, h: &Health) -> bool {
        h.ok.saturating_add(h.failed) >= self.config.success_rate_min_calls.max(1)
    }

    /// `mean − factor × stdev` of the success rates of the targets with
    /// enough calls, when there are enough of them.
    fn success_rate_threshold(&self, now: Instant) -> Option<f64> {
        let rates: Vec<f64> = self
            .targets
            .iter()
            .filter(|h| h.ejected_until.is_none_or(|t| t <= now) && self.has_volume(h))
            .map(rate)
            .collect();
        let n = rates.len();
        if n == 0 || n < self.config.success_rate_min_targets as usize {
            return None;
        }
        let mean = rates.iter().sum::<f64>() / n as f64;
        let variance = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n as f64;
        Some(mean - self.config.success_rate_stdev_factor * variance.sqrt())
    }

    /// Whether one more target may be ejected: fewer than the share (at least
    /// one) are, and one would be left.
    fn may_eject(&self, now: Instant) -> bool {
        let n = self.targets.len();
        let out = self
            .targets
            .iter()
            .filter(|h| h.ejected_until.is_some_and(|t| t > now))
            .count();
        let share = n.saturating_mul(self.config.max_ejected_percent as usize) / 100;
        out < share.max(1) && out.saturating_add(1) < n
    }

    fn eject(&mut self, i: usize, reason: EjectReason, now: Instant) -> Ejection {
        let config = self.config;
        let h = &mut self.targets[i];
        h.ejections = h.ejections.saturating_add(1);
        let duration = config
            .base_ejection
            .saturating_mul(h.ejections)
            .min(config.max_ejection);
        // Saturating: an ejection too long for the clock still ejects.
        h.ejected_until = Some(steer_actors::exec::clock::later(now, duration));
        h.consecutive = 0;
        Ejection {
            target: h.target.clone(),
            reason,
            duration,
            count: h.ejections,
        }
    }
}

fn rate(h: &Health) -> f64 {
    let calls = h.ok.saturating_add(h.failed);
    if calls == 0 {
        1.0
    } else {
        h.ok as f64 / calls as f64
    }
}

#[cfg(test)]
mod tests;
