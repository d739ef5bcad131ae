//! The catalogue: each scenario a real incident, as the faults the mock
//! injects and when.

use std::fmt;
use std::str::FromStr;

use crate::config::Kind;
use crate::mock::{FaultPlan, Mix, Outcome, WaitHeaders};

/// One incident the drill replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// The first target answers 503 to everything for a while, then recovers.
    Outage,
    /// Two calls in five answer 429 with `retry-after: 1` (the key's limit spent).
    RateLimitStorm,
    /// Every call answers 429 with a wait far above the longest one honoured.
    RateLimitOverCap,
    /// Bursts of overload (Anthropic's 529, OpenAI's 503).
    OverloadedBursts,
    /// A third of the streams reset mid-reply.
    StreamResets,
    /// Streams trickle after a fast first token.
    Trickle,
    /// One call in twenty is twenty times slower.
    SlowTail,
    /// Streams go on sending keep-alives and nothing else.
    EndlessEvent,
    /// Streams reset on the first target, and are continued where the
    /// configuration says a server continues a prefill (its OpenAI-format
    /// deployments, set so for the scenario) but the server answers afresh:
    /// a divergence steer must catch and declare (`Restarted`).
    PrefillRestart,
    /// The account's spend limit is reached (Anthropic's 429 that names it).
    SpendLimit,
    /// The replicas' Redis cannot be reached (shared pauses, breaker votes
    /// and budgets): for a configuration with `[shared]`, built with the
    /// `shared-redis` feature; skipped otherwise.
    RedisGone,
}

/// When a scenario's fault applies: a share of the run, `from` to `to` (0 to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Where it starts, as a share of the run.
    pub from: f64,
    /// Where it ends, as a share of the run.
    pub to: f64,
    /// What the first target does meanwhile.
    pub plan: FaultPlan,
}

impl Scenario {
    /// Every scenario, in the order `--scenario all` runs them.
    pub const ALL: [Scenario; 11] = [
        Scenario::Outage,
        Scenario::RateLimitStorm,
        Scenario::RateLimitOverCap,
        Scenario::OverloadedBursts,
        Scenario::StreamResets,
        Scenario::Trickle,
        Scenario::SlowTail,
        Scenario::EndlessEvent,
        Scenario::PrefillRestart,
        Scenario::SpendLimit,
        Scenario::RedisGone,
    ];

