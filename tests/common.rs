//! Helpers shared by the integration tests (with the mock).
#![cfg(feature = "mock")]
#![allow(dead_code)]

use futures::StreamExt;
use steer_llm::mock::text::{self, Turn};
use steer_llm::{
    ChatRequest, ChatResponse, EventStream, FinishReason, OpenAiCompatible, ProviderError,
    ProviderEvent, Providers, StreamEvent, ToolCall, Usage,
};

/// A client for tests that break streams on purpose: quick retries (5 attempts,
/// 1-4 ms), a breaker that never opens, a 150 ms idle timeout.
pub fn fault_tolerant_client(mock: &steer_llm::mock::MockServer) -> steer_llm::Client {
    let idle = std::time::Duration::from_millis(150);
    fault_tolerant_client_of(mock.providers().unwrap(), idle)
}

/// A client builder for tests that break things on purpose: `attempts`
/// attempts 1-4 ms apart, a breaker that never opens.
pub fn quick_builder(providers: Providers, attempts: u32) -> steer_llm::ClientBuilder {
    use std::time::Duration;
    steer_llm::Client::builder()
        .providers(providers)
        .retry(
            steer_llm::RetryPolicy::default().backoff(steer_llm::Backoff {
                max_attempts: attempts,
                base: Duration::from_millis(1),
                multiplier: 2.0,
                max_delay: Duration::from_millis(4),
                jitter: steer_llm::Jitter::None,
            }),
        )
        .breaker(steer_llm::BreakerConfig {
            failure_threshold: 1_000_000,
            ..steer_llm::BreakerConfig::default()
        })
}

/// [`fault_tolerant_client`] of any providers, with this idle timeout.
pub fn fault_tolerant_client_of(
    providers: Providers,
    idle: std::time::Duration,
) -> steer_llm::Client {
    use std::time::Duration;
    quick_builder(providers, 5)
        .stream_timeouts(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(10)),
            Some(idle),
        )
        .build()
        .unwrap()
}

/// A property against the mock: `cases` random cases of `strategy`, each
/// checked by `check` (given the runtime, one mock for all cases, the case
/// and its number) on a two-worker runtime; a failing case fails the test
/// with why, beside the case (no persisted regressions: each file keeps its
/// own cases as tests).
pub fn mock_property<S>(
    strategy: S,
    cases: u32,
    check: impl Fn(
        &tokio::runtime::Runtime,
        &steer_llm::mock::MockServer,
        &S::Value,
        u64,
    ) -> Result<(), String>,
) where
    S: proptest::strategy::Strategy,
    S::Value: std::fmt::Debug,
{
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let runtime = two_worker_runtime();
    let mock = runtime.block_on(async {
        steer_llm::mock::MockServer::builder()
            .start_background()
            .unwrap()
    });
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&strategy, |case| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            check(&runtime, &mock, &case, n)
                .map_err(|why| TestCaseError::fail(format!("{case:?}: {why}")))
        })
        .unwrap();
}

/// A multi-thread tokio runtime with two workers (the shape of most services).
pub fn two_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The three built-in providers and a model of each.
pub const MODELS: [&str; 4] = [
    "openai/gpt-4o-mini",
    "anthropic/claude-3-5-haiku-latest",
    "xai/grok-3-mini",
    "openai-responses/gpt-5-mini",
];

/// A small conversation for `model`.
pub fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model)
        .unwrap()
        .system("You are terse.")
        .user("Tell me about rivers.")
}

/// What the mock answers to `req`, computed from its public text module.
pub fn expected_text(req: &ChatRequest, words: Option<usize>) -> String {
    let turns: Vec<Turn> = req
        .messages
        .iter()
        .map(|m| Turn::new(m.role.as_str(), &m.text()))
        .collect();
    text::reply(req.model.model(), &turns, req.max_tokens, &req.stop, words).text()
}

