//! The client's builder: its settings, validated and started as a [`Client`].

use super::*;

/// The most arbiters (threads) a client starts.
pub const MAX_ARBITERS: usize = 256;

/// What happens when `max_in_flight` requests are already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overload {
    /// Fail at once with [`Error::Overloaded`] (default).
    #[default]
    Reject,
    /// Wait for a slot.
    Wait,
}

/// Stream timeouts and continuation of a client.
#[derive(Debug, Clone, Copy)]
pub(super) struct StreamDefaults {
    pub(super) headers_timeout: Option<Duration>,
    pub(super) first_token_timeout: Option<Duration>,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) min_rate: Option<crate::stream::rate::RateFloor>,
    pub(super) continuation: Continuation,
    pub(super) divergence: Divergence,
}

impl Default for StreamDefaults {
    fn default() -> Self {
        StreamDefaults {
            headers_timeout: Some(Duration::from_secs(60)),
            first_token_timeout: Some(Duration::from_secs(120)),
            idle_timeout: Some(Duration::from_secs(60)),
            min_rate: None,
            continuation: Continuation::Auto,
            divergence: Divergence::Restart,
        }
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    providers: Providers,
    breaker: BreakerConfig,
    breaker_for: BTreeMap<String, BreakerConfig>,
    retry: RetryPolicy,
    retry_for: BTreeMap<String, RetryPolicy>,
    budget: BudgetConfig,
    throttle: Option<steer_actors::retry::ThrottleConfig>,
    limit: Option<steer_actors::limit::LimitConfig>,
    limit_for: BTreeMap<String, steer_actors::limit::LimitConfig>,
    hedge_for: BTreeMap<String, crate::route::hedge::Hedge>,
    adaptive_throttle: Option<steer_actors::limit::AdaptiveThrottleConfig>,
    min_rate_for: BTreeMap<String, crate::stream::rate::RateFloor>,
    arbiters: Option<usize>,
    max_in_flight: usize,
    overload: Overload,
    attempt_timeout: Option<Duration>,
    deadline: Option<Duration>,
    seed: u64,
    stream: StreamDefaults,
    groups: BTreeMap<String, Group>,
    record_content: bool,
    shared: Option<crate::shared::SharedConfig>,
    prices: PriceTable,
    spend_budgets: Vec<(crate::budget::Scope, crate::budget::Budget)>,
    budget_lease: Duration,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            providers: Providers::new(),
            breaker: BreakerConfig::default(),
            breaker_for: BTreeMap::new(),
            retry: RetryPolicy::default(),
            retry_for: BTreeMap::new(),
            budget: BudgetConfig::default(),
            throttle: None,
            limit: None,
            limit_for: BTreeMap::new(),
            hedge_for: BTreeMap::new(),
            adaptive_throttle: None,
            min_rate_for: BTreeMap::new(),
            arbiters: None,
            max_in_flight: 10_000,
            overload: Overload::Reject,
            attempt_timeout: Some(Duration::from_secs(600)),
            deadline: None,
            seed: 0x5ee7,
            stream: StreamDefaults::default(),
            groups: BTreeMap::new(),
            record_content: false,
            prices: PriceTable::defaults(),
            spend_budgets: Vec::new(),
            budget_lease: crate::budget::DEFAULT_LEASE,
            shared: None,
        }
    }
}

