//! What a drill found, per scenario: for machines (`serde`, the `--json`
//! schema) and for people (one screen per scenario).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::Serialize;

use super::scenario::Scenario;
use super::workload::Outcome;
use crate::BreakerState;

/// Version of the JSON schema (`--json`), raised on any change that is not
/// an added field.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole drill: how it ran, and each scenario's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The seed of the workload and of the faults' draws.
    pub seed: u64,
    /// Where the configuration came from: a file's path, or `built-in`.
    pub config: String,
    /// What the requests named: `provider/model` or `group/<name>`.
    pub target: String,
    /// Each scenario run, in order.
    pub scenarios: Vec<ScenarioReport>,
    /// Whether the drill was stopped (Ctrl-C) before the end.
    pub interrupted: bool,
}

impl Report {
    /// Characters lost or repeated, across every scenario: the number that must be 0.
    pub fn chars_wrong(&self) -> u64 {
        self.scenarios
            .iter()
            .map(|s| s.text.chars_lost.saturating_add(s.text.chars_repeated))
            .sum()
    }
}

/// One scenario's findings.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Its name.
    pub scenario: Scenario,
    /// The incident it replays.
    pub incident: &'static str,
    /// Why it did not run, if it did not (the figures are then all 0).
    pub skipped: Option<String>,
    /// Requests started (streams among them).
    pub requests: u64,
    /// Streams among the requests.
    pub streams: u64,
    /// How long it ran, in milliseconds.
    pub elapsed_ms: u64,
    /// What steer gave: successes, and failures by kind.
    pub with_steer: Tally,
    /// What the same workload would have given with no retries, no
    /// resumption and no failover: a request succeeds only if its first
    /// attempt did, unbroken.
    pub without_steer: Tally,
    /// Whether every reply equalled the fault-free text.
    pub text: TextCheck,
    /// From the end of the last fault to the first request answered by the
    /// first target, in milliseconds; `None` when the fault lasts to the end
    /// or it did not recover within the run.
    pub recovered_after_ms: Option<u64>,
    /// Breaker transitions, in order, from the scenario's start.
    pub breaker: Vec<Transition>,
    /// Latency of every request, in milliseconds.
    pub latency_ms: Percentiles,
    /// What the faults cost beyond one attempt a request.
    pub extra: Extra,
    /// Requests the mock servers answered (attempts that reached a server).
    pub server_requests: u64,
}

/// Requests that succeeded, and failures by kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// Requests that succeeded.
    pub succeeded: u64,
    /// Failures by kind (`rate_limited`, `breaker_rejected`, ...).
    pub failed: BTreeMap<String, u64>,
}

impl Tally {
    /// Failures in all.
    pub fn failures(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// The replies against the fault-free text.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TextCheck {
    /// Whether the replies were compared (a live drill has no fault-free
    /// text: the counts below are then all 0, and mean nothing).
    pub checked: bool,
    /// Successful replies equal to the fault-free text.
    pub exact: u64,
    /// Successful replies that differ.
    pub differing: u64,
    /// Characters missing, in all.
    pub chars_lost: u64,
    /// Characters repeated or different, in all.
    pub chars_repeated: u64,
    /// Streams the server restarted (declared with `Restarted`: the caller
    /// discards what came before).
    pub restarted: u64,
    /// Replies continued on another model (checked up to the seam).
    pub cross_model: u64,
    /// Continued replies that stopped at their `max_tokens` on a prefix of
    /// the fault-free text (the continuation's budget counts on the high
    /// side where the tokenizer is not public: never past the limit).
    pub short_at_limit: u64,
}

/// One breaker transition.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    /// Milliseconds from the scenario's start.
    pub at_ms: u64,
    /// The breaker: a provider, or `provider/model`.
    pub target: String,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// The slowest.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `latencies` (nearest rank).
    pub fn of(latencies: &mut [Duration]) -> Self {
        latencies.sort_unstable();
        let at = |q: f64| -> u64 {
            if latencies.is_empty() {
                return 0;
            }
            let rank = ((latencies.len() as f64) * q).ceil() as usize;
            let i = rank.clamp(1, latencies.len()) - 1;
            u64::try_from(latencies[i].as_millis()).unwrap_or(u64::MAX)
        };
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// What the faults cost beyond one clean attempt a request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Extra {
    /// Attempts beyond the first, in all (retries, continuations, hedges).
    pub attempts: u64,
    /// Streams resumed mid-reply.
    pub resumptions: u64,
    /// Moves to another target.
    pub failovers: u64,
    /// Tokens of attempts that bought nothing of a reply.
    pub wasted_tokens: u64,
    /// Tokens in all.
    pub tokens: u64,
    /// What those wasted tokens cost, in dollars (list prices).
    pub wasted_usd: f64,
    /// What every attempt cost, in dollars (list prices).
    pub cost_usd: f64,
}

impl ScenarioReport {
    /// Folds the outcomes of a run into its report.
    pub(super) fn of(
        scenario: Scenario,
        outcomes: &[Outcome],
        fault_end: Option<Duration>,
        breaker: Vec<Transition>,
        elapsed: Duration,
        server_requests: u64,
        checked: bool,
    ) -> Self {
        let mut with_steer = Tally::default();
        let mut without_steer = Tally::default();
        let mut text = TextCheck {
            checked,
            ..TextCheck::default()
        };
        let mut extra = Extra::default();
        let mut latencies = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            latencies.push(o.latency);
            match o.result {
                Ok(()) => {
                    with_steer.succeeded += 1;
                    if o.lost == 0 && o.repeated == 0 {
                        text.exact += 1;
                    } else {
                        text.differing += 1;
                    }
                }
                Err(kind) => *with_steer.failed.entry(kind.to_string()).or_default() += 1,
            }
            text.chars_lost = text.chars_lost.saturating_add(o.lost);
            text.chars_repeated = text.chars_repeated.saturating_add(o.repeated);
            text.restarted += u64::from(o.restarts > 0);
            text.cross_model += u64::from(o.cross_model);
            text.short_at_limit += u64::from(o.short_at_limit);
            let clean = o.result.is_ok()
                && o.attempts <= 1
                && o.resumptions == 0
                && o.failovers == 0
                && o.restarts == 0;
            if clean {
                without_steer.succeeded += 1;
            } else {
                let kind = match o.result {
                    Err(kind) => kind,
                    Ok(()) => "first_attempt_failed",
                };
                *without_steer.failed.entry(kind.to_string()).or_default() += 1;
            }
            extra.attempts = extra
                .attempts
                .saturating_add(u64::from(o.attempts.saturating_sub(1)));
            extra.resumptions = extra.resumptions.saturating_add(u64::from(o.resumptions));
            extra.failovers = extra.failovers.saturating_add(u64::from(o.failovers));
            extra.tokens = extra.tokens.saturating_add(o.tokens);
            extra.wasted_tokens = extra.wasted_tokens.saturating_add(o.wasted_tokens);
            extra.cost_usd += o.cost_usd;
            extra.wasted_usd += o.wasted_usd;
        }
        let recovered_after_ms = fault_end.and_then(|end| {
            outcomes
                .iter()
                .filter(|o| o.result.is_ok() && o.served_first && o.started >= end)
                .map(|o| o.started.saturating_add(o.latency).saturating_sub(end))
                .min()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        });
        ScenarioReport {
            scenario,
            incident: scenario.incident(),
            skipped: None,
            requests: outcomes.len() as u64,
            streams: outcomes.iter().filter(|o| o.stream).count() as u64,
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            with_steer,
            without_steer,
            text,
            recovered_after_ms,
            breaker,
            latency_ms: Percentiles::of(&mut latencies),
            extra,
            server_requests,
        }
    }

