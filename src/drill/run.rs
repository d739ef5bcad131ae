//! Runs the scenarios: a fresh world each (mocks, client, breakers), the
//! workload through it, the faults switched as the run goes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::{Actor, Context, Handler};
use futures::StreamExt;
use parking_lot::Mutex;

use super::plant::{LiveLimits, Plant};
use super::report::{Report, ScenarioReport, Transition};
use super::scenario::Scenario;
use super::workload;
use crate::config::{Config, Kind};
use crate::error::{ConfigError, Error};
use crate::model::ModelId;
use crate::runtime::TransitionEvent;
use crate::BreakerState;

/// The configuration a drill uses when given none: one model behind two
/// deployments (Anthropic's API, then an OpenAI-compatible gateway serving
/// the same model), in order, a rate floor for streams, and steer's defaults
/// with the waits shortened so that every scenario ends in seconds.
pub const BUILT_IN_CONFIG: &str = r#"
[deployments.direct]
kind = "anthropic"

[deployments.gateway]
kind = "openai"

[groups.main]
targets = ["direct/claude-3-5-haiku-latest", "gateway/claude-3-5-haiku-latest"]
min_rate = { chars_per_sec = 100, window = "500ms" }

[retry]
base = "50ms"
max_delay = "1s"
max_server_wait = "5s"

[breaker]
open_for = "1s"

[timeouts]
attempt = "2s"
idle = "1s"
"#;

/// Where the shared state points while Redis is gone: a port nothing
/// listens on (connections are refused at once).
const GONE_REDIS: &str = "redis://127.0.0.1:1/";

/// The longest a scenario's requests may be spread over.
pub const MAX_SPREAD: Duration = Duration::from_secs(3_600);

/// How long a scenario's requests are spread over, by default.
pub const DEFAULT_SPREAD: Duration = Duration::from_millis(1500);

/// What a drill's progress shows while it runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests finished.
    pub done: AtomicU64,
    /// Requests in flight.
    pub in_flight: AtomicU64,
    /// Attempts beyond a request's first.
    pub retries: AtomicU64,
    /// Streams resumed.
    pub resumptions: AtomicU64,
    /// Moves to another target.
    pub failovers: AtomicU64,
    /// Breakers open now.
    pub open_breakers: AtomicU64,
    /// Scenarios started (the one running is this one, counting from 1).
    pub scenarios_started: AtomicU64,
}

/// A drill: the configuration, the workload and the faults to replay.
///
/// ```no_run
/// # async fn run() -> Result<(), steer_llm::Error> {
/// use steer_llm::drill::{Drill, Scenario};
/// let drill = Drill::built_in()?.requests(100);
/// let report = drill.run(&[Scenario::Outage]).await?;
/// assert_eq!(report.chars_wrong(), 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Drill {
    config: Config,
    source: String,
    /// What the requests name (none yet: a configuration with no group
    /// and no target named).
    target: Option<ModelId>,
    requests: u64,
    concurrency: usize,
    stream_share: f64,
    spread: Duration,
    seed: u64,
    progress: Arc<Counters>,
    stop: Arc<AtomicBool>,
    /// Live: the real endpoints, within these limits.
    live: Option<LiveLimits>,
}

/// The most requests a live drill sends a scenario.
pub const LIVE_MAX_REQUESTS: u64 = 500;

/// The output limit of every request of a live drill (its spend stays small).
pub const LIVE_MAX_TOKENS: u32 = 64;

impl Drill {
    /// A drill of [`BUILT_IN_CONFIG`] on its group.
    pub fn built_in() -> Result<Drill, Error> {
        Drill::of(Config::from_toml(BUILT_IN_CONFIG)?, "built-in")
    }

