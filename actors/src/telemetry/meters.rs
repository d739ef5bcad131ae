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
//! let meters = steer_actors::telemetry::meters::Meters::new();
//! let target = meters.target("openai", "gpt-4o");
//! meters.attempt(&target, "success", std::time::Duration::from_millis(120));
//! let text = meters.encode();
//! assert!(text.contains(r#"steer_attempts_total{provider="openai",model="gpt-4o",outcome="success"} 1"#));
//! ```

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Model labels kept per provider; later models are counted as `other`.
pub const MAX_MODEL_LABELS: usize = 64;

/// The label models past [`MAX_MODEL_LABELS`] share.
pub const OTHER_MODEL: &str = "other";

/// Bucket bounds of the duration histograms, in seconds: the OpenTelemetry GenAI
/// conventions' advice for `gen_ai.client.operation.duration`.
pub(crate) const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// Bucket bounds of the time-to-first-token histogram, in seconds (the GenAI
/// conventions' advice for `gen_ai.server.time_to_first_token`).
pub(crate) const FIRST_TOKEN_BUCKETS: [f64; 16] = [
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
struct SpendLabels {
    provider: Arc<str>,
    model: Arc<str>,
    /// `delivered` or `wasted`.
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SpendTokenLabels {
    provider: Arc<str>,
    model: Arc<str>,
    outcome: &'static str,
    /// `true` when steer estimated them.
    estimated: &'static str,
}

/// One attempt's spend, as the families count it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpendSample {
    /// `delivered` (its output is in the reply) or `wasted`.
    pub outcome: &'static str,
    /// What it cost in dollars; `None` when unpriced.
    pub dollars: Option<f64>,
    /// Its tokens, input and output.
    pub tokens: u64,
    /// Whether steer estimated them.
    pub estimated: bool,
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
struct HedgeLabels {
    group: Arc<str>,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EjectionLabels {
    group: Arc<str>,
    target: Arc<str>,
    reason: &'static str,
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
    throttled: Family<ProviderLabels, Counter>,
    backoff_seconds: Family<ProviderLabels, Counter<f64>>,
    resumptions: Family<TargetLabels, Counter>,
    failovers: Family<FailoverLabels, Counter>,
    ejections: Family<EjectionLabels, Counter>,
    hedges: Family<HedgeLabels, Counter>,
    transitions: Family<TransitionLabels, Counter>,
    breaker_state: Family<TargetLabels, Gauge>,
    rejections: Family<OutcomeLabels, Counter>,
    pauses: Family<TargetLabels, Counter>,
    pause_seconds: Family<TargetLabels, Counter<f64>>,
    tokens: Family<TokenLabels, Counter>,
    usage_unknown: Family<TargetLabels, Counter>,
    spend_usd: Family<SpendLabels, Counter<f64>>,
    spend_tokens: Family<SpendTokenLabels, Counter>,
    unpriced: Family<TargetLabels, Counter>,
    in_flight: Family<ProviderLabels, Gauge>,
    open_streams: Family<ProviderLabels, Gauge>,
    shared_up: Gauge,
    /// The model labels given out, per provider, each with its success path's
    /// metrics resolved.
    models: RwLock<HashMap<Arc<str>, ProviderModels>>,
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

/// A breaker state as the families count it: its name (a label) and its
/// level (the gauge: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerLabel {
    /// The label.
    pub name: &'static str,
    /// The gauge's value.
    pub level: i64,
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
            throttled: Family::default(),
            backoff_seconds: Family::default(),
            resumptions: Family::default(),
            failovers: Family::default(),
            ejections: Family::default(),
            hedges: Family::default(),
            transitions: Family::default(),
            breaker_state: Family::default(),
            rejections: Family::default(),
            pauses: Family::default(),
            pause_seconds: Family::default(),
            tokens: Family::default(),
            usage_unknown: Family::default(),
            spend_usd: Family::default(),
            spend_tokens: Family::default(),
            unpriced: Family::default(),
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
    /// let meters = steer_actors::telemetry::meters::Meters::new();
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
        self.target_meters(provider, model).labels().clone()
    }

    /// The labels of `provider` and `model` (bounded as [`target`](Self::target)'s)
    /// with the metrics a successful request records, resolved once per label:
    /// a request that takes it records its success without hashing a label set.
    pub fn target_meters(&self, provider: impl Into<Arc<str>>, model: &str) -> TargetMeters {
        let provider = provider.into();
        if let Some(known) = self.inner.models.read().get(&provider) {
            if let Some(t) = known.get(model) {
                return t;
            }
        }
        let mut models = self.inner.models.write();
        let known = models.entry(provider.clone()).or_default();
        if let Some(t) = known.get(model) {
            return t;
        }
        let label = if known.models.len() >= MAX_MODEL_LABELS {
            self.inner.other.clone()
        } else {
            Arc::from(model)
        };
        let t = TargetMeters(Arc::new(TargetHandles::new(
            TargetLabels {
                provider,
                model: label.clone(),
            },
            self.inner.in_flight.clone(),
        )));
        if Arc::ptr_eq(&label, &self.inner.other) {
            known.other = Some(t.clone());
        } else {
            known.models.insert(label, t.clone());
        }
        t
    }

    /// A request ended with `outcome` (see [`request`](Self::request)).
    pub(crate) fn request_at(&self, t: &TargetMeters, outcome: &'static str, elapsed: Duration) {
        if outcome != SUCCESS {
            return self.request(t.labels(), outcome, elapsed);
        }
        let f = &self.inner;
        let h = &t.0;
        h.requests_ok
            .get_or_init(|| f.requests.get_or_create_owned(&h.ok()))
            .inc();
        h.request_duration_ok
            .get_or_init(|| f.request_duration.get_or_create_owned(&h.ok()))
            .observe(elapsed.as_secs_f64());
    }

    /// An attempt ended with `outcome` (see [`attempt`](Self::attempt)).
    pub(crate) fn attempt_at(&self, t: &TargetMeters, outcome: &'static str, elapsed: Duration) {
        if outcome != SUCCESS {
            return self.attempt(t.labels(), outcome, elapsed);
        }
        let f = &self.inner;
        let h = &t.0;
        h.attempts_ok
            .get_or_init(|| f.attempts.get_or_create_owned(&h.ok()))
            .inc();
        h.attempt_duration_ok
            .get_or_init(|| f.attempt_duration.get_or_create_owned(&h.ok()))
            .observe(elapsed.as_secs_f64());
    }

    /// One attempt's spend at `t` (see [`spend`](Self::spend)), its series
    /// resolved once per target.
    pub fn spend_at(&self, t: &TargetMeters, sample: SpendSample) {
        let f = &self.inner;
        let h = &t.0;
        let wasted = usize::from(sample.outcome != "delivered");
        let outcome = if wasted == 1 { "wasted" } else { "delivered" };
        let labels = || SpendLabels {
            provider: h.labels.provider.clone(),
            model: h.labels.model.clone(),
            outcome,
        };
        match sample.dollars {
            Some(d) => {
                h.spend_usd[wasted]
                    .get_or_init(|| f.spend_usd.get_or_create_owned(&labels()))
                    .inc_by(d);
            }
            None => {
                h.unpriced
                    .get_or_init(|| f.unpriced.get_or_create_owned(&h.labels))
                    .inc();
            }
        };
        if sample.tokens > 0 {
            let estimated = usize::from(sample.estimated);
            h.spend_tokens[wasted][estimated]
                .get_or_init(|| {
                    f.spend_tokens.get_or_create_owned(&SpendTokenLabels {
                        provider: h.labels.provider.clone(),
                        model: h.labels.model.clone(),
                        outcome,
                        estimated: if sample.estimated { "true" } else { "false" },
                    })
                })
                .inc_by(sample.tokens);
        }
    }

    /// The metrics of `provider` and `model`, looked up without allocating
    /// when they are known (see [`target_meters`](Self::target_meters)).
    pub fn find_target(&self, provider: &str, model: &str) -> TargetMeters {
        if let Some(known) = self.inner.models.read().get(provider) {
            if let Some(t) = known.get(model) {
                return t;
            }
        }
        self.target_meters(provider, model)
    }

    /// Tokens a reply used (see [`tokens`](Self::tokens)).
    pub fn tokens_at(&self, t: &TargetMeters, input: u64, output: u64) {
        let f = &self.inner;
        let h = &t.0;
        if input > 0 {
            h.input_tokens
                .get_or_init(|| f.tokens.get_or_create_owned(&h.tokens("input")))
                .inc_by(input);
        }
        if output > 0 {
            h.output_tokens
                .get_or_init(|| f.tokens.get_or_create_owned(&h.tokens("output")))
                .inc_by(output);
        }
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
    pub(crate) fn budget_rejection(&self, t: &TargetLabels) {
        self.inner
            .budget_rejections
            .get_or_create(&ProviderLabels {
                provider: t.provider.clone(),
            })
            .inc();
    }

    /// A retry was refused by the target's retry throttle.
    pub(crate) fn throttled(&self, t: &TargetLabels) {
        self.inner
            .throttled
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

    /// A hedge of a request of `group`: `sent`, `won` (a hedge answered
    /// first), `primary_won`, `cancelled` (a leg that lost, stopped).
    pub fn hedge(&self, group: &str, outcome: &'static str) {
        self.inner
            .hedges
            .get_or_create(&HedgeLabels {
                group: Arc::from(group),
                outcome,
            })
            .inc();
    }

    /// A target of `group` was ejected from its rotation, for `reason`
    /// (`consecutive_failures` or `success_rate`).
    pub fn ejection(&self, group: &str, target: &str, reason: &'static str) {
        self.inner
            .ejections
            .get_or_create(&EjectionLabels {
                group: Arc::from(group),
                target: Arc::from(target),
                reason,
            })
            .inc();
    }

    /// A breaker changed state; `model` is `None` for the provider's endpoint.
    /// States come as their labels ([`BreakerLabel`]): the families know no
    /// breaker type.
    pub fn transition(
        &self,
        provider: &str,
        model: Option<&str>,
        from: BreakerLabel,
        to: BreakerLabel,
    ) {
        let t = self.breaker_labels(provider, model);
        self.inner
            .transitions
            .get_or_create(&TransitionLabels {
                provider: t.provider.clone(),
                model: t.model.clone(),
                from: from.name,
                to: to.name,
            })
            .inc();
        self.inner.breaker_state.get_or_create(&t).set(to.level);
    }

    /// Sets a breaker's state gauge without a transition (a new breaker).
    pub(crate) fn breaker_state(&self, provider: &str, model: Option<&str>, state: BreakerLabel) {
        let t = self.breaker_labels(provider, model);
        self.inner.breaker_state.get_or_create(&t).set(state.level);
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

    /// A breaker refused a request, for the reason named `rejection`.
    pub fn rejection(&self, t: &TargetLabels, rejection: &'static str) {
        self.inner
            .rejections
            .get_or_create(&Self::with_outcome(t, rejection))
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

    /// A reply ended without the server reporting its usage: counted apart,
    /// never as zero tokens.
    pub fn usage_unknown(&self, t: &TargetLabels) {
        self.inner.usage_unknown.get_or_create(t).inc();
    }

    /// One attempt's spend: its cost by outcome (delivered or wasted), its
    /// tokens (estimated apart), or that its model is unpriced.
    ///
    /// ```
    /// use steer_actors::telemetry::meters::{Meters, SpendSample};
    /// let meters = Meters::new();
    /// let t = meters.target("openai", "gpt-4o");
    /// meters.spend(&t, SpendSample { outcome: "wasted", dollars: Some(0.5), tokens: 10, estimated: true });
    /// let text = meters.encode();
    /// assert!(text.contains(r#"steer_spend_usd_total{provider="openai",model="gpt-4o",outcome="wasted"} 0.5"#));
    /// assert!(text.contains(r#"steer_spend_tokens_total{provider="openai",model="gpt-4o",outcome="wasted",estimated="true"} 10"#));
    /// ```
    pub fn spend(&self, t: &TargetLabels, sample: SpendSample) {
        self.spend_at(&self.find_target(&t.provider, &t.model), sample);
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

/// The outcome of a successful request or attempt.
const SUCCESS: &str = "success";

/// A provider's model labels: each known model's metrics, and those of the
/// models past the bound, which share [`OTHER_MODEL`].
#[derive(Default)]
struct ProviderModels {
    models: HashMap<Arc<str>, TargetMeters>,
    other: Option<TargetMeters>,
}

impl ProviderModels {
    /// The metrics `model` records into: its own, or `other`'s once the bound is
    /// reached; `None` for a model not seen yet while there is room.
    fn get(&self, model: &str) -> Option<TargetMeters> {
        match self.models.get(model) {
            Some(t) => Some(t.clone()),
            None if self.models.len() >= MAX_MODEL_LABELS => self.other.clone(),
            None => None,
        }
    }
}

/// A provider and model's labels with the metrics its successful requests
/// record, resolved once (shared handles of the families' own metrics). Cloning
/// shares them.
#[derive(Clone)]
pub struct TargetMeters(Arc<TargetHandles>);

struct TargetHandles {
    labels: TargetLabels,
    // Each made in its family on first use (a series that never counted is not
    // rendered), then shared.
    requests_ok: OnceLock<Counter>,
    request_duration_ok: OnceLock<Histogram>,
    attempts_ok: OnceLock<Counter>,
    attempt_duration_ok: OnceLock<Histogram>,
    input_tokens: OnceLock<Counter>,
    output_tokens: OnceLock<Counter>,
    in_flight: OnceLock<Gauge>,
    in_flight_family: Family<ProviderLabels, Gauge>,
    /// Spend: dollars delivered and wasted; tokens delivered and wasted,
    /// counted and estimated; attempts unpriced.
    spend_usd: [OnceLock<Counter<f64>>; 2],
    spend_tokens: [[OnceLock<Counter>; 2]; 2],
    unpriced: OnceLock<Counter>,
}

impl TargetHandles {
    fn new(labels: TargetLabels, in_flight_family: Family<ProviderLabels, Gauge>) -> Self {
        TargetHandles {
            labels,
            requests_ok: OnceLock::new(),
            request_duration_ok: OnceLock::new(),
            attempts_ok: OnceLock::new(),
            attempt_duration_ok: OnceLock::new(),
            input_tokens: OnceLock::new(),
            output_tokens: OnceLock::new(),
            in_flight: OnceLock::new(),
            in_flight_family,
            spend_usd: Default::default(),
            spend_tokens: Default::default(),
            unpriced: OnceLock::new(),
        }
    }

    fn ok(&self) -> OutcomeLabels {
        Meters::with_outcome(&self.labels, SUCCESS)
    }

    fn tokens(&self, token_type: &'static str) -> TokenLabels {
        TokenLabels {
            provider: self.labels.provider.clone(),
            model: self.labels.model.clone(),
            token_type,
        }
    }
}

impl TargetMeters {
    /// The labels.
    pub fn labels(&self) -> &TargetLabels {
        &self.0.labels
    }

    /// Counts a request in flight at the provider until the guard drops.
    pub fn in_flight(&self) -> GaugeGuard {
        let h = &self.0;
        let gauge = h.in_flight.get_or_init(|| {
            h.in_flight_family.get_or_create_owned(&ProviderLabels {
                provider: h.labels.provider.clone(),
            })
        });
        GaugeGuard::new(gauge.clone())
    }
}

impl std::fmt::Debug for TargetMeters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TargetMeters").field(&self.0.labels).finish()
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
        r.register(
            "steer_retry_throttled",
            "Retries refused by the provider's retry throttle",
            self.throttled.clone(),
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
            "steer_hedges",
            "Hedges of model groups' requests, by outcome (sent, won, primary_won, cancelled)",
            self.hedges.clone(),
        );
        r.register(
            "steer_ejections",
            "Targets of a model group taken out of its rotation as outliers",
            self.ejections.clone(),
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
            "steer_usage_unknown",
            "Replies whose server reported no usage (their tokens are not in steer_tokens)",
            self.usage_unknown.clone(),
        );
        r.register(
            "steer_spend_usd",
            "What attempts cost in US dollars at the price table, by outcome: delivered (their output is the reply) or wasted (failed, cancelled, repeated)",
            self.spend_usd.clone(),
        );
        r.register(
            "steer_spend_tokens",
            "Tokens of every attempt, by outcome, estimated apart from those the server counted",
            self.spend_tokens.clone(),
        );
        r.register(
            "steer_unpriced_attempts",
            "Attempts whose model (or tier) has no price: their cost is not in steer_spend_usd",
            self.unpriced.clone(),
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

    /// The resolved success path counts into the same series as the label path,
    /// a failure through it goes to its own outcome, and models past the bound
    /// share `other`'s handles.
    #[test]
    fn resolved_target_meters_count_in_the_labelled_series() {
        let m = Meters::new();
        let t = m.target_meters("p", "m");
        m.attempt_at(&t, "success", Duration::from_millis(5));
        m.attempt_at(
            &m.target_meters("p", "m"),
            "success",
            Duration::from_millis(5),
        );
        m.attempt(&m.target("p", "m"), "success", Duration::from_millis(5));
        m.request_at(&t, "server_error", Duration::from_millis(5));
        m.request_at(&t, "success", Duration::from_millis(5));
        m.tokens_at(&t, 0, 9);
        let guard = t.in_flight();
        let text = m.encode();
        assert!(
            text.contains(r#"steer_attempts_total{provider="p",model="m",outcome="success"} 3"#),
            "{text}"
        );
        assert!(text
            .contains(r#"steer_requests_total{provider="p",model="m",outcome="server_error"} 1"#));
        assert!(
            text.contains(r#"steer_requests_total{provider="p",model="m",outcome="success"} 1"#)
        );
        assert!(
            text.contains(r#"steer_tokens_total{provider="p",model="m",token_type="output"} 9"#)
        );
        assert!(!text.contains(r#"token_type="input""#), "no zero series");
        assert!(
            text.contains(r#"steer_in_flight_requests{provider="p"} 1"#),
            "{text}"
        );
        drop(guard);
        for i in 1..MAX_MODEL_LABELS {
            m.target_meters("p", &format!("m{i}"));
        }
        let a = m.target_meters("p", "past-the-bound-1");
        let b = m.target_meters("p", "past-the-bound-2");
        assert_eq!(&*a.labels().model, OTHER_MODEL);
        assert!(Arc::ptr_eq(&a.0, &b.0), "one `other` per provider");
        m.attempt_at(&a, "success", Duration::ZERO);
        m.attempt_at(&b, "success", Duration::ZERO);
        assert!(m
            .encode()
            .contains(r#"steer_attempts_total{provider="p",model="other",outcome="success"} 2"#));
    }

    #[test]
    fn histograms_and_gauges_render() {
        let m = Meters::new();
        let t = m.target("openai", "gpt-4o");
        m.attempt(&t, "rate_limited", Duration::from_millis(30));
        m.attempt(&t, "success", Duration::from_millis(300));
        m.first_token(&t, "success", Duration::from_millis(50));
        m.tokens(&t, 12, 0);
        let (closed, open) = (
            BreakerLabel {
                name: "closed",
                level: 0,
            },
            BreakerLabel {
                name: "open",
                level: 2,
            },
        );
        m.transition("openai", Some("gpt-4o"), closed, open);
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
