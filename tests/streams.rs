//! Streams that survive, over real HTTP against the mock: for each provider format,
//! fault point and fault kind, the concatenated deltas equal the fault-free reply,
//! and the mock's log shows the continuation request.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::{expected_chunks, expected_text, request, MODELS};
use futures::StreamExt;
use steer_llm::continue_message;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::{Continuation, GenerateOptions, SteerStream};
use steer_llm::{
    Backoff, BreakerConfig, ChatRequest, Client, Error, Jitter, RetryPolicy, StreamEvent,
};

fn client(mock: &MockServer) -> Client {
    client_with_breaker(mock, 1_000_000)
}

/// The tests' client, whose breaker opens after `failure_threshold` failures.
fn client_with_breaker(mock: &MockServer, failure_threshold: u32) -> Client {
    Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::default().backoff(Backoff {
            max_attempts: 4,
            base: Duration::from_millis(1),
            multiplier: 2.0,
            max_delay: Duration::from_millis(5),
            jitter: Jitter::None,
        }))
        .breaker(BreakerConfig {
            failure_threshold,
            ..BreakerConfig::default()
        })
        .stream_timeouts(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(10)),
            Some(Duration::from_millis(200)),
        )
        .build()
        .unwrap()
}

struct Collected {
    events: Vec<StreamEvent>,
    error: Option<Error>,
}

impl Collected {
    fn text(&self) -> String {
        let mut text = String::new();
        for e in &self.events {
            if let StreamEvent::TextDelta { text: t, offset } = e {
                assert_eq!(*offset, text.chars().count(), "offsets are contiguous");
                text.push_str(t);
            }
        }
        text
    }

    fn resumed(&self) -> Vec<(u32, usize)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Resumed {
                    attempt, offset, ..
                } => Some((*attempt, *offset)),
                _ => None,
            })
            .collect()
    }
}

async fn collect(mut stream: SteerStream) -> Collected {
    let mut events = Vec::new();
    let mut error = None;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the stream must not hang")
    {
        match item {
            Ok(e) => events.push(e),
            Err(e) => {
                error = Some(e);
                assert!(stream.next().await.is_none(), "nothing follows an error");
                break;
            }
        }
    }
    Collected { events, error }
}

type FaultAt = fn(usize) -> FaultPlan;

