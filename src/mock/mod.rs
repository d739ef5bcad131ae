//! The mock provider: a real HTTP server on 127.0.0.1 speaking the OpenAI, Anthropic
//! and xAI wire formats (Chat Completions, Messages, and OpenAI's Responses API:
//! [`Flavour`]), with deterministic replies and injected faults.
//!
//! It is steer's embedded default (CLI, examples, tests, benchmarks) and can be
//! started in anyone's tests:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use steer_llm::mock::{FaultPlan, MockServer};
//! use steer_llm::ChatRequest;
//!
//! let mock = MockServer::start().await.unwrap();
//! mock.push_faults([FaultPlan::error("rate_limit").retry_after("2")]);
//! let providers = mock.providers().unwrap();
//! let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
//! let err = providers.generate(&req).await.unwrap_err();
//! assert!(err.to_string().contains("HTTP 429"));
//! assert!(providers.generate(&req).await.is_ok()); // the script is used up
//! assert_eq!(mock.requests().len(), 2);
//! # }
//! ```
//!
//! Faults come from, in order: the request's `x-mock-fault` header, the script for
//! its `x-client-request-id`, the shared script queue, then the server's default.
//! A resume (`GET /v1/responses/{id}`) draws its own plan the same way, so a
//! script of two plans breaks a background stream and then its resume.
//!
//! # Background responses
//!
//! A streamed `POST /v1/responses` with `background: true` is kept (the latest
//! 1,024) for `GET /v1/responses/{id}?stream=true&starting_after=N` and `POST
//! /v1/responses/{id}/cancel`, as the Responses API keeps it: what each answers,
//! and the reports it follows, are in `src/mock/background.rs`.
//!
//! # Faults
//!
//! A fault plan is `part+part+...`, each part `kind` or `kind?key=value&...`:
//!
//! | kind | effect |
//! |---|---|
//! | `ok` | a normal reply |
//! | `nearly_spent` | a normal reply whose rate-limit headers say no requests or tokens are left |
//! | *error name* | that provider error in its status form ([`errors`]) |
//! | `status?code=N` | any status 400-599 with the provider's generic error body |
//! | `stream_error?name=E&after=N` | after N text chunks, the in-band error E (OpenAI/xAI `data: {"error":...}`, Anthropic `event: error`, the Responses API's `event: error` with its `code`); the status form on a non-streaming request |
//! | `stall?after=N` | after N text chunks, send nothing more (the connection stays open) |
//! | `truncate?after=N` | after N text chunks, end the body cleanly without the terminal event |
//! | `reset?after=N` | after N text chunks, abort the connection mid-body |
//! | `malformed_json?after=N` | after N text chunks, a data line whose JSON is cut short |
//! | `malformed_sse?after=N` | after N text chunks, bytes that are not UTF-8 |
//! | `whole_reply` | a streaming request answered with the whole reply as JSON, as LiteLLM's proxy does for some models |
//! | `slow?ms=N` | a normal reply, its headers N ms late (default 1000); in a `mix`, a slow tail (issue 28's measured brownout: 5% of calls 20 times slower) |
//! | `pings?after=N&ms=M` | after N text chunks, keep-alives every M ms and nothing else until the stall limit (Anthropic documents any number of `ping` events; OpenAI-compatible proxies send SSE comments, OpenRouter's documented `: OPENROUTER PROCESSING`); a non-streaming request stalls |
//! | `trickle?after=N&ms=M` | after N text chunks at once, each later one M ms after the one before (a stream that trickles after a fast first token, issue 28's reported incident) |
//! | `stuck_queued` | the response never leaves `queued`: the stream drops after `response.created` (and, in background mode, `response.queued`), and a resume of it sends nothing (a community.openai.com report) |
//! | `latency?ms=N` | wait N ms before the response headers (combines with any part) |
//! | `chunk_delay?ms=N` | wait N ms before each streamed event (combines with any part) |
//! | `first_token?ms=N` | wait N ms before a stream's first content event, after its headers and opening events (role-only chunk, `message_start`, `response.created`): a slow time to first token, as a queued or reasoning model gives (gateways time it out: TensorZero's `streaming.ttft_ms`, Bifrost's `ttft_timeout_ms`; control-layer PR #1808 measured a median 11.7 s under load) (combines with any part) |
//! | `mix?seed=S&kind=pct&...` | each request draws one kind by percentage, reproducibly for a seed |
//!
//! On non-streaming requests, `truncate` and `malformed_*` give a body that is
//! not valid JSON, `reset` aborts after a few bytes and `stall` stops after a few
//! bytes. An `after` larger than the reply cuts just before the terminal events.
//! Each row, as this doc test reads it:
//!
//! ```
//! use std::time::Duration;
//! use steer_llm::mock::FaultPlan;
//! let plan = |s: &str| s.parse::<FaultPlan>().unwrap();
//! assert_eq!(plan("ok"), FaultPlan::normal());
//! assert_eq!(plan("server_error"), FaultPlan::error("server_error"));
//! assert_eq!(plan("status?code=418"), FaultPlan::status(418));
//! assert_eq!(plan("stream_error?name=overloaded&after=2"), FaultPlan::stream_error("overloaded", 2));
//! assert_eq!(plan("stall?after=3"), FaultPlan::stall(3));
//! assert_eq!(plan("truncate?after=3"), FaultPlan::truncate(3));
//! assert_eq!(plan("reset?after=3"), FaultPlan::reset(3));
//! assert_eq!(plan("malformed_json?after=1"), FaultPlan::malformed_json(1));
//! assert_eq!(plan("malformed_sse?after=1"), FaultPlan::malformed_sse(1));
//! assert_eq!(plan("whole_reply"), FaultPlan::whole_reply());
//! assert_eq!(plan("stuck_queued").outcome, steer_llm::mock::Outcome::StuckQueued);
//! assert_eq!(plan("trickle?after=2&ms=150").to_string(), "trickle?after=2&ms=150");
//! assert_eq!(plan("pings?after=1&ms=20").to_string(), "pings?after=1&ms=20");
//! use steer_llm::mock::Outcome;
//! let slow_tail = plan("mix?seed=3&slow=5").outcome;
//! assert!(matches!(slow_tail, Outcome::Mix(m) if m.entries == [(Outcome::Slow { ms: 1000 }, 5.0)]));
//! assert_eq!(
//!     plan("reset?after=2+latency?ms=5+chunk_delay?ms=1"),
//!     FaultPlan::reset(2)
//!         .with_latency(Duration::from_millis(5))
//!         .with_chunk_delay(Duration::from_millis(1))
//! );
//! for other in ["nearly_spent", "mix?seed=1&server_error=10&reset=5"] {
//!     assert!(other.parse::<FaultPlan>().is_ok(), "{other}");
//! }
//! for bad in ["no_such_fault", "reset?after=x", "reset+truncate", "latency?sec=1"] {
//!     assert!(bad.parse::<FaultPlan>().is_err(), "{bad}");
//! }
//! ```

