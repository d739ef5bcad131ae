//! Model-based test of the attempts machine: random sequences of every input
//! (starts, permits, rejections and pauses, failures with and without a
//! server's wait, the coordinator's decisions, successes, deadline cuts,
//! cancellations, lost actors, retargets) and clock advances, applied to
//! [`Attempts`] and to a reference model written from its documentation here
//! (including inputs that do not apply where the request stands: they
//! answer `Idle` and change nothing); their steps, phases and counts never
//! differ.

use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::failure::Category;

#[derive(Debug, Clone)]
enum Op {
    Start,
    Permitted,
    /// A pause of this many milliseconds, else an open breaker.
    Rejected(Option<u64>),
    /// A failure; with a server's wait (milliseconds) if any; retryable or not.
    Failed(Option<u64>, bool),
    /// Retry after this delay (milliseconds), else give up.
    Decided(Option<u64>),
    Succeeded,
    CutByDeadline,
    Again,
    GiveUpNow,
    Lost,
    Cancel,
    End,
    WaitElsewhere(bool),
    /// Another target, with this deadline left to it and a breaker or not.
    Retarget(bool),
    TakeOver,
    Advance(u64),
}

/// Milliseconds in steps of 50, below `n` steps: times that meet exactly
/// (a pause as long as the time left, a deadline at an attempt's timeout)
/// come up often.
fn tick(n: u64) -> impl Strategy<Value = u64> {
    (0..n).prop_map(|k| k * 50)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => Just(Op::Start),
        4 => Just(Op::Permitted),
        2 => prop::option::of(tick(8)).prop_map(Op::Rejected),
        4 => (prop::option::of(tick(6)), any::<bool>()).prop_map(|(w, r)| Op::Failed(w, r)),
        4 => prop::option::of(tick(4)).prop_map(Op::Decided),
        1 => Just(Op::Succeeded),
        1 => Just(Op::CutByDeadline),
        1 => Just(Op::Again),
        1 => Just(Op::GiveUpNow),
        1 => Just(Op::Lost),
        1 => Just(Op::Cancel),
        1 => Just(Op::End),
        1 => any::<bool>().prop_map(Op::WaitElsewhere),
        1 => any::<bool>().prop_map(Op::Retarget),
        1 => Just(Op::TakeOver),
        4 => tick(6).prop_map(Op::Advance),
    ]
}

fn spec(
    deadline: Option<u64>,
    timeout: Option<u64>,
    use_breaker: bool,
    elsewhere: bool,
) -> RequestSpec {
    RequestSpec {
        request_id: "r".into(),
        provider: "p".into(),
        model: "m".into(),
        attempt_timeout: timeout.map(Duration::from_millis),
        deadline: deadline.map(Duration::from_millis),
        policy: None,
        use_breaker,
        max_pause_wait: Duration::from_millis(250),
        wait_elsewhere: elsewhere,
        may_queue: true,
        priority: 0,
    }
}

/// A step, comparably: what the machine said, without the failure's text.
#[derive(Debug, Clone, PartialEq)]
enum Said {
    AskPermit,
    Run(u32, Instant, Option<(Duration, bool)>),
    Pause(Duration),
    /// attempts, backoff so far, previous delay, time left, first report.
    Ask(u32, Duration, Option<Duration>, Option<Duration>, bool),
    Backoff(Duration),
    GiveUp(GiveUp),
    Stop(Stop),
    Idle,
}

fn said(step: Step) -> Said {
    match step {
        Step::AskPermit => Said::AskPermit,
        Step::Run(r) => Said::Run(
            r.number,
            r.started,
            r.limit.map(|l| (l.duration, l.by_deadline)),
        ),
        Step::Pause(d) => Said::Pause(d),
        Step::Ask(q) => Said::Ask(
            q.state.attempts,
            q.state.backoff_so_far,
            q.state.previous_delay,
            q.state.time_left,
            q.first_report,
        ),
        Step::Backoff(d) => Said::Backoff(d),
        Step::GiveUp(_, reason) => Said::GiveUp(reason),
        Step::Stop(s) => Said::Stop(s),
        Step::Idle => Said::Idle,
    }
}