    /// `scenario` did not run, for `why`.
    pub(super) fn skipped(scenario: Scenario, why: impl Into<String>) -> Self {
        let mut report =
            ScenarioReport::of(scenario, &[], None, Vec::new(), Duration::ZERO, 0, true);
        report.skipped = Some(why.into());
        report
    }
}

fn tally_line(t: &Tally, requests: u64) -> String {
    let mut line = format!("{}/{} ok", t.succeeded, requests);
    if !t.failed.is_empty() {
        let failed: Vec<String> = t.failed.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = write!(line, ", failed: {}", failed.join(", "));
    }
    line
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== {}: {}", self.scenario, self.incident)?;
        if let Some(why) = &self.skipped {
            return writeln!(f, "   skipped         {why}");
        }
        writeln!(
            f,
            "   {} requests ({} streams) in {:.1} s",
            self.requests,
            self.streams,
            self.elapsed_ms as f64 / 1000.0
        )?;
        writeln!(
            f,
            "   with steer      {}",
            tally_line(&self.with_steer, self.requests)
        )?;
        writeln!(
            f,
            "   without steer   {}   (no retries, resumption or failover)",
            tally_line(&self.without_steer, self.requests)
        )?;
        let t = &self.text;
        if t.checked {
            write!(
                f,
                "   text            {} exact, {} differing; {} characters lost, {} repeated",
                t.exact, t.differing, t.chars_lost, t.chars_repeated
            )?;
        } else {
            write!(
                f,
                "   text            not checked (live: no fault-free text)"
            )?;
        }
        if t.restarted > 0 {
            write!(f, "; {} restarted (declared)", t.restarted)?;
        }
        if t.short_at_limit > 0 {
            write!(
                f,
                "; {} stopped at max_tokens a little early",
                t.short_at_limit
            )?;
        }
        if t.cross_model > 0 {
            write!(f, "; {} continued on another model", t.cross_model)?;
        }
        writeln!(f)?;
        let l = &self.latency_ms;
        writeln!(
            f,
            "   latency         p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
            l.p50, l.p95, l.p99, l.max
        )?;
        let e = &self.extra;
        writeln!(
            f,
            "   extra           {} attempts, {} resumptions, {} failovers; {} of {} tokens wasted (${:.4} of ${:.4})",
            e.attempts, e.resumptions, e.failovers, e.wasted_tokens, e.tokens, e.wasted_usd, e.cost_usd
        )?;
        match self.recovered_after_ms {
            Some(ms) => writeln!(f, "   recovered       {ms} ms after the fault ended")?,
            None => writeln!(
                f,
                "   recovered       - (the fault lasts the run, or no recovery within it)"
            )?,
        }
        if self.breaker.is_empty() {
            writeln!(f, "   breaker         no transition")?;
        } else {
            let shown: Vec<String> = self
                .breaker
                .iter()
                .take(8)
                .map(|t| {
                    format!(
                        "{:.1}s {} {:?}->{:?}",
                        t.at_ms as f64 / 1000.0,
                        t.target,
                        t.from,
                        t.to
                    )
                })
                .collect();
            let more = self.breaker.len().saturating_sub(shown.len());
            write!(f, "   breaker         {}", shown.join(", "))?;
            if more > 0 {
                write!(f, " (+{more} more)")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut l: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut l);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50, 95, 99, 100));
        assert_eq!(Percentiles::of(&mut []).max, 0);
    }
}