mod background;
mod behaviour;
pub mod errors;
mod fault;
pub mod render;
pub mod request;
mod responses;
mod retrieve;
mod server;
mod steps;
pub mod text;
pub mod thinking;
pub mod tools;
mod words;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

pub use behaviour::{Behaviour, UnknownBehaviour, BEHAVIOUR_HEADER};
pub use fault::{FaultPlan, InvalidFaultSpec, Mix, Outcome, WaitHeaders};

use crate::error::Error;
use crate::provider::{Anthropic, OpenAiApis, OpenAiCompatible, OpenAiResponses, Providers};

/// The header that injects a fault into one request (black-box use).
pub const FAULT_HEADER: &str = "x-mock-fault";
/// The header whose value keys scripted faults ([`MockServer::script_key`]).
pub const KEY_HEADER: &str = "x-client-request-id";
/// The name [`MockServer::providers`] registers OpenAI's Responses API under
/// (`openai-responses/gpt-5`): `openai` is Chat Completions.
pub const RESPONSES_PROVIDER: &str = "openai-responses";
/// The API key steer sends to the mock when no real key is set.
pub const MOCK_API_KEY: &str = "steer-mock-key";

/// Which provider's dialect a request is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// xAI Chat Completions (chosen for `grok*` models on `/v1/chat/completions`).
    Xai,
    /// OpenAI's Responses API (`/v1/responses`; xAI and Azure serve the same
    /// shapes), its HTTP errors OpenAI's.
    Responses,
}

