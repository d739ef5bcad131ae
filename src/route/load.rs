//! What a group's selection knows of each target's load: requests in flight and a
//! moving average of its latency. Atomics, one set a target, fixed when the client
//! is built: read and written by requests without a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A target's load, as the selection sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Requests to it in flight.
    pub in_flight: u64,
    /// Its recent latency (exponentially weighted, 1/8 per sample), in
    /// microseconds; 0 until it has answered once.
    pub latency_micros: u64,
}

/// The counters of one target.
#[derive(Debug)]
pub(crate) struct TargetLoad {
    in_flight: AtomicU64,
    ewma_micros: AtomicU64,
    /// Until when (milliseconds after `epoch`) its rate limit is nearly spent.
    spent_until_ms: AtomicU64,
    epoch: tokio::time::Instant,
}

impl Default for TargetLoad {
    fn default() -> Self {
        TargetLoad {
            in_flight: AtomicU64::new(0),
            ewma_micros: AtomicU64::new(0),
            spent_until_ms: AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
        }
    }
}

impl TargetLoad {
    /// What it is now.
    pub fn load(&self) -> Load {
        Load {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency_micros: self.ewma_micros.load(Ordering::Relaxed),
        }
    }

    /// A request to it starts; it ends when the guard is dropped.
    pub fn start(self: &std::sync::Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Its rate limit is nearly spent for `wait` (the headers of an answer said so):
    /// groups skip it until then.
    pub fn spent_for(&self, wait: Duration) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let until = now.saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        self.spent_until_ms.fetch_max(until, Ordering::Relaxed);
    }

    /// Whether it is to be skipped now.
    pub fn is_spent(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.spent_until_ms.load(Ordering::Relaxed) > now
    }

    /// Folds one answer's latency into the average.
    pub fn record(&self, latency: Duration) {
        let sample = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self
            .ewma_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    (old / 8).saturating_mul(7).saturating_add(sample / 8)
                })
            });
    }
}

/// A request in flight to a target.
pub(crate) struct InFlight(std::sync::Arc<TargetLoad>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let _ = self
            .0
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn in_flight_counts_guards_and_latency_moves_toward_samples() {
        let t = Arc::new(TargetLoad::default());
        let a = t.start();
        let b = t.start();
        assert_eq!(t.load().in_flight, 2);
        drop(a);
        drop(b);
        assert_eq!(t.load().in_flight, 0);
        t.record(Duration::from_millis(80));
        assert_eq!(t.load().latency_micros, 80_000);
        for _ in 0..40 {
            t.record(Duration::from_millis(8));
        }
        let l = t.load().latency_micros;
        assert!((8_000..9_000).contains(&l), "{l}");
    }
}
