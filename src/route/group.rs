//! Model groups: an ordered list of targets (`deployment/model`) a request may name
//! instead of one model, and the plain rules of routing through them: which target
//! is next, and whether a failure moves the request on. No runtime here; the route
//! machine ([`super::machine::Route`]) applies these rules.

use serde::{Deserialize, Serialize};
use steer_actors::{Category, GiveUp};

pub use super::load::Load;
use crate::error::Error;
use crate::model::{ModelId, RouteStep};

/// The share of [`Selection::Latency`]'s picks that probe a random target.
pub const LATENCY_PROBE_SHARE: f64 = 0.02;

/// The provider name that means "a group": `group/fast` names the group `fast`.
pub const GROUP_PROVIDER: &str = "group";

/// How a group picks among the available targets of its best tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The first untried target, in the group's order (default).
    #[default]
    InOrder,
    /// A random untried target, in proportion to the weights.
    Weighted,
    /// The untried target with the fewest requests in flight (ties: in order).
    LeastInFlight,
    /// The untried target with the lowest recent latency (an exponentially
    /// weighted average of replies, of streams' time to first token plus the
    /// time their rate takes for 500 characters, and of failures, counted
    /// double; a target not heard from yet goes first; ties: in order). One
    /// request in twenty goes to a random target of the tier instead, so that
    /// a target that recovered is noticed.
    Latency,
}

/// One target of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTarget {
    /// The deployment (a registered provider) and model.
    pub target: ModelId,
    /// Its share for [`Selection::Weighted`] (default 1; 0 never picks it).
    pub weight: u32,
    /// Its priority tier: lower tiers are tried first (default 0).
    pub tier: u32,
}

/// A model group.
///
/// ```
/// use steer_llm::runtime::group::{Group, Selection};
/// let fast = Group::new(["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"])
///     .unwrap()
///     .selection(Selection::InOrder);
/// assert_eq!(fast.targets.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The targets, in order.
    pub targets: Vec<GroupTarget>,
    /// How the next target is picked.
    pub selection: Selection,
    /// Where a request whose prompt is too long for a target goes.
    pub context_fallback: Option<ModelId>,
    /// Where a request a target's content filter refused goes.
    pub content_fallback: Option<ModelId>,
    /// Runs the group's streams in the Responses API's background mode (see
    /// [`ChatRequest::background`](crate::ChatRequest#structfield.background)).
    #[serde(default)]
    pub background: bool,
    /// The least rate of content of the group's streams after their first
    /// token: a target that trickles below it is failed over, exactly.
    #[serde(default)]
    pub min_rate: Option<crate::model::RateFloor>,
    /// Ejects the group's outliers from its rotation (off unless set).
    #[serde(default)]
    pub outliers: Option<super::outliers::OutlierConfig>,
    /// Hedges the group's requests (off unless set).
    #[serde(default)]
    pub hedge: Option<super::hedge::Hedge>,
}

