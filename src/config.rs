//! A client's settings from a TOML file: deployments, model groups, retry and
//! breaker settings. The same structure is buildable in code (the builders); a
//! file is read with `serde` and the `toml` crate, and an error names the line
//! and the key.
//!
//! ```
//! let config = steer_llm::config::Config::from_toml(r#"
//! [deployments.openai-b]
//! kind = "openai"
//! base_url = "https://gateway.example.com/v1"
//! api_key_env = "OPENAI_ORG_B_KEY"
//!
//! [groups.fast]
//! targets = ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"]
//! selection = "weighted"
//! weights = [3, 1]
//!
//! [retry]
//! max_attempts = 4
//! max_server_wait = "30s"
//!
//! [breaker]
//! failure_threshold = 5
//! open_for = "1m"
//! "#).unwrap();
//! assert_eq!(config.groups["fast"].targets.len(), 2);
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::error::{ConfigError, Error};
use crate::provider::{Anthropic, OpenAiApis, OpenAiCompatible, OpenAiResponses, Providers};
use crate::runtime::group::{Group, Selection};
use crate::runtime::ClientBuilder;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Providers registered under their own names (another key, another gateway).
    #[serde(default)]
    pub deployments: BTreeMap<String, DeploymentConfig>,
    /// Model groups, by name (requests name them `group/<name>`).
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
    /// The retry policy of every provider.
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// The breaker settings of every provider.
    #[serde(default)]
    pub breaker: Option<BreakerSettings>,
    /// gRPC-style retry throttling of every provider (off unless present):
    /// `[retry_throttle]` with `max_tokens` and `token_ratio`.
    #[serde(default)]
    pub retry_throttle: Option<steer_actors::retry::ThrottleConfig>,
    /// Client-side adaptive throttling of every deployment, the SRE book's
    /// (off unless present): `[adaptive_throttle]` with any of `k` (2) and
    /// `window` ("2m").
    #[serde(default)]
    pub adaptive_throttle: Option<AdaptiveThrottleFile>,
    /// Adaptive concurrency of every deployment (off unless present):
    /// `[adaptive_limit]` with any of `initial`, `min`, `max`, `backoff`,
    /// `tolerance`, `max_queue`, `queue_timeout`.
    #[serde(default)]
    pub adaptive_limit: Option<AdaptiveLimitConfig>,
    /// State shared with the other replicas through Redis (feature `shared-redis`).
    #[serde(default)]
    pub shared: Option<SharedSettings>,
    /// Rows of the price table over the defaults, by model (`gpt-4o`) or by
    /// a deployment's model (`azure/gpt-4o`): `[prices."<key>"]` with
    /// `input` and `output` in dollars a million tokens, and any of
    /// `cache_read`, `cache_write_5m`, `cache_write_1h`, `long_context`,
    /// `tiers`, `geos`, `reasoning`, `as_of`, `source` ([`crate::cost::PriceFile`]).
    #[serde(default)]
    pub prices: BTreeMap<String, crate::cost::PriceFile>,
    /// Spend budgets (`[[budgets]]` with `scope` and `tokens`, `usd` or
    /// both, and any of `period`, `warn_at`: [`crate::budget::BudgetFile`]).
    #[serde(default)]
    pub budgets: Vec<crate::budget::BudgetFile>,
    /// How long a budget hold lasts without news from its attempt
    /// (default "2m").
    #[serde(default, deserialize_with = "duration")]
    pub budget_lease: Option<Duration>,
    /// Timeouts (each optional: the default stays): `[timeouts]` with any of
    /// `attempt`, `deadline`, `headers`, `first_token`, `idle`.
    #[serde(default)]
    pub timeouts: Option<TimeoutSettings>,
}

/// `[timeouts]`: how long an attempt, a request and a stream's phases may take.
///
/// ```toml
/// [timeouts]
/// attempt = "30s"      # one attempt, non-streaming (default: none)
/// deadline = "2m"      # the whole request, retries included (default: none)
/// headers = "20s"      # a stream's response headers (default 60 s)
/// first_token = "30s"  # a stream's first text (default 120 s)
/// idle = "10s"         # the longest silence between a stream's events (default 60 s)
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutSettings {
    /// One non-streaming attempt.
    #[serde(default, deserialize_with = "duration")]
    pub attempt: Option<Duration>,
    /// The whole request, retries and failovers included.
    #[serde(default, deserialize_with = "duration")]
    pub deadline: Option<Duration>,
    /// Until a stream's response headers.
    #[serde(default, deserialize_with = "duration")]
    pub headers: Option<Duration>,
    /// Until a stream's first text.
    #[serde(default, deserialize_with = "duration")]
    pub first_token: Option<Duration>,
    /// The longest silence between a stream's events (keep-alives count as
    /// silence).
    #[serde(default, deserialize_with = "duration")]
    pub idle: Option<Duration>,
}

/// `[shared]`: pauses, opens and probe leases shared through Redis.
///
/// ```toml
/// [shared]
/// redis = "redis://127.0.0.1:6379/"
/// prefix = "my-service"
/// quorum = 2
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedSettings {
    /// The Redis URL (user and password in it, if any).
    pub redis: String,
    /// Prefix of keys and channels (default `steer`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Period of the backstop read (default 1 s).
    #[serde(default, deserialize_with = "duration")]
    pub backstop: Option<Duration>,
    /// Replicas that must open a target before the fleet does (default 2).
    #[serde(default)]
    pub quorum: Option<u32>,
    /// Probes fleet-wide when an open ends (default 1).
    #[serde(default)]
    pub probes: Option<u32>,
    /// How long a probe lease lasts (default 5 s).
    #[serde(default, deserialize_with = "duration")]
    pub probe_lease: Option<Duration>,
    /// What spend budgets do while Redis cannot be reached: `open` (count
    /// in this process meanwhile; the default) or `closed` (refuse).
    #[serde(default)]
    pub budget_fail: Option<crate::shared::BudgetFail>,
}

impl SharedSettings {
    /// The settings as a [`SharedConfig`](crate::shared::SharedConfig).
    pub fn config(&self) -> crate::shared::SharedConfig {
        let mut c = crate::shared::SharedConfig::redis(&self.redis);
        if let Some(p) = &self.prefix {
            c = c.prefix(p);
        }
        if let Some(d) = self.backstop {
            c = c.backstop(d);
        }
        if let Some(q) = self.quorum {
            c = c.quorum(q);
        }
        let (probes, lease) = (
            self.probes.unwrap_or(c.probes),
            self.probe_lease.unwrap_or(c.probe_lease),
        );
        c.probes(probes, lease)
            .budget_fail(self.budget_fail.unwrap_or_default())
    }
}

