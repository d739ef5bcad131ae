//! The circuit breaker as a plain state machine: no runtime, no timers. The actor
//! feeds it the current instant and runs the timers it asks for.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::exec::clock::later;

/// When a breaker trips and how it recovers. Every field has a sane default (a
/// field missing from a deserialised config takes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakerConfig {
    /// Health failures within `window` that open the breaker (default 5).
    pub failure_threshold: u32,
    /// The sliding window failures and calls are counted in (default 60 s).
    pub window: Duration,
    /// Also open when the failure rate in the window reaches this (0..=1), once
    /// `min_calls` calls are in the window. Off by default.
    pub failure_rate: Option<f64>,
    /// Open when calls slower than `slow_call_threshold` reach this rate. Off by default.
    pub slow_call_rate: Option<f64>,
    /// What counts as a slow call (default 30 s).
    pub slow_call_threshold: Duration,
    /// Calls needed in the window before a rate is judged (default 10).
    pub min_calls: u32,
    /// How long the breaker stays open the first time (default 60 s).
    pub open_for: Duration,
    /// Factor applied to `open_for` on each consecutive re-open (default 2).
    pub open_multiplier: f64,
    /// Cap on the open time (default 10 min).
    pub max_open_for: Duration,
    /// Probes admitted in each half-open period (default 3), in total: calls made
    /// one after another get no more probes than calls made at once. A probe that
    /// ends without a verdict (cancelled, or a caller's error) frees its slot.
    pub half_open_permits: u32,
    /// Probe successes that close the breaker (default 2). A half-open period
    /// admits only `half_open_permits` probes, so a larger value counts as that.
    pub success_threshold: u32,
    /// Longest pause one server-directed wait may put on the provider (default
    /// 60 s). A longer wait is reported with the failure, not obeyed: one response
    /// never stops a provider for longer than this.
    pub max_pause: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            window: Duration::from_secs(60),
            failure_rate: None,
            slow_call_rate: None,
            slow_call_threshold: Duration::from_secs(30),
            min_calls: 10,
            open_for: Duration::from_secs(60),
            open_multiplier: 2.0,
            max_open_for: Duration::from_secs(600),
            half_open_permits: 3,
            success_threshold: 2,
            max_pause: Duration::from_secs(60),
        }
    }
}

impl BreakerConfig {
    /// Checks the settings; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.failure_threshold == 0 {
            return Err("failure_threshold must be at least 1".into());
        }
        if self.half_open_permits == 0 || self.success_threshold == 0 {
            return Err("half_open_permits and success_threshold must be at least 1".into());
        }
        for (name, rate) in [
            ("failure_rate", self.failure_rate),
            ("slow_call_rate", self.slow_call_rate),
        ] {
            if let Some(r) = rate {
                if !(r > 0.0 && r <= 1.0) {
                    return Err(format!("{name} must be in (0, 1], got {r}"));
                }
            }
        }
        if !(self.open_multiplier.is_finite() && self.open_multiplier >= 1.0) {
            return Err("open_multiplier must be a finite number >= 1".into());
        }
        if self.window.is_zero() {
            return Err("window must be longer than zero".into());
        }
        Ok(())
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow; failures are counted.
    Closed,
    /// Calls are rejected until the open time ends.
    Open,
    /// A few probes are admitted to test recovery.
    HalfOpen,
    /// An operator opened it; only an operator closes it.
    ForcedOpen,
    /// An operator turned it off: every call is admitted and nothing is counted.
    Disabled,
}

impl BreakerState {
    /// Its name and gauge level, as the metric families count it.
    pub fn label(self) -> crate::telemetry::meters::BreakerLabel {
        let (name, level) = match self {
            BreakerState::Closed => ("closed", 0),
            BreakerState::HalfOpen => ("half_open", 1),
            BreakerState::Open => ("open", 2),
            BreakerState::ForcedOpen => ("forced_open", 3),
            BreakerState::Disabled => ("disabled", 4),
        };
        crate::telemetry::meters::BreakerLabel { name, level }
    }
}

/// Why the state changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionReason {
    /// Health failures in the window reached the threshold.
    FailureThreshold {
        /// Failures counted.
        failures: u32,
    },
    /// The failure rate reached its limit.
    FailureRate,
    /// The slow-call rate reached its limit.
    SlowCallRate,
    /// The open time ended.
    OpenTimeElapsed,
    /// Enough probes succeeded.
    ProbesSucceeded,
    /// A probe failed.
    ProbeFailed,
    /// An operator forced it.
    Forced,
    /// An operator reset it.
    Reset,
    /// The breaker's actor failed and was restarted with fresh state.
    Restarted,
    /// The fleet's shared state said so: a quorum of replicas opened the target,
    /// or the replica that probed it found it well again.
    Fleet,
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// For a move to open: how long until half-open.
    pub open_for: Option<Duration>,
    /// The generation after the change (for the actor's open timer).
    pub generation: u64,
}

