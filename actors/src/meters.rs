//! The metrics operators chart, as `prometheus-client` families: latency and
//! time-to-first-token histograms, counters of requests, attempts, retries,
//! resumptions, failovers, breaker transitions, rejections and pauses, tokens, and
//! gauges of breaker state, in-flight requests and open streams.
//!
//! One [`Meters`] belongs to one client (no global registry): the actors that see
//! an event record it here, [`Meters::encode`] renders the Prometheus text, and
//! [`Meters::register`] adds the same families to a service's own
//! `prometheus_client` registry, so its existing `/metrics` carries steer's.
//!
//! Labels stay bounded: providers are configured names, outcomes and categories
//! are fixed words, and a provider's models beyond [`MAX_MODEL_LABELS`] share the
//! label `other` (model names come from requests). No request id is a label.
//!
//! ```
//! let meters = steer_actors::meters::Meters::new();
//! let target = meters.target("openai", "gpt-4o");
//! meters.attempt(&target, "success", std::time::Duration::from_millis(120));
//! let text = meters.encode();
//! assert!(text.contains(r#"steer_attempts_total{provider="openai",model="gpt-4o",outcome="success"} 1"#));
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::breaker::{BreakerState, Rejection};

/// Model labels kept per provider; later models are counted as `other`.
pub const MAX_MODEL_LABELS: usize = 64;

/// The label models past [`MAX_MODEL_LABELS`] share.
pub const OTHER_MODEL: &str = "other";

/// Bucket bounds of the duration histograms, in seconds: the OpenTelemetry GenAI
/// conventions' advice for `gen_ai.client.operation.duration`.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// Bucket bounds of the time-to-first-token histogram, in seconds (the GenAI
/// conventions' advice for `gen_ai.server.time_to_first_token`).
pub const FIRST_TOKEN_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// A provider and model, as labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TargetLabels {
    /// The provider (a configured name).
    pub provider: Arc<str>,
    /// The model, or [`OTHER_MODEL`].
    pub model: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    provider: Arc<str>,
    model: Arc<str>,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TokenLabels {
    provider: Arc<str>,
    model: Arc<str>,
    token_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransitionLabels {
    provider: Arc<str>,
    model: Arc<str>,
    from: &'static str,
    to: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProviderLabels {
    provider: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FailoverLabels {
    group: Arc<str>,
    from: Arc<str>,
    to: Arc<str>,
}

/// Makes histograms with fixed buckets.
#[derive(Debug, Clone, Copy)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

type Histograms<L> = Family<L, Histogram, Buckets>;

/// The families of one client. Cloning shares them.
#[derive(Clone)]
pub struct Meters {
    inner: Arc<Families>,
}

struct Families {
    requests: Family<OutcomeLabels, Counter>,
    request_duration: Histograms<OutcomeLabels>,
    attempts: Family<OutcomeLabels, Counter>,
    attempt_duration: Histograms<OutcomeLabels>,
    first_token: Histograms<OutcomeLabels>,
    retries: Family<OutcomeLabels, Counter>,
    budget_rejections: Family<ProviderLabels, Counter>,
    backoff_seconds: Family<ProviderLabels, Counter<f64>>,
    resumptions: Family<TargetLabels, Counter>,
    failovers: Family<FailoverLabels, Counter>,
    transitions: Family<TransitionLabels, Counter>,
    breaker_state: Family<TargetLabels, Gauge>,
    rejections: Family<OutcomeLabels, Counter>,
    pauses: Family<TargetLabels, Counter>,
    pause_seconds: Family<TargetLabels, Counter<f64>>,
    tokens: Family<TokenLabels, Counter>,
    in_flight: Family<ProviderLabels, Gauge>,
    open_streams: Family<ProviderLabels, Gauge>,
    shared_up: Gauge,
    /// The model labels given out, per provider.
    models: RwLock<HashMap<Arc<str>, HashSet<Arc<str>>>>,
    /// [`OTHER_MODEL`], shared.
    other: Arc<str>,
    /// steer's own registry of the families above, for [`Meters::encode`].
    registry: Registry,
}

impl std::fmt::Debug for Meters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meters").finish_non_exhaustive()
    }
}

impl Default for Meters {
    fn default() -> Self {
        Meters::new()
    }
}

/// The label of an endpoint's breaker (as opposed to a model's).
const ENDPOINT: &str = "";

/// The word a breaker state is counted under.
pub fn state_name(s: BreakerState) -> &'static str {
    match s {
        BreakerState::Closed => "closed",
        BreakerState::HalfOpen => "half_open",
        BreakerState::Open => "open",
        BreakerState::ForcedOpen => "forced_open",
        BreakerState::Disabled => "disabled",
    }
}

