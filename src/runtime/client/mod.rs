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
use steer_actors::lifecycle::request::{MakeAttempt, RequestActor};
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
use super::outlier_actor::OutlierActor;
use super::route_actor::{CancelOnDrop, Leg, RouteActor};
use super::system::Arbiters;
use super::MetricsSnapshot;
use crate::budget::{Pricing, SpendLog};
use crate::cost::PriceTable;
use crate::error::{ConfigError, Error, ProviderError};
use crate::model::{ChatRequest, ChatResponse, RequestId};
use crate::observe::trace;
use crate::provider::{Provider, Providers};
use crate::route::hedge::Hedge;
use crate::route::{Group, Next, Route, Targets, GROUP_PROVIDER};
use crate::stream::actor::{StreamActor, StreamHedge, StreamRoute, StreamSettings};
use crate::stream::continuation::{Continuation, Divergence};
use crate::stream::SteerStream;
use steer_actors::partials::{GetPartial, PartialResponse, PartialStore};
use steer_actors::telemetry::meters::{Meters, TargetMeters};

mod admin;
mod attempt;
mod builder;

pub use admin::Breakers;
use builder::StreamDefaults;
pub use builder::{ClientBuilder, Overload, MAX_ARBITERS};

struct ProviderHandle {
    provider: Arc<dyn Provider>,
    /// Its name, shared by every request's spec.
    name: Arc<str>,
    /// Longest server-directed pause its requests wait out: its policy's cap.
    max_pause_wait: Duration,
    /// How requests to its models are hedged (outside a group), if they are.
    hedge: Option<crate::route::hedge::Hedge>,
    /// The least rate of its streams' content, over the client's.
    min_rate: Option<crate::stream::rate::RateFloor>,
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
    /// The outlier actor, when a group ejects outliers.
    outliers: Option<Addr<OutlierActor>>,
    /// The client's metric families.
    meters: Meters,
    /// What requests' spend logs price and count attempts with.
    pricing: Arc<Pricing>,
    /// The client's spend budgets and their ledger.
    budgets: Arc<crate::budget::gate::BudgetGate>,
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
    pub(crate) fn start<A>(&self, actor: A) -> Addr<A>
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
    ///
    /// The future owns what it needs (a clone of the client, which is an `Arc`):
    /// it is `'static`, so `tokio::spawn(client.generate_with(req, options))`
    /// compiles as a bare client's call would.
    // One `async move` block, not an `async fn`: an `async fn` keeps its
    // arguments beside the body's state (1,080 bytes against 696).
    #[allow(clippy::manual_async_fn)]
    pub fn generate_with(
        &self,
        req: ChatRequest,
        options: GenerateOptions,
    ) -> impl Future<Output = Result<ChatResponse, Error>> + Send + 'static {
        let client = self.clone();
        // Shared from here: the futures that carry it to its actor (this one,
        // in the caller's task, and the boxed one below) keep a pointer, not
        // its 280 bytes each.
        let req = Arc::new(req);
        // The request's own call keeps the log its attempts write to (a
        // route's legs write to their request's). Before the block: the
        // options it returns are then kept in the future once, not twice.
        let (options, log) = client.spend_log(options);
        async move {
            let this = &client;
            // The reply stays boxed (104 bytes a move, not 552) until it is
            // handed out.
            let mut result = 'all: {
                if req.model.provider() == GROUP_PROVIDER {
                    let req = Arc::unwrap_or_clone(req);
                    let routed = Box::pin(this.generate_in_group(req, options)).await;
                    break 'all routed.map(Box::new);
                }
                match this.deployment_hedge(&req, &options) {
                    Ok(Some(hedge)) => {
                        let req = Arc::unwrap_or_clone(req);
                        let hedged = Box::pin(this.generate_hedged(req, options, hedge)).await;
                        break 'all hedged.map(Box::new);
                    }
                    Ok(None) => {}
                    Err(e) => break 'all Err(e),
                }
                Box::pin(this.generate_at_deployment(req, options)).await
            };
            if let Some(log) = log {
                let spend = log.finish();
                match &mut result {
                    Ok(reply) => reply.spend = spend,
                    Err(Error::Failed(f)) => f.spend = spend,
                    Err(_) => {}
                }
            }
            result.map(|reply| *reply)
        }
    }

    /// `options` with the spend log of the request they run: a new one for a
    /// request's own call (returned too, to read at its end), the route's for
    /// a leg.
    fn spend_log(&self, mut options: GenerateOptions) -> (GenerateOptions, Option<SpendLog>) {
        if options.spend.is_some() {
            return (options, None);
        }
        let log = self.new_spend_log();
        options.spend = Some(log.clone());
        (options, Some(log))
    }

    /// What admits a request's attempts against the budgets, when any
    /// could refuse one.
    pub(crate) fn admission(
        &self,
        options: &GenerateOptions,
    ) -> Option<crate::budget::gate::Admission> {
        if options.budget.is_none() && !self.inner.budgets.any() {
            return None;
        }
        let admission = crate::budget::gate::Admission {
            gate: self.inner.budgets.clone(),
            group: options.group.clone(),
            key: options.budget_key.clone(),
            request: options.budget,
        };
        admission.any().then_some(admission)
    }

    /// Where the budgets over `scope` stand this period (for a request
    /// carrying `key`, for per-key budgets): one balance a limited measure,
    /// spent and held; empty when no budget has that scope. With replicas
    /// sharing a ledger, the fleet's.
    pub async fn budget_balance(
        &self,
        scope: &crate::budget::Scope,
        key: Option<&str>,
    ) -> Vec<crate::budget::BudgetBalance> {
        self.inner.budgets.balances(scope, key).await
    }

    /// An empty spend log, priced and counted as the client is.
    fn new_spend_log(&self) -> SpendLog {
        SpendLog::priced_by(self.inner.pricing.clone())
    }

    /// A request at its deployment: its request actor, in the caller's
    /// future. The reply comes boxed, as the attempt made it.
    // One `async move` block, not an `async fn`, as `generate_with`: the
    // boxed future stays under glibc's per-thread cache's 1,032 bytes.
    #[allow(clippy::manual_async_fn)]
    fn generate_at_deployment(
        &self,
        req: Arc<ChatRequest>,
        options: GenerateOptions,
    ) -> impl Future<Output = Result<Box<ChatResponse>, Error>> + Send + '_ {
        let this = self;
        async move {
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
            // The request's spend so far (a leg's: its route's, all legs').
            if let (Some(log), false) = (&options.spend, span.is_disabled()) {
                trace::record_spend(&span, &log.spend());
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
        req: Arc<ChatRequest>,
        options: &GenerateOptions,
        admission: tokio::sync::OwnedSemaphorePermit,
        span: tracing::Span,
    ) -> (
        RequestRun<impl MakeAttempt<Box<ChatResponse>, ProviderError>>,
        TargetMeters,
    ) {
        let spec = self.spec(handle, &req, options, self.inner.attempt_timeout);
        let provider = handle.provider.clone();
        let log = options.spend.clone();
        let budgets = self.admission(options);
        // Not boxed: the actor keeps the closure, and each attempt's future
        // inline in what it spawns.
        let attempt = move |_attempt: u32, target: &TargetMeters| {
            attempt::start(&provider, &req, log.as_ref(), budgets.as_ref(), target)
        };
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

    /// How a request to a model outside any group is hedged, if it is: its
    /// own setting, else its deployment's; never one with side effects, nor a
    /// group's leg (its route hedges it).
    fn deployment_hedge(
        &self,
        req: &ChatRequest,
        options: &GenerateOptions,
    ) -> Result<Option<Hedge>, Error> {
        if options.leg {
            return Ok(None);
        }
        let deployment = self
            .inner
            .handles
            .get(req.model.provider())
            .and_then(|h| h.hedge);
        let hedge = Self::hedge_of(req, options, deployment)?;
        Ok(hedge.map(|h| Hedge {
            same_target: true,
            ..h
        }))
    }

    /// A hedged request to a model outside any group: a route actor races it
    /// at its deployment (a route of one target, named by the deployment, whose
    /// hedges go to the same target); it fails as the request alone would.
    async fn generate_hedged(
        &self,
        req: ChatRequest,
        options: GenerateOptions,
        hedge: Hedge,
    ) -> Result<ChatResponse, Error> {
        let scope = req.model.provider().to_string();
        let group = Group::new([req.model.to_string()])?;
        self.inner.targets.count_request(&scope);
        let deadline = options.deadline.or(self.inner.deadline);
        let (tx, rx) = oneshot::channel();
        let client = self.clone();
        let leg: Leg = Arc::new(move |req, options| client.generate_with(req, options).boxed());
        let route = Route::new(scope, group);
        let targets = self.inner.targets.clone();
        let route = RouteActor::new(route, targets, leg, req, options, deadline, tx)
            .hedged(hedge)
            .alone();
        self.run_route(route, rx).await
    }

    /// Starts `route` and waits for its reply on `rx`; dropping the future
    /// cancels the route.
    async fn run_route(
        &self,
        route: RouteActor,
        rx: oneshot::Receiver<Result<ChatResponse, Error>>,
    ) -> Result<ChatResponse, Error> {
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

    /// How a request is hedged: its own setting, else `fallback` (its group's
    /// or deployment's), checked; never one with side effects (a tool marked
    /// so, or the request).
    fn hedge_of(
        req: &ChatRequest,
        options: &GenerateOptions,
        fallback: Option<Hedge>,
    ) -> Result<Option<Hedge>, Error> {
        if options.side_effects || req.tools.iter().any(|t| t.side_effects) {
            return Ok(None);
        }
        let Some(hedge) = options.hedge.or(fallback) else {
            return Ok(None);
        };
        hedge
            .validate()
            .map_err(|e| ConfigError::setting("hedge", e))?;
        Ok(Some(hedge))
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
        let mut options = options;
        options.group = Some(Arc::from(name.as_str()));
        let deadline = options.deadline.or(self.inner.deadline);
        let hedge = Self::hedge_of(&req, &options, group.hedge)?;
        self.inner.targets.count_request(&name);
        let (tx, rx) = oneshot::channel();
        let client = self.clone();
        let leg: Leg = Arc::new(move |req, options| client.generate_with(req, options).boxed());
        let route = Route::new(name, group);
        let targets = self.inner.targets.clone();
        let route = RouteActor::new(route, targets, leg, req, options, deadline, tx);
        let route = match hedge {
            Some(h) => route.hedged(h),
            None => route,
        };
        if self.inner.handles.is_empty() {
            return Err(Error::Config(ConfigError::NoProvider));
        }
        self.run_route(route, rx).await
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
        options.group = Some(Arc::from(name.as_str()));
        req.background |= group.background;
        if options.min_rate.is_none() {
            options.min_rate = group.min_rate;
        }
        let targets = self.inner.targets.clone();
        targets.count_request(&name);
        let group_hedge = group.hedge;
        let mut route = Route::new(name.clone(), group);
        let Next::Go { target: first, .. } =
            route.next(|g, tried| targets.pick(&name, g, tried), None)
        else {
            return Err(ConfigError::group(name, "no target to pick"));
        };
        req.model = first;
        // A paused target is skipped, not waited for: the stream moves on; so
        // is a server's wait while another target could answer now.
        options.skip_pauses = true;
        options.wait_elsewhere = route.wait_elsewhere(|g, tried| targets.pick_now(&name, g, tried));
        let hedge = Self::hedge_of(&req, &options, group_hedge)?;
        let route = Box::new(StreamRoute {
            route,
            targets,
            hedge,
        });
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
        let alone_hedge = match route {
            None => self.deployment_hedge(&req, &options)?,
            Some(_) => None,
        };
        let admission = self.admit().await?;
        let d = self.inner.stream;
        let spend = options
            .spend
            .clone()
            .unwrap_or_else(|| self.new_spend_log());
        let settings = StreamSettings {
            spec: self.spec(handle, &req, &options, d.headers_timeout),
            first_token_timeout: options.first_token_timeout.or(d.first_token_timeout),
            idle_timeout: options.idle_timeout.or(d.idle_timeout),
            min_rate: options.min_rate.or(handle.min_rate).or(d.min_rate),
            continuation: options.continuation.unwrap_or(d.continuation),
            divergence: options.divergence.unwrap_or(d.divergence),
            record_content: self.inner.record_content,
            spend: Some(spend.clone()),
            budgets: self.admission(&options),
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
        let actor = match route {
            Some(route) => actor.with_route(route),
            None => match alone_hedge {
                Some(h) => {
                    let scope = handle.name.to_string();
                    self.inner.targets.count_request(&scope);
                    let targets = self.inner.targets.clone();
                    actor.hedged_alone(StreamHedge::new(h, targets, scope, Vec::new()))
                }
                None => actor,
            },
        };
        Ok(stream.with_spend(spend).run(actor))
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
            wait_elsewhere: options.wait_elsewhere,
            // In a group, a target at its limit passes the request on while
            // another can answer now; the last one left queues it.
            may_queue: !options.skip_pauses || !options.wait_elsewhere,
            priority: options.priority,
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
}

/// A request actor's reply as the caller's result (the reply still boxed).
fn generate_result(
    reply: Result<GenerateReply, NoReply>,
    request_id: &RequestId,
    provider: &str,
) -> Result<Box<ChatResponse>, Error> {
    match reply {
        Ok(Ok(done)) => Ok(done.value),
        Ok(Err(e)) => Err(Error::from_request(*e, request_id, provider, None)),
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
            // Boxed for each request and kept while it runs: 408 bytes with
            // the request shared (680 with it inline; 1,264 as an `async fn`).
            let deployment = std::mem::size_of_val(
                &client.generate_at_deployment(Arc::new(req.clone()), GenerateOptions::default()),
            );
            assert!(deployment <= 512, "at a deployment: {deployment}");
            let g = client.generate(req.clone());
            let s = client.stream(req);
            // 376 bytes (880 with the request and its options inline, 2,096
            // when each layer was an `async fn`); a stream's 3,240 then.
            assert!(
                std::mem::size_of_val(&g) <= 512,
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