    /// A drill of `config` (read from `source`, for the report), on its first
    /// group (by name) if it has one; name another, or a model when it has
    /// none, with [`Drill::target`].
    pub fn of(config: Config, source: &str) -> Result<Drill, Error> {
        let target = match config.groups.keys().next() {
            Some(group) => Some(format!("group/{group}").parse()?),
            None => None,
        };
        Ok(Drill {
            target,
            config,
            source: source.to_string(),
            requests: 120,
            concurrency: 16,
            stream_share: 0.5,
            spread: DEFAULT_SPREAD,
            seed: 1,
            progress: Arc::new(Counters::default()),
            stop: Arc::new(AtomicBool::new(false)),
            live: None,
        })
    }

    /// What the requests name: `provider/model` or `group/<name>`.
    pub fn target(mut self, target: &str) -> Result<Drill, Error> {
        let id: ModelId = target.parse()?;
        if id.provider() == "group" && !self.config.groups.contains_key(id.model()) {
            return Err(ConfigError::setting(
                "--group",
                format!("the configuration has no group {:?}", id.model()),
            ));
        }
        self.target = Some(id);
        Ok(self)
    }

    /// Requests a scenario (default 120; at least 1).
    pub fn requests(mut self, n: u64) -> Drill {
        self.requests = n;
        self
    }

    /// Requests in flight at once (default 16; at least 1).
    pub fn concurrency(mut self, n: usize) -> Drill {
        self.concurrency = n;
        self
    }

    /// The share of requests that stream, 0 to 1 (default 0.5).
    pub fn stream_share(mut self, share: f64) -> Drill {
        self.stream_share = share;
        self
    }

    /// Spreads each scenario's requests evenly over this long (default
    /// 1.5 s, at most [`MAX_SPREAD`]): the faults' windows are shares of it,
    /// and a breaker has the time to open and close again.
    pub fn spread(mut self, d: Duration) -> Drill {
        self.spread = d;
        self
    }

    /// The seed of the workload and of the faults' draws (default 1).
    pub fn seed(mut self, seed: u64) -> Drill {
        self.seed = seed;
        self
    }

    /// Counters to show progress with while it runs.
    pub fn progress(&self) -> Arc<Counters> {
        self.progress.clone()
    }

    /// Runs against the real endpoints of the configuration (their keys from
    /// the environment) instead of the mock: a fault proxy on 127.0.0.1 in
    /// front of the first target injects the scenarios' faults (an error
    /// fault is answered by the proxy, costing nothing), every request asks
    /// for at most [`LIVE_MAX_TOKENS`] tokens, a scenario sends at most
    /// [`LIVE_MAX_REQUESTS`], and a client-wide budget refuses anything past
    /// `max_usd` dollars a scenario. There is no fault-free text to compare
    /// replies with: the report says the text was not checked.
    pub fn live(mut self, max_usd: f64) -> Result<Drill, Error> {
        if !(max_usd.is_finite() && max_usd > 0.0) {
            return Err(ConfigError::setting(
                "--max-usd",
                "must be a positive number of dollars",
            ));
        }
        self.live = Some(LiveLimits { max_usd });
        Ok(self)
    }

    /// A flag that stops the drill when set: requests in flight finish, no
    /// new one starts, and the report covers what ran.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Runs `scenarios` in turn; settings out of range are an error before
    /// anything runs.
    pub async fn run(&self, scenarios: &[Scenario]) -> Result<Report, Error> {
        self.validate()?;
        let mut report = Report {
            schema: super::report::SCHEMA_VERSION,
            seed: self.seed,
            config: self.source.clone(),
            target: self
                .target
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
            scenarios: Vec::new(),
            interrupted: false,
        };
        for sc in scenarios {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            self.progress
                .scenarios_started
                .fetch_add(1, Ordering::Relaxed);
            report.scenarios.push(self.run_one(*sc).await?);
        }
        report.interrupted = self.stop.load(Ordering::Relaxed);
        Ok(report)
    }

    /// The wire format of a provider (deployment).
    fn kind_of(&self, provider: &str) -> Kind {
        match self.config.deployments.get(provider) {
            Some(d) => d.kind,
            None if provider == "anthropic" => Kind::Anthropic,
            None if provider == "xai" => Kind::Xai,
            None => Kind::Openai,
        }
    }

