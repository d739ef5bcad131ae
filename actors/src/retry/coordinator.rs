//! The RetryCoordinator actor: one per provider. It owns the retry policy, the
//! retry budget, the jitter source and the provider's metrics, and answers "retry
//! or give up?" after every failed attempt.

use std::sync::Arc;

use actix::prelude::*;

use crate::clock::now;

use crate::MAILBOX_CAPACITY;

use super::budget::{BudgetConfig, RetryBudget};
use super::policy::{decide, AttemptState, Decision, GiveUp, RetryPolicy};
use crate::failure::{Category, Failure};
use crate::metrics::ProviderMetrics;

/// The retry coordinator of one provider.
pub struct RetryCoordinator {
    policy: Arc<RetryPolicy>,
    budget: RetryBudget,
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
            rng: fastrand::Rng::with_seed(seed),
            metrics: ProviderMetrics::default(),
        }
    }
}

impl Actor for RetryCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl RetryCoordinator {
    /// Counts a request, at its first report: a failed first attempt or its end.
    /// (One message fewer per request than announcing every start.)
    fn count_request(&mut self) {
        self.metrics.requests += 1;
        self.budget.record_request(now());
    }
}

/// An attempt failed: retry or give up?
#[derive(Debug, Clone, Message)]
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

    fn handle(&mut self, msg: AttemptFailed, _: &mut Context<Self>) -> Self::Result {
        if msg.first_report {
            self.count_request();
        }
        *self
            .metrics
            .attempts
            .entry(msg.failure.category.as_str())
            .or_default() += 1;
        let policy = msg.policy.as_ref().unwrap_or(&self.policy);
        let mut decision = decide(policy, &msg.failure, msg.state, self.rng.f64());
        if let Decision::Retry { delay, .. } = decision {
            if self.budget.try_retry(now()) {
                self.metrics.retries += 1;
                self.metrics.backoff_seconds += delay.as_secs_f64();
            } else {
                self.metrics.budget_rejections += 1;
                decision = Decision::GiveUp(GiveUp::BudgetExhausted);
            }
        }
        MessageResult(decision)
    }
}

/// How a request ended (one-way).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct RequestFinished {
    /// How.
    pub end: RequestEnd,
    /// Whether this is the request's first report (no failed attempt was
    /// reported before): it is counted then.
    pub first_report: bool,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEnd {
    /// It succeeded after this many attempts.
    Succeeded {
        /// Attempts made.
        attempts: u32,
    },
    /// It failed for good with this category.
    Failed {
        /// The last failure's category.
        category: Category,
    },
    /// The breaker did not admit it.
    Rejected,
    /// Its caller cancelled it.
    Cancelled,
}

impl Handler<RequestFinished> for RetryCoordinator {
    type Result = ();

    fn handle(&mut self, msg: RequestFinished, _: &mut Context<Self>) {
        if msg.first_report {
            self.count_request();
        }
        match msg.end {
            RequestEnd::Succeeded { attempts } => {
                *self.metrics.attempts.entry("success").or_default() += 1;
                self.metrics.successes += 1;
                if attempts > 1 {
                    self.metrics.successes_after_retry += 1;
                }
            }
            RequestEnd::Failed { category } => {
                *self
                    .metrics
                    .final_failures
                    .entry(category.as_str())
                    .or_default() += 1;
            }
            RequestEnd::Rejected => {
                *self
                    .metrics
                    .final_failures
                    .entry("breaker_rejected")
                    .or_default() += 1;
            }
            RequestEnd::Cancelled => self.metrics.cancelled += 1,
        }
    }
}

/// An attempt was made but its outcome is not a failure the coordinator decides
/// on (a cancelled attempt): counted so attempts add up to the provider's calls.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct AttemptAbandoned;

impl Handler<AttemptAbandoned> for RetryCoordinator {
    type Result = ();

    fn handle(&mut self, _: AttemptAbandoned, _: &mut Context<Self>) {
        *self.metrics.attempts.entry("cancelled").or_default() += 1;
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