/// A permission to make one call. Report its outcome with the same permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    /// The breaker generation it was granted in.
    pub generation: u64,
    /// Whether it is a half-open probe (it holds one of the probe slots).
    pub probe: bool,
}

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// The breaker is open; it half-opens after `retry_in`.
    Open {
        /// Time until half-open.
        retry_in: Duration,
    },
    /// Half-open and this period's probes are all admitted.
    ProbesBusy,
    /// An operator forced it open.
    ForcedOpen,
    /// The provider asked everyone to wait (a rate limit), for `retry_in`.
    Paused {
        /// Time until the pause ends.
        retry_in: Duration,
    },
    /// The deployment's adaptive concurrency limit had no slot for the call.
    ConcurrencyLimit(crate::limit::LimitRejection),
    /// Client-side adaptive throttling shed the call: the deployment has been
    /// rejecting most calls (rate limits, overloads) over its window.
    Throttled,
}

impl Rejection {
    /// The word it is counted and logged under.
    pub fn name(&self) -> &'static str {
        match self {
            Rejection::Open { .. } => "open",
            Rejection::ProbesBusy => "probes_busy",
            Rejection::ForcedOpen => "forced_open",
            Rejection::Paused { .. } => "paused",
            Rejection::ConcurrencyLimit(_) => "concurrency_limit",
            Rejection::Throttled => "throttled",
        }
    }
}

/// The outcome of a permitted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// It succeeded, in this time.
    Success {
        /// How long it took.
        elapsed: Duration,
    },
    /// It failed in a way that speaks about the provider's health.
    HealthFailure,
    /// It failed for the caller's reasons (bad request, key, ...): not counted;
    /// a probe slot is freed without a verdict.
    Neutral,
    /// The call was cancelled or its actor died: the permit is handed back.
    Cancelled,
}

/// Calls counted in one slice of the window (for the rates).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: Instant,
    calls: u32,
    failures: u32,
    slow: u32,
}

/// Slices of the window the rate counters are kept in: memory stays constant
/// whatever the load, at the price of a window edge that is 1/20 of it wide.
const BUCKETS: u32 = 20;

/// Counters of a breaker, for status queries and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerStats {
    /// Calls admitted.
    pub admitted: u64,
    /// Calls rejected.
    pub rejected: u64,
    /// Health failures reported.
    pub failures: u64,
    /// Successes reported.
    pub successes: u64,
    /// Times it opened.
    pub opened: u64,
    /// Health failures currently in the window.
    pub failures_in_window: u32,
    /// Probes in flight (half-open).
    pub probes_in_flight: u32,
    /// Server-directed waits longer than `max_pause`, reported and not obeyed.
    pub pauses_refused: u64,
}

impl BreakerStats {
    /// Health failures among the calls reported (failures and successes),
    /// from 0 to 1; `None` before any.
    ///
    /// ```
    /// use steer_actors::breaker::BreakerStats;
    /// let stats = BreakerStats { failures: 1, successes: 3, ..BreakerStats::default() };
    /// assert_eq!(stats.failure_rate(), Some(0.25));
    /// assert_eq!(BreakerStats::default().failure_rate(), None);
    /// ```
    pub fn failure_rate(&self) -> Option<f64> {
        let calls = self.failures.saturating_add(self.successes);
        (calls > 0).then(|| self.failures as f64 / calls as f64)
    }
}