/// Which wire format and defaults a deployment has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// OpenAI Chat Completions.
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// xAI (Chat Completions).
    Xai,
    /// Azure OpenAI's v1 API: `base_url` is the resource
    /// (`https://NAME.openai.azure.com`), the key goes in `api-key`, and a
    /// model is a deployment's name.
    Azure,
}

#[cfg(feature = "mock")]
impl Kind {
    /// Where `mock` serves this kind's wire format: the Anthropic Messages API
    /// at its root, the OpenAI formats under `/v1`. What `steer chat` and
    /// `steer drill` point a configured deployment at without a key.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use steer_llm::config::Kind;
    /// let mock = steer_llm::mock::MockServer::builder().start_background()?;
    /// assert_eq!(Kind::Anthropic.mock_base_url(&mock), mock.base_url());
    /// assert_eq!(Kind::Xai.mock_base_url(&mock), format!("{}/v1", mock.base_url()));
    /// # Ok(()) }
    /// ```
    pub fn mock_base_url(self, mock: &crate::mock::MockServer) -> String {
        match self {
            Kind::Anthropic => mock.base_url(),
            Kind::Openai | Kind::Xai | Kind::Azure => mock.openai_base_url(),
        }
    }
}

/// Which API of an OpenAI-format deployment is called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// Chat Completions (`/chat/completions`), the default.
    #[default]
    Chat,
    /// The Responses API (`/responses`).
    Responses,
}

/// One deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Its wire format.
    pub kind: Kind,
    /// Its base URL (else the kind's public API); for `azure`, required: the
    /// resource, `https://NAME.openai.azure.com`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding its key (keys never live in the file).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// How its server continues a final assistant message (`none`, `trailing`,
    /// `prefix_flag`, `continue_final_message`; see [`crate::Prefill`]). For
    /// OpenAI-format deployments; default `none`. An Anthropic deployment
    /// continues by model (Claude before 4.6) and takes no setting.
    #[serde(default)]
    pub prefill: Option<crate::Prefill>,
    /// For an OpenAI, Azure or xAI deployment: `chat` or `responses`. Unset,
    /// an OpenAI or Azure deployment calls Chat Completions and moves the
    /// models that live only on the Responses API there
    /// ([`crate::provider::OpenAiApis`]); an xAI one calls Chat Completions.
    #[serde(default)]
    pub api: Option<Api>,
    /// For an `azure` deployment: Azure's dated API at this `api-version`
    /// (`2024-10-21`): the deployment in the URL's path, the version in its
    /// query. Unset: the v1 API (`/openai/v1`, no version).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Runs this deployment's Responses API streams in background mode: a
    /// broken stream resumes on the server, exactly (the server keeps each
    /// response about ten minutes: not for zero data retention). Default off.
    #[serde(default)]
    pub background: bool,
    /// Hedges the requests and streams to its models outside a group, at
    /// itself: `{ after = "2s" }` or `{ percentile = 95, fallback = "2s" }`
    /// (as a group's `hedge`; `same_target` is implied).
    #[serde(default)]
    pub hedge: Option<HedgeConfig>,
    /// The least rate of content of its streams after their first token (a
    /// request's or a group's own comes first): `{ chars_per_sec = 200 }`.
    #[serde(default)]
    pub min_rate: Option<RateFloorConfig>,
    /// Its own adaptive concurrency limit, over `[adaptive_limit]`'s.
    #[serde(default)]
    pub adaptive_limit: Option<AdaptiveLimitConfig>,
}

/// One model group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Its targets, `deployment/model`, in order.
    pub targets: Vec<String>,
    /// `in_order` (default) or `weighted`.
    #[serde(default)]
    pub selection: Option<Selection>,
    /// Weights, in the targets' order.
    #[serde(default)]
    pub weights: Option<Vec<u32>>,
    /// Priority tiers, in the targets' order (lower first).
    #[serde(default)]
    pub tiers: Option<Vec<u32>>,
    /// The target for prompts too long for the others.
    #[serde(default)]
    pub context_fallback: Option<String>,
    /// The target for requests a content filter refused.
    #[serde(default)]
    pub content_fallback: Option<String>,
    /// Runs the group's streams in the Responses API's background mode.
    #[serde(default)]
    pub background: bool,
    /// The least rate of content of the group's streams after their first
    /// token: `{ chars_per_sec = 200, window = "2s" }`.
    #[serde(default)]
    pub min_rate: Option<RateFloorConfig>,
    /// Ejects the group's outliers: `{}` for the defaults, or any of
    /// `consecutive_failures`, `interval`, `base_ejection`, `max_ejection`,
    /// `max_ejected_percent`, `success_rate_min_targets`,
    /// `success_rate_min_calls`, `success_rate_stdev_factor`.
    #[serde(default)]
    pub outliers: Option<OutliersConfig>,
    /// Hedges the group's requests: `{ after = "800ms" }`, or `{ percentile =
    /// 95, fallback = "800ms" }`, with any of `max_hedges`, `same_target`,
    /// `max_share_percent`.
    #[serde(default)]
    pub hedge: Option<HedgeConfig>,
}

/// Adaptive throttling in the file (see
/// [`AdaptiveThrottleConfig`](steer_actors::limit::AdaptiveThrottleConfig));
/// each setting optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveThrottleFile {
    /// Calls per accepted call before any is shed.
    #[serde(default)]
    pub k: Option<f64>,
    /// The window the counts cover (`"2m"`).
    #[serde(default, deserialize_with = "duration")]
    pub window: Option<Duration>,
}

impl AdaptiveThrottleFile {
    /// The settings it gives (checked when the client is built).
    pub fn config(&self) -> steer_actors::limit::AdaptiveThrottleConfig {
        let d = steer_actors::limit::AdaptiveThrottleConfig::default();
        steer_actors::limit::AdaptiveThrottleConfig {
            k: self.k.unwrap_or(d.k),
            window: self.window.unwrap_or(d.window),
        }
    }
}

/// Hedging in the file (see [`Hedge`](crate::route::hedge::Hedge)).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HedgeConfig {
    /// A fixed delay (`"800ms"`).
    #[serde(default, deserialize_with = "duration")]
    pub after: Option<Duration>,
    /// A percentile of the target's recent latency, instead.
    #[serde(default)]
    pub percentile: Option<u8>,
    /// The delay until the target (or, pooled, its group) has enough samples
    /// for the percentile.
    #[serde(default, deserialize_with = "duration")]
    pub fallback: Option<Duration>,
    /// Hedges a request may send (1 to 4).
    #[serde(default)]
    pub max_hedges: Option<u32>,
    /// Hedge at the same target.
    #[serde(default)]
    pub same_target: Option<bool>,
    /// Hedges at most this share of the group's requests, in percent.
    #[serde(default)]
    pub max_share_percent: Option<u32>,
}

