//! The RetryCoordinator actor: one per provider. It owns the retry policy, the
//! retry budget, the jitter source and the provider's metrics, and answers "retry
//! or give up?" after every failed attempt.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use crate::exec::clock::now;

use crate::MAILBOX_CAPACITY;

use super::budget::{BudgetConfig, RetryBudget};
use super::counters::{ProviderMetrics, RequestEnd};
use super::policy::{decide, AttemptState, Decision, GiveUp, RetryPolicy};
use super::throttle::{RetryThrottle, ThrottleConfig};
use crate::failure::Failure;

/// The coordinator's name in the log of a handler that panicked.
const WHO: fn(&RetryCoordinator) -> String = |_| "retry coordinator".to_string();

/// The retry coordinator of one provider.
pub struct RetryCoordinator {
    policy: Arc<RetryPolicy>,
    budget: RetryBudget,
    throttle: Option<RetryThrottle>,
    rng: fastrand::Rng,
    metrics: ProviderMetrics,
}

impl RetryCoordinator {
    /// A coordinator with `policy` as the provider's default, a budget, and a
    /// jitter seed (fixed seeds make schedules reproducible).
    pub fn new(policy: RetryPolicy, budget: BudgetConfig, seed: u64) -> Self {
        RetryCoordinator {
            policy: Arc::new(policy),
            budget: RetryBudget::new(budget),
            throttle: None,
            rng: fastrand::Rng::with_seed(seed),
            metrics: ProviderMetrics::default(),
        }
    }

    /// Throttles this target's retries in the gRPC style, beside the budget
    /// (off unless set).
    pub fn with_throttle(mut self, config: ThrottleConfig) -> Self {
        self.throttle = Some(RetryThrottle::new(config));
        self
    }
}

impl Actor for RetryCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl Supervised for RetryCoordinator {
    /// After a failed handler: an empty budget; the policy, the jitter source and
    /// the metrics (counters only grow) are kept.
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.budget = RetryBudget::new(self.budget.config());
        if let Some(t) = &mut self.throttle {
            *t = RetryThrottle::new(t.config());
        }
    }
}

impl RetryCoordinator {
    /// Counts a request in the retry budget's rate, at its first report: a
    /// failed first attempt or its end (one message fewer per request than
    /// announcing every start). The metrics count it at its end, which every
    /// request has exactly once: a first report lost with a cancelled request
    /// cannot make `cancelled` exceed `requests`.
    fn count_request(&mut self, now: Instant) {
        self.budget.record_request(now);
    }
}

/// The policy's decision on `failure`, unless it is a retry the throttle
/// refuses ([`GiveUp::Throttled`]; a failure a retry could mend drains it
/// first) or the budget refuses ([`GiveUp::BudgetExhausted`]).
pub(crate) fn decide_within_budget(
    policy: &RetryPolicy,
    failure: &Failure,
    state: AttemptState,
    random: f64,
    limits: (&mut RetryBudget, Option<&mut RetryThrottle>),
    now: Instant,
) -> Decision {
    let (budget, throttle) = limits;
    let throttled = throttle.is_some_and(|t| {
        if failure.retryable {
            t.failed();
        }
        !t.allows()
    });
    match decide(policy, failure, state, random) {
        Decision::Retry { .. } if throttled => Decision::GiveUp(GiveUp::Throttled),
        Decision::Retry { .. } if !budget.try_retry(now) => {
            Decision::GiveUp(GiveUp::BudgetExhausted)
        }
        decision => decision,
    }
}

/// An attempt failed: retry or give up?
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "Decision")]
pub struct AttemptFailed {
    /// The classified failure.
    pub failure: Failure,
    /// Where the request stands.
    pub state: AttemptState,
    /// The request's own policy, overriding the provider's.
    pub policy: Option<Arc<RetryPolicy>>,
    /// Whether this is the request's first report (it is counted then).
    pub first_report: bool,
}

impl Handler<AttemptFailed> for RetryCoordinator {
    type Result = MessageResult<AttemptFailed>;