    /// What the requests name, and the provider (deployment) of their
    /// first target, which the faults strike.
    fn target_for(&self) -> Result<(ModelId, String), Error> {
        let target = self.target.clone().ok_or_else(no_target)?;
        let targets: Vec<String> = if target.provider() == "group" {
            self.config
                .groups
                .get(target.model())
                .map(|g| g.targets.clone())
                .unwrap_or_default()
        } else {
            vec![target.to_string()]
        };
        let provider = |t: &str| t.split_once('/').map_or(t, |(d, _)| d).to_string();
        let first = targets.first().map(|t| provider(t)).unwrap_or_default();
        Ok((target, first))
    }

    /// The configuration for `sc`: a prefill restart has the OpenAI-format
    /// deployments claim to continue a prefill (their server does not);
    /// with Redis gone, the shared state points at a port nothing listens on.
    fn config_for(&self, sc: Scenario) -> Config {
        let mut config = self.config.clone();
        if sc == Scenario::RedisGone {
            if let Some(shared) = config.shared.as_mut() {
                shared.redis = GONE_REDIS.to_string();
            }
        }
        if sc == Scenario::PrefillRestart {
            for d in config.deployments.values_mut() {
                if d.kind != Kind::Anthropic {
                    d.prefill = Some(crate::Prefill::Trailing);
                }
            }
        }
        config
    }