impl HedgeConfig {
    /// The hedge it sets: `after`, or `percentile` with its `fallback`.
    pub fn hedge(&self) -> Result<crate::route::hedge::Hedge, String> {
        use crate::route::hedge::Hedge;
        let mut h = match (self.after, self.percentile) {
            (Some(after), None) => Hedge::after(after),
            (None, Some(p)) => Hedge::at_percentile(
                p,
                self.fallback
                    .ok_or("hedge: a percentile needs a fallback delay")?,
            ),
            _ => return Err("hedge: set either after or percentile".into()),
        };
        if let Some(n) = self.max_hedges {
            h.max_hedges = n;
        }
        if let Some(same) = self.same_target {
            h.same_target = same;
        }
        if let Some(share) = self.max_share_percent {
            h.max_share_percent = share;
        }
        h.validate().map_err(|e| format!("hedge: {e}"))?;
        Ok(h)
    }
}

/// Adaptive concurrency in the file (see
/// [`LimitConfig`](steer_actors::limit::LimitConfig)); each setting optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveLimitConfig {
    /// The limit to start from.
    #[serde(default)]
    pub initial: Option<u32>,
    /// The least it falls to.
    #[serde(default)]
    pub min: Option<u32>,
    /// The most it grows to.
    #[serde(default)]
    pub max: Option<u32>,
    /// What a drop multiplies it by.
    #[serde(default)]
    pub backoff: Option<f64>,
    /// How far above its average the recent TTFT may rise.
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// Calls that may wait for a slot.
    #[serde(default)]
    pub max_queue: Option<u32>,
    /// How long a call waits for a slot at most (`"5s"`).
    #[serde(default, deserialize_with = "duration")]
    pub queue_timeout: Option<Duration>,
    /// A limit per model rather than one per deployment.
    #[serde(default)]
    pub per_model: bool,
}

impl AdaptiveLimitConfig {
    /// The settings it gives.
    pub fn config(&self) -> steer_actors::limit::LimitConfig {
        let d = steer_actors::limit::LimitConfig::default();
        steer_actors::limit::LimitConfig {
            initial: self.initial.unwrap_or(d.initial),
            min: self.min.unwrap_or(d.min),
            max: self.max.unwrap_or(d.max),
            backoff: self.backoff.unwrap_or(d.backoff),
            tolerance: self.tolerance.unwrap_or(d.tolerance),
            max_queue: self.max_queue.unwrap_or(d.max_queue),
            queue_timeout: self.queue_timeout.unwrap_or(d.queue_timeout),
            per_model: self.per_model,
        }
    }
}

/// Outlier ejection in the file (see
/// [`OutlierConfig`](crate::route::outliers::OutlierConfig)); each setting
/// optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutliersConfig {
    /// Failures in a row that eject a target (0: no such rule).
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    /// How often success rates are compared (`"10s"`).
    #[serde(default, deserialize_with = "duration")]
    pub interval: Option<Duration>,
    /// The first ejection's length (`"30s"`).
    #[serde(default, deserialize_with = "duration")]
    pub base_ejection: Option<Duration>,
    /// The longest ejection (`"5m"`).
    #[serde(default, deserialize_with = "duration")]
    pub max_ejection: Option<Duration>,
    /// The most of the group out at once, in percent.
    #[serde(default)]
    pub max_ejected_percent: Option<u32>,
    /// Targets with enough calls for the success-rate rule.
    #[serde(default)]
    pub success_rate_min_targets: Option<u32>,
    /// Calls a target needs in an interval to count.
    #[serde(default)]
    pub success_rate_min_calls: Option<u64>,
    /// Ejected below `mean − factor × stdev`.
    #[serde(default)]
    pub success_rate_stdev_factor: Option<f64>,
}

impl OutliersConfig {
    /// The settings it gives.
    pub fn config(&self) -> crate::route::outliers::OutlierConfig {
        let d = crate::route::outliers::OutlierConfig::default();
        crate::route::outliers::OutlierConfig {
            consecutive_failures: self.consecutive_failures.unwrap_or(d.consecutive_failures),
            interval: self.interval.unwrap_or(d.interval),
            base_ejection: self.base_ejection.unwrap_or(d.base_ejection),
            max_ejection: self.max_ejection.unwrap_or(d.max_ejection),
            max_ejected_percent: self.max_ejected_percent.unwrap_or(d.max_ejected_percent),
            success_rate_min_targets: self
                .success_rate_min_targets
                .unwrap_or(d.success_rate_min_targets),
            success_rate_min_calls: self
                .success_rate_min_calls
                .unwrap_or(d.success_rate_min_calls),
            success_rate_stdev_factor: self
                .success_rate_stdev_factor
                .unwrap_or(d.success_rate_stdev_factor),
        }
    }
}

/// A rate floor in the file (see [`crate::runtime::RateFloor`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateFloorConfig {
    /// Characters a second, at least.
    pub chars_per_sec: u32,
    /// The window each measure covers (`"2s"`; default 2 s).
    #[serde(default, deserialize_with = "duration")]
    pub window: Option<Duration>,
}

impl RateFloorConfig {
    /// The floor it sets.
    pub fn floor(&self) -> crate::runtime::RateFloor {
        crate::runtime::RateFloor::new(
            self.chars_per_sec,
            self.window.unwrap_or(Duration::from_secs(2)),
        )
    }
}

/// Retry settings (each optional: the default stays).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Delay before the first retry (`"500ms"`, `"2s"`, or seconds).
    #[serde(default, deserialize_with = "duration")]
    pub base: Option<Duration>,
    /// Cap on one delay.
    #[serde(default, deserialize_with = "duration")]
    pub max_delay: Option<Duration>,
    /// Longest server-directed wait honoured.
    #[serde(default, deserialize_with = "duration")]
    pub max_server_wait: Option<Duration>,
}

/// Breaker settings (each optional: the default stays).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSettings {
    /// Health failures in the window that open it.
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    /// The window.
    #[serde(default, deserialize_with = "duration")]
    pub window: Option<Duration>,
    /// How long it stays open the first time.
    #[serde(default, deserialize_with = "duration")]
    pub open_for: Option<Duration>,
    /// Longest pause one server-directed wait may impose.
    #[serde(default, deserialize_with = "duration")]
    pub max_pause: Option<Duration>,
    /// Probes admitted per half-open period.
    #[serde(default)]
    pub half_open_permits: Option<u32>,
    /// Also open when this share of the window's calls failed (0 to 1, off
    /// by default), once `min_calls` are in it: a rate that does not trip
    /// on a small share of a large volume, as a count does.
    #[serde(default)]
    pub failure_rate: Option<f64>,
    /// Calls in the window before a rate is judged (default 10).
    #[serde(default)]
    pub min_calls: Option<u32>,
}