/// The breaker state machine.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    generation: u64,
    /// The most recent health failures, at most `failure_threshold` of them:
    /// enough to know exactly whether the threshold is reached within the window.
    recent_failures: VecDeque<Instant>,
    buckets: VecDeque<Bucket>,
    reopen_count: u32,
    open_until: Option<Instant>,
    paused_until: Option<Instant>,
    probes_in_flight: u32,
    /// Probe slots of this half-open period taken by probes that did not end
    /// without a verdict: at `half_open_permits`, no more probes are admitted.
    probes_admitted: u32,
    probe_successes: u32,
    stats: BreakerStats,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            state: BreakerState::Closed,
            generation: 0,
            recent_failures: VecDeque::new(),
            buckets: VecDeque::new(),
            reopen_count: 0,
            open_until: None,
            paused_until: None,
            probes_in_flight: 0,
            probes_admitted: 0,
            probe_successes: 0,
            stats: BreakerStats::default(),
        }
    }

    /// A fresh closed breaker with the same configuration, for an actor restarted
    /// after a failure: its generation moves on, so permits granted before the
    /// restart cannot move the new state.
    pub fn restarted(&self) -> Breaker {
        let mut fresh = Breaker::new(self.config.clone());
        fresh.generation = self.generation.wrapping_add(1);
        fresh
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// The current generation (it changes on every transition).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Counters, as of `now`.
    pub fn stats(&mut self, now: Instant) -> BreakerStats {
        self.forget_old(now);
        BreakerStats {
            failures_in_window: u32::try_from(self.recent_failures.len()).unwrap_or(u32::MAX),
            probes_in_flight: self.probes_in_flight,
            ..self.stats
        }
    }

    /// Until when the provider is paused by a server-directed wait, if it is.
    pub(crate) fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|t| *t > now)
    }

    /// The generation whose permits a call may take without asking, while the
    /// breaker admits every call: closed and not paused, or disabled. `None` while
    /// calls must ask (open, half-open, forced open, paused).
    pub(crate) fn admits_all(&self, now: Instant) -> Option<u64> {
        let free = match self.state {
            BreakerState::Disabled => true,
            BreakerState::Closed => self.paused_until(now).is_none(),
            _ => false,
        };
        free.then_some(self.generation)
    }

    /// Counts a call admitted without asking (see [`Breaker::admits_all`]): it is
    /// counted when its outcome arrives.
    pub(crate) fn count_admitted(&mut self) {
        self.stats.admitted = self.stats.admitted.saturating_add(1);
    }

    /// Asks to make one call.
    pub(crate) fn try_acquire(&mut self, now: Instant) -> Result<Permit, Rejection> {
        if self.state == BreakerState::Disabled {
            self.count_admitted();
            return Ok(Permit {
                generation: self.generation,
                probe: false,
            });
        }
        if let Some(until) = self.paused_until(now) {
            self.stats.rejected = self.stats.rejected.saturating_add(1);
            return Err(Rejection::Paused {
                retry_in: until.saturating_duration_since(now),
            });
        }
        let result = match self.state {
            BreakerState::Closed => Ok(false),
            BreakerState::HalfOpen if self.probes_admitted < self.config.half_open_permits => {
                self.probes_admitted = self.probes_admitted.saturating_add(1);
                self.probes_in_flight = self.probes_in_flight.saturating_add(1);
                Ok(true)
            }
            BreakerState::HalfOpen => Err(Rejection::ProbesBusy),
            BreakerState::Open => Err(Rejection::Open {
                retry_in: self
                    .open_until
                    .map(|t| t.saturating_duration_since(now))
                    .unwrap_or_default(),
            }),
            BreakerState::ForcedOpen => Err(Rejection::ForcedOpen),
            BreakerState::Disabled => Ok(false),
        };
        match result {
            Ok(probe) => {
                self.count_admitted();
                Ok(Permit {
                    generation: self.generation,
                    probe,
                })
            }
            Err(r) => {
                self.stats.rejected = self.stats.rejected.saturating_add(1);
                Err(r)
            }
        }
    }

    /// Hands back a permit whose call was never made (another breaker refused
    /// it): it is not counted as admitted, and a probe's slot is freed.
    pub(crate) fn give_back(&mut self, permit: Permit, now: Instant) {
        self.stats.admitted = self.stats.admitted.saturating_sub(1);
        let _ = self.on_outcome(permit, CallOutcome::Cancelled, now);
    }

    /// Records the outcome of a permitted call; returns the transition it caused.
    pub(crate) fn on_outcome(
        &mut self,
        permit: Permit,
        outcome: CallOutcome,
        now: Instant,
    ) -> Option<Transition> {
        match outcome {
            CallOutcome::Success { .. } => {
                self.stats.successes = self.stats.successes.saturating_add(1)
            }
            CallOutcome::HealthFailure => {
                self.stats.failures = self.stats.failures.saturating_add(1)
            }
            CallOutcome::Neutral | CallOutcome::Cancelled => {}
        }
        if permit.generation != self.generation || self.state == BreakerState::Disabled {
            // Granted in an earlier state: it cannot move this one.
            return None;
        }
        if permit.probe {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
            if matches!(outcome, CallOutcome::Neutral | CallOutcome::Cancelled) {
                // No verdict: its slot goes to another probe.
                self.probes_admitted = self.probes_admitted.saturating_sub(1);
            }
        }
        match self.state {
            BreakerState::Closed => {
                let (failed, slow) = match outcome {
                    CallOutcome::Success { elapsed } => {
                        (false, elapsed >= self.config.slow_call_threshold)
                    }
                    CallOutcome::HealthFailure => (true, false),
                    CallOutcome::Neutral | CallOutcome::Cancelled => return None,
                };
                self.record(now, failed, slow);
                self.trip_reason()
                    .map(|reason| self.transition(BreakerState::Open, reason, now))
            }
            BreakerState::HalfOpen if permit.probe => match outcome {
                CallOutcome::Success { .. } => {
                    self.probe_successes = self.probe_successes.saturating_add(1);
                    let needed = self
                        .config
                        .success_threshold
                        .min(self.config.half_open_permits);
                    (self.probe_successes >= needed).then(|| {
                        self.transition(
                            BreakerState::Closed,
                            TransitionReason::ProbesSucceeded,
                            now,
                        )
                    })
                }
                CallOutcome::HealthFailure => {
                    Some(self.transition(BreakerState::Open, TransitionReason::ProbeFailed, now))
                }
                CallOutcome::Neutral | CallOutcome::Cancelled => None,
            },
            _ => None,
        }
    }

    /// A server-directed wait (a rate limit): every call waits until `now + wait`.
    /// Not a failure. A wait longer than the configured `max_pause` is refused
    /// (counted in [`BreakerStats::pauses_refused`]): returns whether the provider
    /// is paused for it.
    pub fn pause(&mut self, wait: Duration, now: Instant) -> bool {
        if wait > self.config.max_pause {
            self.stats.pauses_refused = self.stats.pauses_refused.saturating_add(1);
            return false;
        }
        let until = later(now, wait);
        if self.paused_until.is_none_or(|t| t < until) {
            self.paused_until = Some(until);
        }
        true
    }

    /// The open timer fired for `generation`: half-open if it is still current.
    pub(crate) fn on_open_timer(&mut self, generation: u64, now: Instant) -> Option<Transition> {
        (self.state == BreakerState::Open && generation == self.generation).then(|| {
            self.transition(
                BreakerState::HalfOpen,
                TransitionReason::OpenTimeElapsed,
                now,
            )
        })
    }

    /// The fleet opened the target (a quorum of replicas did): a closed breaker
    /// opens as if it had tripped; any other state stays.
    pub(crate) fn fleet_open(&mut self, now: Instant) -> Option<Transition> {
        (self.state == BreakerState::Closed)
            .then(|| self.transition(BreakerState::Open, TransitionReason::Fleet, now))
    }

    /// The replica that probed the target found it well: an open breaker
    /// half-opens at once (its own probes confirm it); any other state stays.
    pub(crate) fn fleet_recovered(&mut self, now: Instant) -> Option<Transition> {
        (self.state == BreakerState::Open)
            .then(|| self.transition(BreakerState::HalfOpen, TransitionReason::Fleet, now))
    }

    /// Another replica holds the fleet's probe lease: the open state of
    /// `generation` lasts `wait` longer (rejections say so). `false` when the
    /// breaker has moved on.
    pub(crate) fn stay_open(&mut self, generation: u64, wait: Duration, now: Instant) -> bool {
        let current = self.state == BreakerState::Open && generation == self.generation;
        if current {
            self.open_until = Some(later(now, wait));
        }
        current
    }

    /// An operator sets the state (`ForcedOpen`, `Disabled`, or back to `Closed`).
    pub fn force(&mut self, to: BreakerState, now: Instant) -> Option<Transition> {
        (self.state != to).then(|| self.transition(to, TransitionReason::Forced, now))
    }

    /// Back to closed with empty counters: the window, the open-time growth, any
    /// pause and every counter of [`BreakerStats`].
    pub fn reset(&mut self, now: Instant) -> Option<Transition> {
        self.paused_until = None;
        self.reopen_count = 0;
        self.clear_window();
        self.stats = BreakerStats::default();
        (self.state != BreakerState::Closed)
            .then(|| self.transition(BreakerState::Closed, TransitionReason::Reset, now))
    }

    fn forget_old(&mut self, now: Instant) {
        let window = self.config.window;
        while let Some(at) = self.recent_failures.front() {
            if now.saturating_duration_since(*at) >= window {
                self.recent_failures.pop_front();
            } else {
                break;
            }
        }
        while let Some(b) = self.buckets.front() {
            if now.saturating_duration_since(b.start) >= window {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    fn record(&mut self, now: Instant, failed: bool, slow: bool) {
        self.forget_old(now);
        if failed {
            let kept = u32::try_from(self.recent_failures.len()).unwrap_or(u32::MAX);
            if kept >= self.config.failure_threshold {
                self.recent_failures.pop_front();
            }
            self.recent_failures.push_back(now);
        }
        if self.config.failure_rate.is_none() && self.config.slow_call_rate.is_none() {
            return;
        }
        let width = self.config.window.checked_div(BUCKETS).unwrap_or_default();
        let fresh = self
            .buckets
            .back()
            .is_none_or(|b| now.saturating_duration_since(b.start) >= width);
        if fresh {
            self.buckets.push_back(Bucket {
                start: now,
                calls: 0,
                failures: 0,
                slow: 0,
            });
        }
        if let Some(b) = self.buckets.back_mut() {
            b.calls = b.calls.saturating_add(1);
            b.failures = b.failures.saturating_add(u32::from(failed));
            b.slow = b.slow.saturating_add(u32::from(slow));
        }
    }

    fn clear_window(&mut self) {
        self.recent_failures.clear();
        self.buckets.clear();
    }

    fn trip_reason(&self) -> Option<TransitionReason> {
        let failures = u32::try_from(self.recent_failures.len()).unwrap_or(u32::MAX);
        if failures >= self.config.failure_threshold {
            return Some(TransitionReason::FailureThreshold { failures });
        }
        let (calls, failed, slow) = self.buckets.iter().fold((0u32, 0u32, 0u32), |acc, b| {
            (
                acc.0.saturating_add(b.calls),
                acc.1.saturating_add(b.failures),
                acc.2.saturating_add(b.slow),
            )
        });
        if calls >= self.config.min_calls.max(1) {
            let calls = f64::from(calls);
            if let Some(rate) = self.config.failure_rate {
                if f64::from(failed) / calls >= rate {
                    return Some(TransitionReason::FailureRate);
                }
            }
            if let Some(rate) = self.config.slow_call_rate {
                if f64::from(slow) / calls >= rate {
                    return Some(TransitionReason::SlowCallRate);
                }
            }
        }
        None
    }

    fn transition(
        &mut self,
        to: BreakerState,
        reason: TransitionReason,
        now: Instant,
    ) -> Transition {
        let from = self.state;
        self.state = to;
        self.generation = self.generation.wrapping_add(1);
        self.probes_in_flight = 0;
        self.probes_admitted = 0;
        self.probe_successes = 0;
        let mut open_for = None;
        match to {
            BreakerState::Open => {
                let d = open_time(&self.config, self.reopen_count);
                self.reopen_count = self.reopen_count.saturating_add(1);
                self.open_until = Some(later(now, d));
                self.stats.opened = self.stats.opened.saturating_add(1);
                open_for = Some(d);
            }
            BreakerState::Closed => {
                self.reopen_count = 0;
                self.clear_window();
                self.open_until = None;
            }
            BreakerState::HalfOpen => self.open_until = None,
            BreakerState::ForcedOpen | BreakerState::Disabled => {
                self.open_until = None;
                self.clear_window();
            }
        }
        Transition {
            from,
            to,
            reason,
            open_for,
            generation: self.generation,
        }
    }
}

/// How long the breaker stays open after `reopens` consecutive re-opens:
/// `open_for * open_multiplier^reopens`, capped at `max_open_for`, computed so that
/// no setting can overflow.
fn open_time(config: &BreakerConfig, reopens: u32) -> Duration {
    let exponent = i32::try_from(reopens.min(64)).unwrap_or(64);
    let factor = config.open_multiplier.powi(exponent);
    let secs = config.open_for.as_secs_f64() * factor;
    Duration::try_from_secs_f64(secs)
        .unwrap_or(config.max_open_for)
        .min(config.max_open_for)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(threshold: u32) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: threshold,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(10),
            half_open_permits: 2,
            success_threshold: 2,
            ..BreakerConfig::default()
        }
    }

    fn fail(b: &mut Breaker, now: Instant) -> Option<Transition> {
        let p = b.try_acquire(now).expect("admitted");
        b.on_outcome(p, CallOutcome::HealthFailure, now)
    }

    fn open_then_half_open(b: &mut Breaker, now: Instant) {
        let t = (0..3).find_map(|_| fail(b, now)).expect("opens");
        assert!(b.on_open_timer(t.generation, now).is_some());
        assert_eq!(b.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn the_fleet_opens_only_a_closed_breaker_and_recovers_only_an_open_one() {
        let now = Instant::now();
        let mut b = Breaker::new(config(3));
        assert!(
            b.fleet_recovered(now).is_none(),
            "closed: nothing to recover"
        );
        let t = b.fleet_open(now).expect("a closed breaker opens");
        assert_eq!(
            (t.to, t.reason.clone()),
            (BreakerState::Open, TransitionReason::Fleet)
        );
        assert_eq!(t.open_for, Some(Duration::from_secs(10)));
        assert!(b.fleet_open(now).is_none(), "already open");
        let t = b.fleet_recovered(now).expect("an open breaker half-opens");
        assert_eq!(t.to, BreakerState::HalfOpen);
        assert!(
            b.fleet_open(now).is_none(),
            "half-open stays: its probes decide"
        );
        let mut forced = Breaker::new(config(3));
        forced.force(BreakerState::ForcedOpen, now);
        assert!(forced.fleet_open(now).is_none() && forced.fleet_recovered(now).is_none());
    }

    #[test]
    fn staying_open_for_the_fleets_probe_moves_the_reopen_and_needs_the_generation() {
        let now = Instant::now();
        let mut b = Breaker::new(config(1));
        let t = fail(&mut b, now).expect("opens");
        let later_on = now + Duration::from_secs(10);
        assert!(b.stay_open(t.generation, Duration::from_secs(3), later_on));
        assert_eq!(
            b.try_acquire(later_on),
            Err(Rejection::Open {
                retry_in: Duration::from_secs(3)
            })
        );
        assert!(!b.stay_open(
            t.generation.wrapping_add(1),
            Duration::from_secs(3),
            later_on
        ));
        assert!(b.on_open_timer(t.generation, later_on).is_some());
        assert!(
            !b.stay_open(t.generation, Duration::from_secs(3), later_on),
            "moved on"
        );
    }

    #[test]
    fn opens_on_the_third_failure_with_threshold_three_and_not_before() {
        let now = Instant::now();
        let mut b = Breaker::new(config(3));
        assert!(fail(&mut b, now).is_none());
        assert!(fail(&mut b, now).is_none());
        assert_eq!(b.state(), BreakerState::Closed);
        let t = fail(&mut b, now).expect("third failure opens");
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert_eq!(t.reason, TransitionReason::FailureThreshold { failures: 3 });
        assert_eq!(t.open_for, Some(Duration::from_secs(10)));
        assert_eq!(
            b.try_acquire(now + Duration::from_secs(4)),
            Err(Rejection::Open {
                retry_in: Duration::from_secs(6)
            })
        );
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let t0 = Instant::now();
        let mut b = Breaker::new(config(3));
        fail(&mut b, t0);
        fail(&mut b, t0 + Duration::from_secs(30));
        // The first failure is 60 s old now: only two remain, plus this one.
        assert!(fail(&mut b, t0 + Duration::from_secs(60)).is_none());
        assert!(fail(&mut b, t0 + Duration::from_secs(61)).is_some());
    }

    #[test]
    fn neutral_failures_never_trip_it() {
        let now = Instant::now();
        let mut b = Breaker::new(config(1));
        for _ in 0..100 {
            let p = b.try_acquire(now).unwrap();
            assert!(b.on_outcome(p, CallOutcome::Neutral, now).is_none());
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn half_open_admits_exactly_its_permits() {
        let now = Instant::now();
        let mut b = Breaker::new(config(3));
        open_then_half_open(&mut b, now);
        let granted: Vec<_> = (0..10).filter_map(|_| b.try_acquire(now).ok()).collect();
        assert_eq!(granted.len(), 2);
        assert!(granted.iter().all(|p| p.probe));
        assert_eq!(b.try_acquire(now), Err(Rejection::ProbesBusy));
    }

    #[test]
    fn a_cancelled_probe_frees_its_permit() {
        let now = Instant::now();
        let mut b = Breaker::new(config(3));
        open_then_half_open(&mut b, now);
        let p1 = b.try_acquire(now).unwrap();
        let _p2 = b.try_acquire(now).unwrap();
        assert!(b.try_acquire(now).is_err());
        assert!(b.on_outcome(p1, CallOutcome::Cancelled, now).is_none());
        assert!(b.try_acquire(now).is_ok());
        assert_eq!(b.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn the_success_threshold_closes_it_and_clears_the_window() {
        let now = Instant::now();
        let mut b = Breaker::new(config(3));
        open_then_half_open(&mut b, now);
        let p1 = b.try_acquire(now).unwrap();
        let p2 = b.try_acquire(now).unwrap();
        let ok = CallOutcome::Success {
            elapsed: Duration::from_millis(5),
        };
        assert!(b.on_outcome(p1, ok, now).is_none());
        let t = b.on_outcome(p2, ok, now).expect("closes");
        assert_eq!(t.to, BreakerState::Closed);
        assert_eq!(t.reason, TransitionReason::ProbesSucceeded);
        assert_eq!(b.stats(now).failures_in_window, 0);
        // Two fresh failures do not reopen it (the window was cleared).
        assert!(fail(&mut b, now).is_none());
        assert!(fail(&mut b, now).is_none());
    }

    #[test]
    fn one_probe_failure_reopens_it_for_longer() {
        let now = Instant::now();
        let mut b = Breaker::new(config(3));
        open_then_half_open(&mut b, now);
        let p = b.try_acquire(now).unwrap();
        let t = b.on_outcome(p, CallOutcome::HealthFailure, now).unwrap();
        assert_eq!(
            (t.to, t.reason),
            (BreakerState::Open, TransitionReason::ProbeFailed)
        );
        assert_eq!(t.open_for, Some(Duration::from_secs(20)));
    }

    #[test]
    fn outcomes_of_earlier_generations_do_not_move_the_state() {
        let now = Instant::now();
        let mut b = Breaker::new(config(3));
        let stale = b.try_acquire(now).unwrap();
        open_then_half_open(&mut b, now);
        assert!(b
            .on_outcome(stale, CallOutcome::HealthFailure, now)
            .is_none());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // A stale open timer does nothing either.
        assert!(b.on_open_timer(0, now).is_none());
    }

    #[test]
    fn a_pause_rejects_until_it_ends_and_is_not_a_failure() {
        let now = Instant::now();
        let mut b = Breaker::new(config(1));
        b.pause(Duration::from_secs(2), now);
        assert_eq!(
            b.try_acquire(now + Duration::from_millis(500)),
            Err(Rejection::Paused {
                retry_in: Duration::from_millis(1500)
            })
        );
        assert!(b.try_acquire(now + Duration::from_secs(2)).is_ok());
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn only_a_closed_unpaused_or_disabled_breaker_admits_without_asking() {
        let now = Instant::now();
        let mut b = Breaker::new(config(1));
        assert_eq!(b.admits_all(now), Some(0));
        b.pause(Duration::from_secs(2), now);
        assert_eq!(b.admits_all(now), None);
        assert_eq!(b.admits_all(now + Duration::from_secs(2)), Some(0));
        fail(&mut b, now + Duration::from_secs(2));
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admits_all(now + Duration::from_secs(2)), None);
        let mut half_open = Breaker::new(config(3));
        open_then_half_open(&mut half_open, now);
        assert_eq!(half_open.admits_all(now), None);
        b.force(BreakerState::ForcedOpen, now);
        assert_eq!(b.admits_all(now), None);
        b.force(BreakerState::Disabled, now);
        b.pause(Duration::from_secs(2), now);
        assert_eq!(b.admits_all(now), Some(b.generation()));
        b.force(BreakerState::Closed, now);
        assert_eq!(b.admits_all(now), None, "still paused");
        b.reset(now);
        assert_eq!(b.admits_all(now), Some(b.generation()));
    }

    #[test]
    fn failure_and_slow_call_rates_trip_after_min_calls() {
        let now = Instant::now();
        let mut b = Breaker::new(BreakerConfig {
            failure_threshold: 1000,
            failure_rate: Some(0.5),
            min_calls: 4,
            ..BreakerConfig::default()
        });
        let ok = CallOutcome::Success {
            elapsed: Duration::from_millis(1),
        };
        let p = b.try_acquire(now).unwrap();
        b.on_outcome(p, ok, now);
        assert!(fail(&mut b, now).is_none());
        let p = b.try_acquire(now).unwrap();
        b.on_outcome(p, ok, now);
        let t = fail(&mut b, now).expect("2 of 4 failed");
        assert_eq!(t.reason, TransitionReason::FailureRate);

        let mut b = Breaker::new(BreakerConfig {
            slow_call_rate: Some(0.5),
            slow_call_threshold: Duration::from_secs(1),
            min_calls: 2,
            ..BreakerConfig::default()
        });
        let slow = CallOutcome::Success {
            elapsed: Duration::from_secs(2),
        };
        let p = b.try_acquire(now).unwrap();
        assert!(b.on_outcome(p, slow, now).is_none());
        let p = b.try_acquire(now).unwrap();
        assert_eq!(
            b.on_outcome(p, slow, now).map(|t| t.reason),
            Some(TransitionReason::SlowCallRate)
        );
    }

    #[test]
    fn operator_states() {
        let now = Instant::now();
        let mut b = Breaker::new(config(1));
        b.force(BreakerState::ForcedOpen, now);
        assert_eq!(b.try_acquire(now), Err(Rejection::ForcedOpen));
        b.force(BreakerState::Disabled, now);
        for _ in 0..5 {
            fail(&mut b, now);
        }
        assert_eq!(b.state(), BreakerState::Disabled);
        let t = b.reset(now).unwrap();
        assert_eq!(
            (t.to, t.reason),
            (BreakerState::Closed, TransitionReason::Reset)
        );
    }

    #[test]
    fn open_time_grows_to_its_cap_and_resets_on_close() {
        let now = Instant::now();
        let mut b = Breaker::new(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_secs(10),
            max_open_for: Duration::from_secs(25),
            half_open_permits: 1,
            success_threshold: 1,
            ..BreakerConfig::default()
        });
        let mut opens = Vec::new();
        let mut t = fail(&mut b, now).unwrap();
        opens.push(t.open_for.unwrap());
        for _ in 0..3 {
            b.on_open_timer(t.generation, now).unwrap();
            t = fail(&mut b, now).unwrap();
            opens.push(t.open_for.unwrap());
        }
        let s = Duration::from_secs;
        assert_eq!(opens, vec![s(10), s(20), s(25), s(25)]);
        b.on_open_timer(t.generation, now).unwrap();
        let p = b.try_acquire(now).unwrap();
        b.on_outcome(p, CallOutcome::Success { elapsed: s(0) }, now)
            .unwrap();
        assert_eq!(fail(&mut b, now).unwrap().open_for, Some(s(10)));
    }

    #[test]
    fn half_open_admits_its_permits_in_total_not_at_once() {
        let now = Instant::now();
        let mut b = Breaker::new(BreakerConfig {
            half_open_permits: 3,
            success_threshold: 3,
            ..config(3)
        });
        open_then_half_open(&mut b, now);
        let ok = CallOutcome::Success {
            elapsed: Duration::from_millis(1),
        };
        // One after another: each probe ends before the next is asked for.
        for _ in 0..2 {
            let p = b.try_acquire(now).unwrap();
            assert!(b.on_outcome(p, ok, now).is_none());
        }
        let third = b.try_acquire(now).unwrap();
        assert_eq!(b.try_acquire(now), Err(Rejection::ProbesBusy));
        // A probe without a verdict gives its slot to another.
        assert!(b.on_outcome(third, CallOutcome::Neutral, now).is_none());
        let fourth = b.try_acquire(now).unwrap();
        assert_eq!(b.try_acquire(now), Err(Rejection::ProbesBusy));
        assert_eq!(
            b.on_outcome(fourth, ok, now).map(|t| t.to),
            Some(BreakerState::Closed)
        );
    }

    #[test]
    fn a_success_threshold_above_the_permits_closes_on_every_probe_succeeding() {
        let now = Instant::now();
        let mut b = Breaker::new(BreakerConfig {
            half_open_permits: 1,
            success_threshold: 2,
            ..config(3)
        });
        open_then_half_open(&mut b, now);
        let p = b.try_acquire(now).unwrap();
        let ok = CallOutcome::Success {
            elapsed: Duration::from_millis(1),
        };
        assert_eq!(
            b.on_outcome(p, ok, now).map(|t| t.to),
            Some(BreakerState::Closed)
        );
    }

    #[test]
    fn waits_above_the_cap_are_refused_and_none_overflows() {
        let now = Instant::now();
        let mut b = Breaker::new(config(3));
        assert!(!b.pause(Duration::from_secs(86_400), now));
        assert!(!b.pause(Duration::MAX, now));
        assert_eq!(b.paused_until(now), None);
        assert_eq!(b.stats(now).pauses_refused, 2);
        let mut uncapped = Breaker::new(BreakerConfig {
            max_pause: Duration::MAX,
            ..config(3)
        });
        assert!(uncapped.pause(Duration::MAX, now));
        assert!(uncapped.paused_until(now).is_some());
        assert!(matches!(
            uncapped.try_acquire(now),
            Err(Rejection::Paused { .. })
        ));
    }

    #[test]
    fn extreme_open_times_do_not_overflow() {
        let now = Instant::now();
        let mut b = Breaker::new(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::MAX,
            open_multiplier: 1e300,
            max_open_for: Duration::MAX,
            half_open_permits: 1,
            success_threshold: 1,
            ..BreakerConfig::default()
        });
        for _ in 0..3 {
            let t = fail(&mut b, now).unwrap();
            assert_eq!(t.open_for, Some(Duration::MAX));
            b.on_open_timer(t.generation, now).unwrap();
        }
    }

    #[test]
    fn reset_empties_every_counter_and_a_restart_moves_the_generation() {
        let now = Instant::now();
        let mut b = Breaker::new(config(2));
        fail(&mut b, now);
        fail(&mut b, now);
        assert!(b.stats(now).failures > 0 && b.stats(now).opened == 1);
        b.reset(now);
        assert_eq!(b.stats(now), BreakerStats::default());
        let before = b.generation();
        let stale = b.try_acquire(now).unwrap();
        let mut fresh = b.restarted();
        assert_eq!(fresh.state(), BreakerState::Closed);
        assert!(fresh.generation() > before);
        assert!(fresh
            .on_outcome(stale, CallOutcome::HealthFailure, now)
            .is_none());
        assert_eq!(fresh.stats(now).failures_in_window, 0);
    }

    #[test]
    fn invalid_configs_are_rejected() {
        assert!(BreakerConfig::default().validate().is_ok());
        for bad in [
            BreakerConfig {
                failure_threshold: 0,
                ..BreakerConfig::default()
            },
            BreakerConfig {
                half_open_permits: 0,
                ..BreakerConfig::default()
            },
            BreakerConfig {
                failure_rate: Some(1.5),
                ..BreakerConfig::default()
            },
            BreakerConfig {
                open_multiplier: f64::NAN,
                ..BreakerConfig::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }

    #[test]
    fn a_permit_given_back_was_never_admitted_and_frees_its_probe_slot() {
        let now = Instant::now();
        let mut b = Breaker::new(config(1));
        let permit = b.try_acquire(now).unwrap();
        b.give_back(permit, now);
        assert_eq!(b.stats(now).admitted, 0);
        // Half-open: a probe given back leaves its slot to another.
        let permit = b.try_acquire(now).unwrap();
        b.on_outcome(permit, CallOutcome::HealthFailure, now);
        let later = now + Duration::from_secs(11);
        assert!(b.on_open_timer(b.generation(), later).is_some());
        let probes: Vec<Permit> = (0..2).map(|_| b.try_acquire(later).unwrap()).collect();
        assert!(b.try_acquire(later).is_err(), "both probe slots taken");
        b.give_back(probes[0], later);
        assert!(
            b.try_acquire(later).is_ok(),
            "a slot given back is free again"
        );
    }
}
