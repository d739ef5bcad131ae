//! The spans steer emits, captured by a test subscriber over real HTTP against the
//! mock: one GenAI span per request with a child span per attempt, events for
//! resumptions and breaker rejections, and no prompt or reply text unless asked.
#![cfg(feature = "mock")]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use futures::StreamExt;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::{BreakerState, ChatRequest, Client, Error, StreamEvent};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// One span as the subscriber saw it.
#[derive(Debug, Clone)]
struct SpanRecord {
    id: u64,
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
    closed: bool,
}

/// One event: its message, fields and the span it happened in.
#[derive(Debug, Clone)]
struct EventRecord {
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Captured {
    spans: Mutex<Vec<SpanRecord>>,
    events: Mutex<Vec<EventRecord>>,
}

struct Capture(Arc<Captured>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent().map(|p| p.id().into_u64()));
        self.0.spans.lock().unwrap().push(SpanRecord {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            parent,
            fields,
            closed: false,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.spans.lock().unwrap();
        if let Some(s) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            values.record(&mut Fields(&mut s.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let parent = ctx.event_span(event).map(|s| s.id().into_u64());
        self.0
            .events
            .lock()
            .unwrap()
            .push(EventRecord { parent, fields });
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        let mut spans = self.0.spans.lock().unwrap();
        if let Some(s) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            s.closed = true;
        }
    }
}

/// The process's subscriber (the actors run on threads of their own, so a
/// thread-local one would miss their spans). Tests tell their spans apart by
/// request id.
fn captured() -> &'static Arc<Captured> {
    static CAPTURED: OnceLock<Arc<Captured>> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Arc::new(Captured::default());
        let subscriber = tracing_subscriber::registry().with(Capture(captured.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        captured
    })
}

/// The request span with this request id, and its attempts in order.
fn spans_of(request_id: &str) -> (SpanRecord, Vec<SpanRecord>) {
    let spans = captured().spans.lock().unwrap().clone();
    let request: Vec<_> = spans
        .iter()
        .filter(|s| s.fields.get("steer.request_id").map(String::as_str) == Some(request_id))
        .cloned()
        .collect();
    assert_eq!(
        request.len(),
        1,
        "one request span for {request_id}: {request:?}"
    );
    let request = request.into_iter().next().unwrap_or_else(|| unreachable!());
    let attempts = spans
        .into_iter()
        .filter(|s| s.parent == Some(request.id))
        .collect();
    (request, attempts)
}

fn events_in(span: u64) -> Vec<EventRecord> {
    captured()
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.parent == Some(span))
        .cloned()
        .collect()
}

fn field<'a>(s: &'a SpanRecord, name: &str) -> Option<&'a str> {
    s.fields.get(name).map(String::as_str)
}

fn client(mock: &MockServer, record_content: bool) -> Client {
    Client::builder()
        .providers(mock.providers().unwrap())
        .retry(
            steer_llm::RetryPolicy::default().backoff(steer_llm::Backoff {
                max_attempts: 5,
                base: std::time::Duration::from_millis(1),
                multiplier: 2.0,
                max_delay: std::time::Duration::from_millis(4),
                jitter: steer_llm::Jitter::None,
            }),
        )
        .breaker(steer_llm::BreakerConfig {
            failure_threshold: 1_000_000,
            ..steer_llm::BreakerConfig::default()
        })
        .record_content(record_content)
        .build()
        .unwrap()
}

