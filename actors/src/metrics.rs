//! Reliability metrics of a provider, kept by its RetryCoordinator, and their
//! Prometheus text rendering.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::breaker::{BreakerState, BreakerStatus};
use crate::retry::{Decision, GiveUp, RequestEnd};

/// Counters of one provider. Attempt counts add up to the calls the provider saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProviderMetrics {
    /// Requests counted: each at its first report to the coordinator (a failed
    /// first attempt, or its end), so a request still on its first attempt is
    /// not counted yet.
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
    pub fn record_attempt(&mut self, outcome: &'static str) {
        bump(self.attempts.entry(outcome).or_default());
    }

    /// Counts what the coordinator answered a failed attempt.
    pub fn record_decision(&mut self, decision: &Decision) {
        match decision {
            Decision::Retry { delay, .. } => {
                bump(&mut self.retries);
                self.backoff_seconds += delay.as_secs_f64();
            }
            Decision::GiveUp(GiveUp::BudgetExhausted) => bump(&mut self.budget_rejections),
            Decision::GiveUp(_) => {}
        }
    }

    /// Counts how a request ended.
    pub fn record_end(&mut self, end: RequestEnd) {
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

/// One provider's metrics and breaker status, as shown to operators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderReport {
    /// The provider.
    pub provider: String,
    /// Its breaker.
    pub breaker: BreakerStatus,
    /// Its counters.
    pub metrics: ProviderMetrics,
}

fn state_value(s: BreakerState) -> u8 {
    match s {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
        BreakerState::ForcedOpen => 3,
        BreakerState::Disabled => 4,
    }
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders reports in the Prometheus text exposition format.
///
/// ```
/// let text = steer_actors::metrics::render_prometheus(&[]);
/// assert!(text.contains("# TYPE steer_requests_total counter"));
/// ```
pub fn render_prometheus(reports: &[ProviderReport]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, lines: Vec<String>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
    };
    let each = |f: &dyn Fn(&ProviderReport, &str) -> Vec<String>| -> Vec<String> {
        reports
            .iter()
            .flat_map(|r| f(r, &label(&r.provider)))
            .collect()
    };
    family(
        "steer_requests_total",
        "counter",
        "Requests started.",
        each(&|r, p| {
            vec![format!(
                "steer_requests_total{{provider=\"{p}\"}} {}",
                r.metrics.requests
            )]
        }),
    );
    family(
        "steer_attempts_total",
        "counter",
        "Attempts by outcome (success or failure category).",
        each(&|r, p| {
            r.metrics
                .attempts
                .iter()
                .map(|(o, n)| {
                    format!(
                        "steer_attempts_total{{provider=\"{p}\",outcome=\"{}\"}} {n}",
                        label(o)
                    )
                })
                .collect()
        }),
    );
    family(
        "steer_successes_total",
        "counter",
        "Requests that succeeded.",
        each(&|r, p| {
            vec![format!(
                "steer_successes_total{{provider=\"{p}\"}} {}",
                r.metrics.successes
            )]
        }),
    );
    family(
        "steer_successes_after_retry_total",
        "counter",
        "Requests that succeeded after a retry.",
        each(&|r, p| {
            vec![format!(
                "steer_successes_after_retry_total{{provider=\"{p}\"}} {}",
                r.metrics.successes_after_retry
            )]
        }),
    );
    family(
        "steer_final_failures_total",
        "counter",
        "Requests that failed for good, by category.",
        each(&|r, p| {
            r.metrics
                .final_failures
                .iter()
                .map(|(c, n)| {
                    format!(
                        "steer_final_failures_total{{provider=\"{p}\",category=\"{}\"}} {n}",
                        label(c)
                    )
                })
                .collect()
        }),
    );
    family(
        "steer_retries_total",
        "counter",
        "Retries scheduled.",
        each(&|r, p| {
            vec![format!(
                "steer_retries_total{{provider=\"{p}\"}} {}",
                r.metrics.retries
            )]
        }),
    );
    family(
        "steer_retry_budget_rejections_total",
        "counter",
        "Retries refused by the retry budget.",
        each(&|r, p| {
            vec![format!(
                "steer_retry_budget_rejections_total{{provider=\"{p}\"}} {}",
                r.metrics.budget_rejections
            )]
        }),
    );
    family(
        "steer_backoff_seconds_total",
        "counter",
        "Sum of backoff delays scheduled.",
        each(&|r, p| {
            vec![format!(
                "steer_backoff_seconds_total{{provider=\"{p}\"}} {}",
                r.metrics.backoff_seconds
            )]
        }),
    );
    family(
        "steer_cancelled_total",
        "counter",
        "Requests cancelled by their caller.",
        each(&|r, p| {
            vec![format!(
                "steer_cancelled_total{{provider=\"{p}\"}} {}",
                r.metrics.cancelled
            )]
        }),
    );
    family(
        "steer_breaker_state",
        "gauge",
        "Breaker state: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled.",
        each(&|r, p| {
            vec![format!(
                "steer_breaker_state{{provider=\"{p}\"}} {}",
                state_value(r.breaker.state)
            )]
        }),
    );
    family(
        "steer_model_breaker_state",
        "gauge",
        "A model's breaker state (same values); models are bounded per provider.",
        each(&|r, p| {
            r.breaker
                .models
                .iter()
                .map(|m| {
                    format!(
                        "steer_model_breaker_state{{provider=\"{p}\",model=\"{}\"}} {}",
                        label(m.model.as_deref().unwrap_or("")),
                        state_value(m.state)
                    )
                })
                .collect()
        }),
    );
    family(
        "steer_model_paused_seconds",
        "gauge",
        "Time left on a model's server-directed pause.",
        each(&|r, p| {
            r.breaker
                .models
                .iter()
                .map(|m| {
                    format!(
                        "steer_model_paused_seconds{{provider=\"{p}\",model=\"{}\"}} {}",
                        label(m.model.as_deref().unwrap_or("")),
                        m.paused_for.map_or(0.0, |d| d.as_secs_f64())
                    )
                })
                .collect()
        }),
    );
    family(
        "steer_breaker_opened_total",
        "counter",
        "Times the breaker opened (the endpoint's and its models').",
        each(&|r, p| {
            let opened = r
                .breaker
                .models
                .iter()
                .fold(r.breaker.stats.opened, |n, m| {
                    n.saturating_add(m.stats.opened)
                });
            vec![format!(
                "steer_breaker_opened_total{{provider=\"{p}\"}} {opened}"
            )]
        }),
    );
    family(
        "steer_breaker_rejected_total",
        "counter",
        "Calls the breaker rejected.",
        each(&|r, p| {
            let rejected = r
                .breaker
                .models
                .iter()
                .fold(r.breaker.stats.rejected, |n, m| {
                    n.saturating_add(m.stats.rejected)
                });
            vec![format!(
                "steer_breaker_rejected_total{{provider=\"{p}\"}} {rejected}"
            )]
        }),
    );
    out
}