    fn handle(&mut self, msg: AttemptFailed, ctx: &mut Context<Self>) -> Self::Result {
        let decision = crate::exec::supervise::guarded(self, ctx, WHO, |act, _| {
            let now = now();
            if msg.first_report {
                act.count_request(now);
            }
            act.metrics.record_attempt(msg.failure.category.as_str());
            let policy = msg.policy.as_ref().unwrap_or(&act.policy);
            let decision = decide_within_budget(
                policy,
                &msg.failure,
                msg.state,
                act.rng.f64(),
                (&mut act.budget, act.throttle.as_mut()),
                now,
            );
            act.metrics.record_decision(&decision);
            decision
        });
        // A coordinator that failed deciding restarts; this request stops retrying.
        MessageResult(decision.unwrap_or(Decision::GiveUp(GiveUp::NotRetryable)))
    }
}

/// [`AttemptFailed`] with the channel its decision goes back on. Sent with
/// `do_send`, it always reaches the coordinator and is counted there, even when
/// its request goes away before the answer: `Addr::send` keeps a message back
/// in its request future while the shared sender is parked (a full mailbox),
/// and a request dropped then would lose it, and its attempt's count with it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Decide {
    /// The question.
    pub question: AttemptFailed,
    /// Where the decision goes (a closed channel is fine: the asker is gone).
    pub answer: tokio::sync::oneshot::Sender<Decision>,
}

impl Handler<Decide> for RetryCoordinator {
    type Result = ();

    fn handle(&mut self, msg: Decide, ctx: &mut Context<Self>) {
        let MessageResult(decision) =
            <Self as Handler<AttemptFailed>>::handle(self, msg.question, ctx);
        let _ = msg.answer.send(decision);
    }
}

/// How a request ended (one-way).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub(crate) struct RequestFinished {
    /// How.
    pub end: RequestEnd,
    /// Whether this is the request's first report (no failed attempt was
    /// reported before): it is counted then.
    pub first_report: bool,
}

/// Ends gathered on another arbiter, in order.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct RequestsFinished(pub Vec<RequestFinished>);

impl Handler<RequestsFinished> for RetryCoordinator {
    type Result = ();

    fn handle(&mut self, msg: RequestsFinished, ctx: &mut Context<Self>) {
        // One reading of the clock for the batch: its ends came together.
        let now = now();
        for end in msg.0 {
            self.finished(end, now, ctx);
        }
    }
}

impl Handler<RequestFinished> for RetryCoordinator {
    type Result = ();

    fn handle(&mut self, msg: RequestFinished, ctx: &mut Context<Self>) {
        self.finished(msg, now(), ctx);
    }
}

impl RetryCoordinator {
    /// A request ended, as its report says, at `now`.
    fn finished(&mut self, msg: RequestFinished, now: Instant, ctx: &mut Context<Self>) {
        crate::exec::supervise::guarded(self, ctx, WHO, |act, _| {
            if msg.first_report {
                act.count_request(now);
            }
            if let (RequestEnd::Succeeded { .. }, Some(t)) = (msg.end, &mut act.throttle) {
                t.succeeded();
            }
            act.metrics.record_end(msg.end);
        });
    }
}

/// An attempt was made but its outcome is not a failure the coordinator decides
/// on (a cancelled attempt, one the deadline cut, one the stream retries at once
/// in another form): counted so attempts add up to the provider's calls.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct AttemptAbandoned {
    /// How it ended: `cancelled`, or a failure category's name.
    pub outcome: &'static str,
}

impl AttemptAbandoned {
    /// An attempt its caller cancelled.
    /// An attempt its caller cancelled.
    pub const CANCELLED: AttemptAbandoned = AttemptAbandoned {
        outcome: "cancelled",
    };
}

impl Handler<AttemptAbandoned> for RetryCoordinator {
    type Result = ();

    fn handle(&mut self, msg: AttemptAbandoned, _: &mut Context<Self>) {
        self.metrics.record_attempt(msg.outcome);
    }
}

/// Asks whether a hedge may go to this provider: as a retry does, it needs
/// the retry throttle above half (if set) and spends one retry of the
/// budget; `false` when either refuses.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct SpendHedge;

impl Handler<SpendHedge> for RetryCoordinator {
    type Result = bool;