/// One request the mock received.
#[derive(Clone)]
pub struct RecordedRequest {
    /// The path, e.g. `/v1/messages`.
    pub path: String,
    /// Request headers, lowercase names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Null` if it was not JSON).
    pub body: serde_json::Value,
    /// The dialect it was answered in.
    pub flavour: Flavour,
    /// The fault plan applied (after drawing from a mix), if any.
    pub fault: Option<FaultPlan>,
    /// When it arrived.
    pub received_at: SystemTime,
}

impl RecordedRequest {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether it asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(|v| v.as_bool()) == Some(true)
    }

    /// The `model` field.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(|v| v.as_str())
    }

    /// The last message's role and text (for the Responses API, the last
    /// input item that is a message).
    pub fn last_message(&self) -> Option<(String, String)> {
        if self.flavour == Flavour::Responses {
            return match self.body.get("input")? {
                serde_json::Value::String(text) => Some(("user".into(), text.clone())),
                items => {
                    let last = items.as_array()?.iter().rev().find(|item| {
                        item.get("type")
                            .and_then(|t| t.as_str())
                            .unwrap_or("message")
                            == "message"
                    })?;
                    Some((
                        last.get("role")?.as_str()?.to_string(),
                        request::text_of(last.get("content")?)?,
                    ))
                }
            };
        }
        let last = self.body.get("messages")?.as_array()?.last()?;
        Some((
            last.get("role")?.as_str()?.to_string(),
            request::text_of(last.get("content")?)?,
        ))
    }
}

impl std::fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let secret = matches!(k.as_str(), "authorization" | "x-api-key");
                (k.as_str(), if secret { "<redacted>" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("path", &self.path)
            .field("headers", &headers)
            .field("body", &self.body)
            .field("flavour", &self.flavour)
            .field("fault", &self.fault.as_ref().map(|p| p.to_string()))
            .finish()
    }
}

/// Settings of a mock server.
#[derive(Debug, Clone)]
pub struct MockBuilder {
    port: u16,
    reply_words: Option<usize>,
    default_fault: Option<FaultPlan>,
    /// Requests kept in the log, the latest ones (0: none).
    record: usize,
    stall_limit: Duration,
    behaviour: Behaviour,
    resume_window: Duration,
}

/// Requests a mock keeps by default: the latest 10,000 (a ring, so a long
/// benchmark against it does not grow it).
pub const DEFAULT_REQUEST_LOG: usize = 10_000;

impl Default for MockBuilder {
    fn default() -> Self {
        MockBuilder {
            port: 0,
            reply_words: None,
            default_fault: None,
            record: DEFAULT_REQUEST_LOG,
            stall_limit: Duration::from_secs(300),
            behaviour: Behaviour::Standard,
            resume_window: Duration::from_secs(300),
        }
    }
}