impl Group {
    /// A group of these targets (`deployment/model`), in order, weight 1, tier 0.
    pub fn new<I, S>(targets: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let targets = targets
            .into_iter()
            .map(|t| {
                Ok(GroupTarget {
                    target: t.as_ref().parse()?,
                    weight: 1,
                    tier: 0,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if targets.is_empty() {
            return Err(Error::Config(crate::error::ConfigError::Setting {
                setting: "group".into(),
                reason: "a group needs at least one target".into(),
            }));
        }
        Ok(Group {
            targets,
            selection: Selection::InOrder,
            context_fallback: None,
            content_fallback: None,
            background: false,
            min_rate: None,
            outliers: None,
            hedge: None,
        })
    }

    /// Sets how the next target is picked.
    pub fn selection(mut self, selection: Selection) -> Self {
        self.selection = selection;
        self
    }

    /// Sets the weights, in the targets' order.
    pub fn weights(mut self, weights: &[u32]) -> Self {
        for (t, w) in self.targets.iter_mut().zip(weights) {
            t.weight = *w;
        }
        self
    }

    /// Sets the tiers, in the targets' order.
    pub fn tiers(mut self, tiers: &[u32]) -> Self {
        for (t, tier) in self.targets.iter_mut().zip(tiers) {
            t.tier = *tier;
        }
        self
    }

    /// Runs the group's streams in background mode where a target speaks the
    /// Responses API: a stream broken there resumes on the server, exactly.
    /// Off by default (the server keeps each response about ten minutes: not
    /// for zero data retention).
    pub fn background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }

    /// Sets the least rate of content of the group's streams after their first
    /// token (see [`RateFloor`](crate::runtime::RateFloor)).
    pub fn min_rate(mut self, floor: crate::model::RateFloor) -> Self {
        self.min_rate = Some(floor);
        self
    }

    /// Ejects a target from the group's rotation while it is an outlier: N
    /// failures in a row, or a success rate far below its peers' (see
    /// [`OutlierConfig`](super::outliers::OutlierConfig)).
    ///
    /// ```
    /// use steer_llm::route::outliers::OutlierConfig;
    /// use steer_llm::runtime::group::Group;
    /// let g = Group::new(["a/m", "b/m"]).unwrap().eject_outliers(OutlierConfig::default());
    /// assert!(g.outliers.is_some());
    /// ```
    pub fn eject_outliers(mut self, config: super::outliers::OutlierConfig) -> Self {
        self.outliers = Some(config);
        self
    }

    /// Hedges the group's requests: a copy goes to the next target (or the
    /// same) when the first has not answered after a delay; the first reply
    /// wins, the others are cancelled (see [`Hedge`](super::hedge::Hedge)).
    /// Not for requests that offer a tool with side effects.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steer_llm::route::hedge::Hedge;
    /// use steer_llm::runtime::group::Group;
    /// let g = Group::new(["a/m", "b/m"]).unwrap().hedge(Hedge::after(Duration::from_millis(800)));
    /// assert!(g.hedge.is_some());
    /// ```
    pub fn hedge(mut self, hedge: super::hedge::Hedge) -> Self {
        self.hedge = Some(hedge);
        self
    }

    /// Sets the target for prompts too long for the others.
    pub fn context_fallback(mut self, target: &str) -> Result<Self, Error> {
        self.context_fallback = Some(target.parse()?);
        Ok(self)
    }

    /// Sets the target for requests a content filter refused.
    pub fn content_fallback(mut self, target: &str) -> Result<Self, Error> {
        self.content_fallback = Some(target.parse()?);
        Ok(self)
    }

    /// The next target to try: among the untried targets that `available` admits,
    /// those of the lowest tier, picked by the group's selection (`random` is
    /// uniform in `[0, 1)`). A target that failed the request is never picked
    /// again.
    pub fn pick(
        &self,
        tried: &[ModelId],
        available: impl Fn(&ModelId) -> bool,
        random: f64,
    ) -> Option<&ModelId> {
        self.pick_by_load(tried, available, random, |_| Load::default())
    }

    /// [`Group::pick`], with each target's load for the load-aware selections.
    pub fn pick_by_load(
        &self,
        tried: &[ModelId],
        available: impl Fn(&ModelId) -> bool,
        random: f64,
        load: impl Fn(&ModelId) -> Load,
    ) -> Option<&ModelId> {
        let candidates: Vec<&GroupTarget> = self
            .targets
            .iter()
            .filter(|t| !tried.contains(&t.target) && available(&t.target))
            .collect();
        let tier = candidates.iter().map(|t| t.tier).min()?;
        let best: Vec<&GroupTarget> = candidates.into_iter().filter(|t| t.tier == tier).collect();
        match self.selection {
            Selection::InOrder => best.first().map(|t| &t.target),
            // `min_by_key` keeps the first of equals: ties go in order.
            Selection::LeastInFlight => best
                .iter()
                .min_by_key(|t| load(&t.target).in_flight)
                .map(|t| &t.target),
            Selection::Latency if random < LATENCY_PROBE_SHARE && best.len() > 1 => {
                // A probe: `random / share` is uniform in [0, 1) again.
                let share = random / LATENCY_PROBE_SHARE;
                let i = ((share * best.len() as f64) as usize).min(best.len() - 1);
                best.get(i).map(|t| &t.target)
            }
            Selection::Latency => best
                .iter()
                .min_by_key(|t| load(&t.target).latency_micros)
                .map(|t| &t.target),
            Selection::Weighted => {
                let total: u64 = best.iter().map(|t| u64::from(t.weight)).sum();
                if total == 0 {
                    return None;
                }
                let random = if random.is_finite() {
                    random.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let mut point = (random * total as f64) as u64;
                for t in &best {
                    let w = u64::from(t.weight);
                    if point < w {
                        return Some(&t.target);
                    }
                    point = point.saturating_sub(w);
                }
                best.iter().rev().find(|t| t.weight > 0).map(|t| &t.target)
            }
        }
    }

    /// Checks the group against the registered providers.
    pub fn validate(&self, known: &[String]) -> Result<(), String> {
        if let Some(o) = &self.outliers {
            o.validate().map_err(|e| format!("outliers: {e}"))?;
        }
        if let Some(h) = &self.hedge {
            h.validate().map_err(|e| format!("hedge: {e}"))?;
        }
        let all = self
            .targets
            .iter()
            .map(|t| &t.target)
            .chain(self.context_fallback.iter())
            .chain(self.content_fallback.iter());
        for t in all {
            if !known.iter().any(|k| k == t.provider()) {
                return Err(format!(
                    "target {t}: no provider {:?} is registered (known: {})",
                    t.provider(),
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// When the first of the targets tried is back, if any said (a breaker's
/// half-open time, a pause's end).
pub fn earliest_back(steps: &[RouteStep]) -> Option<std::time::Duration> {
    steps.iter().filter_map(|s| s.back_in).min()
}

/// What a route waits beyond a target's announced return: the breaker's timer
/// runs on its own arbiter, in whole milliseconds, and may fire a little after
/// the route's own.
pub const RECOVERY_MARGIN: std::time::Duration = std::time::Duration::from_millis(10);

/// The longest a route waits for a target to come back: 10 minutes, the
/// breaker's default longest open time. Without a deadline, a breaker opened
/// for longer (an hour, `Duration::MAX`) fails the route at once, saying when
/// it is back, instead of holding the request that long.
pub const MAX_RECOVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// With every target unavailable: how long to wait for the earliest to come back
/// (and [`RECOVERY_MARGIN`]), if the route may: it has not waited yet, and the
/// wait ends before the deadline and within [`MAX_RECOVERY_WAIT`].
pub fn recovery_wait(
    steps: &[RouteStep],
    waited: bool,
    time_left: Option<std::time::Duration>,
) -> Option<std::time::Duration> {
    let back = earliest_back(steps).filter(|_| !waited)?;
    let wait = back.saturating_add(RECOVERY_MARGIN);
    let fits = time_left.is_none_or(|left| wait < left) && wait <= MAX_RECOVERY_WAIT;
    fits.then_some(wait)
}

/// What a failed attempt at one target means for the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// Try the next target.
    Next,
    /// Go to this target (a fallback for this kind of failure).
    Fallback(ModelId),
    /// Fail: the request itself caused it, or time is up.
    Stop,
}

/// Whether a target's final error moves the request on: failures of the target
/// (its breaker, its key, its quota, its overload, a wait above the cap, retries
/// spent) move on; a prompt too long or a refusal go to the group's fallback; an
/// error the request itself caused fails the same everywhere and stops it, and so
/// does a deadline.
pub fn after_failure(group: &Group, error: &Error) -> Move {
    match error {
        Error::Rejected { .. } | Error::InvalidRequest { .. } => Move::Next,
        Error::Failed(f) => {
            if f.reason == GiveUp::Deadline {
                return Move::Stop;
            }
            match f.failure.category {
                Category::ContextLengthExceeded => group
                    .context_fallback
                    .clone()
                    .map_or(Move::Stop, Move::Fallback),
                Category::ContentFiltered => group
                    .content_fallback
                    .clone()
                    .map_or(Move::Stop, Move::Fallback),
                Category::InvalidRequest | Category::RequestTooLarge | Category::Unknown => {
                    Move::Stop
                }
                Category::DeadlineExceeded => Move::Stop,
                // A deployment's budget spent: the next target may have
                // room; any other budget holds for every target.
                Category::BudgetExceeded => match error.budget_refusal() {
                    Some(r) if r.account.scope.starts_with("deployment:") => Move::Next,
                    _ => Move::Stop,
                },
                _ => Move::Next,
            }
        }
        _ => Move::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> Group {
        Group::new(["a/m", "b/m", "c/m"]).unwrap()
    }

    fn id(s: &str) -> ModelId {
        s.parse().unwrap()
    }

    #[test]
    fn in_order_picks_the_first_untried_available_target_of_the_best_tier() {
        let g = group().tiers(&[1, 0, 0]);
        assert_eq!(g.pick(&[], |_| true, 0.5), Some(&id("b/m")));
        assert_eq!(g.pick(&[id("b/m")], |_| true, 0.5), Some(&id("c/m")));
        assert_eq!(
            g.pick(&[id("b/m"), id("c/m")], |_| true, 0.5),
            Some(&id("a/m"))
        );
        assert_eq!(g.pick(&[], |t| t != &id("b/m"), 0.5), Some(&id("c/m")));
        assert_eq!(
            g.pick(&[id("a/m"), id("b/m"), id("c/m")], |_| true, 0.5),
            None
        );
    }

    #[test]
    fn load_aware_selections_pick_the_least_loaded_and_the_fastest() {
        let loads = |t: &ModelId| match t.provider() {
            "a" => Load {
                in_flight: 5,
                latency_micros: 900,
            },
            "b" => Load {
                in_flight: 1,
                latency_micros: 300,
            },
            _ => Load {
                in_flight: 1,
                latency_micros: 100,
            },
        };
        let least = group().selection(Selection::LeastInFlight);
        assert_eq!(
            least.pick_by_load(&[], |_| true, 0.5, loads),
            Some(&id("b/m")),
            "ties in order"
        );
        let fastest = group().selection(Selection::Latency);
        assert_eq!(
            fastest.pick_by_load(&[], |_| true, 0.5, loads),
            Some(&id("c/m"))
        );
        // One pick in fifty probes a random target of the tier.
        let probes: Vec<_> = [0.0, 0.008, 0.016]
            .iter()
            .map(|r| fastest.pick_by_load(&[], |_| true, *r, loads).cloned())
            .collect();
        assert_eq!(probes, [Some(id("a/m")), Some(id("b/m")), Some(id("c/m"))]);
        assert_eq!(
            fastest.pick_by_load(&[id("c/m")], |_| true, 0.5, loads),
            Some(&id("b/m"))
        );
        // A target not heard from yet is tried first.
        let unknown = |t: &ModelId| Load {
            in_flight: 0,
            latency_micros: if t.provider() == "b" { 0 } else { 50 },
        };
        assert_eq!(
            fastest.pick_by_load(&[], |_| true, 0.5, unknown),
            Some(&id("b/m"))
        );
    }

    #[test]
    fn weighted_picks_follow_the_weights_within_five_percent() {
        let g = group().selection(Selection::Weighted).weights(&[1, 3, 6]);
        let mut rng = fastrand::Rng::with_seed(42);
        let mut counts = [0u32; 3];
        for _ in 0..10_000 {
            let t = g.pick(&[], |_| true, rng.f64()).unwrap();
            counts[["a/m", "b/m", "c/m"]
                .iter()
                .position(|n| *t == id(n))
                .unwrap()] += 1;
        }
        for (count, share) in counts.iter().zip([0.1, 0.3, 0.6]) {
            let got = f64::from(*count) / 10_000.0;
            assert!((got - share).abs() <= share * 0.05, "{counts:?}");
        }
        // A failed target is never picked again while another is untried.
        for _ in 0..1000 {
            assert_ne!(g.pick(&[id("c/m")], |_| true, rng.f64()), Some(&id("c/m")));
        }
    }

    #[test]
    fn a_route_waits_once_for_the_earliest_recovery_within_the_deadline() {
        use std::time::Duration;
        let step = |back_in| RouteStep {
            target: "a/m".into(),
            outcome: "breaker_open".into(),
            back_in,
        };
        let ms = Duration::from_millis;
        let steps = [step(Some(ms(300))), step(Some(ms(100))), step(None)];
        assert_eq!(earliest_back(&steps), Some(ms(100)));
        let waited = ms(100) + RECOVERY_MARGIN;
        assert_eq!(recovery_wait(&steps, false, None), Some(waited));
        assert_eq!(recovery_wait(&steps, false, Some(ms(150))), Some(waited));
        assert_eq!(
            recovery_wait(&steps, false, Some(waited)),
            None,
            "not before the deadline"
        );
        assert_eq!(recovery_wait(&steps, true, None), None, "once");
        assert_eq!(recovery_wait(&[step(None)], false, None), None);
        // Without a deadline, at most ten minutes.
        let longest = MAX_RECOVERY_WAIT - RECOVERY_MARGIN;
        let at = |d| [step(Some(d))];
        assert_eq!(
            recovery_wait(&at(longest), false, None),
            Some(MAX_RECOVERY_WAIT)
        );
        for past in [longest + ms(1), Duration::MAX] {
            assert_eq!(recovery_wait(&at(past), false, None), None, "{past:?}");
        }
    }

    #[test]
    fn failures_of_the_target_move_on_and_the_requests_own_stop() {
        use crate::error::FailedRequest;
        use steer_actors::Failure;
        let g = group().context_fallback("c/big").unwrap();
        let failed = |category, reason| {
            Error::Failed(Box::new(FailedRequest {
                failure: Failure::new(category, "a", "x"),
                reason,
                attempts: 1,
                last: None,
                partial: None,
                spend: Default::default(),
            }))
        };
        for c in [
            Category::Authentication,
            Category::QuotaExceeded,
            Category::Overloaded,
            Category::ServerError,
            Category::Network,
            Category::RateLimited,
            Category::NotFound,
        ] {
            assert_eq!(
                after_failure(&g, &failed(c, GiveUp::AttemptsExhausted)),
                Move::Next,
                "{c}"
            );
        }
        assert_eq!(
            after_failure(
                &g,
                &failed(Category::ContextLengthExceeded, GiveUp::NotRetryable)
            ),
            Move::Fallback(id("c/big"))
        );
        assert_eq!(
            after_failure(&g, &failed(Category::ContentFiltered, GiveUp::NotRetryable)),
            Move::Stop,
            "no content fallback configured"
        );
        assert_eq!(
            after_failure(&g, &failed(Category::InvalidRequest, GiveUp::NotRetryable)),
            Move::Stop
        );
        assert_eq!(
            after_failure(&g, &failed(Category::ServerError, GiveUp::Deadline)),
            Move::Stop
        );
    }
}