/// The gauge value of a breaker state: 0 closed, 1 half-open, 2 open, 3 forced
/// open, 4 disabled.
pub fn state_value(s: BreakerState) -> i64 {
    match s {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
        BreakerState::ForcedOpen => 3,
        BreakerState::Disabled => 4,
    }
}

/// The word a rejection is counted under.
pub fn rejection_name(r: &Rejection) -> &'static str {
    match r {
        Rejection::Open { .. } => "open",
        Rejection::ProbesBusy => "probes_busy",
        Rejection::ForcedOpen => "forced_open",
        Rejection::Paused { .. } => "paused",
    }
}

impl Meters {
    /// Empty families, registered in a registry of their own.
    pub fn new() -> Self {
        let d = || Buckets(&DURATION_BUCKETS);
        let mut f = Families {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(d()),
            attempts: Family::default(),
            attempt_duration: Family::new_with_constructor(d()),
            first_token: Family::new_with_constructor(Buckets(&FIRST_TOKEN_BUCKETS)),
            retries: Family::default(),
            budget_rejections: Family::default(),
            backoff_seconds: Family::default(),
            resumptions: Family::default(),
            failovers: Family::default(),
            transitions: Family::default(),
            breaker_state: Family::default(),
            rejections: Family::default(),
            pauses: Family::default(),
            pause_seconds: Family::default(),
            tokens: Family::default(),
            in_flight: Family::default(),
            open_streams: Family::default(),
            shared_up: Gauge::default(),
            models: RwLock::new(HashMap::new()),
            other: Arc::from(OTHER_MODEL),
            registry: Registry::default(),
        };
        let mut registry = Registry::default();
        f.register_into(&mut registry);
        f.registry = registry;
        Meters { inner: Arc::new(f) }
    }

    /// Adds steer's families to `registry` (a service's own), under its prefix.
    ///
    /// ```
    /// use prometheus_client::registry::Registry;
    /// let meters = steer_actors::meters::Meters::new();
    /// let mut registry = Registry::default();
    /// meters.register(&mut registry);
    /// meters.request(&meters.target("openai", "gpt-4o"), "success", std::time::Duration::ZERO);
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    /// assert!(text.contains("steer_requests_total{"));
    /// ```
    pub fn register(&self, registry: &mut Registry) {
        self.inner.register_into(registry);
    }

