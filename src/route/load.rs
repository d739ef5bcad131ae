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
    /// Its last latencies, the bounded sketch a request hedge's percentile
    /// delay reads.
    recent: Samples,
    /// Its streams' last times to first content, a stream hedge's.
    first_tokens: Samples,
}

/// The last [`RECENT`] samples in milliseconds (0: none yet), a ring of
/// atomics.
#[derive(Debug)]
struct Samples {
    ring: [AtomicU64; RECENT],
    next: AtomicU64,
}

impl Default for Samples {
    fn default() -> Self {
        Samples {
            ring: std::array::from_fn(|_| AtomicU64::new(0)),
            next: AtomicU64::new(0),
        }
    }
}

impl Samples {
    fn push(&self, d: Duration) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % RECENT as u64;
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| self.ring.get(i)) {
            slot.store(ms, Ordering::Relaxed);
        }
    }

    fn all(&self) -> Vec<u64> {
        self.ring
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|ms| *ms > 0)
            .collect()
    }
}

/// Latency samples a target keeps for hedge delays.
const RECENT: usize = 64;

impl Default for TargetLoad {
    fn default() -> Self {
        TargetLoad {
            in_flight: AtomicU64::new(0),
            ewma_micros: AtomicU64::new(0),
            spent_until_ms: AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
            recent: Samples::default(),
            first_tokens: Samples::default(),
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

    /// Its recent latencies in milliseconds (at most 64, oldest gone first).
    pub fn recent_ms(&self) -> Vec<u64> {
        self.recent.all()
    }

    /// Its streams' recent times to first content in milliseconds (at most
    /// 64): what a stream hedge's percentile delay reads.
    pub fn first_tokens_ms(&self) -> Vec<u64> {
        self.first_tokens.all()
    }

    /// A stream's first content came `ttft` after it started.
    pub fn record_first_token(&self, ttft: Duration) {
        self.first_tokens.push(ttft);
    }

    /// Folds one answer's latency into the average and the recent samples.
    pub fn record(&self, latency: Duration) {
        self.recent.push(latency);
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

/// Characters a stream's latency sample counts after its first token.
const STREAM_SAMPLE_CHARS: f64 = 500.0;

/// A stream's latency sample, comparable with a reply's: its time to first
/// token plus the time its rate after that takes for 500 characters (its
/// whole rest when it sent fewer), so that a stream that trickles after a fast
/// first token reads as slow.
pub(crate) fn stream_sample(ttft: Duration, total: Duration, chars: usize) -> Duration {
    let rest = total.saturating_sub(ttft);
    let chars = chars as f64;
    if chars <= STREAM_SAMPLE_CHARS {
        return ttft.saturating_add(rest);
    }
    ttft.saturating_add(rest.mul_f64(STREAM_SAMPLE_CHARS / chars))
}

/// A failed leg's latency sample: twice the time it took, and at least twice
/// the target's average, so that failing targets read as slow.
pub(crate) fn failure_sample(elapsed: Duration, load: &TargetLoad) -> Duration {
    let average = Duration::from_micros(load.load().latency_micros);
    elapsed.max(average).saturating_mul(2)
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
    fn answers_and_first_tokens_are_kept_apart_the_last_64_of_each() {
        let load = TargetLoad::default();
        for ms in 1..=100u64 {
            load.record(Duration::from_millis(ms));
        }
        load.record_first_token(Duration::from_millis(7));
        let recent = load.recent_ms();
        assert_eq!(recent.len(), 64);
        assert_eq!(
            (recent.iter().min(), recent.iter().max()),
            (Some(&37), Some(&100))
        );
        assert_eq!(
            load.first_tokens_ms(),
            [7],
            "a stream's first token, not its answer"
        );
        load.record_first_token(Duration::ZERO);
        assert_eq!(
            load.first_tokens_ms(),
            [7, 1],
            "a zero sample counts as 1 ms"
        );
    }

    #[test]
    fn a_trickling_stream_reads_slow_and_a_failure_reads_twice_as_slow() {
        let ms = Duration::from_millis;
        // 50 ms to the first token, 2,000 characters in the next 1 s: 250 ms
        // for 500 of them.
        assert_eq!(stream_sample(ms(50), ms(1050), 2000), ms(300));
        // The same first token, then 20 characters a second for 10 s.
        assert_eq!(stream_sample(ms(50), ms(10_050), 200), ms(10_050));
        assert_eq!(
            stream_sample(ms(80), ms(20), 0),
            ms(80),
            "never below the TTFT"
        );
        let t = TargetLoad::default();
        assert_eq!(failure_sample(ms(10), &t), ms(20));
        t.record(ms(100));
        assert_eq!(failure_sample(ms(10), &t), ms(200));
    }

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
