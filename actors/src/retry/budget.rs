//! A retry budget per provider, in the spirit of gRPC retry throttling and
//! Finagle's RetryBudget: retries may add at most `ratio` of the recent requests,
//! plus a small floor, so an outage cannot multiply the load.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Retry budget settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetConfig {
    /// Retries allowed per first attempt in the window (default 0.2: 20% more load).
    pub ratio: f64,
    /// Retries always allowed per second of the window (default 10), so that a quiet
    /// provider can still retry.
    pub min_retries_per_sec: u32,
    /// How far back requests and retries are counted (default 10 s).
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            ratio: 0.2,
            min_retries_per_sec: 10,
            window: Duration::from_secs(10),
        }
    }
}

/// The budget: counts of first attempts and retries in the recent window, in
/// ten buckets so that memory stays constant under any load.
#[derive(Debug, Clone)]
pub(crate) struct RetryBudget {
    config: BudgetConfig,
    buckets: VecDeque<(Instant, u64, u64)>,
}

impl RetryBudget {
    /// An empty budget.
    pub fn new(config: BudgetConfig) -> Self {
        RetryBudget {
            config,
            buckets: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> BudgetConfig {
        self.config
    }

    fn bucket(&mut self, now: Instant) -> Option<&mut (Instant, u64, u64)> {
        let width = self.config.window.checked_div(10).unwrap_or_default();
        while let Some(front) = self.buckets.front() {
            if now.saturating_duration_since(front.0) >= self.config.window {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
        let fresh = match self.buckets.back() {
            Some(b) => now.saturating_duration_since(b.0) >= width,
            None => true,
        };
        if fresh {
            self.buckets.push_back((now, 0, 0));
        }
        // A bucket was just pushed if there was none.
        self.buckets.back_mut()
    }

    /// Counts a first attempt.
    pub(crate) fn record_request(&mut self, now: Instant) {
        if let Some(b) = self.bucket(now) {
            b.1 = b.1.saturating_add(1);
        }
    }

    /// Takes one retry from the budget; `false` if it is spent.
    pub(crate) fn try_retry(&mut self, now: Instant) -> bool {
        self.bucket(now);
        let (requests, retries) = self.buckets.iter().fold((0u64, 0u64), |(a, b), x| {
            (a.saturating_add(x.1), b.saturating_add(x.2))
        });
        let floor = f64::from(self.config.min_retries_per_sec) * self.config.window.as_secs_f64();
        let allowed = requests as f64 * self.config.ratio + floor;
        if (retries as f64) < allowed {
            if let Some(b) = self.bucket(now) {
                b.2 = b.2.saturating_add(1);
            }
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_limited_to_the_ratio_plus_the_floor() {
        let now = Instant::now();
        let mut b = RetryBudget::new(BudgetConfig {
            ratio: 0.1,
            min_retries_per_sec: 1,
            window: Duration::from_secs(10),
        });
        for _ in 0..100 {
            b.record_request(now);
        }
        // 100 * 0.1 + 1 * 10 = 20 retries.
        let granted = (0..100).filter(|_| b.try_retry(now)).count();
        assert_eq!(granted, 20);
        // After the window, the budget refills.
        let later = now + Duration::from_secs(11);
        assert!(b.try_retry(later));
    }
}
