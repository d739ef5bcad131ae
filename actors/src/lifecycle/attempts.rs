//! The life of one request's attempts as a plain state machine: no runtime, no
//! actor, no clock of its own (every input that needs the time is given it).
//!
//! Its inputs are the time, the breaker's answer (a permit or a rejection), how
//! an attempt ended and the coordinator's decision; its outputs are [`Step`]s:
//! ask for a permit, run the attempt, wait out a pause, ask the coordinator,
//! back off, give up or stop. The actors that own one (the request actor and
//! steer-llm's stream actor) turn their messages and timers into inputs and the
//! steps into effects (`lifecycle::shell`).
//!
//! ```
//! use std::time::Duration;
//! use steer_actors::lifecycle::{Attempts, Step};
//! use steer_actors::retry::Decision;
//! use steer_actors::{Category, Failure};
//! # let spec = steer_actors::spec::RequestSpec {
//! #     request_id: "r".into(), provider: "p".into(), model: "m".into(),
//! #     attempt_timeout: None, deadline: None, policy: None,
//! #     use_breaker: true, max_pause_wait: Duration::from_secs(1),
//! #     wait_elsewhere: false, may_queue: true, priority: 0,
//! # };
//! let now = tokio::time::Instant::now();
//! let mut attempts = Attempts::new(&spec, now);
//! assert_eq!(attempts.start(now), Step::AskPermit);
//! assert!(matches!(attempts.permitted(now), Step::Run(run) if run.number == 1));
//! let failure = Failure::new(Category::Overloaded, "p", "busy");
//! assert!(matches!(attempts.failed(failure, now), Step::Ask(_)));
//! let retry = Decision::Retry { delay: Duration::from_millis(20), server_directed: false };
//! assert_eq!(attempts.decided(retry), Step::Backoff(Duration::from_millis(20)));
//! assert_eq!(attempts.start(now), Step::AskPermit);
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::Rejection;
use crate::failure::Failure;
use crate::retry::progress::AttemptLimit;
use crate::retry::{AttemptFailed, Decision, GiveUp, Progress, RetryPolicy};
use crate::spec::RequestSpec;

/// Why a request ends before an attempt's failure could decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed before the next attempt, or cut the one in flight.
    DeadlineExceeded,
    /// The breaker did not admit the call.
    Rejected(Rejection),
    /// An actor the request depends on is gone.
    Internal(&'static str),
}

/// The attempt to run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Its number (1-based).
    pub number: u32,
    /// When it starts (the reading of the clock its limit is measured from).
    pub started: Instant,
    /// How long it may take (its own timeout, or the time left before the
    /// deadline when that is shorter), read at the instant it starts.
    pub limit: Option<AttemptLimit>,
}

/// What the owner of an [`Attempts`] does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Ask the breaker for a permit; answer with [`Attempts::permitted`] or
    /// [`Attempts::rejected`].
    AskPermit,
    /// Run this attempt; answer with how it ended.
    Run(Run),
    /// The provider is paused for a time the request may wait: call
    /// [`Attempts::start`] after it.
    Pause(Duration),
    /// Ask the coordinator whether to retry; answer with [`Attempts::decided`].
    Ask(AttemptFailed),
    /// Back off for this long, then call [`Attempts::start`]. The failure that
    /// caused it is [`Attempts::last_failure`].
    Backoff(Duration),
    /// The request fails with its last attempt's failure.
    GiveUp(Failure, GiveUp),
    /// The request ends for a reason of [`Stop`].
    Stop(Stop),
    /// Nothing: the input does not apply where the request stands (a late
    /// answer, or any input after the end).
    Idle,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// About to start an attempt (new, after a backoff or pause, or moved).
    Ready,
    /// Waiting for the breaker's answer.
    AwaitingPermit,
    /// An attempt is in flight.
    Running,
    /// Waiting for the coordinator's decision on a failure.
    Deciding,
    /// Backing off, or waiting out a pause.
    Waiting,
    /// The request has ended (a step of [`Step::GiveUp`] or [`Step::Stop`] was
    /// given, or it succeeded or was cancelled).
    Ended,
}

/// The attempts of one request.
#[derive(Debug)]
pub struct Attempts {
    progress: Progress,
    attempt_timeout: Option<Duration>,
    max_pause_wait: Duration,
    use_breaker: bool,
    wait_elsewhere: bool,
    policy: Option<Arc<RetryPolicy>>,
    phase: Phase,
    /// The failure the coordinator is deciding on.
    deciding: Option<Box<Failure>>,
    /// The failure before the current attempt. Boxed: it is rare, and it keeps
    /// the actors that own one small.
    last_failure: Option<Box<Failure>>,
}