/// The reference.
#[derive(Debug)]
struct Model {
    phase: Phase,
    attempts: u32,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    use_breaker: bool,
    elsewhere: bool,
    reported: bool,
    backoff: Duration,
    previous: Option<Duration>,
}

impl Model {
    fn new(s: &RequestSpec, now: Instant) -> Self {
        Model {
            phase: Phase::Ready,
            attempts: 0,
            deadline: s.deadline.map(|d| now + d),
            timeout: s.attempt_timeout,
            use_breaker: s.use_breaker,
            elsewhere: s.wait_elsewhere,
            reported: false,
            backoff: Duration::ZERO,
            previous: None,
        }
    }

    fn left(&self, now: Instant) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(now))
    }

    fn past(&self, now: Instant) -> bool {
        self.left(now) == Some(Duration::ZERO)
    }

    fn stop(&mut self, why: Stop) -> Said {
        self.phase = Phase::Ended;
        Said::Stop(why)
    }

    fn run(&mut self, now: Instant) -> Said {
        self.phase = Phase::Running;
        self.attempts += 1;
        let limit = match (self.timeout, self.left(now)) {
            (Some(t), Some(left)) if left <= t => Some((left, true)),
            (Some(t), _) => Some((t, false)),
            (None, Some(left)) => Some((left, true)),
            (None, None) => None,
        };
        Said::Run(self.attempts, now, limit)
    }

    fn start(&mut self, now: Instant) -> Said {
        if !matches!(self.phase, Phase::Ready | Phase::Waiting) {
            return Said::Idle;
        }
        if self.past(now) {
            return self.stop(Stop::DeadlineExceeded);
        }
        if !self.use_breaker {
            return self.run(now);
        }
        self.phase = Phase::AwaitingPermit;
        Said::AskPermit
    }

    fn apply(&mut self, op: &Op, now: Instant) -> Said {
        let running = self.phase == Phase::Running;
        match *op {
            Op::Start => self.start(now),
            Op::Permitted if self.phase == Phase::AwaitingPermit => {
                if self.past(now) {
                    self.stop(Stop::DeadlineExceeded)
                } else {
                    self.run(now)
                }
            }
            Op::Rejected(pause) if self.phase == Phase::AwaitingPermit => {
                if let Some(ms) = pause {
                    let wait = Duration::from_millis(ms);
                    let fits = self.left(now).is_none_or(|left| wait < left);
                    if wait <= Duration::from_millis(250) && fits {
                        self.phase = Phase::Waiting;
                        return Said::Pause(wait);
                    }
                }
                self.stop(Stop::Rejected(rejection(pause)))
            }
            Op::Failed(wait, retryable) if running => {
                let wait = wait.map(Duration::from_millis).filter(|w| !w.is_zero());
                if let (true, true, Some(w)) = (self.elsewhere, retryable, wait) {
                    self.phase = Phase::Ended;
                    return Said::GiveUp(GiveUp::WaitElsewhere { wait: w });
                }
                self.phase = Phase::Deciding;
                let first = !std::mem::replace(&mut self.reported, true);
                Said::Ask(
                    self.attempts,
                    self.backoff,
                    self.previous,
                    self.left(now),
                    first,
                )
            }
            Op::Decided(d) if self.phase == Phase::Deciding => match d {
                Some(ms) => {
                    let delay = Duration::from_millis(ms);
                    self.backoff += delay;
                    self.previous = Some(delay);
                    self.phase = Phase::Waiting;
                    Said::Backoff(delay)
                }
                None => {
                    self.phase = Phase::Ended;
                    Said::GiveUp(GiveUp::AttemptsExhausted)
                }
            },
            Op::Succeeded => {
                if running {
                    self.phase = Phase::Ended;
                }
                Said::Idle
            }
            Op::CutByDeadline if running => self.stop(Stop::DeadlineExceeded),
            Op::Again if running => {
                self.phase = Phase::Ready;
                self.start(now)
            }
            Op::GiveUpNow if running => {
                self.phase = Phase::Ended;
                Said::GiveUp(GiveUp::CategoryDisabled)
            }
            Op::Lost if self.phase != Phase::Ended => self.stop(Stop::Internal("gone")),
            Op::Cancel | Op::End => {
                self.phase = Phase::Ended;
                Said::Idle
            }
            Op::WaitElsewhere(on) => {
                self.elsewhere = on;
                Said::Idle
            }
            Op::Retarget(breaker) => {
                self.retarget(breaker, now);
                Said::Idle
            }
            Op::TakeOver if running => {
                self.retarget(true, now);
                self.run(now);
                Said::Idle
            }
            _ => Said::Idle,
        }
    }

    fn retarget(&mut self, breaker: bool, now: Instant) {
        let left = self.left(now);
        self.deadline = left.map(|l| now + l);
        self.attempts = 0;
        self.reported = false;
        self.backoff = Duration::ZERO;
        self.previous = None;
        self.use_breaker = breaker;
        self.elsewhere = false;
        self.phase = Phase::Ready;
    }
}

