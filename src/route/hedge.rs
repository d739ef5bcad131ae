//! Hedging a group's request: when its target has not answered after a delay,
//! the same request goes to the next target of the group (or the same one)
//! too; the first reply wins and the others are cancelled. The settings
//! ([`Hedge`]), the delay a target's recent latencies give, and the cap on the
//! extra load ([`HedgeCap`], a share of the group's recent requests). After
//! gRPC's hedging policy, Finagle's backup requests and "The Tail at Scale".
//!
//! ```
//! use std::time::Duration;
//! use steer_llm::route::hedge::{Hedge, HedgeDelay};
//! let h = Hedge::after(Duration::from_millis(800));
//! assert_eq!((h.max_hedges, h.same_target, h.max_share_percent), (1, false, 10));
//! assert_eq!(h.delay, HedgeDelay::After(Duration::from_millis(800)));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use steer_actors::limit::window::WindowCounts;

use crate::model::ModelId;

/// When a hedge goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HedgeDelay {
    /// After this long without a reply.
    After(Duration),
    /// After the target's recent latency at this percentile (1 to 99); while
    /// the target has fewer than 20 samples, its group's (every target's,
    /// pooled: [`samples_for`]), and `fallback` until those are 20 either.
    Percentile {
        /// The percentile.
        p: u8,
        /// The delay before the target has enough samples.
        fallback: Duration,
    },
}

/// How a group's requests are hedged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hedge {
    /// When.
    pub delay: HedgeDelay,
    /// Hedges a request may send (1 to 4; default 1).
    pub max_hedges: u32,
    /// Hedge at the same target rather than the next of the group.
    pub same_target: bool,
    /// Hedges at most this share of the group's requests over the last ten
    /// seconds, in percent (default 10).
    pub max_share_percent: u32,
}

impl Hedge {
    /// One hedge, to the next target, after `delay`, at most 10% more load.
    pub fn after(delay: Duration) -> Self {
        Hedge {
            delay: HedgeDelay::After(delay),
            max_hedges: 1,
            same_target: false,
            max_share_percent: 10,
        }
    }

    /// One hedge after the target's recent latency at percentile `p`
    /// (`fallback` until it has enough samples).
    pub fn at_percentile(p: u8, fallback: Duration) -> Self {
        Hedge {
            delay: HedgeDelay::Percentile { p, fallback },
            ..Hedge::after(fallback)
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.max_hedges) {
            return Err(format!(
                "max_hedges {} must be from 1 to 4",
                self.max_hedges
            ));
        }
        if self.max_share_percent > 100 {
            return Err("max_share_percent must be at most 100".into());
        }
        if let HedgeDelay::Percentile { p, .. } = self.delay {
            if !(1..=99).contains(&p) {
                return Err(format!("percentile {p} must be from 1 to 99"));
            }
        }
        Ok(())
    }

    /// The delay for a target whose recent latencies (milliseconds) are
    /// `recent`.
    pub fn delay_for(&self, recent: &[u64]) -> Duration {
        self.delay_from(|| recent)
    }

    /// [`Hedge::delay_for`], the samples read (`recent` called) only for a
    /// percentile delay: a fixed one gathers none.
    fn delay_from<S: AsRef<[u64]>>(&self, recent: impl FnOnce() -> S) -> Duration {
        match self.delay {
            HedgeDelay::After(d) => d,
            HedgeDelay::Percentile { p, fallback } => {
                percentile(recent().as_ref(), p).map_or(fallback, Duration::from_millis)
            }
        }
    }
}

/// One request's hedging, as a plain machine: the hedges it may still send,
/// when the next goes, and whether one may go now. The route actor and the
/// stream actor each own one and run its timer.
///
/// ```
/// use std::time::Duration;
/// use steer_llm::route::hedge::{Hedge, Hedging};
/// let mut h = Hedging::new(Hedge::after(Duration::from_millis(300)));
/// assert_eq!(h.next_delay(Vec::new), Some(Duration::from_millis(300)));
/// assert!(!h.take(|| false), "the cap refused: none taken");
/// assert!(h.take(|| true));
/// assert_eq!(h.next_delay(Vec::new), None, "one hedge by default, sent");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hedging {
    settings: Hedge,
    left: u32,
}