impl MockBuilder {
    /// Port on 127.0.0.1 (default 0: an ephemeral port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// Every reply has this many words (chunks); default 12 to 48 by conversation.
    pub fn reply_words(mut self, words: usize) -> Self {
        self.reply_words = Some(words.max(1));
        self
    }
    /// Fault applied to requests that no header or script covers.
    pub fn default_fault(mut self, plan: FaultPlan) -> Self {
        self.default_fault = Some(plan);
        self
    }
    /// Whether to record requests (default on, the latest
    /// [`DEFAULT_REQUEST_LOG`] of them).
    pub fn record_requests(mut self, on: bool) -> Self {
        self.record = if on { DEFAULT_REQUEST_LOG } else { 0 };
        self
    }
    /// Keeps the latest `capacity` requests (0: records none). Older ones are
    /// dropped as new ones arrive, so memory stays bounded under any load.
    pub fn request_log(mut self, capacity: usize) -> Self {
        self.record = capacity;
        self
    }
    /// How the server answers beyond the wire format (default
    /// [`Behaviour::Standard`]); a request picks another with the
    /// [`BEHAVIOUR_HEADER`].
    pub fn behaviour(mut self, behaviour: Behaviour) -> Self {
        self.behaviour = behaviour;
        self
    }
    /// How long a stalled response stays open before the mock closes it (default 300 s).
    pub fn stall_limit(mut self, limit: Duration) -> Self {
        self.stall_limit = limit;
        self
    }

    /// How long a background response may be resumed (default 300 s, OpenAI's
    /// reported window); a later resume is refused with OpenAI's 400.
    pub fn resume_window(mut self, window: Duration) -> Self {
        self.resume_window = window;
        self
    }

    /// Starts the server on the current tokio runtime.
    pub async fn start(self) -> std::io::Result<MockServer> {
        // OpenAI's tokenizer, loaded once a process before the first reply.
        crate::tokens::preload("gpt-4o-mini");
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], self.port))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(self));
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(MockServer {
            addr,
            shared,
            running: Running::Task(task),
        })
    }

    /// Starts the server on a thread of its own, with its own runtime, so that it
    /// does not share a runtime (or, under load, a scheduler) with the code under test.
    pub fn start_background(self) -> std::io::Result<MockServer> {
        crate::tokens::preload("gpt-4o-mini");
        let std_listener =
            std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], self.port)))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared::new(self));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread_shared = shared.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("steer-mock".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = server::serve(listener, thread_shared) => {}
                        _ = stop_rx => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        Ok(MockServer {
            addr,
            shared,
            running: Running::Thread(Some((stop_tx, thread))),
        })
    }
}

pub(crate) struct Shared {
    config: MockBuilder,
    queue: Mutex<VecDeque<FaultPlan>>,
    keyed: Mutex<HashMap<String, VecDeque<FaultPlan>>>,
    default_fault: Mutex<Option<FaultPlan>>,
    /// Plans waiting in `queue` and `keyed`, and whether `default_fault` is set:
    /// read first, so that a request with nothing scripted takes no lock (the
    /// mock's workers would otherwise contend for these three on every request,
    /// and more on steer's, which carry a key, than on a bare client's).
    scripted: AtomicUsize,
    has_default: AtomicBool,
    mix_rng: Mutex<Option<(u64, fastrand::Rng)>>,
    log: Mutex<VecDeque<RecordedRequest>>,
    counter: AtomicU64,
    events_sent: Arc<AtomicU64>,
    /// Streamed bodies whose client went away before their end.
    streams_cut: Arc<AtomicU64>,
    /// Requests whose client went away while the mock waited to answer.
    abandoned: AtomicU64,
    /// Background responses of the Responses API.
    store: Mutex<background::Store>,
}

impl Shared {
    /// The counters a streamed body moves.
    fn body_counters(&self) -> steps::BodyCounters {
        steps::BodyCounters {
            sent: self.events_sent.clone(),
            cut: self.streams_cut.clone(),
        }
    }