impl ClientBuilder {
    /// The providers to call (default none; see [`Providers::from_env`]).
    pub fn providers(mut self, providers: Providers) -> Self {
        self.providers = providers;
        self
    }
    /// Breaker settings for every provider.
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }
    /// Breaker settings for one provider.
    pub fn breaker_for(mut self, provider: &str, config: BreakerConfig) -> Self {
        self.breaker_for.insert(provider.to_string(), config);
        self
    }
    /// Retry policy for every provider.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
    /// Retry policy for one provider.
    pub fn retry_for(mut self, provider: &str, policy: RetryPolicy) -> Self {
        self.retry_for.insert(provider.to_string(), policy);
        self
    }
    /// Retry budget of each provider.
    pub fn retry_budget(mut self, budget: BudgetConfig) -> Self {
        self.budget = budget;
        self
    }
    /// Throttles each provider's retries in the gRPC style, beside the retry
    /// budget (off by default): every failed attempt a retry could mend takes a
    /// token, every successful request puts `token_ratio` back, and retries go
    /// only while more than half the bucket is left
    /// ([`ThrottleConfig`](steer_actors::retry::ThrottleConfig)).
    ///
    /// ```
    /// use steer_llm::{Client, ThrottleConfig};
    /// let builder = Client::builder().retry_throttle(ThrottleConfig { max_tokens: 10, token_ratio: 0.1 });
    /// ```
    pub fn retry_throttle(mut self, config: steer_actors::retry::ThrottleConfig) -> Self {
        self.throttle = Some(config);
        self
    }
    /// Gives every deployment a bulkhead whose concurrency limit adapts (off
    /// by default): cut on 429s, overloads and timeouts, grown slowly on
    /// clean completions, cut when time to first token climbs, capped by a
    /// rate-limit header that says nothing is left; over it a call waits in a
    /// bounded queue by priority ([`GenerateOptions::priority`]), or, in a
    /// group, moves on ([`LimitConfig`](steer_actors::limit::LimitConfig)).
    ///
    /// ```
    /// use steer_llm::limit::LimitConfig;
    /// let builder = steer_llm::Client::builder().adaptive_limit(LimitConfig::default());
    /// ```
    pub fn adaptive_limit(mut self, config: steer_actors::limit::LimitConfig) -> Self {
        self.limit = Some(config);
        self
    }
    /// Sheds calls at the client while a deployment rejects most of them
    /// (off by default): the Google SRE book's adaptive throttling, per
    /// deployment. Over its `window`, a call is refused before it is sent
    /// (`Rejection::Throttled`; in a group the route moves on) with
    /// probability `max(0, (requests - k * accepts) / (requests + 1))`, where
    /// accepts are calls the server answered with anything but a rate limit
    /// or an overload ([`AdaptiveThrottleConfig`](steer_actors::limit::AdaptiveThrottleConfig)).
    ///
    /// ```
    /// use steer_llm::limit::AdaptiveThrottleConfig;
    /// let builder = steer_llm::Client::builder().adaptive_throttle(AdaptiveThrottleConfig::default());
    /// ```
    pub fn adaptive_throttle(
        mut self,
        config: steer_actors::limit::AdaptiveThrottleConfig,
    ) -> Self {
        self.adaptive_throttle = Some(config);
        self
    }
    /// [`ClientBuilder::adaptive_limit`] for one deployment.
    pub fn adaptive_limit_for(
        mut self,
        provider: &str,
        config: steer_actors::limit::LimitConfig,
    ) -> Self {
        self.limit_for.insert(provider.to_string(), config);
        self
    }
    /// Hedges the requests and streams to one deployment's models (outside a
    /// group; a group's own `hedge` governs its legs): when a call has not
    /// answered (a stream: not yielded its first content) after the delay,
    /// the same call goes to the same deployment again, the first answer
    /// wins and the other is cancelled (see [`Hedge`](crate::route::hedge::Hedge);
    /// `same_target` is implied). Per request: [`GenerateOptions::hedge`](crate::runtime::GenerateOptions::hedge).
    ///
    /// ```
    /// use std::time::Duration;
    /// use steer_llm::route::hedge::Hedge;
    /// let builder = steer_llm::Client::builder().hedge_for("openai", Hedge::after(Duration::from_secs(2)));
    /// ```
    pub fn hedge_for(mut self, provider: &str, hedge: crate::route::hedge::Hedge) -> Self {
        self.hedge_for.insert(provider.to_string(), hedge);
        self
    }
    /// [`ClientBuilder::stream_min_rate`] for one deployment's streams (over
    /// the client's; a request's own, then its group's, come first).
    pub fn stream_min_rate_for(
        mut self,
        provider: &str,
        floor: crate::stream::rate::RateFloor,
    ) -> Self {
        self.min_rate_for.insert(provider.to_string(), floor);
        self
    }
    /// Arbiters (threads) the actors spread over; default one per core, at
    /// most [`MAX_ARBITERS`] (more is a configuration error). `0` runs
    /// everything on the current arbiter of a running actix System (tests use this
    /// with tokio's paused clock).
    pub fn arbiters(mut self, n: usize) -> Self {
        self.arbiters = Some(n);
        self
    }
    /// Requests in flight at once (default 10,000; at least 1, at most
    /// tokio's `Semaphore::MAX_PERMITS`, which is as good as none), and what
    /// happens above it.
    pub fn max_in_flight(mut self, n: usize, overload: Overload) -> Self {
        self.max_in_flight = n.clamp(1, Semaphore::MAX_PERMITS);
        self.overload = overload;
        self
    }
    /// Time for each attempt (default 600 s; `None` for no limit).
    pub fn attempt_timeout(mut self, d: Option<Duration>) -> Self {
        self.attempt_timeout = d;
        self
    }
    /// Total time for each request, retries included (default none).
    pub fn deadline(mut self, d: Option<Duration>) -> Self {
        self.deadline = d;
        self
    }
    /// Stream timeouts: until the response headers (default 60 s), until the first
    /// text (default 120 s), and the longest silence between events (default 60 s).
    pub fn stream_timeouts(
        mut self,
        headers: Option<Duration>,
        first_token: Option<Duration>,
        idle: Option<Duration>,
    ) -> Self {
        self.stream.headers_timeout = headers;
        self.stream.first_token_timeout = first_token;
        self.stream.idle_timeout = idle;
        self
    }
    /// The stream timeouts set so far: headers, first token, idle.
    pub(crate) fn stream_timeout_settings(
        &self,
    ) -> (Option<Duration>, Option<Duration>, Option<Duration>) {
        let s = &self.stream;
        (s.headers_timeout, s.first_token_timeout, s.idle_timeout)
    }
    /// The least content every stream must deliver after its first token
    /// (default: none): one that trickles below it fails over or is resumed
    /// with the exact seam, as a `slow_stream` failure of its target.
    pub fn stream_min_rate(mut self, floor: Option<crate::stream::rate::RateFloor>) -> Self {
        self.stream.min_rate = floor;
        self
    }
    /// What streams do when they break after content began (default: continue,
    /// by prefill or "continue" message as the model allows).
    pub fn continuation(mut self, c: Continuation) -> Self {
        self.stream.continuation = c;
        self
    }
    /// What streams do with a continuation that cannot be spliced (it started
    /// the reply again and then differed): restart, with a `Restarted` event
    /// (default), or fail with the partial text.
    pub fn on_divergence(mut self, d: Divergence) -> Self {
        self.stream.divergence = d;
        self
    }
    /// A model group: requests to `group/<name>` go to its targets, failing over
    /// from one to the next as [`group::after_failure`](crate::route::group::after_failure)
    /// says.
    pub fn group(mut self, name: &str, group: Group) -> Self {
        self.groups.insert(name.to_string(), group);
        self
    }
    /// A spend budget over `scope` (several may count one request: each
    /// must have room). Before each attempt (a retry, a continuation, a
    /// group's leg or hedge) what it may cost is reserved; a stream's hold
    /// grows as it delivers and the stream ends at the cap
    /// (`FinishReason::Budget`); each settles on what it spent. See
    /// [`crate::budget`].
    pub fn spend_budget(
        mut self,
        scope: crate::budget::Scope,
        budget: crate::budget::Budget,
    ) -> Self {
        self.spend_budgets.push((scope, budget));
        self
    }
    /// How long a budget hold lasts without news from its attempt (a
    /// stream's growth renews it): a replica or request that dies mid-stream
    /// holds its budget no longer (default 2 minutes; at least 100 ms, at
    /// most a day: `steer_actors::budget::MAX_LEASE`, in Redis too).
    pub fn budget_lease(mut self, lease: Duration) -> Self {
        let longest = steer_actors::budget::MAX_LEASE;
        self.budget_lease = lease.clamp(Duration::from_millis(100), longest);
        self
    }
    /// The price table attempts are costed at, instead of the defaults
    /// ([`PriceTable::defaults`]).
    pub fn prices(mut self, table: PriceTable) -> Self {
        self.prices = table;
        self
    }
    /// Sets one row of the price table: a model (`gpt-4o`) or a deployment's
    /// model (`azure/gpt-4o`, which wins over the model's own).
    ///
    /// ```
    /// use steer_llm::cost::{PerMillion, Price, Rates};
    /// let d = |x| PerMillion::dollars(x).unwrap();
    /// let contract = Price::new(Rates::new(d(2.0), d(8.0)), "2026-12-01", "our contract");
    /// let builder = steer_llm::Client::builder().price("azure/gpt-4o", contract);
    /// # let _ = builder;
    /// ```
    pub fn price(mut self, key: impl Into<String>, price: crate::cost::Price) -> Self {
        self.prices.set(key, price);
        self
    }
    /// Whether request spans record the prompt (`gen_ai.input.messages`) and the
    /// reply (`gen_ai.output.messages`). Off by default: traces often leave the
    /// service, and prompts hold what users typed.
    pub fn record_content(mut self, on: bool) -> Self {
        self.record_content = on;
        self
    }
    /// Shares rate-limit pauses with the other replicas of the service through
    /// Redis (feature `shared-redis`; off by default). See [`crate::shared`].
    #[cfg(feature = "shared-redis")]
    pub fn shared(mut self, config: crate::shared::SharedConfig) -> Self {
        self.shared = Some(config);
        self
    }
    /// Seed of the backoff jitter (fixed seeds make schedules reproducible).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Validates the settings and starts the actors.
    pub fn build(self) -> Result<Client, Error> {
        for config in std::iter::once(&self.breaker).chain(self.breaker_for.values()) {
            config
                .validate()
                .map_err(|e| ConfigError::setting("breaker", e))?;
        }
        for policy in std::iter::once(&self.retry).chain(self.retry_for.values()) {
            policy
                .validate()
                .map_err(|e| ConfigError::setting("retry", e))?;
        }
        if !(self.budget.ratio.is_finite() && self.budget.ratio >= 0.0) {
            return Err(ConfigError::setting("retry_budget.ratio", "must be >= 0"));
        }
        if let Some(t) = &self.throttle {
            t.validate()
                .map_err(|e| ConfigError::setting("retry_throttle", e))?;
        }
        for l in self.limit.iter().chain(self.limit_for.values()) {
            l.validate()
                .map_err(|e| ConfigError::setting("adaptive_limit", e))?;
        }
        if let Some(t) = &self.adaptive_throttle {
            t.validate()
                .map_err(|e| ConfigError::setting("adaptive_throttle", e))?;
        }
        for h in self.hedge_for.values() {
            h.validate().map_err(|e| ConfigError::setting("hedge", e))?;
        }
        let known = self.providers.names();
        for name in self.hedge_for.keys().chain(self.min_rate_for.keys()) {
            if !known.contains(name) {
                return Err(ConfigError::setting(
                    "hedge_for / stream_min_rate_for",
                    format!("no deployment named {name:?}"),
                ));
            }
        }
        for (name, group) in &self.groups {
            group
                .validate(&known)
                .map_err(|e| ConfigError::group(name, e))?;
        }
        let count = self.arbiters.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(MAX_ARBITERS)
        });
        if count > MAX_ARBITERS {
            return Err(ConfigError::setting(
                "arbiters",
                format!("{count} threads: at most {MAX_ARBITERS}"),
            ));
        }
        let arbiters = Arbiters::new(count)?;
        let meters = Meters::new();
        let mut handles = BTreeMap::new();
        for (i, name) in self.providers.names().into_iter().enumerate() {
            let provider = self.providers.get(&name)?;
            let arbiter = arbiters.handles[i % arbiters.handles.len()].clone();
            let breaker_config = self.breaker_for.get(&name).unwrap_or(&self.breaker).clone();
            let policy = self.retry_for.get(&name).unwrap_or(&self.retry).clone();
            let max_pause_wait = policy.max_server_wait;
            let (budget, seed) = (self.budget, self.seed.wrapping_add(i as u64));
            let limits = steer_actors::provider::Limits {
                limit: self.limit_for.get(&name).copied().or(self.limit),
                throttle: self.adaptive_throttle,
            };
            let actors = ProviderActors::start_with_limit(
                &arbiter,
                CircuitBreaker::new(&name, breaker_config),
                match self.throttle {
                    Some(t) => RetryCoordinator::new(policy, budget, seed).with_throttle(t),
                    None => RetryCoordinator::new(policy, budget, seed),
                },
                limits,
                meters.clone(),
            );
            let (hedge, min_rate) = (
                self.hedge_for.get(&name).copied(),
                self.min_rate_for.get(&name).copied(),
            );
            handles.insert(
                name,
                ProviderHandle {
                    name: Arc::from(provider.name()),
                    provider,
                    max_pause_wait,
                    hedge,
                    min_rate,
                    actors,
                },
            );
        }
        #[cfg(feature = "shared-redis")]
        let shared = match &self.shared {
            Some(config) => {
                use crate::shared::redis::SharedState;
                let breakers = handles
                    .iter()
                    .map(|(name, h)| (name.clone(), h.actors.breaker.clone()))
                    .collect();
                let mirror = SharedState::new(config.clone(), breakers, meters.clone())?;
                let addr = SharedState::start_in_arbiter(&arbiters.handles[0], |_| mirror);
                for h in handles.values() {
                    h.breaker().do_send(steer_actors::breaker::ShareState {
                        reports: addr.clone().recipient(),
                        probes: addr.clone().recipient(),
                    });
                }
                Some(addr)
            }
            None => None,
        };
        #[cfg(not(feature = "shared-redis"))]
        if self.shared.is_some() {
            return Err(ConfigError::setting(
                "shared",
                "shared state needs the shared-redis feature",
            ));
        }
        let resolved = handles
            .iter()
            .map(|(name, h)| (name.clone(), (h.provider.clone(), h.actors.clone())))
            .collect();
        let ejected = Arc::new(crate::route::EjectedFlags::new(&self.groups));
        let outliers = self.groups.values().any(|g| g.outliers.is_some()).then(|| {
            let (groups, flags, meters) = (self.groups.clone(), ejected.clone(), meters.clone());
            actix::Supervisor::start_in_arbiter(&arbiters.handles[0], move |_| {
                OutlierActor::new(&groups, flags, meters)
            })
        });
        let targets = Targets::new(
            resolved,
            &self.groups,
            ejected,
            outliers.clone().map(|a| a.recipient()),
            meters.clone(),
        );
        let prices = Arc::new(self.prices);
        let ledger = match self.spend_budgets.is_empty() {
            true => None,
            false => Some(ledgers(self.shared.as_ref(), &arbiters.handles[0])?),
        };
        let budgets = Arc::new(
            crate::budget::gate::BudgetGate::new(self.spend_budgets, ledger, prices.clone())
                .with_lease(self.budget_lease),
        );
        let teach = budgets.any().then(|| budgets.clone());
        let pricing = Arc::new(Pricing::new(prices, Some(meters.clone()), teach));
        let partials = Arc::new(PartialStore::start_in_arbiter(&arbiters.handles[0], |_| {
            PartialStore::new(Duration::from_secs(15 * 60), 10_000)
        }));
        Ok(Client {
            inner: Arc::new(Inner {
                partials,
                handles,
                admission: Arc::new(Semaphore::new(self.max_in_flight)),
                max_in_flight: self.max_in_flight,
                overload: self.overload,
                attempt_timeout: self.attempt_timeout,
                deadline: self.deadline,
                stream: self.stream,
                targets,
                outliers,
                groups: self.groups,
                meters,
                pricing,
                budgets,
                record_content: self.record_content,
                #[cfg(feature = "shared-redis")]
                shared,
                next_arbiter: std::sync::atomic::AtomicUsize::new(0),
                arbiters,
            }),
        })
    }
}

/// Where the spend budgets are kept: in Redis when the replicas share state
/// (this process's ledger behind it when failing open), else in this process.
fn ledgers(
    shared: Option<&crate::shared::SharedConfig>,
    arbiter: &actix::ArbiterHandle,
) -> Result<crate::budget::gate::Ledgers, Error> {
    use steer_actors::budget::actor::BudgetLedger;
    let local = BudgetLedger::start_in_arbiter(arbiter, |_| BudgetLedger::default());
    #[cfg(feature = "shared-redis")]
    if let Some(config) = shared {
        let fallback = (config.budget_fail == crate::shared::BudgetFail::Open).then_some(local);
        let redis = crate::shared::ledger::RedisLedger::new(config, fallback)?;
        return Ok(crate::budget::gate::Ledgers::Shared(Arc::new(redis)));
    }
    let _ = shared;
    Ok(crate::budget::gate::Ledgers::Local(local))
}