fn faults() -> Vec<(&'static str, FaultAt)> {
    vec![
        ("reset", FaultPlan::reset),
        ("truncate", FaultPlan::truncate),
        ("in-band server_error", |n| {
            FaultPlan::stream_error("server_error", n)
        }),
        ("in-band overloaded", |n| {
            FaultPlan::stream_error("overloaded", n)
        }),
        ("stall past the idle timeout", FaultPlan::stall),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_every_point_resumes_byte_exact_for_every_provider() {
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(2))
        .start_background()
        .unwrap();
    let client = client(&mock);
    let mut case = 0;
    for model in MODELS {
        let words = expected_chunks(&request(model)).len();
        for (name, fault) in faults() {
            // First chunk, middle, and the last chunk before the terminal event.
            for after in [1, words / 2, 10_000] {
                case += 1;
                let id = format!("resume-{case}");
                let req = request(model).request_id(id.as_str());
                let whole = expected_text(&req, None);
                mock.clear_requests();
                mock.script_key(&id, [fault(after)]);
                let got = collect(client.stream(req.clone()).await.unwrap()).await;
                let what = format!("{model} {name} after {after}");
                assert!(got.error.is_none(), "{what}: {:?}", got.error);
                assert_eq!(got.text(), whole, "{what}");
                let delivered_before: String = expected_chunks(&req)[..after.min(words)].concat();
                let seam = delivered_before.chars().count();
                assert_eq!(got.resumed(), vec![(2, seam)], "{what}");
                assert!(matches!(
                    got.events.first(),
                    Some(StreamEvent::Start { .. })
                ));
                assert!(matches!(
                    got.events.last(),
                    Some(StreamEvent::Complete { .. })
                ));
                // The continuation request carries the delivered text as a prefill
                // (trimmed of trailing whitespace) where the server continues one
                // (Anthropic before 4.6), else quoted in the "continue" message.
                let log = mock.requests();
                assert_eq!(log.len(), 2, "{what}");
                let (role, content) = log[1].last_message().unwrap();
                if model.starts_with("anthropic") {
                    assert_eq!(role, "assistant", "{what}");
                    assert_eq!(content, delivered_before.trim_end(), "{what}");
                } else {
                    assert_eq!(role, "user", "{what}");
                    assert_eq!(
                        steer_llm::continue_message::read(&content),
                        Some(delivered_before.as_str()),
                        "{what}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_rejects_prefill_is_continued_by_a_continue_message() {
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(2))
        .start_background()
        .unwrap();
    let client = client(&mock);
    let model = "anthropic/claude-opus-4-6";
    let words = expected_chunks(&request(model)).len();
    for (name, fault) in faults() {
        for after in [1, words / 2, 10_000] {
            let id = format!("instruct-{name}-{after}");
            let req = request(model).request_id(id.as_str());
            let whole = expected_text(&req, None);
            mock.clear_requests();
            mock.script_key(&id, [fault(after)]);
            let got = collect(client.stream(req.clone()).await.unwrap()).await;
            let what = format!("{name} after {after}");
            assert!(got.error.is_none(), "{what}: {:?}", got.error);
            assert_eq!(
                got.text(),
                whole,
                "{what}: the repeated overlap was dropped"
            );
            let log = mock.requests();
            assert_eq!(log.len(), 2, "{what}");
            let (role, content) = log[1].last_message().unwrap();
            assert_eq!(role, "user");
            let delivered: String = expected_chunks(&req)[..after.min(words)].concat();
            assert_eq!(
                continue_message::read(&content),
                Some(delivered.as_str()),
                "{what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_before_content_are_retried_invisibly() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        let id = format!("before-{model}");
        let req = request(model).request_id(id.as_str());
        let whole = expected_text(&req, None);
        mock.script_key(
            &id,
            [
                FaultPlan::error("overloaded"),
                FaultPlan::reset(0),
                FaultPlan::stream_error("server_error", 0),
            ],
        );
        let got = collect(client.stream(req.clone()).await.unwrap()).await;
        assert!(got.error.is_none(), "{model}: {:?}", got.error);
        assert_eq!(got.text(), whole);
        assert!(
            got.resumed().is_empty(),
            "no seam when nothing was delivered"
        );
        let starts = got
            .events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Start { .. }))
            .count();
        assert_eq!(starts, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retryable_error_after_content_carries_the_partial_text() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    let req = request("openai/gpt-4o-mini").request_id("partial-1");
    mock.script_key("partial-1", [FaultPlan::stream_error("invalid_request", 3)]);
    let got = collect(client.stream(req.clone()).await.unwrap()).await;
    let err = got.error.as_ref().expect("a final error");
    let first_three: String = expected_chunks(&req)[..3].concat();
    assert_eq!(err.partial_text(), Some(first_three.as_str()));
    assert_eq!(got.text(), first_three);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_off_strategies() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    // Restart: a Restarted event, then the whole text again.
    let req = request("xai/grok-3-mini").request_id("restart-1");
    let whole = expected_text(&req, None);
    mock.script_key("restart-1", [FaultPlan::reset(3)]);
    let opts = GenerateOptions::default().continuation(Continuation::Restart);
    let got = collect(client.stream_with(req, opts).await.unwrap()).await;
    assert!(got.error.is_none());
    let restarted_at = got
        .events
        .iter()
        .position(|e| matches!(e, StreamEvent::Restarted { attempt: 2 }))
        .expect("a Restarted event");
    let after: String = got.events[restarted_at..]
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(after, whole);

    // Off: the error carries the partial text, no second request.
    let req = request("xai/grok-3-mini").request_id("off-1");
    mock.clear_requests();
    mock.script_key("off-1", [FaultPlan::reset(2)]);
    let opts = GenerateOptions::default().continuation(Continuation::Off);
    let got = collect(client.stream_with(req, opts).await.unwrap()).await;
    let err = got.error.as_ref().expect("an error");
    assert_eq!(err.partial_text().map(str::len), Some(got.text().len()));
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_adds_up_across_attempts() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    let req = request("anthropic/claude-3-5-haiku-latest").request_id("usage-1");
    mock.script_key("usage-1", [FaultPlan::reset(4)]);
    let got = collect(client.stream(req.clone()).await.unwrap()).await;
    let Some(StreamEvent::Complete {
        usage: Some(usage), ..
    }) = got.events.last()
    else {
        panic!("no final usage")
    };
    let chunks = got
        .events
        .iter()
        .filter(|e| matches!(e, StreamEvent::TextDelta { .. }))
        .count() as u64;
    // The broken attempt's 4 chunks plus the continuation's own count.
    assert!(
        usage.completion_tokens >= chunks,
        "{usage:?} vs {chunks} chunks"
    );
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_frees_its_half_open_permit() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::never())
        .breaker(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_millis(50),
            half_open_permits: 1,
            success_threshold: 1,
            ..BreakerConfig::default()
        })
        .build()
        .unwrap();
    let model = "openai/gpt-4o-mini";
    mock.push_faults([FaultPlan::error("server_error")]);
    let failed = collect(client.stream(request(model)).await.unwrap()).await;
    assert!(failed.error.is_some());
    tokio::time::sleep(Duration::from_millis(120)).await;
    // The probe: a slow response we give up on.
    mock.push_faults([FaultPlan::normal().with_latency(Duration::from_secs(5))]);
    let probe = client.stream(request(model)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(probe);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The permit came back: the next probe is admitted and closes the breaker.
    let next = collect(client.stream(request(model)).await.unwrap()).await;
    assert!(next.error.is_none(), "{:?}", next.error);
    let status = client.breakers().status("openai").await.unwrap();
    assert_eq!(status.state, steer_llm::BreakerState::Closed);
    let metrics = client.metrics().await.unwrap();
    assert_eq!(metrics.provider("openai").unwrap().metrics.cancelled, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_keeps_failing_gets_one_error() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("x");
    mock.set_default_fault(Some(FaultPlan::reset(2)));
    let got = collect(client.stream(req.clone()).await.unwrap()).await;
    assert!(
        matches!(got.error, Some(Error::Failed(_))),
        "{:?}",
        got.error
    );
    assert_eq!(mock.requests().len(), 4);
}

/// The partial response the client keeps for `req`, once its one-way store message
/// has been handled.
/// The stored partial of a stream whose error the caller has just seen: it is
/// stored before the error reaches the consumer, so one look finds it.
async fn stored_partial(
    client: &Client,
    req: &ChatRequest,
) -> Option<steer_llm::runtime::PartialResponse> {
    client.partial(&req.request_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partial_response_of_a_failed_stream_can_be_fetched_by_request_id() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    let req = request("anthropic/claude-3-5-haiku-latest").request_id("fetch-me");
    mock.script_key("fetch-me", [FaultPlan::stream_error("authentication", 5)]);
    let got = collect(client.stream(req.clone()).await.unwrap()).await;
    assert!(got.error.is_some());
    let partial = stored_partial(&client, &req).await;
    let partial = partial.expect("kept");
    assert_eq!(partial.text, expected_chunks(&req)[..5].concat());
    assert_eq!(partial.provider, "anthropic");
    assert_eq!(
        partial.failure.map(|f| f.category),
        Some(steer_llm::Category::Authentication)
    );
    assert!(client.partial(&"unknown".into()).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_holds_the_body_back_instead_of_buffering_it() {
    // 100,000 chunks (~23 MB of SSE): more than the kernel's socket buffers hold.
    let mock = MockServer::builder()
        .reply_words(100_000)
        .record_requests(false)
        .start_background()
        .unwrap();
    let client = client(&mock);
    let mut stream = client.stream(request("openai/gpt-4o-mini")).await.unwrap();
    for _ in 0..10 {
        stream.next().await.unwrap().unwrap();
    }
    // The consumer stops reading; steer must stop reading the body too.
    let mut last = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = mock.events_sent();
        if now == last {
            break;
        }
        last = now;
    }
    let sent = mock.events_sent();
    assert!(
        sent < 80_000,
        "the mock could send {sent} of 100,000 events: steer buffered them"
    );
    // Reading resumes and everything arrives.
    let mut deltas = 9; // start + 9 text deltas were read above
    while let Some(item) = stream.next().await {
        if let StreamEvent::TextDelta { .. } = item.unwrap() {
            deltas += 1;
        }
    }
    let turns = [
        steer_llm::mock::text::Turn::new("system", "You are terse."),
        steer_llm::mock::text::Turn::new("user", "Tell me about rivers."),
    ];
    let chunks = steer_llm::mock::text::reply("gpt-4o-mini", &turns, None, &[], Some(100_000))
        .chunks
        .len();
    assert_eq!(deltas, chunks);
}

/// The stream is read by its consumer's task, so a consumer that stops reading
/// for longer than the idle timeout, while the provider has already sent
/// everything, must not be taken for a silent provider: no timeout, no retry,
/// every character once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_away_longer_than_the_idle_timeout_is_not_a_silent_provider() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .stream_timeouts(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(10)),
            Some(Duration::from_millis(30)),
        )
        .build()
        .unwrap();
    let req = request("openai/gpt-4o-mini");
    let mut stream = client.stream(req.clone()).await.unwrap();
    let mut text = String::new();
    while text.is_empty() {
        if let StreamEvent::TextDelta { text: t, .. } = stream.next().await.unwrap().unwrap() {
            text.push_str(&t);
        }
    }
    // Away: until the mock has sent the whole reply (bounded), then past the
    // idle timeout, so that the reader's timer ran out while nobody read.
    let chunks = expected_chunks(&req).len() as u64;
    for _ in 0..2_000 {
        if mock.events_sent() >= chunks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            StreamEvent::TextDelta { text: t, .. } => text.push_str(&t),
            e @ (StreamEvent::Resumed { .. } | StreamEvent::Restarted { .. }) => {
                panic!("the away consumer was taken for an idle provider: {e:?}")
            }
            _ => {}
        }
    }
    assert_eq!(text, expected_text(&req, None));
    assert_eq!(mock.request_count(), 1, "no retry");
}

mod from_actors {
    use super::*;
    use actix::prelude::*;
    use steer_llm::runtime::{GenerateStream, StreamItem, StreamTo};

    struct Collector {
        text: String,
        done: Option<tokio::sync::oneshot::Sender<String>>,
    }
    impl Actor for Collector {
        type Context = Context<Self>;
    }
    impl Handler<StreamItem> for Collector {
        type Result = ();
        fn handle(&mut self, msg: StreamItem, _: &mut Context<Self>) {
            match msg.item {
                Ok(StreamEvent::TextDelta { text, .. }) => self.text.push_str(&text),
                Ok(StreamEvent::Complete { .. }) => {
                    if let Some(tx) = self.done.take() {
                        let _ = tx.send(std::mem::take(&mut self.text));
                    }
                }
                _ => {}
            }
        }
    }

    #[actix_rt::test]
    async fn an_actor_receives_the_events_at_a_recipient_or_as_a_stream() {
        let mock = MockServer::builder().start_background().unwrap();
        let client = Client::builder()
            .providers(mock.providers().unwrap())
            .arbiters(0)
            .build()
            .unwrap();
        let router = client.router();
        let req = request("xai/grok-3-mini").request_id("to-actor");
        mock.script_key("to-actor", [FaultPlan::reset(3)]);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let collector = Collector {
            text: String::new(),
            done: Some(tx),
        }
        .start();
        router
            .send(StreamTo {
                request: req.clone(),
                options: GenerateOptions::default(),
                recipient: collector.recipient(),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rx.await.unwrap(), expected_text(&req, None));

        let stream = router
            .send(GenerateStream {
                request: request("openai/gpt-4o-mini"),
                options: GenerateOptions::default(),
            })
            .await
            .unwrap()
            .unwrap();
        let got = collect(stream).await;
        assert_eq!(
            got.text(),
            expected_text(&request("openai/gpt-4o-mini"), None)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_first_token_timeouts_retry_the_attempt() {
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(5))
        .start_background()
        .unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::default().backoff(Backoff {
            max_attempts: 3,
            base: Duration::from_millis(1),
            multiplier: 1.0,
            max_delay: Duration::from_millis(1),
            jitter: Jitter::None,
        }))
        .stream_timeouts(
            Some(Duration::from_millis(150)),
            Some(Duration::from_millis(150)),
            Some(Duration::from_secs(5)),
        )
        .build()
        .unwrap();
    // Headers too late, then no first token, then a normal reply.
    let req = request("openai/gpt-4o-mini").request_id("timeouts-1");
    mock.script_key(
        "timeouts-1",
        [
            FaultPlan::normal().with_latency(Duration::from_secs(3)),
            FaultPlan::stall(0),
        ],
    );
    let got = collect(client.stream(req.clone()).await.unwrap()).await;
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got.text(), expected_text(&req, None));
    assert_eq!(mock.requests().len(), 3);
    let m = client.metrics().await.unwrap();
    let m = &m.provider("openai").unwrap().metrics;
    assert_eq!(m.attempts.get("timeout"), Some(&2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_breaker_stops_after_content_keeps_its_partial_text() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client_with_breaker(&mock, 1);
    let req = request("openai/gpt-4o-mini").request_id("stopped-by-breaker");
    mock.script_key("stopped-by-breaker", [FaultPlan::reset(4)]);
    let got = collect(client.stream(req.clone()).await.unwrap()).await;
    let delivered = expected_chunks(&req)[..4].concat();
    assert_eq!(got.text(), delivered);
    match &got.error {
        Some(e @ Error::Rejected { rejection, .. }) => {
            assert!(
                matches!(rejection, steer_llm::runtime::Rejection::Open { .. }),
                "{rejection:?}"
            );
            assert_eq!(e.partial_text(), Some(delivered.as_str()));
        }
        other => panic!("expected the open breaker's rejection, got {other:?}"),
    }
    let partial = stored_partial(&client, &req).await;
    assert_eq!(partial.expect("kept").text, delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_broken_after_its_last_allowed_token_completes_without_asking_again() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        let id = format!("at-limit-{model}");
        let req = request(model).request_id(id.as_str()).max_tokens(5);
        let whole = expected_text(&req, None);
        // After every allowed token, just before the terminal events.
        mock.clear_requests();
        mock.script_key(&id, [FaultPlan::reset(10_000)]);
        let got = collect(client.stream(req.clone()).await.unwrap()).await;
        assert!(got.error.is_none(), "{model}: {:?}", got.error);
        assert_eq!(got.text(), whole, "{model}");
        assert_eq!(mock.requests().len(), 1, "{model}: no continuation is sent");
        assert!(matches!(
            got.events.last(),
            Some(StreamEvent::Complete {
                finish_reason: steer_llm::FinishReason::Length,
                ..
            })
        ));
    }
}

/// A resumed stream with a token limit: the fault-free reply (which the server
/// made within `limit`) or its start, so never more tokens than the limit,
/// and cut short only with `length`. (Counting the start alone could say more
/// where it ends inside a token: "pepp" is two tokens, "pepper" one.)
fn within_limit(got: &Collected, whole: &str, limit: usize, what: &str) {
    let text = got.text();
    assert!(
        whole.starts_with(&text),
        "{what}: {text:?} is not the start of {whole:?}, the reply within {limit} tokens"
    );
    let finish = got.events.iter().rev().find_map(|e| match e {
        StreamEvent::Complete { finish_reason, .. } => Some(finish_reason.clone()),
        _ => None,
    });
    if text.len() < whole.len() {
        assert_eq!(
            finish,
            Some(steer_llm::FinishReason::Length),
            "{what}: cut short"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_never_delivers_more_than_max_tokens() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in [
        "anthropic/claude-3-5-haiku-latest",
        "anthropic/claude-opus-4-6",
    ] {
        for after in 1..8 {
            let id = format!("limit-{model}-{after}");
            let req = request(model).request_id(id.as_str()).max_tokens(8);
            let whole = expected_text(&req, None);
            mock.clear_requests();
            mock.script_key(&id, [FaultPlan::reset(after)]);
            let got = collect(client.stream(req.clone()).await.unwrap()).await;
            assert!(got.error.is_none(), "{model} {after}: {:?}", got.error);
            within_limit(&got, &whole, 8, &format!("{model} after {after}"));
            // The continuation (if any token was left to ask for) may spend
            // tokens on what the seam drops, and no more.
            for r in mock.requests().iter().skip(1) {
                let asked = r.body["max_tokens"].as_u64().unwrap();
                assert!(asked <= 8, "{model} after {after}: asked for {asked}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_limit_given_as_an_extra_field_holds_across_a_resume_too() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        for after in [2, 5, 10_000] {
            let id = format!("extra-limit-{model}-{after}");
            let req = request(model)
                .request_id(id.as_str())
                .extra_body("max_tokens", serde_json::json!(6));
            let whole = client
                .generate(req.clone().request_id("oracle"))
                .await
                .unwrap();
            mock.clear_requests();
            mock.script_key(&id, [FaultPlan::reset(after)]);
            let got = collect(client.stream(req).await.unwrap()).await;
            assert!(got.error.is_none(), "{model} {after}: {:?}", got.error);
            within_limit(&got, &whole.text, 6, &format!("{model} after {after}"));
            for r in mock.requests().iter().skip(1) {
                let asked = r.body["max_tokens"].as_u64().unwrap();
                assert!(
                    asked <= 6,
                    "{model} after {after}: the continuation asked {asked}"
                );
            }
        }
    }
    // Parameters steer cannot honour are refused before anything is sent.
    for (key, value) in [
        ("n", serde_json::json!(2)),
        ("stream", serde_json::json!(false)),
    ] {
        let req = request("openai/gpt-4o-mini").extra_body(key, value);
        assert!(
            matches!(
                client.generate(req).await,
                Err(Error::InvalidRequest { .. })
            ),
            "{key}"
        );
    }
}

/// A server that reports usage with every chunk (vLLM, SGLang with
/// `continuous_usage_stats`): a continuation's budget is what is left by the
/// provider's own count, not an estimate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_budget_uses_the_providers_own_count_when_it_reports_one() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    let model = "xai/grok-3-mini"; // no public tokenizer: the estimate is the fallback
    let mut told_apart = 0;
    for topic in 0..24 {
        let after = 4 + topic % 5;
        let id = format!("counted-{topic}");
        let limit = 40u32;
        let user = format!("Tell me about rivers, number {topic}.");
        let req = ChatRequest::new(model)
            .unwrap()
            .system("You are terse.")
            .user(user.as_str())
            .request_id(id.as_str())
            .max_tokens(limit)
            .extra_body(
                "stream_options",
                serde_json::json!({"include_usage": true, "continuous_usage_stats": true}),
            );
        mock.clear_requests();
        mock.script_key(&id, [FaultPlan::reset(after)]);
        let got = collect(client.stream(req.clone()).await.unwrap()).await;
        assert!(got.error.is_none(), "{after}: {:?}", got.error);
        let log = mock.requests();
        assert_eq!(log.len(), 2, "{after}: one continuation");
        // What the first attempt reported with its last chunk before the break.
        let turns = [
            steer_llm::mock::text::Turn::new("system", "You are terse."),
            steer_llm::mock::text::Turn::new("user", &user),
        ];
        let whole = steer_llm::mock::text::reply("grok-3-mini", &turns, Some(limit), &[], None);
        let reported: u64 = whole.chunk_tokens[..after]
            .iter()
            .map(|n| u64::from(*n))
            .sum();
        let delivered = whole.chunks[..after].concat();
        let estimated = steer_llm::stream::checkpoint::estimate_tokens(&delivered);
        assert!(estimated >= reported, "the estimate is on the high side");
        told_apart += usize::from(estimated > reported);
        // Left by the provider's count, plus what a model may repeat of the
        // last 16 bytes (the "continue" message: xAI continues no prefill).
        let mut from = delivered.len().saturating_sub(16);
        while !delivered.is_char_boundary(from) {
            from += 1;
        }
        let allowance = steer_llm::stream::checkpoint::estimate_tokens(&delivered[from..]).max(1);
        let asked = log[1].body["max_tokens"].as_u64().unwrap();
        assert_eq!(
            asked,
            (u64::from(limit) - reported + allowance).min(u64::from(limit)),
            "{after}: reported {reported}, estimated {estimated}"
        );
        within_limit(&got, &expected_text(&req, None), limit as usize, &id);
    }
    assert!(
        told_apart > 0,
        "no case where the count and the estimate differ"
    );
}