    fn handle(&mut self, _: SpendHedge, ctx: &mut Context<Self>) -> bool {
        crate::exec::supervise::guarded(self, ctx, WHO, |act, _| {
            let throttled = act.throttle.as_ref().is_some_and(|t| !t.allows());
            !throttled && act.budget.try_retry(now())
        })
        .unwrap_or(false)
    }
}

/// Asks for the provider's metrics.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ProviderMetrics")]
pub struct GetMetrics;

impl Handler<GetMetrics> for RetryCoordinator {
    type Result = MessageResult<GetMetrics>;

    fn handle(&mut self, _: GetMetrics, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.metrics.clone())
    }
}

/// Makes a handler fail, to test the supervisor.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct Crash;

#[cfg(test)]
impl Handler<Crash> for RetryCoordinator {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        crate::exec::supervise::guarded(self, ctx, WHO, |_, _| panic!("injected failure"));
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::failure::Category;

    #[test]
    fn a_failed_coordinator_is_restarted_at_the_same_address() {
        actix::System::new().block_on(async {
            let coordinator = actix::Supervisor::start(|_| {
                RetryCoordinator::new(RetryPolicy::default(), BudgetConfig::default(), 1)
            });
            coordinator.send(Crash).await.unwrap();
            let decision = coordinator
                .send(AttemptFailed {
                    failure: Failure::new(Category::ServerError, "p", "boom"),
                    state: AttemptState {
                        attempts: 1,
                        ..AttemptState::default()
                    },
                    policy: None,
                    first_report: true,
                })
                .await
                .expect("the same address answers");
            assert!(matches!(decision, Decision::Retry { .. }), "{decision:?}");
            let metrics = coordinator.send(GetMetrics).await.unwrap();
            assert_eq!(metrics.attempts.get("server_error"), Some(&1));
        });
    }

    #[test]
    fn a_retry_the_budget_refuses_becomes_a_budget_give_up() {
        let failure = Failure::new(Category::ServerError, "p", "boom");
        let state = AttemptState {
            attempts: 1,
            backoff_so_far: Duration::ZERO,
            previous_delay: None,
            time_left: None,
        };
        let policy = RetryPolicy::default();
        let mut budget = RetryBudget::new(BudgetConfig {
            ratio: 0.0,
            min_retries_per_sec: 0,
            window: Duration::from_secs(10),
        });
        let now = Instant::now();
        let refused = decide_within_budget(&policy, &failure, state, 0.5, (&mut budget, None), now);
        assert_eq!(refused, Decision::GiveUp(GiveUp::BudgetExhausted));
        let mut metrics = ProviderMetrics::default();
        metrics.record_decision(&refused);
        assert_eq!((metrics.retries, metrics.budget_rejections), (0, 1));

        let mut roomy = RetryBudget::new(BudgetConfig::default());
        let granted = decide_within_budget(&policy, &failure, state, 0.5, (&mut roomy, None), now);
        assert!(matches!(granted, Decision::Retry { .. }), "{granted:?}");

        // A throttle drained below half refuses first, and spends no budget.
        let mut throttle = RetryThrottle::new(ThrottleConfig {
            max_tokens: 4,
            token_ratio: 1.0,
        });
        let decide_now = |budget: &mut RetryBudget, t: &mut RetryThrottle| {
            decide_within_budget(&policy, &failure, state, 0.5, (budget, Some(t)), now)
        };
        assert!(matches!(
            decide_now(&mut roomy, &mut throttle),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide_now(&mut roomy, &mut throttle),
            Decision::GiveUp(GiveUp::Throttled),
            "2 of 4 left is not above half"
        );
        throttle.succeeded();
        throttle.succeeded();
        assert!(matches!(
            decide_now(&mut roomy, &mut throttle),
            Decision::Retry { .. }
        ));
        // A failure no retry mends takes no token.
        let bad = Failure::new(Category::InvalidRequest, "p", "bad");
        let before = throttle.tokens();
        let _ = decide_within_budget(
            &policy,
            &bad,
            state,
            0.5,
            (&mut roomy, Some(&mut throttle)),
            now,
        );
        assert_eq!(throttle.tokens(), before);
    }
}