impl Attempts {
    /// A request that has made no attempt yet; its deadline runs from `now`.
    pub fn new(spec: &RequestSpec, now: Instant) -> Self {
        Attempts {
            progress: Progress::starting_at(spec.deadline, now),
            attempt_timeout: spec.attempt_timeout,
            max_pause_wait: spec.max_pause_wait,
            use_breaker: spec.use_breaker,
            wait_elsewhere: spec.wait_elsewhere,
            policy: spec.policy.clone(),
            phase: Phase::Ready,
            deciding: None,
            last_failure: None,
        }
    }

    /// Starts the next attempt (at first, and after a backoff or a pause): stops
    /// past the deadline, runs at once without a breaker, else asks for a permit.
    pub fn start(&mut self, now: Instant) -> Step {
        if !matches!(self.phase, Phase::Ready | Phase::Waiting) {
            return Step::Idle;
        }
        if self.progress.past_deadline_at(now) {
            return self.stop(Stop::DeadlineExceeded);
        }
        if !self.use_breaker {
            return self.run(now);
        }
        self.phase = Phase::AwaitingPermit;
        Step::AskPermit
    }

    /// The breaker admitted the attempt: run it, unless the deadline passed
    /// while the request waited for the answer (the permit then goes back
    /// unused, as a dropped lease does).
    pub fn permitted(&mut self, now: Instant) -> Step {
        if self.phase != Phase::AwaitingPermit {
            return Step::Idle;
        }
        if self.progress.past_deadline_at(now) {
            return self.stop(Stop::DeadlineExceeded);
        }
        self.run(now)
    }

    /// The breaker refused: a pause the request may wait out (within its cap and
    /// its deadline) is waited out, anything else stops the request.
    pub fn rejected(&mut self, rejection: Rejection, now: Instant) -> Step {
        if self.phase != Phase::AwaitingPermit {
            return Step::Idle;
        }
        if let Rejection::Paused { retry_in } = rejection {
            if let Some(wait) = self
                .progress
                .pause_wait_at(retry_in, self.max_pause_wait, now)
            {
                self.phase = Phase::Waiting;
                return Step::Pause(wait);
            }
        }
        self.stop(Stop::Rejected(rejection))
    }

    /// The attempt failed with `failure` (already reported to the breaker): ask
    /// the coordinator; or, when the server asked for a wait and the route has
    /// a target that can answer now ([`Attempts::wait_elsewhere`]), give up
    /// at once so that the route moves on.
    pub fn failed(&mut self, failure: Failure, now: Instant) -> Step {
        if self.phase != Phase::Running {
            return Step::Idle;
        }
        if let Some(wait) = self.elsewhere_for(&failure) {
            self.phase = Phase::Ended;
            return Step::GiveUp(failure, GiveUp::WaitElsewhere { wait });
        }
        self.phase = Phase::Deciding;
        let question = AttemptFailed {
            failure: failure.clone(),
            state: self.progress.state_at(now),
            policy: self.policy.clone(),
            first_report: self.progress.first_report(),
        };
        self.deciding = Some(Box::new(failure));
        Step::Ask(question)
    }

    /// The coordinator decided on the failure it was asked about: back off and
    /// go again, or give up.
    pub fn decided(&mut self, decision: Decision) -> Step {
        if self.phase != Phase::Deciding {
            return Step::Idle;
        }
        let Some(failure) = self.deciding.take() else {
            return Step::Idle;
        };
        match decision {
            Decision::Retry { delay, .. } => {
                self.progress.backed_off(delay);
                self.last_failure = Some(failure);
                self.phase = Phase::Waiting;
                Step::Backoff(delay)
            }
            Decision::GiveUp(reason) => {
                self.phase = Phase::Ended;
                Step::GiveUp(*failure, reason)
            }
        }
    }

    /// The attempt in flight succeeded: the request ends; returns the attempts made.
    pub fn succeeded(&mut self) -> u32 {
        if matches!(self.phase, Phase::Running) {
            self.phase = Phase::Ended;
        }
        self.progress.attempts()
    }