/// The chunks the mock streams for `req` (one text delta each).
pub fn expected_chunks(req: &ChatRequest) -> Vec<String> {
    let turns: Vec<Turn> = req
        .messages
        .iter()
        .map(|m| Turn::new(m.role.as_str(), &m.text()))
        .collect();
    text::reply(req.model.model(), &turns, req.max_tokens, &req.stop, None).chunks
}

/// Everything a stream yields: its events, and the error that ended it, if any.
pub async fn drain(mut stream: EventStream) -> (Vec<ProviderEvent>, Option<ProviderError>) {
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(e) => events.push(e),
            Err(e) => {
                assert!(
                    stream.next().await.is_none(),
                    "nothing may follow a stream error"
                );
                return (events, Some(e));
            }
        }
    }
    (events, None)
}

/// The text of the deltas, checking that offsets are contiguous.
pub fn delta_text(events: &[ProviderEvent]) -> String {
    let mut text = String::new();
    for e in events {
        if let ProviderEvent::TextDelta { text: t, offset } = e {
            assert_eq!(*offset, text.chars().count(), "offsets must be contiguous");
            text.push_str(t);
        }
    }
    text
}

/// An OpenAI provider at `base_url` (ending in `/v1`) using `http`.
pub fn openai_at(base_url: &str, http: reqwest::Client) -> Providers {
    Providers::new().with(
        OpenAiCompatible::openai()
            .base_url(base_url)
            .api_key("k")
            .http_client(http)
            .build()
            .unwrap(),
    )
}

/// An OpenAI provider pointed at a local port nothing listens on (it was free a
/// moment ago): every call is refused.
pub fn refused_provider() -> Providers {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    openai_at(
        &format!("http://127.0.0.1:{port}/v1"),
        reqwest::Client::new(),
    )
}

/// A successful reply of `provider` to `req`, with the text `ok` and one token
/// each way (for test providers that answer without HTTP).
pub fn ok_reply(req: &ChatRequest, provider: &str) -> ChatResponse {
    ChatResponse::new(req, provider, "ok").with_usage(Usage::new(1, 1))
}

/// A fault that breaks a stream mid-way, struck after a number of chunks.
#[derive(Debug, Clone, Copy)]
pub enum StreamFault {
    Reset,
    Truncate,
    InBandServerError,
    InBandOverloaded,
    MalformedJson,
    Stall,
    /// Chunks at once, then one every 120 ms: slow only for a stream with a
    /// rate floor.
    Trickle,
    /// Chunks, then keep-alives every 20 ms and nothing else: alive by its
    /// bytes, dead by its content (the idle timeout must not count them).
    Pings,
}

impl StreamFault {
    /// Whether it breaks the line, not the response (a background response
    /// runs on at the server, and can be resumed there).
    pub fn breaks_the_line(self) -> bool {
        !matches!(
            self,
            StreamFault::InBandServerError | StreamFault::InBandOverloaded
        )
    }

    /// The mock's plan that strikes it after `after` chunks.
    pub fn plan(self, after: usize) -> steer_llm::mock::FaultPlan {
        use steer_llm::mock::FaultPlan;
        match self {
            StreamFault::Reset => FaultPlan::reset(after),
            StreamFault::Truncate => FaultPlan::truncate(after),
            StreamFault::InBandServerError => FaultPlan::stream_error("server_error", after),
            StreamFault::InBandOverloaded => FaultPlan::stream_error("overloaded", after),
            StreamFault::MalformedJson => format!("malformed_json?after={after}")
                .parse()
                .expect("a fault plan"),
            StreamFault::Stall => FaultPlan::stall(after),
            StreamFault::Trickle => format!("trickle?after={after}&ms=120")
                .parse()
                .expect("a fault plan"),
            StreamFault::Pings => format!("pings?after={after}&ms=20")
                .parse()
                .expect("a fault plan"),
        }
    }
}

