//! The client facade: `Client::builder()...build()`, `client.generate(req).await`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use futures::FutureExt;
use steer_actors::breaker::{
    BreakerStatus, ForceState, GetStatus, ResetBreaker, Subscribe, Target, TransitionEvent,
};
use steer_actors::lifecycle::request::{AttemptFn, RequestActor, RequestError};
use steer_actors::spec::RequestSpec;

use steer_actors::exec::in_place::NoReply;

use super::request_run::{self, GenerateReply, RequestRun};
use steer_actors::retry::GetMetrics;
use steer_actors::{
    BreakerConfig, BreakerState, BudgetConfig, CircuitBreaker, ProviderActors, ProviderReport,
    RetryCoordinator, RetryPolicy,
};
use tokio::sync::{oneshot, Semaphore};

use super::options::GenerateOptions;
use super::route_actor::{CancelOnDrop, Leg, RouteActor};
use super::system::Arbiters;
use super::MetricsSnapshot;
use crate::classify::classify;
use crate::error::{ConfigError, Error, ProviderError};
use crate::model::{ChatRequest, ChatResponse, RequestId};
use crate::observe::trace;
use crate::provider::{Provider, Providers};
use crate::route::{Group, Next, Route, Targets, GROUP_PROVIDER};
use crate::stream::actor::{StreamActor, StreamRoute, StreamSettings};
use crate::stream::continuation::{Continuation, Divergence};
use crate::stream::SteerStream;
use steer_actors::partials::{GetPartial, PartialResponse, PartialStore};
use steer_actors::telemetry::meters::{Meters, TargetMeters};

/// What happens when `max_in_flight` requests are already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overload {
    /// Fail at once with [`Error::Overloaded`] (default).
    #[default]
    Reject,
    /// Wait for a slot.
    Wait,
}

struct ProviderHandle {
    provider: Arc<dyn Provider>,
    /// Its name, shared by every request's spec.
    name: Arc<str>,
    /// Longest server-directed pause its requests wait out: its policy's cap.
    max_pause_wait: Duration,
    actors: Arc<ProviderActors>,
}

impl ProviderHandle {
    fn breaker(&self) -> &Addr<CircuitBreaker> {
        self.actors.breaker.addr()
    }

    /// Whether the provider can express `req`; nothing is sent when it cannot.
    fn check(&self, req: &ChatRequest) -> Result<(), Error> {
        self.provider
            .check(req)
            .map_err(|message| Error::InvalidRequest {
                provider: self.name.to_string(),
                message,
            })
    }
}

struct Inner {
    handles: BTreeMap<String, ProviderHandle>,
    admission: Arc<Semaphore>,
    max_in_flight: usize,
    overload: Overload,
    attempt_timeout: Option<Duration>,
    deadline: Option<Duration>,
    stream: StreamDefaults,
    /// Shared by every stream (an actix `Addr` clone allocates; an `Arc` clone does not).
    partials: Arc<Addr<PartialStore>>,
    groups: BTreeMap<String, Group>,
    /// What group routes reach their targets through.
    targets: Targets,
    /// The client's metric families.
    meters: Meters,
    /// Whether spans record prompt and reply text.
    record_content: bool,
    /// The mirror of pauses shared with other replicas, when sharing is on.
    #[cfg(feature = "shared-redis")]
    shared: Option<Addr<crate::shared::redis::SharedState>>,
    /// Which of the client's arbiters takes the next request from outside actix.
    next_arbiter: std::sync::atomic::AtomicUsize,
    // Last: stopping the arbiters after the addresses are gone.
    arbiters: Arbiters,
}

/// The reliable client: every call is retried, throttled and protected by the
/// provider's breaker as configured. Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), steer_llm::Error> {
/// use steer_llm::{ChatRequest, Client, Providers};
/// let client = Client::builder().providers(Providers::from_env()?).build()?;
/// let reply = client.generate(ChatRequest::new("openai/gpt-4o-mini")?.user("Hi")).await?;
/// println!("{}", reply.text);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("providers", &self.inner.handles.keys().collect::<Vec<_>>())
            .field("max_in_flight", &self.inner.max_in_flight)
            .finish_non_exhaustive()
    }
}