    /// The settings, each within its range.
    fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str, why: String| Err(ConfigError::setting(what, why));
        if self.target.is_none() {
            return Err(no_target());
        }
        if self.requests == 0 {
            return bad("--requests", "at least 1".into());
        }
        if self.concurrency == 0 {
            return bad("--concurrency", "at least 1".into());
        }
        if self.live.is_some() && self.requests > LIVE_MAX_REQUESTS {
            return bad(
                "--requests",
                format!("a live drill sends at most {LIVE_MAX_REQUESTS} requests a scenario"),
            );
        }
        if !(0.0..=1.0).contains(&self.stream_share) {
            return bad(
                "--stream-share",
                format!("{} is not a share from 0 to 1", self.stream_share),
            );
        }
        if self.spread > MAX_SPREAD {
            return bad(
                "--duration",
                format!("{:?} is longer than the most, {MAX_SPREAD:?}", self.spread),
            );
        }
        Ok(())
    }

    /// Why `sc` cannot run with this configuration and build, if it cannot.
    fn cannot_run(&self, sc: Scenario) -> Option<&'static str> {
        if sc != Scenario::RedisGone {
            return None;
        }
        if self.config.shared.is_none() {
            return Some("the configuration shares no state with other replicas (no [shared])");
        }
        if !cfg!(feature = "shared-redis") {
            return Some("built without the shared-redis feature (--features cli,shared-redis)");
        }
        None
    }

    async fn run_one(&self, sc: Scenario) -> Result<ScenarioReport, Error> {
        if let Some(why) = self.cannot_run(sc) {
            return Ok(ScenarioReport::skipped(sc, why));
        }
        let (target, first) = self.target_for()?;
        let kind = self.kind_of(&first);
        let config = self.config_for(sc);
        let plant = match self.live {
            Some(limits) => Plant::start_live(&config, &first, kind, self.seed, limits)?,
            None => Plant::start(&config)?,
        };
        let transitions = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let wall0 = SystemTime::now();
        let recorder = plant.client.start(Recorder {
            wall0,
            seen: transitions.clone(),
            counters: self.progress.clone(),
        });
        plant.client.breakers().subscribe_all(recorder.recipient());
        self.progress.open_breakers.store(0, Ordering::Relaxed);
        let fault_end_share = sc.fault_ends();
        let fault_end = Mutex::new(None::<Duration>);
        // The plan last set (`None` before the first): set again only when
        // the window changes.
        let applied = Mutex::new(None::<Option<crate::mock::FaultPlan>>);
        let set_faults = |progress: f64| {
            let plan = sc.plan_at(self.seed, kind, progress);
            let mut last = applied.lock();
            if last.as_ref() == Some(&plan) {
                return;
            }
            *last = Some(plan.clone());
            plant.set_fault(&first, plan);
            if progress >= fault_end_share && fault_end_share < 1.0 {
                fault_end.lock().get_or_insert(t0.elapsed());
            }
        };
        let live = &self.progress;
        let client = &plant.client;
        let checked = self.live.is_none();
        let stop = &self.stop;
        let (requests, spread) = (self.requests, self.spread);
        let outcomes: Vec<workload::Outcome> = futures::stream::iter(0..requests)
            .then(|i| async move {
                // Request i leaves at its share of the spread.
                let share = i as f64 / requests as f64;
                let at = t0 + spread.mul_f64(share);
                tokio::time::sleep_until(at.into()).await;
                i
            })
            .take_while(|_| futures::future::ready(!stop.load(Ordering::Relaxed)))
            .map(|i| {
                set_faults(i as f64 / requests as f64);
                let (mut req, stream) = workload::request(&target, i, self.seed, self.stream_share);
                if !checked {
                    req = req.max_tokens(LIVE_MAX_TOKENS);
                }
                live.in_flight.fetch_add(1, Ordering::Relaxed);
                let first = first.as_str();
                async move {
                    let out = workload::run(client, req, stream, first, checked, t0).await;
                    live.in_flight.fetch_sub(1, Ordering::Relaxed);
                    live.done.fetch_add(1, Ordering::Relaxed);
                    live.retries
                        .fetch_add(u64::from(out.attempts.saturating_sub(1)), Ordering::Relaxed);
                    live.resumptions
                        .fetch_add(u64::from(out.resumptions), Ordering::Relaxed);
                    live.failovers
                        .fetch_add(u64::from(out.failovers), Ordering::Relaxed);
                    out
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        set_faults(1.0);
        let elapsed = t0.elapsed();
        // Transitions still on their way from the breakers.
        let _ = plant.client.metrics().await;
        let breaker = std::mem::take(&mut *transitions.lock());
        let fault_end = *fault_end.lock();
        Ok(ScenarioReport::of(
            sc,
            &outcomes,
            fault_end,
            breaker,
            elapsed,
            plant.server_requests(),
            checked,
        ))
    }
}

/// The error of a drill with nothing to call.
fn no_target() -> Error {
    ConfigError::setting(
        "--model",
        "the configuration has no group: name what the requests call, \
         --model deployment/model or --group NAME",
    )
}

/// Keeps the breaker transitions of a scenario, and the count of open ones.
struct Recorder {
    wall0: SystemTime,
    seen: Arc<Mutex<Vec<Transition>>>,
    counters: Arc<Counters>,
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<TransitionEvent> for Recorder {
    type Result = ();

    fn handle(&mut self, e: TransitionEvent, _: &mut Context<Self>) {
        let open = |s: BreakerState| matches!(s, BreakerState::Open | BreakerState::ForcedOpen);
        if open(e.to) && !open(e.from) {
            self.counters.open_breakers.fetch_add(1, Ordering::Relaxed);
        } else if open(e.from) && !open(e.to) {
            let _ = self.counters.open_breakers.fetch_update(
                Ordering::Relaxed,
                Ordering::Relaxed,
                |n| Some(n.saturating_sub(1)),
            );
        }
        let at = e.at.duration_since(self.wall0).unwrap_or_default();
        self.seen.lock().push(Transition {
            at_ms: u64::try_from(at.as_millis()).unwrap_or(u64::MAX),
            target: match &e.model {
                Some(m) => format!("{}/{m}", e.provider),
                None => e.provider.clone(),
            },
            from: e.from,
            to: e.to,
        });
    }
}
