//! What a provider's RetryCoordinator counts: how each request ended
//! ([`RequestEnd`]) and the counters it adds up ([`ProviderMetrics`]). Kept
//! here, below the coordinator, so that the operator report in
//! [`metrics`](crate::provider::report) reads them without retry reading it back.

use std::collections::BTreeMap;

use serde::Serialize;

use super::policy::{Decision, GiveUp};
use crate::failure::Category;

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

impl RequestEnd {
    /// The word the end is counted under: `success`, the failure's category,
    /// `breaker_rejected` or `cancelled`.
    pub fn outcome(self) -> &'static str {
        match self {
            RequestEnd::Succeeded { .. } => "success",
            RequestEnd::Failed { category } => category.as_str(),
            RequestEnd::Rejected => "breaker_rejected",
            RequestEnd::Cancelled => "cancelled",
        }
    }
}

/// Counters of one provider. Attempt counts add up to the calls the provider saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProviderMetrics {
    /// Requests counted, each once at its end: so `requests` is `successes` plus
    /// the final failures plus `cancelled`, and a request in flight is not
    /// counted yet.
    pub requests: u64,
    /// Attempts by outcome: `success`, or the failure's category.
    pub attempts: BTreeMap<&'static str, u64>,
    /// Requests that succeeded.
    pub successes: u64,
    /// Requests that succeeded after at least one retry.
    pub successes_after_retry: u64,
    /// Requests that failed for good, by the last failure's category.
    pub final_failures: BTreeMap<&'static str, u64>,
    /// Retries scheduled.
    pub retries: u64,
    /// Retries refused because the retry budget was spent.
    pub budget_rejections: u64,
    /// Retries refused by the retry throttle.
    pub throttled: u64,
    /// Sum of all backoff delays scheduled, in seconds.
    pub backoff_seconds: f64,
    /// Requests cancelled by their caller.
    pub cancelled: u64,
}

/// Adds one to a counter, saturating.
fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

impl ProviderMetrics {
    /// Counts an attempt by its outcome: `success`, `cancelled`, or a failure's category.
    pub(crate) fn record_attempt(&mut self, outcome: &'static str) {
        bump(self.attempts.entry(outcome).or_default());
    }

    /// Counts what the coordinator answered a failed attempt.
    pub(crate) fn record_decision(&mut self, decision: &Decision) {
        match decision {
            Decision::Retry { delay, .. } => {
                bump(&mut self.retries);
                self.backoff_seconds += delay.as_secs_f64();
            }
            Decision::GiveUp(GiveUp::BudgetExhausted) => bump(&mut self.budget_rejections),
            Decision::GiveUp(GiveUp::Throttled) => bump(&mut self.throttled),
            Decision::GiveUp(_) => {}
        }
    }

    /// Counts how a request ended (and the request itself).
    pub fn record_end(&mut self, end: RequestEnd) {
        bump(&mut self.requests);
        match end {
            RequestEnd::Succeeded { attempts } => {
                self.record_attempt("success");
                bump(&mut self.successes);
                if attempts > 1 {
                    bump(&mut self.successes_after_retry);
                }
            }
            RequestEnd::Failed { category } => {
                bump(self.final_failures.entry(category.as_str()).or_default());
            }
            RequestEnd::Rejected => {
                bump(self.final_failures.entry("breaker_rejected").or_default())
            }
            RequestEnd::Cancelled => bump(&mut self.cancelled),
        }
    }

    /// All attempts, whatever their outcome.
    pub fn total_attempts(&self) -> u64 {
        self.attempts.values().sum()
    }
}