impl Hedging {
    /// A request hedged as `settings` say, that has sent none.
    pub fn new(settings: Hedge) -> Self {
        Hedging {
            settings,
            left: settings.max_hedges,
        }
    }

    /// The settings.
    pub fn settings(&self) -> Hedge {
        self.settings
    }

    /// The wait before the next hedge, if the request may still send one;
    /// `recent` gives its target's samples, read only for a percentile delay
    /// (a fixed one gathers and allocates none).
    pub fn next_delay(&self, recent: impl FnOnce() -> Vec<u64>) -> Option<Duration> {
        (self.left > 0).then(|| self.settings.delay_from(recent))
    }

    /// A hedge is due: takes one if any is left and `cap` (asked only then)
    /// allows it.
    pub fn take(&mut self, cap: impl FnOnce() -> bool) -> bool {
        if self.left == 0 || !cap() {
            return false;
        }
        self.left = self.left.saturating_sub(1);
        true
    }
}

/// Samples a percentile needs.
pub const MIN_SAMPLES: usize = 20;

/// The latency samples a percentile delay at `target` reads, `of` giving a
/// target's own: `target`'s once there are [`MIN_SAMPLES`], else its group's
/// `peers`' pooled (the target among them), which a group's first requests
/// have long before each target has its own: a target the group has barely
/// tried (one whose calls are refused, or that answers few) hedges after its
/// peers' latency, not after the fixed fallback.
///
/// ```
/// use steer_llm::route::hedge::samples_for;
/// use steer_llm::ModelId;
/// let (a, b): (ModelId, ModelId) = ("a/m".parse().unwrap(), "b/m".parse().unwrap());
/// let peers = [a.clone(), b.clone()];
/// let few = |t: &ModelId| if *t == a { vec![7; 3] } else { vec![1; 40] };
/// assert_eq!(samples_for(&a, &peers, few).len(), 43, "pooled");
/// let enough = |t: &ModelId| if *t == a { vec![7; 20] } else { vec![1; 40] };
/// assert_eq!(samples_for(&a, &peers, enough), vec![7; 20], "its own");
/// ```
pub fn samples_for<'a>(
    target: &ModelId,
    peers: impl IntoIterator<Item = &'a ModelId>,
    of: impl Fn(&ModelId) -> Vec<u64>,
) -> Vec<u64> {
    let own = of(target);
    if own.len() >= MIN_SAMPLES {
        return own;
    }
    peers.into_iter().flat_map(of).collect()
}