/// The models a stream property runs over: the four wire formats and a model
/// that rejects prefill (continued by the "continue" message).
pub const STREAM_MODELS: [&str; 5] = [
    "openai/gpt-4o-mini",
    "anthropic/claude-3-5-haiku-latest",
    "xai/grok-3-mini",
    "anthropic/claude-opus-4-6",
    "openai-responses/gpt-5-mini",
];

/// The two tools the stream properties ask for, each with the one string field
/// its schema requires: the mock calls both when the prompt names them
/// ([`TWO_TOOLS_ASK`]).
pub const TWO_TOOLS: [(&str, &str); 2] = [("get_weather", "city"), ("get_time", "zone")];

/// What a prompt says to have both [`TWO_TOOLS`] called.
pub const TWO_TOOLS_ASK: &str = " Use get_weather and get_time.";

/// `req` with both [`TWO_TOOLS`].
pub fn with_two_tools(mut req: ChatRequest) -> ChatRequest {
    for (name, field) in TWO_TOOLS {
        let schema = serde_json::json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]});
        req = req.tool(steer_llm::Tool::new(name, schema));
    }
    req
}

/// Whether `got` begins `want`, call for call, whatever their ids
/// ([`ToolCall::same_as`]); equal lengths make it the same calls.
pub fn calls_begin(got: &[ToolCall], want: &[ToolCall]) -> bool {
    got.len() <= want.len() && got.iter().zip(want).all(|(a, b)| a.same_as(b))
}

/// A mock on 127.0.0.1 that keeps no record of the requests it serves (for
/// properties that send thousands).
pub fn quiet_mock() -> steer_llm::mock::MockServer {
    steer_llm::mock::MockServer::builder()
        .record_requests(false)
        .start_background()
        .expect("the mock starts")
}

/// What a consumer saw of one stream, read to its end by [`read_stream`].
#[derive(Debug, Default)]
pub struct SeenStream {
    /// The text, spliced from every delta.
    pub text: String,
    /// How many text deltas carried it.
    pub deltas: u32,
    /// Every failover's seam: the offset it came at and the target taken.
    pub seams: Vec<(usize, String)>,
    /// How many tool calls had come at the first seam.
    pub calls_at_seam: Option<usize>,
    /// The route of a grouped stream, when one was sent.
    pub steps: Option<Vec<steer_llm::model::RouteStep>>,
    /// The finish reason of its `Complete`, when one came.
    pub finish: Option<FinishReason>,
    /// The tool calls, in their index order.
    pub calls: Vec<ToolCall>,
    /// `Restarted` events: what came before each was discarded.
    pub restarts: u32,
    /// The usage its `Complete` carried.
    pub usage: Option<Usage>,
    /// How each `Resumed` seam went on.
    pub resumed_by: Vec<steer_llm::ResumedBy>,
    /// The whole reasoning blocks kept (a discarded one removed), by index.
    pub reasoning: Vec<steer_llm::Reasoning>,
    /// The provider each `Start` named.
    pub starts: Vec<String>,
    /// What the stream spent, as its `Spend` (just before `Complete`) said.
    pub spend: Option<steer_llm::cost::Spend>,
    reasoning_at: Vec<usize>,
}