    /// Its name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Outage => "outage",
            Scenario::RateLimitStorm => "rate_limit_storm",
            Scenario::RateLimitOverCap => "rate_limit_over_cap",
            Scenario::OverloadedBursts => "overloaded_bursts",
            Scenario::StreamResets => "stream_resets",
            Scenario::Trickle => "trickle",
            Scenario::SlowTail => "slow_tail",
            Scenario::EndlessEvent => "endless_event",
            Scenario::PrefillRestart => "prefill_restart",
            Scenario::SpendLimit => "spend_limit",
            Scenario::RedisGone => "redis_gone",
        }
    }

    /// The incident it replays, in one line.
    pub fn incident(self) -> &'static str {
        match self {
            Scenario::Outage => "the first target down (503) for a third of the run, then back",
            Scenario::RateLimitStorm => {
                "40% of calls answered 429 with retry-after: 1 for half the run"
            }
            Scenario::RateLimitOverCap => {
                "every call answered 429 with retry-after: 600 (above the wait honoured)"
            }
            Scenario::OverloadedBursts => "three bursts of overload (Anthropic's 529)",
            Scenario::StreamResets => "a third of the calls cut mid-reply (connection reset)",
            Scenario::Trickle => "streams trickle (a chunk every 250 ms) after a fast first token",
            Scenario::SlowTail => "5% of calls 20 times slower (1 s before the headers)",
            Scenario::EndlessEvent => "streams send keep-alives and nothing else after 2 chunks",
            Scenario::PrefillRestart => {
                "20% of calls cut mid-reply; OpenAI-format deployments claim to continue a prefill, \
                 their server answers afresh"
            }
            Scenario::SpendLimit => "the organisation's monthly spend limit reached (429)",
            Scenario::RedisGone => "the replicas' Redis unreachable for the whole run",
        }
    }

    /// The faults and when they apply; `seed` draws the mixes, `kind` is the
    /// first target's wire format (each names its spend limit its own way).
    pub fn windows(self, seed: u64, kind: Kind) -> Vec<Window> {
        let spend_limit = match kind {
            Kind::Anthropic => "enforced_spend_limit",
            Kind::Xai => "out_of_credits",
            Kind::Openai | Kind::Azure => "insufficient_quota",
        };
        let first = |from, to, plan| Window { from, to, plan };
        let mix = |outcome: Outcome, pct: f64| {
            FaultPlan::from(Outcome::Mix(Mix {
                seed,
                entries: vec![(outcome, pct)],
            }))
        };
        match self {
            Scenario::Outage => vec![first(0.2, 0.55, FaultPlan::status(503))],
            Scenario::RateLimitStorm => vec![first(
                0.2,
                0.7,
                mix(
                    Outcome::Error {
                        name: "rate_limit".into(),
                        wait: WaitHeaders {
                            retry_after: Some("1".into()),
                            ..WaitHeaders::default()
                        },
                    },
                    40.0,
                ),
            )],
            Scenario::RateLimitOverCap => vec![first(
                0.2,
                0.5,
                FaultPlan::error("rate_limit").retry_after("600"),
            )],
            Scenario::OverloadedBursts => [(0.15, 0.25), (0.4, 0.5), (0.65, 0.75)]
                .into_iter()
                .map(|(from, to)| first(from, to, FaultPlan::error("overloaded")))
                .collect(),
            Scenario::StreamResets => vec![first(
                0.0,
                1.0,
                mix(Outcome::Reset { after: Some(3) }, 33.0),
            )],
            Scenario::Trickle => vec![first(
                0.2,
                0.6,
                FaultPlan::from(Outcome::Trickle {
                    after: Some(2),
                    ms: 250,
                }),
            )],
            Scenario::SlowTail => vec![first(0.0, 1.0, mix(Outcome::Slow { ms: 1000 }, 5.0))],
            Scenario::EndlessEvent => vec![first(
                0.2,
                0.6,
                FaultPlan::from(Outcome::Pings {
                    after: Some(2),
                    ms: 50,
                }),
            )],
            Scenario::PrefillRestart => {
                vec![first(
                    0.0,
                    1.0,
                    mix(Outcome::Reset { after: Some(3) }, 20.0),
                )]
            }
            Scenario::SpendLimit => vec![first(0.3, 1.0, FaultPlan::error(spend_limit))],
            // Not the providers: the shared state (see `Drill`).
            Scenario::RedisGone => Vec::new(),
        }
    }

    /// The first target's plan at `progress` (0 to 1) through the run (the
    /// others answer normally).
    pub fn plan_at(self, seed: u64, kind: Kind, progress: f64) -> Option<FaultPlan> {
        self.windows(seed, kind)
            .into_iter()
            .find(|w| w.from <= progress && progress < w.to)
            .map(|w| w.plan)
    }

    /// Where its last fault ends, as a share of the run (1 when it lasts to
    /// the end, or is not the providers': nothing to recover from within
    /// the run).
    pub fn fault_ends(self) -> f64 {
        let windows = self.windows(0, Kind::Openai);
        if windows.is_empty() {
            return 1.0;
        }
        windows.iter().map(|w| w.to).fold(0.0, f64::max)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scenario name the catalogue does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario {0:?}; known: all, {known}", known = Scenario::ALL.map(Scenario::name).join(", "))]
pub struct UnknownScenario(pub String);

impl FromStr for Scenario {
    type Err = UnknownScenario;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s.trim())
            .ok_or_else(|| UnknownScenario(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_unknown_ones_list_the_catalogue() {
        for sc in Scenario::ALL {
            assert_eq!(sc.name().parse::<Scenario>(), Ok(sc));
        }
        let err = "nope".parse::<Scenario>().unwrap_err().to_string();
        assert!(
            err.contains("outage") && err.contains("spend_limit"),
            "{err}"
        );
    }

    #[test]
    fn an_outage_faults_the_first_target_inside_its_window_only() {
        let sc = Scenario::Outage;
        assert_eq!(sc.plan_at(1, Kind::Anthropic, 0.1), None);
        assert_eq!(
            sc.plan_at(1, Kind::Anthropic, 0.3),
            Some(FaultPlan::status(503))
        );
        assert_eq!(sc.plan_at(1, Kind::Anthropic, 0.6), None);
        assert!((sc.fault_ends() - 0.55).abs() < 1e-9);
    }

    #[test]
    fn a_spend_limit_is_named_as_the_first_targets_wire_format_names_it() {
        let plan = |kind| {
            Scenario::SpendLimit
                .plan_at(1, kind, 0.9)
                .map(|p| p.to_string())
        };
        assert_eq!(
            plan(Kind::Anthropic).as_deref(),
            Some("enforced_spend_limit")
        );
        assert_eq!(plan(Kind::Openai).as_deref(), Some("insufficient_quota"));
        assert_eq!(plan(Kind::Xai).as_deref(), Some("out_of_credits"));
    }

    #[test]
    fn every_window_is_inside_the_run() {
        for sc in Scenario::ALL {
            for w in sc.windows(7, Kind::Xai) {
                assert!(0.0 <= w.from && w.from < w.to && w.to <= 1.0, "{sc}: {w:?}");
            }
        }
    }
}