/// Waits until the span is closed (the actor lets go of it after it replies).
async fn closed(request_id: &str) -> (SpanRecord, Vec<SpanRecord>) {
    common::eventually(|| {
        let (request, attempts) = spans_of(request_id);
        std::future::ready(request.closed && attempts.iter().all(|a| a.closed))
    })
    .await;
    spans_of(request_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_resumed_stream_is_one_genai_span_with_a_child_per_attempt() {
    captured();
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock, false);
    let req = ChatRequest::new("openai/gpt-4o-mini")
        .unwrap()
        .system("You are terse.")
        .user("A secret prompt about rivers.")
        .max_tokens(400)
        .request_id("trace-stream-1");
    let whole = common::expected_text(&req, None);
    // Attempt 1 is refused before content, attempt 2 breaks after 3 chunks,
    // attempt 3 continues from the checkpoint.
    mock.script_key(
        "trace-stream-1",
        [FaultPlan::error("overloaded"), FaultPlan::reset(3)],
    );
    let mut stream = client.stream(req).await.unwrap();
    let mut text = String::new();
    let mut resumed = 0;
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            StreamEvent::TextDelta { text: t, .. } => text.push_str(&t),
            StreamEvent::Resumed { .. } => resumed += 1,
            _ => {}
        }
    }
    assert_eq!(text, whole);
    assert_eq!(resumed, 1);
    drop(stream);

    let (span, attempts) = closed("trace-stream-1").await;
    assert_eq!(span.name, "steer.stream");
    assert!(span.closed, "the request span ends with the stream");
    assert_eq!(span.parent, None);
    for (name, value) in [
        ("otel.name", "chat gpt-4o-mini"),
        ("otel.kind", "client"),
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o-mini"),
        ("gen_ai.request.max_tokens", "400"),
        ("gen_ai.response.model", "gpt-4o-mini"),
        ("gen_ai.response.finish_reasons", r#"["stop"]"#),
    ] {
        assert_eq!(field(&span, name), Some(value), "{name} in {span:?}");
    }
    let output: u64 = field(&span, "gen_ai.usage.output_tokens")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(output > 0, "{span:?}");
    assert_eq!(field(&span, "error.type"), None, "the stream succeeded");
    assert!(
        field(&span, "gen_ai.response.id").is_some_and(|id| id.starts_with("chatcmpl-")),
        "{span:?}"
    );

    // One child per attempt, numbered, the failed ones classified.
    let attempts: Vec<_> = attempts
        .into_iter()
        .filter(|a| a.name == "steer.attempt")
        .collect();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    let numbers: Vec<_> = attempts.iter().map(|a| field(a, "steer.attempt")).collect();
    assert_eq!(numbers, [Some("1"), Some("2"), Some("3")]);
    let resends: Vec<_> = attempts
        .iter()
        .map(|a| field(a, "http.request.resend_count"))
        .collect();
    assert_eq!(resends, [Some("0"), Some("1"), Some("2")]);
    let errors: Vec<_> = attempts.iter().map(|a| field(a, "error.type")).collect();
    assert_eq!(errors[0], Some("overloaded"));
    assert!(errors[1].is_some_and(|e| e != "overloaded"), "{errors:?}");
    assert_eq!(errors[2], None);
    assert!(attempts[0].fields.contains_key("steer.retry.delay_ms"));

    // The resumption is an event of the request span, at the checkpoint.
    let events = events_in(span.id);
    let resumed: Vec<_> = events
        .iter()
        .filter(|e| field_of(e, "message") == Some("steer.stream.resumed"))
        .collect();
    assert_eq!(resumed.len(), 1, "{events:?}");
    assert_eq!(field_of(resumed[0], "attempt"), Some("3"));
    assert!(field_of(resumed[0], "offset").is_some_and(|o| o != "0"));

    // No prompt or reply text anywhere unless the client opts in.
    let spans = captured().spans.lock().unwrap().clone();
    let leaked = spans
        .iter()
        .flat_map(|s| s.fields.values())
        .any(|v| v.contains("secret prompt") || v.contains(&whole[..20]));
    assert!(!leaked, "content recorded without opting in");
}

fn field_of<'a>(e: &'a EventRecord, name: &str) -> Option<&'a str> {
    e.fields.get(name).map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_records_its_response_and_a_rejection_is_an_event() {
    captured();
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock, true);
    mock.script_key("trace-gen-1", [FaultPlan::error("server_error")]);
    let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .user("Opted-in prompt text.")
        .temperature(0.5)
        .request_id("trace-gen-1");
    let reply = client.generate(req).await.unwrap();
    let (span, attempts) = closed("trace-gen-1").await;
    assert_eq!(span.name, "steer.request");
    assert_eq!(field(&span, "gen_ai.provider.name"), Some("anthropic"));
    assert_eq!(field(&span, "gen_ai.request.temperature"), Some("0.5"));
    assert_eq!(
        field(&span, "gen_ai.response.id"),
        reply.response_id.as_deref()
    );
    assert!(reply.response_id.is_some(), "the mock names its message");
    assert_eq!(
        field(&span, "gen_ai.usage.input_tokens"),
        Some(reply.usage.prompt_tokens.to_string().as_str())
    );
    assert_eq!(
        field(&span, "gen_ai.response.finish_reasons"),
        Some(r#"["stop"]"#)
    );
    // Opted in: the prompt and the reply are on the span.
    assert!(field(&span, "gen_ai.input.messages").is_some_and(|m| m.contains("Opted-in prompt")));
    assert_eq!(
        field(&span, "gen_ai.output.messages"),
        Some(reply.text.as_str())
    );
    let errors: Vec<_> = attempts.iter().map(|a| field(a, "error.type")).collect();
    assert_eq!(errors, [Some("server_error"), None]);

    // A breaker forced open: the request fails with error.type and an event.
    client
        .breakers()
        .force("anthropic", BreakerState::ForcedOpen)
        .unwrap();
    client.breakers().status("anthropic").await.unwrap();
    let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .user("hi")
        .request_id("trace-gen-2");
    let err = client.generate(req).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    let (span, attempts) = closed("trace-gen-2").await;
    assert_eq!(field(&span, "error.type"), Some("breaker_rejected"));
    assert_eq!(field(&span, "otel.status_code"), Some("ERROR"));
    assert!(
        attempts.iter().all(|a| a.name != "steer.attempt"),
        "no attempt was made"
    );
    let rejected: Vec<_> = events_in(span.id)
        .into_iter()
        .filter(|e| field_of(e, "message") == Some("steer.breaker.rejected"))
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(field_of(&rejected[0], "rejection"), Some("forced_open"));
}