    fn new(config: MockBuilder) -> Self {
        Shared {
            default_fault: Mutex::new(config.default_fault.clone()),
            scripted: AtomicUsize::new(0),
            has_default: AtomicBool::new(config.default_fault.is_some()),
            config,
            queue: Mutex::new(VecDeque::new()),
            keyed: Mutex::new(HashMap::new()),
            mix_rng: Mutex::new(None),
            log: Mutex::new(VecDeque::new()),
            counter: AtomicU64::new(0),
            events_sent: Arc::new(AtomicU64::new(0)),
            streams_cut: Arc::new(AtomicU64::new(0)),
            abandoned: AtomicU64::new(0),
            store: Mutex::new(background::Store::default()),
        }
    }

    /// Records a request, dropping the oldest past the log's capacity.
    pub(crate) fn record(&self, request: RecordedRequest) {
        let capacity = self.config.record;
        if capacity == 0 {
            return;
        }
        let mut log = self.log.lock();
        while log.len() >= capacity {
            log.pop_front();
        }
        log.push_back(request);
    }

    /// Whether requests are recorded at all.
    pub(crate) fn records(&self) -> bool {
        self.config.record > 0
    }

    /// The next scripted plan for a request with `key`: its own script, the
    /// queue, then the default.
    pub(crate) fn scripted_plan(&self, key: Option<&str>) -> Option<FaultPlan> {
        if self.scripted.load(Ordering::Acquire) > 0 {
            let keyed = key.and_then(|k| {
                let mut scripts = self.keyed.lock();
                let queue = scripts.get_mut(k)?;
                let plan = queue.pop_front();
                if queue.is_empty() {
                    scripts.remove(k);
                }
                plan
            });
            if let Some(plan) = keyed.or_else(|| self.queue.lock().pop_front()) {
                self.scripted.fetch_sub(1, Ordering::AcqRel);
                return Some(plan);
            }
        }
        if self.has_default.load(Ordering::Acquire) {
            return self.default_fault.lock().clone();
        }
        None
    }

    fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

enum Running {
    Task(tokio::task::JoinHandle<()>),
    Thread(
        Option<(
            tokio::sync::oneshot::Sender<()>,
            std::thread::JoinHandle<()>,
        )>,
    ),
}

/// A running mock provider. Dropping it stops the server.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Running,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockServer {
    /// A builder for a mock with non-default settings.
    pub fn builder() -> MockBuilder {
        MockBuilder::default()
    }