    /// The deadline cut the attempt in flight.
    pub fn cut_by_deadline(&mut self) -> Step {
        if self.phase != Phase::Running {
            return Step::Idle;
        }
        self.stop(Stop::DeadlineExceeded)
    }

    /// The attempt in flight ended in a way that asks for no verdict (the
    /// coordinator is not asked): start the next at once.
    pub fn again(&mut self, now: Instant) -> Step {
        if self.phase != Phase::Running {
            return Step::Idle;
        }
        self.phase = Phase::Ready;
        self.start(now)
    }

    /// The attempt in flight ended in a failure that no retry can mend (the
    /// coordinator is not asked): give up with it.
    pub fn give_up_now(&mut self, failure: Failure, reason: GiveUp) -> Step {
        if self.phase != Phase::Running {
            return Step::Idle;
        }
        self.phase = Phase::Ended;
        Step::GiveUp(failure, reason)
    }

    /// An actor the request depends on is gone (the breaker or the coordinator
    /// did not answer): the request stops.
    pub fn lost(&mut self, what: &'static str) -> Step {
        if self.phase == Phase::Ended {
            return Step::Idle;
        }
        self.stop(Stop::Internal(what))
    }

    /// The owner ended the request itself (an attempt that panicked, a stream
    /// that completed): nothing follows.
    pub fn end(&mut self) {
        self.phase = Phase::Ended;
    }

    /// The caller cancelled the request: it ends here. Returns whether an
    /// attempt was in flight (it is then counted as abandoned).
    pub fn cancel(&mut self) -> bool {
        let running = self.phase == Phase::Running;
        self.phase = Phase::Ended;
        running
    }

    /// Whether a failure whose server asks for a wait ends the attempts at
    /// once (the route sets it while another target could answer now).
    pub fn wait_elsewhere(&mut self, on: bool) {
        self.wait_elsewhere = on;
    }

    /// The wait a retryable failure asks for, when the request is to take it
    /// elsewhere rather than wait.
    fn elsewhere_for(&self, failure: &Failure) -> Option<Duration> {
        if !self.wait_elsewhere || !failure.retryable {
            return None;
        }
        failure.retry_after.filter(|w| !w.is_zero())
    }

    /// Moves the request to another target (a failover): its retries start
    /// afresh within what is left of its deadline, with that target's settings.
    pub fn retarget(&mut self, spec: &RequestSpec, now: Instant) {
        let time_left = self.progress.time_left_at(now);
        self.progress = Progress::starting_at(time_left, now);
        self.attempt_timeout = spec.attempt_timeout;
        self.max_pause_wait = spec.max_pause_wait;
        self.use_breaker = spec.use_breaker;
        self.wait_elsewhere = spec.wait_elsewhere;
        self.deciding = None;
        self.phase = Phase::Ready;
    }

    /// Moves the attempt in flight to another target (a stream's hedge that
    /// took the lead there): as [`Attempts::retarget`], with that attempt
    /// counted there and running. Nothing moves unless an attempt runs.
    pub fn take_over(&mut self, spec: &RequestSpec, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        self.retarget(spec, now);
        let _ = self.run(now);
    }

    /// Where the request stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether an attempt is in flight.
    pub fn in_flight(&self) -> bool {
        self.phase == Phase::Running
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.progress.attempts()
    }

    /// Where the request stands in its retries (attempts, backoff, deadline).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Whether a report about to be sent to the coordinator is the request's
    /// first (it is counted then): `true` once, then `false`.
    pub fn first_report(&mut self) -> bool {
        self.progress.first_report()
    }

    /// The failure before the current attempt, if any.
    pub fn last_failure(&self) -> Option<&Failure> {
        self.last_failure.as_deref()
    }

    /// Records `failure` as the request's last (one that ends it without the
    /// coordinator, kept for its error and its partial).
    pub fn set_last_failure(&mut self, failure: Failure) {
        self.last_failure = Some(Box::new(failure));
    }

    /// The last failure, taken out.
    pub fn take_last_failure(&mut self) -> Option<Failure> {
        self.last_failure.take().map(|f| *f)
    }

    fn run(&mut self, now: Instant) -> Step {
        self.phase = Phase::Running;
        let number = self.progress.start_attempt();
        let limit = self.progress.attempt_limit_at(self.attempt_timeout, now);
        Step::Run(Run {
            number,
            started: now,
            limit,
        })
    }

    fn stop(&mut self, why: Stop) -> Step {
        self.phase = Phase::Ended;
        Step::Stop(why)
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