/// Stream timeouts and continuation of a client.
#[derive(Debug, Clone, Copy)]
struct StreamDefaults {
    headers_timeout: Option<Duration>,
    first_token_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    continuation: Continuation,
    divergence: Divergence,
}

impl Default for StreamDefaults {
    fn default() -> Self {
        StreamDefaults {
            headers_timeout: Some(Duration::from_secs(60)),
            first_token_timeout: Some(Duration::from_secs(120)),
            idle_timeout: Some(Duration::from_secs(60)),
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
            arbiters: None,
            max_in_flight: 10_000,
            overload: Overload::Reject,
            attempt_timeout: Some(Duration::from_secs(600)),
            deadline: None,
            seed: 0x5ee7,
            stream: StreamDefaults::default(),
            groups: BTreeMap::new(),
            record_content: false,
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
    /// Arbiters (threads) the actors spread over; default one per core. `0` runs
    /// everything on the current arbiter of a running actix System (tests use this
    /// with tokio's paused clock).
    pub fn arbiters(mut self, n: usize) -> Self {
        self.arbiters = Some(n);
        self
    }
    /// Requests in flight at once (default 10,000), and what happens above it.
    pub fn max_in_flight(mut self, n: usize, overload: Overload) -> Self {
        self.max_in_flight = n.max(1);
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
    /// from one to the next as [`group::after_failure`](super::group::after_failure)
    /// says.
    pub fn group(mut self, name: &str, group: Group) -> Self {
        self.groups.insert(name.to_string(), group);
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
        let known = self.providers.names();
        for (name, group) in &self.groups {
            group
                .validate(&known)
                .map_err(|e| ConfigError::group(name, e))?;
        }
        let count = self.arbiters.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
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
            let actors = ProviderActors::start(
                &arbiter,
                CircuitBreaker::new(&name, breaker_config),
                RetryCoordinator::new(policy, budget, seed),
                meters.clone(),
            );
            handles.insert(
                name,
                ProviderHandle {
                    name: Arc::from(provider.name()),
                    provider,
                    max_pause_wait,
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
        let targets = Targets::new(resolved, self.groups.values(), meters.clone());
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
                groups: self.groups,
                meters,
                record_content: self.record_content,
                #[cfg(feature = "shared-redis")]
                shared,
                next_arbiter: std::sync::atomic::AtomicUsize::new(0),
                arbiters,
            }),
        })
    }
}

impl Client {
    /// Starts a group route's actor where its caller runs: on the caller's arbiter
    /// when it has one (a user's actor, an actix-web worker), so that its messages
    /// and timers stay on the caller's thread; otherwise on the client's arbiters
    /// in turn. Always through the arbiter's queue: its closure runs inside the
    /// arbiter's task set even when the caller is a plain tokio task on that thread
    /// (starting in place panics there; BENCHMARKS.md). (A request's actor runs as
    /// `RequestRun` says, a stream's in its `SteerStream`.) The provider's breaker
    /// and coordinator stay on their home arbiter: requests reach them by the
    /// lock-free gate and one-way reports.
    fn start<A>(&self, actor: A) -> Addr<A>
    where
        A: Actor<Context = actix::Context<A>> + Send,
    {
        let arbiter = actix::Arbiter::try_current().unwrap_or_else(|| {
            let handles = &self.inner.arbiters.handles;
            let n = self
                .inner
                .next_arbiter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            handles[n % handles.len()].clone()
        });
        A::start_in_arbiter(&arbiter, move |_| actor)
    }

    /// A builder with defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    fn handle(&self, provider: &str) -> Result<&ProviderHandle, Error> {
        self.inner
            .handles
            .get(provider)
            .ok_or_else(|| Error::UnknownProvider {
                name: provider.to_string(),
                known: self.inner.handles.keys().cloned().collect(),
            })
    }

    /// The registered provider names.
    pub fn providers(&self) -> Vec<String> {
        self.inner.handles.keys().cloned().collect()
    }