    /// The families in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry);
        out
    }

    /// The labels of `provider` and `model`, with the model label bounded. (An
    /// `Arc<str>` provider is shared, not copied: the request path passes its own.)
    pub fn target(&self, provider: impl Into<Arc<str>>, model: &str) -> TargetLabels {
        let provider = provider.into();
        let model = self.model_label(&provider, model);
        TargetLabels { provider, model }
    }

    fn model_label(&self, provider: &Arc<str>, model: &str) -> Arc<str> {
        if let Some(known) = self.inner.models.read().get(provider) {
            if let Some(m) = known.get(model) {
                return m.clone();
            }
            if known.len() >= MAX_MODEL_LABELS {
                return self.inner.other.clone();
            }
        }
        let mut models = self.inner.models.write();
        let known = models.entry(provider.clone()).or_default();
        if let Some(m) = known.get(model) {
            return m.clone();
        }
        if known.len() >= MAX_MODEL_LABELS {
            return self.inner.other.clone();
        }
        let m: Arc<str> = Arc::from(model);
        known.insert(m.clone());
        m
    }

    fn with_outcome(t: &TargetLabels, outcome: &'static str) -> OutcomeLabels {
        OutcomeLabels {
            provider: t.provider.clone(),
            model: t.model.clone(),
            outcome,
        }
    }

    /// A request ended with `outcome` (`success`, a failure category,
    /// `breaker_rejected`, `cancelled`) after `elapsed`.
    pub fn request(&self, t: &TargetLabels, outcome: &'static str, elapsed: Duration) {
        let labels = Self::with_outcome(t, outcome);
        self.inner.requests.get_or_create(&labels).inc();
        self.inner
            .request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// An attempt ended with `outcome` after `elapsed`.
    pub fn attempt(&self, t: &TargetLabels, outcome: &'static str, elapsed: Duration) {
        let labels = Self::with_outcome(t, outcome);
        self.inner.attempts.get_or_create(&labels).inc();
        self.inner
            .attempt_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// A stream that ended with `outcome` delivered its first content after `elapsed`.
    pub fn first_token(&self, t: &TargetLabels, outcome: &'static str, elapsed: Duration) {
        self.inner
            .first_token
            .get_or_create(&Self::with_outcome(t, outcome))
            .observe(elapsed.as_secs_f64());
    }

    /// A retry of a `category` failure was scheduled after `delay`.
    pub fn retry(&self, t: &TargetLabels, category: &'static str, delay: Duration) {
        self.inner
            .retries
            .get_or_create(&Self::with_outcome(t, category))
            .inc();
        self.inner
            .backoff_seconds
            .get_or_create(&ProviderLabels {
                provider: t.provider.clone(),
            })
            .inc_by(delay.as_secs_f64());
    }

    /// A retry was refused because the provider's retry budget was spent.
    pub fn budget_rejection(&self, t: &TargetLabels) {
        self.inner
            .budget_rejections
            .get_or_create(&ProviderLabels {
                provider: t.provider.clone(),
            })
            .inc();
    }

    /// A broken stream was continued on the same target.
    pub fn resumption(&self, t: &TargetLabels) {
        self.inner.resumptions.get_or_create(t).inc();
    }

    /// A request of `group` moved from one target to another.
    pub fn failover(&self, group: &str, from: &str, to: &str) {
        self.inner
            .failovers
            .get_or_create(&FailoverLabels {
                group: Arc::from(group),
                from: Arc::from(from),
                to: Arc::from(to),
            })
            .inc();
    }

    /// A breaker changed state; `model` is `None` for the provider's endpoint.
    pub fn transition(
        &self,
        provider: &str,
        model: Option<&str>,
        from: BreakerState,
        to: BreakerState,
    ) {
        let t = self.breaker_labels(provider, model);
        self.inner
            .transitions
            .get_or_create(&TransitionLabels {
                provider: t.provider.clone(),
                model: t.model.clone(),
                from: state_name(from),
                to: state_name(to),
            })
            .inc();
        self.inner
            .breaker_state
            .get_or_create(&t)
            .set(state_value(to));
    }

    /// Sets a breaker's state gauge without a transition (a new breaker).
    pub fn breaker_state(&self, provider: &str, model: Option<&str>, state: BreakerState) {
        let t = self.breaker_labels(provider, model);
        self.inner
            .breaker_state
            .get_or_create(&t)
            .set(state_value(state));
    }

    fn breaker_labels(&self, provider: &str, model: Option<&str>) -> TargetLabels {
        match model {
            Some(m) => self.target(provider, m),
            None => TargetLabels {
                provider: Arc::from(provider),
                model: Arc::from(ENDPOINT),
            },
        }
    }

    /// A breaker refused a request.
    pub fn rejection(&self, t: &TargetLabels, rejection: &Rejection) {
        self.inner
            .rejections
            .get_or_create(&Self::with_outcome(t, rejection_name(rejection)))
            .inc();
    }

    /// A server-directed pause of `wait` was obeyed for `model`.
    pub fn pause(&self, provider: &str, model: &str, wait: Duration) {
        let t = self.target(provider, model);
        self.inner.pauses.get_or_create(&t).inc();
        self.inner
            .pause_seconds
            .get_or_create(&t)
            .inc_by(wait.as_secs_f64());
    }

    /// Tokens a reply used.
    pub fn tokens(&self, t: &TargetLabels, input: u64, output: u64) {
        for (token_type, n) in [("input", input), ("output", output)] {
            if n > 0 {
                self.inner
                    .tokens
                    .get_or_create(&TokenLabels {
                        provider: t.provider.clone(),
                        model: t.model.clone(),
                        token_type,
                    })
                    .inc_by(n);
            }
        }
    }

    /// Whether the replica's shared state (Redis) answers.
    pub fn shared_up(&self, up: bool) {
        self.inner.shared_up.set(i64::from(up));
    }

    /// Counts a request in flight at `provider` until the guard drops.
    pub fn in_flight(&self, provider: impl Into<Arc<str>>) -> GaugeGuard {
        GaugeGuard::new(self.inner.in_flight.get_or_create_owned(&ProviderLabels {
            provider: provider.into(),
        }))
    }

    /// Counts a stream open at `provider` until the guard drops.
    pub fn open_stream(&self, provider: impl Into<Arc<str>>) -> GaugeGuard {
        GaugeGuard::new(
            self.inner
                .open_streams
                .get_or_create_owned(&ProviderLabels {
                    provider: provider.into(),
                }),
        )
    }
}

impl Families {
    fn register_into(&self, r: &mut Registry) {
        r.register(
            "steer_requests",
            "Requests ended, by provider, model and outcome",
            self.requests.clone(),
        );
        r.register_with_unit(
            "steer_request_duration",
            "Time from a request's start to its end, retries and waits included",
            Unit::Seconds,
            self.request_duration.clone(),
        );
        r.register(
            "steer_attempts",
            "Attempts, by outcome (success or the failure's category)",
            self.attempts.clone(),
        );
        r.register_with_unit(
            "steer_attempt_duration",
            "Time one attempt took, by outcome",
            Unit::Seconds,
            self.attempt_duration.clone(),
        );
        r.register_with_unit(
            "steer_time_to_first_token",
            "Time from a stream's start to its first content, by the stream's outcome",
            Unit::Seconds,
            self.first_token.clone(),
        );
        r.register(
            "steer_retries",
            "Retries scheduled, by the failure's category",
            self.retries.clone(),
        );
        r.register(
            "steer_retry_budget_rejections",
            "Retries refused because the provider's retry budget was spent",
            self.budget_rejections.clone(),
        );
        r.register_with_unit(
            "steer_backoff",
            "Backoff delays scheduled",
            Unit::Seconds,
            self.backoff_seconds.clone(),
        );
        r.register(
            "steer_resumptions",
            "Broken streams continued on the same target",
            self.resumptions.clone(),
        );
        r.register(
            "steer_failovers",
            "Requests of a model group moved from one target to another",
            self.failovers.clone(),
        );
        r.register(
            "steer_breaker_transitions",
            "Breaker state changes (model \"\" is the provider's endpoint)",
            self.transitions.clone(),
        );
        r.register(
            "steer_breaker_state",
            "Breaker state: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled (model \"\" is the endpoint)",
            self.breaker_state.clone(),
        );
        r.register(
            "steer_breaker_rejections",
            "Requests a breaker refused, by reason",
            self.rejections.clone(),
        );
        r.register(
            "steer_pauses",
            "Server-directed pauses (rate limits) obeyed",
            self.pauses.clone(),
        );
        r.register_with_unit(
            "steer_pause",
            "Length of the server-directed pauses obeyed",
            Unit::Seconds,
            self.pause_seconds.clone(),
        );
        r.register(
            "steer_tokens",
            "Tokens used, by type (input or output)",
            self.tokens.clone(),
        );
        r.register(
            "steer_in_flight_requests",
            "Requests and streams in flight",
            self.in_flight.clone(),
        );
        r.register(
            "steer_open_streams",
            "Streams open",
            self.open_streams.clone(),
        );
        r.register(
            "steer_shared_up",
            "Whether the shared state (Redis) answers: 1 yes, 0 no (only with sharing on)",
            self.shared_up.clone(),
        );
    }
}

/// Holds one up on a gauge; takes it off when dropped.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn new(gauge: Gauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_labels_are_bounded_per_provider() {
        let m = Meters::new();
        for i in 0..MAX_MODEL_LABELS {
            assert_eq!(&*m.target("p", &format!("m{i}")).model, format!("m{i}"));
        }
        assert_eq!(&*m.target("p", "one-too-many").model, OTHER_MODEL);
        // A known model keeps its label; another provider has its own room.
        assert_eq!(&*m.target("p", "m3").model, "m3");
        assert_eq!(&*m.target("q", "one-too-many").model, "one-too-many");
    }

    #[test]
    fn histograms_and_gauges_render() {
        let m = Meters::new();
        let t = m.target("openai", "gpt-4o");
        m.attempt(&t, "rate_limited", Duration::from_millis(30));
        m.attempt(&t, "success", Duration::from_millis(300));
        m.first_token(&t, "success", Duration::from_millis(50));
        m.tokens(&t, 12, 0);
        m.transition(
            "openai",
            Some("gpt-4o"),
            BreakerState::Closed,
            BreakerState::Open,
        );
        let guard = m.open_stream("openai");
        let text = m.encode();
        assert!(text.contains(
            r#"steer_attempt_duration_seconds_bucket{provider="openai",model="gpt-4o",outcome="rate_limited",le="0.04"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"steer_attempt_duration_seconds_bucket{provider="openai",model="gpt-4o",outcome="success",le="0.04"} 0"#
        ));
        assert!(text.contains(
            r#"steer_time_to_first_token_seconds_count{provider="openai",model="gpt-4o",outcome="success"} 1"#
        ));
        assert!(text.contains(
            r#"steer_tokens_total{provider="openai",model="gpt-4o",token_type="input"} 12"#
        ));
        assert!(!text.contains(r#"token_type="output""#), "no zero series");
        assert!(text.contains(
            r#"steer_breaker_transitions_total{provider="openai",model="gpt-4o",from="closed",to="open"} 1"#
        ));
        assert!(text.contains(r#"steer_breaker_state{provider="openai",model="gpt-4o"} 2"#));
        assert!(text.contains(r#"steer_open_streams{provider="openai"} 1"#));
        drop(guard);
        assert!(m
            .encode()
            .contains(r#"steer_open_streams{provider="openai"} 0"#));
    }

    #[test]
    fn a_service_registry_carries_the_same_series() {
        let m = Meters::new();
        let mut theirs = Registry::with_prefix("svc");
        m.register(&mut theirs);
        m.retry(
            &m.target("anthropic", "claude"),
            "overloaded",
            Duration::from_millis(250),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &theirs).unwrap();
        assert!(text.contains(
            r#"svc_steer_retries_total{provider="anthropic",model="claude",outcome="overloaded"} 1"#
        ), "{text}");
        assert!(text.contains(r#"svc_steer_backoff_seconds_total{provider="anthropic"} 0.25"#));
    }
}
