//! Two counts over a sliding window, kept in two halves with atomics: read
//! and written by every request at once without a lock, and never forgetting
//! everything at once (the half before still counts). What a hedge cap (its
//! requests and hedges) and an adaptive throttle (its requests and accepts)
//! count.
//!
//! ```
//! use std::time::Duration;
//! use steer_actors::limit::window::WindowCounts;
//! let counts = WindowCounts::new(Duration::from_secs(10));
//! counts.add(0);
//! counts.add(1);
//! counts.add(1);
//! assert_eq!(counts.sums(), [1, 2]);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Two counts over a window (see the module).
#[derive(Debug)]
pub struct WindowCounts {
    epoch: tokio::time::Instant,
    half_window: Duration,
    /// The half-window the counts belong to, and the counts of this half and
    /// the one before.
    half: AtomicU64,
    now: [AtomicU64; 2],
    before: [AtomicU64; 2],
}

impl WindowCounts {
    /// Counts over `window` (at least 2 ms), from now.
    pub fn new(window: Duration) -> Self {
        WindowCounts {
            epoch: tokio::time::Instant::now(),
            half_window: window
                .checked_div(2)
                .unwrap_or_default()
                .max(Duration::from_millis(1)),
            half: AtomicU64::new(0),
            now: [AtomicU64::new(0), AtomicU64::new(0)],
            before: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Counts one more of count `i` (0 or 1; anything else counts as 1).
    pub fn add(&self, i: usize) {
        self.roll();
        self.now[i.min(1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Both counts over the window (this half and the one before).
    pub fn sums(&self) -> [u64; 2] {
        self.roll();
        let sum = |i: usize| {
            self.now[i]
                .load(Ordering::Relaxed)
                .saturating_add(self.before[i].load(Ordering::Relaxed))
        };
        [sum(0), sum(1)]
    }

    /// Moves to a new half-window when one has passed (a race between two
    /// callers loses a few counts at worst).
    fn roll(&self) {
        let elapsed = self.epoch.elapsed().as_nanos();
        let half = elapsed
            .checked_div(self.half_window.as_nanos())
            .and_then(|h| u64::try_from(h).ok())
            .unwrap_or(u64::MAX);
        let seen = self.half.load(Ordering::Relaxed);
        if half == seen
            || self
                .half
                .compare_exchange(seen, half, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        for i in 0..2 {
            let current = self.now[i].swap(0, Ordering::Relaxed);
            let keep = if half == seen.saturating_add(1) {
                current
            } else {
                0
            };
            self.before[i].store(keep, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_half_before_still_counts_and_a_whole_window_later_nothing_does() {
        let counts = WindowCounts::new(Duration::from_secs(10));
        for _ in 0..3 {
            counts.add(0);
        }
        counts.add(7);
        assert_eq!(counts.sums(), [3, 1]);
        tokio::time::advance(Duration::from_secs(5)).await;
        counts.add(0);
        assert_eq!(counts.sums(), [4, 1], "the half before still counts");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(counts.sums(), [1, 0], "the first half is gone");
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(counts.sums(), [0, 0]);
    }
}