    /// Sends a request with the client's settings; retried and protected. The
    /// future is `'static` and `Send`: it may be spawned.
    ///
    /// ```no_run
    /// # async fn run(client: steer_llm::Client) -> Result<(), steer_llm::Error> {
    /// let req = steer_llm::ChatRequest::new("openai/gpt-4o-mini")?.user("Hi");
    /// let reply = tokio::spawn(client.generate(req)).await.expect("joined")?;
    /// # Ok(()) }
    /// ```
    pub fn generate(
        &self,
        req: ChatRequest,
    ) -> impl Future<Output = Result<ChatResponse, Error>> + Send + 'static {
        self.generate_with(req, GenerateOptions::default())
    }

    /// Sends a request with per-request overrides. Dropping the returned future
    /// cancels the request: its HTTP call is aborted and its breaker permit returned.
    ///
    /// The future is one state machine (no `async fn` nested in another: each
    /// layer would keep its own copy of the request), so that a caller who spawns
    /// or joins it moves a few hundred bytes (`request_futures_stay_small`).
    // One `async move` block, not an `async fn`: an `async fn` keeps its
    // arguments beside the body's state (1,080 bytes against 696).
    #[allow(clippy::manual_async_fn)]
    ///
    /// The future owns what it needs (a clone of the client, which is an `Arc`):
    /// it is `'static`, so `tokio::spawn(client.generate_with(req, options))`
    /// compiles as a bare client's call would.
    pub fn generate_with(
        &self,
        req: ChatRequest,
        options: GenerateOptions,
    ) -> impl Future<Output = Result<ChatResponse, Error>> + Send + 'static {
        let client = self.clone();
        async move {
            let this = &client;
            if req.model.provider() == GROUP_PROVIDER {
                return Box::pin(this.generate_in_group(req, options)).await;
            }
            let record_content = this.inner.record_content;
            let span = trace::request_span(&req, trace::Kind::Generate, record_content);
            let result = 'run: {
                let handle = match this.handle(req.model.provider()) {
                    Ok(h) => h,
                    Err(e) => break 'run Err(e),
                };
                if let Err(e) = handle.check(&req) {
                    break 'run Err(e);
                }
                let admission = match this.admit().await {
                    Ok(permit) => permit,
                    Err(e) => break 'run Err(e),
                };
                let request_id = req.request_id.clone();
                let (run, target) =
                    this.request_actor(handle, req, &options, admission, span.clone());
                let result = generate_result(run.await, &request_id, handle.provider.name());
                if let Ok(reply) = &result {
                    let (meters, usage) = (&this.inner.meters, &reply.usage);
                    meters.tokens_at(&target, usage.prompt_tokens, usage.completion_tokens);
                }
                result
            };
            match &result {
                Ok(reply) => trace::record_response(&span, reply, record_content),
                Err(e) => trace::record_error(&span, e),
            }
            result
        }
    }

    /// The request's actor, running in its caller's own future until it replies
    /// (`RequestRun`, wherever the caller runs). Dropping the future cancels it: its HTTP call is aborted,
    /// its permit handed back, the request counted cancelled. With it, the
    /// request's metric series (looked up once, for its tokens too).
    fn request_actor(
        &self,
        handle: &ProviderHandle,
        req: ChatRequest,
        options: &GenerateOptions,
        admission: tokio::sync::OwnedSemaphorePermit,
        span: tracing::Span,
    ) -> (RequestRun, TargetMeters) {
        let spec = self.spec(handle, &req, options, self.inner.attempt_timeout);
        let provider = handle.provider.clone();
        let req = Arc::new(req);
        let attempt: AttemptFn<Box<ChatResponse>, ProviderError> = Box::new(move |_attempt| {
            let (provider, req) = (provider.clone(), req.clone());
            async move {
                match provider.generate(&req).await {
                    Ok(reply) => Ok(Box::new(reply)),
                    Err(e) => Err(Box::new((classify(&e), e))),
                }
            }
            .boxed()
        });
        let (tx, rx) = oneshot::channel();
        let actor = RequestActor::new(
            spec,
            handle.actors.clone(),
            attempt,
            tx,
            Some(admission),
            span,
        );
        let target = actor.target_meters();
        (request_run::start(actor, rx), target)
    }

    /// A request to `group/<name>`: a route actor carries it through the group's
    /// targets.
    async fn generate_in_group(
        &self,
        req: ChatRequest,
        options: GenerateOptions,
    ) -> Result<ChatResponse, Error> {
        let name = req.model.model().to_string();
        let group = self.group(&name)?;
        let deadline = options.deadline.or(self.inner.deadline);
        let (tx, rx) = oneshot::channel();
        let client = self.clone();
        let leg: Leg = Arc::new(move |req, options| {
            let client = client.clone();
            async move { client.generate_with(req, options).await }.boxed()
        });
        let route = Route::new(name, group);
        let targets = self.inner.targets.clone();
        let route = RouteActor::new(route, targets, leg, req, options, deadline, tx);
        if self.inner.handles.is_empty() {
            return Err(Error::Config(ConfigError::NoProvider));
        }
        let addr = self.start(route);
        let mut guard = CancelOnDrop(Some(addr));
        let reply = rx.await;
        guard.0 = None;
        reply.unwrap_or_else(|_| {
            Err(Error::Internal(
                "the route actor stopped without a reply".into(),
            ))
        })
    }

    /// Streams a request: retried before content like [`Client::generate`], resumed
    /// after content without a lost or repeated character (a `Resumed` event marks
    /// the seam). Dropping the stream cancels the request.
    ///
    /// The HTTP call is made and read by the task that polls the stream (as a
    /// bare client's body is), on that task's runtime: nothing is sent before the
    /// first poll, and the headers timeout runs from there.
    pub fn stream(
        &self,
        req: ChatRequest,
    ) -> impl Future<Output = Result<SteerStream, Error>> + Send + 'static {
        self.stream_with(req, GenerateOptions::default())
    }

    /// Streams a request with per-request overrides. The future owns a clone of
    /// the client: it is `'static`, like [`Client::generate_with`]'s.
    #[allow(clippy::manual_async_fn)]
    pub fn stream_with(
        &self,
        req: ChatRequest,
        options: GenerateOptions,
    ) -> impl Future<Output = Result<SteerStream, Error>> + Send + 'static {
        let client = self.clone();
        async move {
            if req.model.provider() == GROUP_PROVIDER {
                return Box::pin(client.stream_in_group(req, options)).await;
            }
            client.start_stream(req, options, None).await
        }
    }

    /// A stream to `group/<name>`: it starts at the group's first target and moves
    /// to the next when its target gives up, continuing from its checkpoint.
    async fn stream_in_group(
        &self,
        mut req: ChatRequest,
        mut options: GenerateOptions,
    ) -> Result<SteerStream, Error> {
        let name = req.model.model().to_string();
        let group = self.group(&name)?;
        let targets = self.inner.targets.clone();
        let mut route = Route::new(name.clone(), group);
        let Next::Go { target: first, .. } = route.next(|g, tried| targets.pick(g, tried), None)
        else {
            return Err(ConfigError::group(name, "no target to pick"));
        };
        req.model = first;
        // A paused target is skipped, not waited for: the stream moves on.
        options.skip_pauses = true;
        let route = Box::new(StreamRoute { route, targets });
        self.start_stream(req, options, Some(route)).await
    }

    async fn start_stream(
        &self,
        req: ChatRequest,
        options: GenerateOptions,
        route: Option<Box<StreamRoute>>,
    ) -> Result<SteerStream, Error> {
        let handle = self.handle(req.model.provider())?;
        handle.check(&req)?;
        let admission = self.admit().await?;
        let d = self.inner.stream;
        let settings = StreamSettings {
            spec: self.spec(handle, &req, &options, d.headers_timeout),
            first_token_timeout: options.first_token_timeout.or(d.first_token_timeout),
            idle_timeout: options.idle_timeout.or(d.idle_timeout),
            continuation: options.continuation.unwrap_or(d.continuation),
            divergence: options.divergence.unwrap_or(d.divergence),
            record_content: self.inner.record_content,
        };
        let (stream, tx, consumer_gone) = SteerStream::channel();
        let provider = handle.provider.clone();
        let partials = self.inner.partials.clone();
        let actor = StreamActor::new(
            provider,
            req,
            settings,
            handle.actors.clone(),
            partials,
            tx,
            consumer_gone,
            admission,
        );
        Ok(stream.run(match route {
            Some(route) => actor.with_route(route),
            None => actor,
        }))
    }

    fn group(&self, name: &str) -> Result<Group, Error> {
        self.inner
            .groups
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownProvider {
                name: format!("group/{name}"),
                known: self
                    .inner
                    .groups
                    .keys()
                    .map(|g| format!("group/{g}"))
                    .collect(),
            })
    }

    /// What every request has: ids, timeouts, policy, breaker use, pause wait.
    fn spec(
        &self,
        handle: &ProviderHandle,
        req: &ChatRequest,
        options: &GenerateOptions,
        attempt_timeout: Option<Duration>,
    ) -> RequestSpec {
        RequestSpec {
            request_id: req.request_id.shared(),
            provider: handle.name.clone(),
            model: req.model.model_shared(),
            attempt_timeout: options.attempt_timeout.or(attempt_timeout),
            deadline: options.deadline.or(self.inner.deadline),
            max_pause_wait: if options.skip_pauses {
                Duration::ZERO
            } else {
                options
                    .retry
                    .as_ref()
                    .map_or(handle.max_pause_wait, |p| p.max_server_wait)
            },
            policy: options.retry.clone(),
            use_breaker: options.breaker.unwrap_or(true),
        }
    }

    /// An in-flight slot: taken at once when one is free; else waited for
    /// (`Overload::Wait`) or refused as [`Error::Overloaded`] (`Overload::Reject`).
    async fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        use tokio::sync::TryAcquireError;
        let closed = || Error::Internal("the admission semaphore closed".into());
        // Decided before any await, so that the future keeps nothing of it.
        match self.inner.admission.clone().try_acquire_owned() {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => return Err(closed()),
            Err(TryAcquireError::NoPermits) if self.inner.overload == Overload::Reject => {
                return Err(Error::Overloaded {
                    max_in_flight: self.inner.max_in_flight,
                })
            }
            Err(TryAcquireError::NoPermits) => {}
        }
        let admission = self.inner.admission.clone();
        admission.acquire_owned().await.map_err(|_| closed())
    }

    /// The partial response of a failed stream, by request id, kept for 15 minutes
    /// (at most 10,000 of them).
    pub async fn partial(&self, request_id: &RequestId) -> Option<PartialResponse> {
        self.inner
            .partials
            .send(GetPartial(request_id.to_string()))
            .await
            .ok()
            .flatten()
    }

    /// Subscribes `recipient` to the breaker transitions of `target`: a provider
    /// (`"openai"`: its endpoint and every model) or one model (`"openai/gpt-4o"`).
    pub fn subscribe(
        &self,
        target: &str,
        recipient: actix::Recipient<TransitionEvent>,
    ) -> Result<(), Error> {
        let target = Target::parse(target);
        self.handle(&target.provider)?.breaker().do_send(Subscribe {
            recipient,
            model: target.model,
        });
        Ok(())
    }

    /// Subscribes `recipient` to the breaker transitions of every provider.
    pub fn subscribe_all(&self, recipient: actix::Recipient<TransitionEvent>) {
        for h in self.inner.handles.values() {
            h.breaker().do_send(Subscribe {
                recipient: recipient.clone(),
                model: None,
            });
        }
    }

    /// The breaker status of `target`: a provider (its endpoint, with each model's
    /// status in `models`) or one model (`"openai/gpt-4o"`).
    pub async fn status(&self, target: &str) -> Result<BreakerStatus, Error> {
        let t = Target::parse(target);
        let handle = self.handle(&t.provider)?;
        handle.actors.flush_reports().await;
        handle
            .breaker()
            .send(GetStatus { model: t.model })
            .await
            .map_err(|e| Error::Internal(format!("breaker of {target}: {e}")))
    }

    /// Forces the breaker of `target` into `state` (`ForcedOpen`, `Disabled`,
    /// `Closed`): a provider's endpoint (every model) or one model. One-way: it
    /// takes effect when the breaker handles it; a [`Client::status`] awaited after
    /// it sees it done.
    pub fn force(&self, target: &str, state: BreakerState) -> Result<(), Error> {
        let t = Target::parse(target);
        self.handle(&t.provider)?.breaker().do_send(ForceState {
            state,
            model: t.model,
        });
        Ok(())
    }

    /// Resets the breaker of `target` to closed with empty counters: a provider
    /// (its endpoint and every model) or one model. One-way, like [`Client::force`].
    pub fn reset(&self, target: &str) -> Result<(), Error> {
        let t = Target::parse(target);
        self.handle(&t.provider)?
            .breaker()
            .do_send(ResetBreaker { model: t.model });
        Ok(())
    }

    /// The client's metric families (latency histograms, counters, gauges), to
    /// add to a service's own `prometheus_client` registry with
    /// [`Meters::register`].
    pub fn meters(&self) -> &Meters {
        &self.inner.meters
    }

    /// The client's metrics in the Prometheus text format (what `GET /metrics`
    /// serves).
    pub fn prometheus_text(&self) -> String {
        self.inner.meters.encode()
    }

    /// The state of the pauses shared with other replicas; `None` when sharing is off.
    #[cfg(feature = "shared-redis")]
    pub async fn shared_status(&self) -> Result<Option<crate::shared::redis::SharedStatus>, Error> {
        match &self.inner.shared {
            Some(addr) => addr
                .send(crate::shared::redis::GetSharedStatus)
                .await
                .map(Some)
                .map_err(|e| Error::Internal(format!("shared state: {e}"))),
            None => Ok(None),
        }
    }

    /// Every provider's breaker status and counters.
    pub async fn metrics(&self) -> Result<MetricsSnapshot, Error> {
        let mut providers = Vec::new();
        for (name, h) in &self.inner.handles {
            h.actors.flush_reports().await;
            let breaker = h
                .breaker()
                .send(GetStatus::default())
                .await
                .map_err(|e| Error::Internal(format!("breaker of {name}: {e}")))?;
            let metrics = h
                .actors
                .coordinator
                .send(GetMetrics)
                .await
                .map_err(|e| Error::Internal(format!("coordinator of {name}: {e}")))?;
            providers.push(ProviderReport {
                provider: name.clone(),
                breaker,
                metrics,
            });
        }
        Ok(MetricsSnapshot { providers })
    }
}