/// A duration as `"500ms"`, `"30s"`, `"1m30s"`, or a number of seconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Secs(f64),
    }
    let parsed = match Raw::deserialize(d)? {
        Raw::Text(t) => crate::classify::wait::go_duration(&t),
        Raw::Secs(s) if s.is_finite() && s >= 0.0 => Duration::try_from_secs_f64(s).ok(),
        Raw::Secs(_) => None,
    };
    parsed.map(Some).ok_or_else(|| {
        serde::de::Error::custom("expected a duration such as \"500ms\", \"30s\" or \"1m30s\"")
    })
}

impl Config {
    /// Reads a configuration; an error names the line and the key.
    pub fn from_toml(text: &str) -> Result<Config, Error> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::file("configuration", e.to_string()))?;
        for (name, g) in &config.groups {
            g.group()
                .map_err(|e| ConfigError::file("configuration", format!("groups.{name}: {e}")))?;
        }
        Ok(config)
    }

    /// Reads a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::file(path.display().to_string(), format!("cannot read it: {e}"))
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::Config(ConfigError::File { reason, .. }) => {
                ConfigError::file(path.display().to_string(), reason)
            }
            other => other,
        })
    }

    /// `providers` with the deployments added. `embedded` may point a deployment
    /// elsewhere by its name and kind, with a key (the CLI's embedded mock does).
    pub fn deployments(
        &self,
        mut providers: Providers,
        embedded: impl Fn(&str, Kind) -> Option<(String, String)>,
    ) -> Result<Providers, Error> {
        for (name, d) in &self.deployments {
            let pointed = embedded(name, d.kind);
            let (base, key) = match pointed.clone() {
                Some((url, key)) => (Some(url), Some(key)),
                None => (
                    d.base_url.clone(),
                    d.api_key_env
                        .as_deref()
                        .and_then(|v| std::env::var(v).ok())
                        .filter(|k| !k.trim().is_empty()),
                ),
            };
            if d.api_version.is_some() && d.kind != Kind::Azure {
                return Err(ConfigError::setting(
                    format!("deployments.{name}.api_version"),
                    "api_version is Azure OpenAI's dated API: for kind = \"azure\"",
                ));
            }
            let built: std::sync::Arc<dyn crate::provider::Provider> = match d.kind {
                Kind::Anthropic => {
                    if d.prefill.is_some() {
                        return Err(ConfigError::setting(
                            format!("deployments.{name}.prefill"),
                            "prefill is for OpenAI-format deployments; an Anthropic deployment \
                             continues by model (Claude before 4.6)",
                        ));
                    }
                    if d.background {
                        return Err(ConfigError::setting(
                            format!("deployments.{name}.background"),
                            "background mode is the Responses API's; an Anthropic deployment \
                             speaks Messages",
                        ));
                    }
                    if d.api.is_some() {
                        return Err(ConfigError::setting(
                            format!("deployments.{name}.api"),
                            "api (chat or responses) is for OpenAI and xAI deployments; an \
                             Anthropic deployment speaks Messages",
                        ));
                    }
                    let mut b = Anthropic::builder().name(name.as_str());
                    if let Some(url) = base {
                        b = b.base_url(url);
                    }
                    if let Some(k) = key {
                        b = b.api_key(k);
                    }
                    std::sync::Arc::new(b.build()?)
                }
                Kind::Azure => {
                    if d.prefill.is_some() {
                        return Err(ConfigError::setting(
                            format!("deployments.{name}.prefill"),
                            "Azure OpenAI answers a final assistant message afresh: an azure \
                             deployment takes no prefill",
                        ));
                    }
                    // The file names the resource; an embedded mock, the whole base
                    // (its root, for the dated API's `/openai/...` paths).
                    let dated = |resource: &str, v: &str| {
                        (
                            OpenAiCompatible::azure_dated(resource, v),
                            OpenAiResponses::azure_dated(resource, v),
                        )
                    };
                    let (mut c, mut r) = match (&pointed, &d.base_url, &d.api_version) {
                        (Some((url, _)), _, Some(v)) => dated(url.trim_end_matches("/v1"), v),
                        (Some((url, _)), _, None) => (
                            OpenAiCompatible::azure(url).base_url(url.as_str()),
                            OpenAiResponses::azure(url).base_url(url.as_str()),
                        ),
                        (None, Some(resource), Some(v)) => dated(resource, v),
                        (None, Some(resource), None) => (
                            OpenAiCompatible::azure(resource),
                            OpenAiResponses::azure(resource),
                        ),
                        (None, None, _) => {
                            return Err(ConfigError::setting(
                                format!("deployments.{name}.base_url"),
                                "an azure deployment needs its resource, \
                                 https://NAME.openai.azure.com",
                            ))
                        }
                    };
                    c = c.name(name.as_str());
                    r = r.name(name.as_str()).background(d.background);
                    if let Some(k) = key {
                        c = c.api_key(k.clone());
                        r = r.api_key(k);
                    }
                    match d.api {
                        Some(Api::Chat) => std::sync::Arc::new(c.build()?),
                        Some(Api::Responses) => std::sync::Arc::new(r.build()?),
                        None => std::sync::Arc::new(OpenAiApis::new(c.build()?, r.build()?)?),
                    }
                }
                Kind::Openai | Kind::Xai if d.api == Some(Api::Responses) => {
                    if d.prefill.is_some() {
                        return Err(ConfigError::setting(
                            format!("deployments.{name}.prefill"),
                            "the Responses API continues no final assistant message: a \
                             deployment with api = \"responses\" takes no prefill",
                        ));
                    }
                    let mut b = if d.kind == Kind::Xai {
                        OpenAiResponses::xai()
                    } else {
                        OpenAiResponses::openai()
                    }
                    .name(name.as_str())
                    .background(d.background);
                    if let Some(url) = base {
                        b = b.base_url(url);
                    }
                    if let Some(k) = key {
                        b = b.api_key(k);
                    }
                    std::sync::Arc::new(b.build()?)
                }
                Kind::Openai | Kind::Xai => {
                    let both = d.kind == Kind::Openai && d.api.is_none();
                    if d.background && !both {
                        return Err(ConfigError::setting(
                            format!("deployments.{name}.background"),
                            "background mode is the Responses API's: set api = \"responses\"",
                        ));
                    }
                    let mut r = OpenAiResponses::openai()
                        .name(name.as_str())
                        .background(d.background);
                    let mut b = if d.kind == Kind::Xai {
                        OpenAiCompatible::xai()
                    } else {
                        OpenAiCompatible::openai()
                    }
                    .name(name.as_str());
                    if let Some(url) = base {
                        r = r.base_url(url.clone());
                        b = b.base_url(url);
                    }
                    if let Some(k) = key {
                        r = r.api_key(k.clone());
                        b = b.api_key(k);
                    }
                    if let Some(p) = d.prefill {
                        b = b.prefill(p);
                    }
                    if both {
                        std::sync::Arc::new(OpenAiApis::new(b.build()?, r.build()?)?)
                    } else {
                        std::sync::Arc::new(b.build()?)
                    }
                }
            };
            providers.register(built);
        }
        Ok(providers)
    }

    /// `builder` with the groups, the retry policy and the breaker settings.
    pub fn apply(&self, mut builder: ClientBuilder) -> Result<ClientBuilder, Error> {
        for (name, d) in &self.deployments {
            if let Some(h) = &d.hedge {
                let hedge = h
                    .hedge()
                    .map_err(|e| ConfigError::setting(format!("deployments.{name}.hedge"), e))?;
                builder = builder.hedge_for(name, hedge);
            }
            if let Some(f) = &d.min_rate {
                builder = builder.stream_min_rate_for(name, f.floor());
            }
            if let Some(l) = &d.adaptive_limit {
                builder = builder.adaptive_limit_for(name, l.config());
            }
        }
        for (i, b) in self.budgets.iter().enumerate() {
            let (scope, budget) = b
                .budget()
                .map_err(|e| ConfigError::setting(format!("budgets[{i}]"), e))?;
            builder = builder.spend_budget(scope, budget);
        }
        if let Some(lease) = self.budget_lease {
            builder = builder.budget_lease(lease);
        }
        if let Some(t) = &self.timeouts {
            if t.attempt.is_some() {
                builder = builder.attempt_timeout(t.attempt);
            }
            if t.deadline.is_some() {
                builder = builder.deadline(t.deadline);
            }
            let (headers, first_token, idle) = builder.stream_timeout_settings();
            builder = builder.stream_timeouts(
                t.headers.or(headers),
                t.first_token.or(first_token),
                t.idle.or(idle),
            );
        }
        for (key, p) in &self.prices {
            let price = p
                .price()
                .map_err(|e| ConfigError::setting(format!("prices.{key}.{}", e.field), e.why))?;
            builder = builder.price(key, price);
        }
        for (name, g) in &self.groups {
            builder = builder.group(
                name,
                g.group()
                    .map_err(|e| ConfigError::group(name, e.to_string()))?,
            );
        }
        if let Some(r) = &self.retry {
            let mut policy = steer_actors::RetryPolicy::default();
            if let Some(n) = r.max_attempts {
                policy = policy.max_attempts(n);
            }
            if let Some(d) = r.base {
                policy.backoff.base = d;
            }
            if let Some(d) = r.max_delay {
                policy.backoff.max_delay = d;
            }
            if let Some(d) = r.max_server_wait {
                policy = policy.max_server_wait(d);
            }
            builder = builder.retry(policy);
        }
        if let Some(t) = self.retry_throttle {
            builder = builder.retry_throttle(t);
        }
        if let Some(t) = &self.adaptive_throttle {
            builder = builder.adaptive_throttle(t.config());
        }
        if let Some(l) = &self.adaptive_limit {
            builder = builder.adaptive_limit(l.config());
        }
        if let Some(b) = &self.breaker {
            let mut config = steer_actors::BreakerConfig::default();
            if let Some(n) = b.failure_threshold {
                config.failure_threshold = n;
            }
            if let Some(d) = b.window {
                config.window = d;
            }
            if let Some(d) = b.open_for {
                config.open_for = d;
            }
            if let Some(d) = b.max_pause {
                config.max_pause = d;
            }
            if let Some(n) = b.half_open_permits {
                config.half_open_permits = n;
            }
            if b.failure_rate.is_some() {
                config.failure_rate = b.failure_rate;
            }
            if let Some(n) = b.min_calls {
                config.min_calls = n;
            }
            builder = builder.breaker(config);
        }
        if let Some(shared) = &self.shared {
            #[cfg(feature = "shared-redis")]
            {
                builder = builder.shared(shared.config());
            }
            #[cfg(not(feature = "shared-redis"))]
            {
                let _ = shared.config();
                return Err(ConfigError::setting(
                    "[shared]",
                    "needs steer-llm's shared-redis feature",
                ));
            }
        }
        Ok(builder)
    }
}