/// The `p`-th percentile of `samples` (nearest rank), once there are enough.
fn percentile(samples: &[u64], p: u8) -> Option<u64> {
    if samples.len() < MIN_SAMPLES {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (sorted.len() * usize::from(p)).div_ceil(100);
    sorted.get(rank.saturating_sub(1)).copied()
}

/// The cap on a group's (or a deployment's) hedges: at most a share of its
/// requests over a window of ten seconds, counted without a lock (every route
/// of the group reads and writes it).
#[derive(Debug)]
pub struct HedgeCap {
    /// Requests (0) and hedges (1).
    counts: WindowCounts,
}

/// The cap's window.
const WINDOW: Duration = Duration::from_secs(10);

impl Default for HedgeCap {
    fn default() -> Self {
        HedgeCap {
            counts: WindowCounts::new(WINDOW),
        }
    }
}

impl HedgeCap {
    /// Counts a request of the group.
    pub fn request(&self) {
        self.counts.add(0);
    }

    /// Takes a hedge if the group's hedges stay within `share_percent` of its
    /// requests; `false` when they would not.
    pub fn try_hedge(&self, share_percent: u32) -> bool {
        let [requests, hedges] = self.counts.sums();
        let allowed = requests.saturating_mul(u64::from(share_percent)) / 100;
        if hedges < allowed {
            self.counts.add(1);
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
    fn a_percentile_delay_needs_twenty_samples_and_settings_are_checked() {
        let h = Hedge::at_percentile(95, Duration::from_millis(700));
        assert_eq!(h.delay_for(&[10; 19]), Duration::from_millis(700));
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(h.delay_for(&samples), Duration::from_millis(95));
        assert!(h.validate().is_ok());
        for wrong in [
            Hedge { max_hedges: 0, ..h },
            Hedge { max_hedges: 5, ..h },
            Hedge {
                max_share_percent: 101,
                ..h
            },
            Hedge::at_percentile(100, Duration::ZERO),
        ] {
            assert!(wrong.validate().is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn a_target_with_few_samples_hedges_after_its_groups_latency() {
        let h = Hedge::at_percentile(95, Duration::from_millis(700));
        let [target, peer]: [ModelId; 2] = ["a/m", "b/m"].map(|t| t.parse().unwrap());
        let peers = [target.clone(), peer.clone()];
        let with = |own: Vec<u64>, theirs: Vec<u64>| {
            let target = target.clone();
            move |t: &ModelId| {
                if *t == target {
                    own.clone()
                } else {
                    theirs.clone()
                }
            }
        };
        // Five of its own: the group's 105 samples give the delay.
        let five = with(vec![500; 5], (1..=100).collect());
        let delay = h.delay_for(&samples_for(&target, &peers, five));
        assert_eq!(delay, Duration::from_millis(100));
        // Twenty of its own: those alone, the group not even read.
        let twenty = |t: &ModelId| {
            assert_eq!(*t, target, "own are enough");
            vec![40; 20]
        };
        let delay = h.delay_for(&samples_for(&target, &peers, twenty));
        assert_eq!(delay, Duration::from_millis(40));
        // A group as new as its target: the fallback.
        let new = with(vec![1; 3], vec![1; 16]);
        let delay = h.delay_for(&samples_for(&target, &peers, new));
        assert_eq!(delay, Duration::from_millis(700));
    }

    #[test]
    fn a_fixed_delay_reads_no_samples() {
        let h = Hedging::new(Hedge::after(Duration::from_millis(70)));
        let read = || -> Vec<u64> { panic!("a fixed delay gathered samples") };
        assert_eq!(h.next_delay(read), Some(Duration::from_millis(70)));
        let p = Hedging::new(Hedge::at_percentile(50, Duration::from_millis(900)));
        let mut asked = 0;
        let delay = p.next_delay(|| {
            asked += 1;
            (1..=40).collect()
        });
        assert_eq!((delay, asked), (Some(Duration::from_millis(20)), 1));
    }

    #[test]
    fn a_request_sends_its_hedges_one_at_a_time_and_no_more() {
        let mut h = Hedging::new(Hedge {
            max_hedges: 2,
            ..Hedge::at_percentile(50, Duration::from_millis(900))
        });
        let samples: Vec<u64> = (1..=40).collect();
        assert_eq!(
            h.next_delay(|| samples.clone()),
            Some(Duration::from_millis(20))
        );
        assert_eq!(h.next_delay(Vec::new), Some(Duration::from_millis(900)));
        let mut asked = 0;
        assert!(h.take(|| {
            asked += 1;
            true
        }));
        assert!(h.take(|| true));
        assert!(!h.take(|| {
            asked += 1;
            true
        }));
        assert_eq!(
            (asked, h.next_delay(|| samples.clone())),
            (1, None),
            "the cap is not asked past the last"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hedges_stay_within_their_share_of_recent_requests() {
        let cap = HedgeCap::default();
        for _ in 0..100 {
            cap.request();
        }
        let granted = (0..50).filter(|_| cap.try_hedge(10)).count();
        assert_eq!(granted, 10);
        // Half a window on, the counts before still count.
        tokio::time::advance(WINDOW / 2).await;
        assert!(!cap.try_hedge(10));
        // A whole window on, they are forgotten: no requests, no hedge.
        tokio::time::advance(WINDOW).await;
        assert!(!cap.try_hedge(10));
        for _ in 0..20 {
            cap.request();
        }
        assert_eq!((0..5).filter(|_| cap.try_hedge(10)).count(), 2);
    }
}