fn request_error(
    e: RequestError<ProviderError>,
    request_id: &crate::model::RequestId,
    provider: &str,
) -> Error {
    match e {
        RequestError::Failed {
            failure,
            reason,
            attempts,
            last,
        } => Error::Failed(Box::new(crate::error::FailedRequest {
            failure,
            reason,
            attempts,
            last,
            partial: None,
        })),
        RequestError::Rejected {
            rejection,
            attempts,
            last,
        } => Error::Rejected {
            provider: provider.to_string(),
            request_id: request_id.clone(),
            rejection,
            attempts,
            last: last.map(Box::new),
            partial: None,
        },
        RequestError::DeadlineExceeded { attempts, last } => Error::DeadlineExceeded {
            request_id: request_id.clone(),
            attempts,
            last: last.map(Box::new),
            partial: None,
        },
        RequestError::Panicked { message, attempts } => Error::Panicked {
            request_id: request_id.clone(),
            message,
            attempts,
        },
        RequestError::Internal(m) => Error::Internal(format!("request {request_id}: {m}")),
    }
}

/// A request actor's reply as the caller's result.
fn generate_result(
    reply: Result<GenerateReply, NoReply>,
    request_id: &RequestId,
    provider: &str,
) -> Result<ChatResponse, Error> {
    match reply {
        Ok(Ok(done)) => Ok(*done.value),
        Ok(Err(e)) => Err(request_error(*e, request_id, provider)),
        Err(NoReply::Stopped) => Err(Error::Internal(format!(
            "request {request_id}: its actor stopped without a reply"
        ))),
        Err(NoReply::Panicked(message)) => Err(Error::Internal(format!(
            "request {request_id}: its actor panicked: {message}"
        ))),
    }
}

#[cfg(test)]
mod future_sizes {
    use super::*;

    /// What a caller moves when it spawns or joins `generate`/`stream`: the
    /// futures stay small (their state is boxed where it is large), measured here.
    #[test]
    fn request_futures_stay_small() {
        let sys = actix::System::new();
        sys.block_on(async {
            let client = Client::builder()
                .providers(Providers::new())
                .arbiters(0)
                .build()
                .expect("client");
            let req = ChatRequest::new("openai/gpt-4o-mini")
                .expect("model")
                .user("hi");
            let g = client.generate(req.clone());
            let s = client.stream(req);
            // 2,096 and 3,240 bytes when each layer was an `async fn`.
            assert!(
                std::mem::size_of_val(&g) <= 1024,
                "generate: {}",
                std::mem::size_of_val(&g)
            );
            assert!(
                std::mem::size_of_val(&s) <= 2048,
                "stream: {}",
                std::mem::size_of_val(&s)
            );
        });
    }
}