fn rejection(pause: Option<u64>) -> Rejection {
    match pause {
        Some(ms) => Rejection::Paused {
            retry_in: Duration::from_millis(ms),
        },
        None => Rejection::Open {
            retry_in: Duration::from_millis(50),
        },
    }
}

fn failure(wait: Option<u64>, retryable: bool) -> Failure {
    let mut f = Failure::new(Category::RateLimited, "p", "slow down");
    f.retryable = retryable;
    f.retry_after = wait.map(Duration::from_millis);
    f
}

fn run(
    deadline: Option<u64>,
    timeout: Option<u64>,
    use_breaker: bool,
    elsewhere: bool,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let mut now = Instant::now();
    let s = spec(deadline, timeout, use_breaker, elsewhere);
    let mut real = Attempts::new(&s, now);
    let mut model = Model::new(&s, now);
    for (step, op) in ops.into_iter().enumerate() {
        let what = format!("step {step}: {op:?}");
        let a = match &op {
            Op::Start => said(real.start(now)),
            Op::Permitted => said(real.permitted(now)),
            Op::Rejected(pause) => said(real.rejected(rejection(*pause), now)),
            Op::Failed(wait, retryable) => said(real.failed(failure(*wait, *retryable), now)),
            Op::Decided(Some(ms)) => said(real.decided(Decision::Retry {
                delay: Duration::from_millis(*ms),
                server_directed: false,
            })),
            Op::Decided(None) => said(real.decided(Decision::GiveUp(GiveUp::AttemptsExhausted))),
            Op::Succeeded => {
                let n = real.succeeded();
                prop_assert_eq!(n, model.attempts, "{}", what);
                Said::Idle
            }
            Op::CutByDeadline => said(real.cut_by_deadline()),
            Op::Again => said(real.again(now)),
            Op::GiveUpNow => said(real.give_up_now(failure(None, false), GiveUp::CategoryDisabled)),
            Op::Lost => said(real.lost("gone")),
            Op::Cancel => {
                let was_running = real.cancel();
                prop_assert_eq!(was_running, model.phase == Phase::Running, "{}", what);
                Said::Idle
            }
            Op::End => {
                real.end();
                Said::Idle
            }
            Op::WaitElsewhere(on) => {
                real.wait_elsewhere(*on);
                Said::Idle
            }
            Op::Retarget(breaker) => {
                real.retarget(&spec(None, timeout, *breaker, false), now);
                Said::Idle
            }
            Op::TakeOver => {
                real.take_over(&spec(None, timeout, true, false), now);
                Said::Idle
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(*ms);
                Said::Idle
            }
        };
        let b = model.apply(&op, now);
        prop_assert_eq!(a, b, "{}", what);
        prop_assert_eq!(real.phase(), model.phase, "{}", what);
        prop_assert_eq!(real.attempts(), model.attempts, "{}", what);
        prop_assert_eq!(real.in_flight(), model.phase == Phase::Running, "{}", what);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_attempts_never_differ_from_their_model(
        deadline in prop::option::of(tick(30)),
        timeout in prop::option::of(tick(12)),
        use_breaker in any::<bool>(),
        elsewhere in any::<bool>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        run(deadline, timeout, use_breaker, elsewhere, ops)?;
    }
}