/// Every event of a stream, read to its end, and the error that ended it if
/// one did (20 s without an event panics: a stream must not hang).
#[allow(dead_code)]
pub async fn all_events(
    mut stream: steer_llm::runtime::SteerStream,
) -> (Vec<StreamEvent>, Option<steer_llm::Error>) {
    let mut events = Vec::new();
    while let Some(item) = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
        .await
        .expect("the stream must not hang")
    {
        match item {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

/// Reads a stream to its end, checking as it goes that every delta comes at the
/// offset of the text before it and every tool call at the next index. An
/// error event, a broken promise or 20 s without an event is an `Err`.
pub async fn read_stream(
    mut stream: steer_llm::runtime::SteerStream,
) -> Result<SeenStream, String> {
    let mut seen = SeenStream::default();
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
            .await
            .map_err(|_| "the stream hung".to_string())?;
        match next {
            None => return Ok(seen),
            Some(Err(e)) => return Err(format!("stream failed: {e}")),
            Some(Ok(StreamEvent::TextDelta { text, offset })) => {
                if offset != seen.text.chars().count() {
                    return Err(format!("offset {offset} after {:?}", seen.text));
                }
                seen.text.push_str(&text);
                seen.deltas += 1;
            }
            Some(Ok(StreamEvent::FailedOver { offset, target, .. })) => {
                seen.calls_at_seam.get_or_insert(seen.calls.len());
                seen.seams.push((offset, target))
            }
            Some(Ok(StreamEvent::Route { steps })) => seen.steps = Some(steps),
            // What came before is to be discarded: the reply starts again.
            Some(Ok(StreamEvent::Restarted { .. })) => {
                seen.restarts += 1;
                seen.text.clear();
                seen.calls.clear();
                seen.seams.clear();
                seen.calls_at_seam = None;
                seen.deltas = 0;
            }
            Some(Ok(StreamEvent::Spend(spend))) => {
                if seen.spend.replace(*spend).is_some() {
                    return Err("two Spend events".into());
                }
            }
            Some(Ok(StreamEvent::Complete {
                finish_reason,
                usage,
            })) => {
                if seen.spend.is_none() {
                    return Err("Complete without the stream's Spend before it".into());
                }
                seen.finish = Some(finish_reason);
                seen.usage = usage;
            }
            Some(Ok(StreamEvent::Resumed { by, .. })) => seen.resumed_by.push(by),
            Some(Ok(StreamEvent::Start { provider, .. })) => seen.starts.push(provider),
            Some(Ok(StreamEvent::Reasoning { index, block })) => {
                if seen.reasoning_at.contains(&index) {
                    return Err(format!("reasoning block {index} twice"));
                }
                seen.reasoning_at.push(index);
                seen.reasoning.push(block);
            }
            Some(Ok(StreamEvent::ReasoningDiscarded { index })) => {
                if let Some(at) = seen.reasoning_at.iter().position(|i| *i == index) {
                    seen.reasoning_at.remove(at);
                    seen.reasoning.remove(at);
                }
            }
            Some(Ok(StreamEvent::ToolCall { index, call })) => {
                if index != seen.calls.len() {
                    return Err(format!(
                        "call index {index} after {} calls",
                        seen.calls.len()
                    ));
                }
                seen.calls.push(call);
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Waits (bounded: 1,000 checks, 5 ms apart) until `cond` holds; whether it did.
/// For what settles after a reply (one-way reports, spans closed, metrics).
pub async fn eventually<F: std::future::Future<Output = bool>>(
    mut cond: impl FnMut() -> F,
) -> bool {
    for _ in 0..1_000 {
        if cond().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    false
}

/// Waits (bounded, as [`eventually`]) until the client's metrics show `line`.
pub async fn metrics_show(client: &steer_llm::Client, line: &str) -> bool {
    eventually(|| std::future::ready(client.prometheus_text().contains(line))).await
}

/// The body of `GET http://{addr}{path}` (the operator endpoints).
pub async fn get_text(addr: std::net::SocketAddr, path: &str) -> String {
    reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The body of `GET http://{addr}{path}` as JSON (`/reliability`).
pub async fn get_json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    serde_json::from_str(&get_text(addr, path).await).unwrap()
}

/// A deployment: OpenAI's format at `mock`, registered as `name`.
pub fn deployment(name: &str, mock: &steer_llm::mock::MockServer) -> OpenAiCompatible {
    OpenAiCompatible::openai()
        .name(name)
        .base_url(mock.openai_base_url())
        .api_key("sk-test")
        .build()
        .unwrap()
}

/// `f`, which must end within 30 s (a hang fails the test instead of stalling it).
pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(30), f)
        .await
        .expect("must not hang")
}