impl GroupConfig {
    /// The group this describes.
    pub fn group(&self) -> Result<Group, String> {
        let mut group = Group::new(&self.targets)
            .map_err(|e| format!("targets: {e}"))?
            .background(self.background);
        if let Some(floor) = &self.min_rate {
            group = group.min_rate(floor.floor());
        }
        if let Some(h) = &self.hedge {
            group = group.hedge(h.hedge()?);
        }
        if let Some(o) = &self.outliers {
            let config = o.config();
            config.validate().map_err(|e| format!("outliers: {e}"))?;
            group = group.eject_outliers(config);
        }
        if let Some(s) = self.selection {
            group = group.selection(s);
        }
        if let Some(w) = &self.weights {
            if w.len() != self.targets.len() {
                return Err(format!(
                    "weights: {} weights for {} targets",
                    w.len(),
                    self.targets.len()
                ));
            }
            group = group.weights(w);
        }
        if let Some(t) = &self.tiers {
            if t.len() != self.targets.len() {
                return Err(format!(
                    "tiers: {} tiers for {} targets",
                    t.len(),
                    self.targets.len()
                ));
            }
            group = group.tiers(t);
        }
        if let Some(t) = &self.context_fallback {
            group = group
                .context_fallback(t)
                .map_err(|e| format!("context_fallback: {e}"))?;
        }
        if let Some(t) = &self.content_fallback {
            group = group
                .content_fallback(t)
                .map_err(|e| format!("content_fallback: {e}"))?;
        }
        Ok(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breaker_judges_a_failure_rate_from_the_file_and_refuses_one_out_of_range() {
        let c = Config::from_toml("[breaker]\nfailure_rate = 0.5\nmin_calls = 20\n").unwrap();
        let b = c.breaker.as_ref().unwrap();
        assert_eq!((b.failure_rate, b.min_calls), (Some(0.5), Some(20)));
        let builder = c.apply(ClientBuilder::default()).unwrap();
        assert!(builder.build().is_ok());
        let bad = Config::from_toml("[breaker]\nfailure_rate = 1.5\n").unwrap();
        let err = bad
            .apply(ClientBuilder::default())
            .unwrap()
            .build()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("failure_rate"), "{err}");
    }

    #[test]
    fn timeouts_set_only_what_they_name_and_refuse_unknown_keys() {
        let c = Config::from_toml("[timeouts]\nidle = \"250ms\"\nattempt = \"2s\"\n").unwrap();
        let builder = c.apply(ClientBuilder::default()).unwrap();
        let (headers, first_token, idle) = builder.stream_timeout_settings();
        assert_eq!(idle, Some(Duration::from_millis(250)));
        assert_eq!(
            (headers, first_token),
            (
                Some(Duration::from_secs(60)),
                Some(Duration::from_secs(120))
            ),
            "the defaults stay where the file says nothing"
        );
        let err = Config::from_toml("[timeouts]\nidel = \"1s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("idel"), "{err}");
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let err = Config::from_toml("[groups.fast]\ntargets = [\"a/b\"]\nweigths = [1]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("weigths"), "{err}");
        let err = Config::from_toml("[groups.fast]\ntargets = [\"not-a-model\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("groups.fast") && err.contains("targets"),
            "{err}"
        );
        let err = Config::from_toml("[groups.fast]\ntargets = [\"a/b\", \"c/d\"]\nweights = [1]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("weights: 1 weights for 2 targets"), "{err}");
        let err = Config::from_toml("[retry]\nmax_server_wait = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("duration"), "{err}");
    }

    #[test]
    fn a_group_ejects_outliers_with_the_defaults_or_its_own_settings() {
        let c = Config::from_toml(
            "[groups.a]\ntargets = [\"openai/x\"]\noutliers = {}\n[groups.b]\ntargets = [\"openai/x\"]\noutliers = { consecutive_failures = 3, base_ejection = \"10s\", max_ejected_percent = 50 }\n",
        )
        .unwrap();
        let d = crate::route::outliers::OutlierConfig::default();
        assert_eq!(c.groups["a"].group().unwrap().outliers, Some(d));
        let b = c.groups["b"].group().unwrap().outliers.unwrap();
        assert_eq!(
            (
                b.consecutive_failures,
                b.base_ejection,
                b.max_ejected_percent,
                b.interval
            ),
            (3, Duration::from_secs(10), 50, d.interval)
        );
        let err = Config::from_toml(
            "[groups.a]\ntargets = [\"openai/x\"]\noutliers = { max_ejected_percent = 500 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("outliers") && err.contains("max_ejected_percent"),
            "{err}"
        );
        assert!(Config::from_toml(
            "[groups.a]\ntargets = [\"openai/x\"]\noutliers = { eject = true }\n"
        )
        .is_err());
    }

    #[test]
    fn an_adaptive_limit_is_read_with_its_defaults_and_checked_when_the_client_is_built() {
        let c = Config::from_toml("[adaptive_limit]\nmax = 50\nqueue_timeout = \"2s\"\n").unwrap();
        let l = c.adaptive_limit.as_ref().unwrap().config();
        assert_eq!(
            (l.max, l.queue_timeout, l.initial),
            (50, Duration::from_secs(2), 20)
        );
        for wrong in ["max = 5", "queue_timeout = \"100000000h\""] {
            let wrong = Config::from_toml(&format!("[adaptive_limit]\n{wrong}\n")).unwrap();
            let built = wrong.apply(crate::Client::builder()).unwrap().build();
            assert!(matches!(&built, Err(Error::Config(_))), "{:?}", built.err());
        }
        assert!(Config::from_toml("[adaptive_limit]\nlimit = 5\n").is_err());
    }

    #[test]
    fn a_group_is_hedged_after_a_delay_or_a_percentile() {
        let c = Config::from_toml(
            "[groups.a]\ntargets = [\"openai/x\"]\nhedge = { after = \"800ms\" }\n[groups.b]\ntargets = [\"openai/x\"]\nhedge = { percentile = 95, fallback = \"1s\", max_hedges = 2, same_target = true }\n",
        )
        .unwrap();
        let a = c.groups["a"].group().unwrap().hedge.unwrap();
        assert_eq!(
            a,
            crate::route::hedge::Hedge::after(Duration::from_millis(800))
        );
        let b = c.groups["b"].group().unwrap().hedge.unwrap();
        assert_eq!(
            (b.delay, b.max_hedges, b.same_target),
            (
                crate::route::hedge::HedgeDelay::Percentile {
                    p: 95,
                    fallback: Duration::from_secs(1)
                },
                2,
                true
            )
        );
        for wrong in [
            "hedge = {}",
            "hedge = { percentile = 95 }",
            "hedge = { after = \"1s\", percentile = 95, fallback = \"1s\" }",
            "hedge = { after = \"1s\", max_hedges = 9 }",
        ] {
            let toml = format!("[groups.a]\ntargets = [\"openai/x\"]\n{wrong}\n");
            let err = Config::from_toml(&toml).unwrap_err().to_string();
            assert!(err.contains("hedge"), "{wrong}: {err}");
        }
    }

    #[test]
    fn a_deployment_hedges_its_own_calls_with_its_floor_and_limit() {
        let toml = "[deployments.a]\nkind = \"openai\"\nhedge = { after = \"2s\" }\nmin_rate = { chars_per_sec = 50 }\nadaptive_limit = { max = 40 }\n";
        let c = Config::from_toml(toml).unwrap();
        let a = &c.deployments["a"];
        let h = a.hedge.as_ref().unwrap().hedge().unwrap();
        assert_eq!(h, crate::route::hedge::Hedge::after(Duration::from_secs(2)));
        let floor = a.min_rate.as_ref().unwrap().floor();
        assert_eq!(
            floor,
            crate::runtime::RateFloor::new(50, Duration::from_secs(2))
        );
        assert_eq!(a.adaptive_limit.as_ref().unwrap().config().max, 40);
        assert!(c.apply(ClientBuilder::default()).is_ok());
        let wrong = Config::from_toml(&toml.replace("after = \"2s\"", "max_hedges = 2")).unwrap();
        let err = wrong
            .apply(ClientBuilder::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("deployments.a.hedge"), "{err}");
    }

    #[test]
    fn adaptive_throttling_is_read_with_its_defaults_and_checked_when_the_client_is_built() {
        let c = Config::from_toml(
            "[prices.\"azure/gpt-4o\"]\ninput = 2.0\noutput = 8.0\nas_of = \"2026-12-01\"\n",
        )
        .unwrap();
        assert_eq!(c.prices["azure/gpt-4o"].input, 2.0);
        assert!(c.apply(ClientBuilder::default()).is_ok());
        let bad = Config::from_toml("[prices.m]\ninput = -2.0\noutput = 8.0\n").unwrap();
        let err = bad.apply(ClientBuilder::default()).unwrap_err().to_string();
        assert!(err.contains("prices.m.input"), "{err}");
        let c = Config::from_toml(
            "budget_lease = \"30s\"\n[[budgets]]\nscope = \"every_key\"\ntokens = 100\nperiod = \"day\"\n",
        )
        .unwrap();
        assert_eq!(c.budget_lease, Some(Duration::from_secs(30)));
        assert!(c.apply(ClientBuilder::default()).is_ok());
        let bad = Config::from_toml("[[budgets]]\nscope = \"nobody\"\ntokens = 1\n").unwrap();
        let err = bad.apply(ClientBuilder::default()).unwrap_err().to_string();
        assert!(err.contains("budgets[0]"), "{err}");
        let c = Config::from_toml("[adaptive_throttle]\nwindow = \"30s\"\n").unwrap();
        let t = c.adaptive_throttle.as_ref().unwrap().config();
        assert_eq!((t.k, t.window), (2.0, Duration::from_secs(30)));
        assert!(c.apply(ClientBuilder::default()).is_ok());
        let wrong = Config::from_toml("[adaptive_throttle]\nk = 0.5\n").unwrap();
        let builder = wrong.apply(ClientBuilder::default()).unwrap();
        let err = builder.build().unwrap_err().to_string();
        assert!(err.contains("adaptive_throttle"), "{err}");
        assert!(Config::from_toml("[adaptive_throttle]\nratio = 2\n").is_err());
    }

    #[test]
    fn a_retry_throttle_is_read_and_checked_when_the_client_is_built() {
        let c =
            Config::from_toml("[retry_throttle]\nmax_tokens = 20\ntoken_ratio = 0.2\n").unwrap();
        assert_eq!(
            c.retry_throttle,
            Some(steer_actors::ThrottleConfig {
                max_tokens: 20,
                token_ratio: 0.2
            })
        );
        let err = Config::from_toml("[retry_throttle]\nmax_tokens = 20\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("token_ratio"), "{err}");
        let zero =
            Config::from_toml("[retry_throttle]\nmax_tokens = 0\ntoken_ratio = 0.2\n").unwrap();
        let built = zero.apply(crate::Client::builder()).unwrap().build();
        assert!(matches!(&built, Err(Error::Config(_))), "{:?}", built.err());
    }

    #[test]
    fn a_deployment_says_which_api_it_calls() {
        let c = Config::from_toml(
            "[deployments.r]\nkind = \"openai\"\napi = \"responses\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[deployments.c]\nkind = \"xai\"\napi = \"chat\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
        )
        .unwrap();
        assert!(c.deployments(Providers::new(), |_, _| None).is_ok());
        for wrong in [
            "[deployments.a]\nkind = \"anthropic\"\napi = \"responses\"\n",
            "[deployments.r]\nkind = \"openai\"\napi = \"responses\"\nprefill = \"trailing\"\n",
        ] {
            let c = Config::from_toml(wrong).unwrap();
            assert!(matches!(
                c.deployments(Providers::new(), |_, _| None),
                Err(Error::Config(_))
            ));
        }
        let err = Config::from_toml("[deployments.d]\nkind = \"openai\"\napi = \"assistants\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("api"), "{err}");
    }

    /// An azure deployment names its resource; pointed at the mock, it answers
    /// with its key in `api-key`.
    #[cfg(feature = "mock")]
    #[tokio::test]
    async fn an_azure_deployment_needs_its_resource_and_sends_api_key() {
        let c = Config::from_toml("[deployments.az]\nkind = \"azure\"\n").unwrap();
        let err = c.deployments(Providers::new(), |_, _| None).err();
        assert!(
            matches!(&err, Some(Error::Config(e)) if e.to_string().contains("deployments.az.base_url")),
            "{err:?}"
        );
        let mock = crate::mock::MockServer::start().await.unwrap();
        let url = mock.openai_base_url();
        let providers = c
            .deployments(Providers::new(), |_, _| {
                Some((url.clone(), crate::mock::MOCK_API_KEY.to_string()))
            })
            .unwrap();
        let req = crate::ChatRequest::new("az/my-gpt-4o")
            .unwrap()
            .user("Hello");
        assert!(providers.generate(&req).await.is_ok());
        let log = mock.requests();
        let sent = log
            .last()
            .map(|r| r.headers.iter().any(|(k, _)| k == "api-key"));
        assert_eq!(sent, Some(true));
    }

    /// An azure deployment with an `api_version` calls Azure's dated API: the
    /// deployment in the path, the version in the query, the key in `api-key`,
    /// both APIs (a background stream resumed there too); the mock answers a
    /// URL without its version as Azure does, 404.
    #[cfg(feature = "mock")]
    #[tokio::test]
    async fn an_azure_deployment_with_an_api_version_calls_the_dated_api() {
        use futures::StreamExt;
        let mock = crate::mock::MockServer::start().await.unwrap();
        let c = Config::from_toml(
            "[deployments.az]\nkind = \"azure\"\nbase_url = \"https://contoso.openai.azure.com\"\napi_version = \"2024-10-21\"\n",
        )
        .unwrap();
        let url = mock.openai_base_url();
        let providers = c
            .deployments(Providers::new(), |_, _| {
                Some((url.clone(), crate::mock::MOCK_API_KEY.to_string()))
            })
            .unwrap();
        let req = crate::ChatRequest::new("az/my-gpt-4o")
            .unwrap()
            .user("Hello");
        assert!(!providers.generate(&req).await.unwrap().text.is_empty());
        let codex = crate::ChatRequest::new("az/gpt-5-codex")
            .unwrap()
            .user("Hello")
            .in_background(true)
            .request_id("dated");
        let mut stream = providers.stream(&codex).await.unwrap();
        while stream.next().await.is_some() {}
        // A broken background stream resumes at the dated API's address.
        let broken = crate::ChatRequest::new("az/gpt-5-codex")
            .unwrap()
            .user("Hello")
            .in_background(true)
            .request_id("dated-broken");
        mock.script_key("dated-broken", [crate::mock::FaultPlan::reset(2)]);
        let client = crate::Client::builder()
            .providers(providers.clone())
            .retry(steer_actors::RetryPolicy::default().max_attempts(3))
            .build()
            .unwrap();
        let got = client.stream(broken).await.unwrap();
        let text: Vec<_> = got.collect().await;
        assert!(text.iter().all(|e| e.is_ok()), "{text:?}");
        let log = mock.requests();
        assert_eq!(
            log[0].path,
            "/openai/deployments/my-gpt-4o/chat/completions"
        );
        assert_eq!(log[0].model(), Some("my-gpt-4o"));
        assert!(log[0].headers.iter().any(|(k, _)| k == "api-key"));
        let paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
        assert!(paths.contains(&"/openai/responses"), "{paths:?}");
        assert!(
            paths
                .iter()
                .any(|p| p.starts_with("/openai/responses/resp_")),
            "{paths:?}"
        );
        // Unversioned, the dated API is not there.
        let raw = reqwest::Client::new()
            .post(format!(
                "{}/openai/deployments/my-gpt-4o/chat/completions",
                mock.base_url()
            ))
            .header("api-key", "k")
            .body(r#"{"messages":[{"role":"user","content":"hi"}]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), 404);
        let bad =
            Config::from_toml("[deployments.o]\nkind = \"openai\"\napi_version = \"2024-10-21\"\n")
                .unwrap()
                .deployments(Providers::new(), |_, _| None)
                .err();
        assert!(
            matches!(&bad, Some(Error::Config(e)) if e.to_string().contains("deployments.o.api_version")),
            "{bad:?}"
        );
    }

    /// A deployment with `api = "responses"` sends its requests to `/v1/responses`.
    #[cfg(feature = "mock")]
    #[tokio::test]
    async fn a_responses_deployment_calls_the_responses_api() {
        let mock = crate::mock::MockServer::start().await.unwrap();
        let c =
            Config::from_toml("[deployments.r]\nkind = \"openai\"\napi = \"responses\"\n").unwrap();
        let url = mock.openai_base_url();
        let providers = c
            .deployments(Providers::new(), |_, _| {
                Some((url.clone(), crate::mock::MOCK_API_KEY.to_string()))
            })
            .unwrap();
        let req = crate::ChatRequest::new("r/gpt-5-mini")
            .unwrap()
            .user("Hello");
        let reply = providers.generate(&req).await.unwrap();
        assert!(!reply.text.is_empty());
        let log = mock.requests();
        assert_eq!(log.last().map(|r| r.path.as_str()), Some("/v1/responses"));
    }

    /// Background mode is the Responses API's: a deployment or a group turns
    /// it on; a deployment that cannot speak that API is told so.
    #[cfg(feature = "mock")]
    #[tokio::test]
    async fn background_mode_is_set_per_deployment_and_per_group() {
        use futures::StreamExt;
        let mock = crate::mock::MockServer::start().await.unwrap();
        let c = Config::from_toml(
            "[deployments.r]\nkind = \"openai\"\napi = \"responses\"\nbackground = true\n\
             [groups.g]\ntargets = [\"r/gpt-5-mini\"]\nbackground = true\n",
        )
        .unwrap();
        assert!(c.groups["g"].group().unwrap().background);
        let slow = Config::from_toml(
            "[groups.s]\ntargets = [\"openai/gpt-4o-mini\"]\nmin_rate = { chars_per_sec = 200, window = \"500ms\" }\n",
        )
        .unwrap();
        assert_eq!(
            slow.groups["s"].group().unwrap().min_rate,
            Some(crate::runtime::RateFloor::new(
                200,
                Duration::from_millis(500)
            ))
        );
        let url = mock.openai_base_url();
        let providers = c
            .deployments(Providers::new(), |_, _| {
                Some((url.clone(), crate::mock::MOCK_API_KEY.to_string()))
            })
            .unwrap();
        let req = crate::ChatRequest::new("r/gpt-5-mini")
            .unwrap()
            .user("Hello");
        let mut stream = providers.stream(&req).await.unwrap();
        while stream.next().await.is_some() {}
        let log = mock.requests();
        assert_eq!(
            log.last().map(|r| r.body["background"].clone()),
            Some(true.into())
        );
        for (toml, setting) in [
            (
                "[deployments.a]\nkind = \"anthropic\"\nbackground = true\n",
                "deployments.a.background",
            ),
            (
                "[deployments.x]\nkind = \"xai\"\nbackground = true\n",
                "deployments.x.background",
            ),
        ] {
            let err = Config::from_toml(toml)
                .unwrap()
                .deployments(Providers::new(), |_, _| None)
                .err();
            assert!(
                matches!(&err, Some(Error::Config(e)) if e.to_string().contains(setting)),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_deployment_declares_how_its_server_continues_a_prefill() {
        let c = Config::from_toml(
            "[deployments.deepseek]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/beta\"\nprefill = \"prefix_flag\"\n[deployments.plain]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
        )
        .unwrap();
        let providers = c.deployments(Providers::new(), |_, _| None).unwrap();
        let prefill = |name: &str| providers.get(name).unwrap().prefill("m");
        assert_eq!(prefill("deepseek"), crate::Prefill::PrefixFlag);
        assert_eq!(prefill("plain"), crate::Prefill::None);
        let err = Config::from_toml("[deployments.d]\nkind = \"openai\"\nprefill = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("prefill"), "{err}");
        let anthropic = Config::from_toml(
            "[deployments.a]\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:9\"\nprefill = \"trailing\"\n",
        )
        .unwrap();
        assert!(anthropic
            .deployments(Providers::new(), |_, _| None)
            .is_err());
    }

    #[test]
    fn the_shared_table_reads_into_a_shared_config() {
        let c = Config::from_toml(
            "[shared]\nredis = \"redis://127.0.0.1:7/\"\nprefix = \"svc\"\nbackstop = \"250ms\"\nquorum = 3\nprobes = 2\nprobe_lease = 4\n",
        )
        .unwrap();
        let shared = c.shared.as_ref().unwrap().config();
        assert_eq!(shared.url, "redis://127.0.0.1:7/");
        assert_eq!(shared.prefix, "svc");
        assert_eq!(shared.backstop, Duration::from_millis(250));
        assert_eq!((shared.quorum, shared.probes), (3, 2));
        assert_eq!(shared.probe_lease, Duration::from_secs(4));
        let defaults = Config::from_toml("[shared]\nredis = \"redis://h/\"\n").unwrap();
        assert_eq!(
            defaults.shared.unwrap().config(),
            crate::shared::SharedConfig::redis("redis://h/")
        );
        let err = Config::from_toml("[shared]\nredis = \"redis://h/\"\nquorom = 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("quorom"), "{err}");
        assert!(
            Config::from_toml("[shared]\nprefix = \"x\"\n").is_err(),
            "redis is required"
        );
        #[cfg(not(feature = "shared-redis"))]
        assert!(
            c.apply(crate::Client::builder()).is_err(),
            "needs the feature"
        );
    }

    #[test]
    fn durations_read_as_text_or_seconds() {
        let c = Config::from_toml("[breaker]\nopen_for = \"1m30s\"\nwindow = 2.5\n").unwrap();
        let b = c.breaker.unwrap();
        assert_eq!(b.open_for, Some(Duration::from_secs(90)));
        assert_eq!(b.window, Some(Duration::from_millis(2500)));
    }
}