    /// Starts a mock with default settings on an ephemeral port of the current runtime.
    pub async fn start() -> std::io::Result<MockServer> {
        MockBuilder::default().start().await
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the Anthropic base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: the OpenAI and xAI base URL.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// OpenAI, Anthropic and xAI providers pointed at this mock (and OpenAI's
    /// Responses API as [`RESPONSES_PROVIDER`]), with a mock key,
    /// and steer's default HTTP clients (one per runtime that calls: a client's
    /// connections belong to the runtime that opened them) with a 5 s connect
    /// timeout.
    pub fn providers(&self) -> Result<Providers, Error> {
        let connect = Duration::from_secs(5);
        Ok(Providers::new()
            .with(OpenAiApis::new(
                OpenAiCompatible::openai()
                    .base_url(self.openai_base_url())
                    .api_key(MOCK_API_KEY)
                    .connect_timeout(connect)
                    .build()?,
                OpenAiResponses::openai()
                    .base_url(self.openai_base_url())
                    .api_key(MOCK_API_KEY)
                    .connect_timeout(connect)
                    .build()?,
            )?)
            .with(
                Anthropic::builder()
                    .base_url(self.base_url())
                    .api_key(MOCK_API_KEY)
                    .connect_timeout(connect)
                    .build()?,
            )
            .with(
                OpenAiCompatible::xai()
                    .base_url(self.openai_base_url())
                    .api_key(MOCK_API_KEY)
                    .connect_timeout(connect)
                    .build()?,
            )
            .with(
                OpenAiResponses::openai()
                    .name(RESPONSES_PROVIDER)
                    .base_url(self.openai_base_url())
                    .api_key(MOCK_API_KEY)
                    .connect_timeout(connect)
                    .build()?,
            ))
    }

    /// Queues fault plans for the next requests (any key), first in, first out.
    pub fn push_faults(&self, plans: impl IntoIterator<Item = FaultPlan>) {
        let mut queue = self.shared.queue.lock();
        let before = queue.len();
        queue.extend(plans);
        self.shared
            .scripted
            .fetch_add(queue.len() - before, Ordering::AcqRel);
    }

    /// Forgets the queued fault plans (not the keyed ones, nor the default).
    pub fn clear_faults(&self) {
        let mut queue = self.shared.queue.lock();
        let dropped = queue.len();
        queue.clear();
        self.shared.scripted.fetch_sub(dropped, Ordering::AcqRel);
    }

    /// Forgets the keyed fault plans still waiting (for request ids that
    /// never came: a group that sent the request elsewhere, say); returns
    /// how many plans were waiting.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use steer_llm::mock::{FaultPlan, MockServer};
    /// let mock = MockServer::builder().start_background()?;
    /// mock.script_key("never-sent", [FaultPlan::error("overloaded"), FaultPlan::reset(1)]);
    /// assert_eq!(mock.clear_keyed(), 2);
    /// assert_eq!(mock.clear_keyed(), 0);
    /// # Ok(()) }
    /// ```
    pub fn clear_keyed(&self) -> usize {
        let mut keyed = self.shared.keyed.lock();
        let dropped: usize = keyed.values().map(VecDeque::len).sum();
        // A new map: a cleared one keeps its table's memory.
        *keyed = HashMap::new();
        self.shared.scripted.fetch_sub(dropped, Ordering::AcqRel);
        dropped
    }

    /// Queues fault plans for the requests whose `x-client-request-id` is `key`
    /// (steer sends its request id there).
    pub fn script_key(&self, key: &str, plans: impl IntoIterator<Item = FaultPlan>) {
        let mut scripts = self.shared.keyed.lock();
        let queue = scripts.entry(key.to_string()).or_default();
        let before = queue.len();
        queue.extend(plans);
        let added = queue.len() - before;
        self.shared.scripted.fetch_add(added, Ordering::AcqRel);
    }

    /// Sets (or clears) the fault for requests nothing else covers.
    pub fn set_default_fault(&self, plan: Option<FaultPlan>) {
        let mut default = self.shared.default_fault.lock();
        self.shared
            .has_default
            .store(plan.is_some(), Ordering::Release);
        *default = plan;
    }

    /// The requests recorded (the latest ones, up to the log's capacity), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.lock().iter().cloned().collect()
    }

    /// How many requests were received (counted even when recording is off).
    pub fn request_count(&self) -> u64 {
        self.shared.counter.load(Ordering::Relaxed)
    }

    /// Streamed events (SSE frames) handed to the network so far, over all requests.
    /// A consumer that reads slowly holds this back (backpressure).
    pub fn events_sent(&self) -> u64 {
        self.shared.events_sent.load(Ordering::Relaxed)
    }

    /// Requests whose client closed the connection while the mock was still
    /// waiting out their `latency`, before any response (a hedge that lost, a
    /// cancelled call).
    pub fn abandoned(&self) -> u64 {
        self.shared.abandoned.load(Ordering::Relaxed)
    }

    /// Streamed bodies whose client closed the connection before their end
    /// (a stream cancelled, a hedge that lost its race once it had headers):
    /// the server sees the close as hyper does, at its next write.
    pub fn streams_cut(&self) -> u64 {
        self.shared.streams_cut.load(Ordering::Relaxed)
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.log.lock().clear();
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        match &mut self.running {
            Running::Task(task) => task.abort(),
            Running::Thread(slot) => {
                if let Some((stop, thread)) = slot.take() {
                    let _ = stop.send(());
                    let _ = thread.join();
                }
            }
        }
    }
}
