//! Hostile servers on 127.0.0.1 (raw TCP): each misbehaviour ends in a typed
//! error, in bounded time (every wait here is a hang detector, never a speed
//! assertion) and bounded memory (the client stops reading at its limit, so the
//! server cannot push more than the limit plus the sockets' buffers).
#![cfg(feature = "mock")]

#[path = "hostile/server.rs"]
mod server;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use server::{head, openai_ok, response, Hostile, Reply};
use steer_llm::runtime::SteerStream;
use steer_llm::{
    Anthropic, Category, ChatRequest, Client, Error, OpenAiCompatible, Providers, RetryPolicy,
};

const KEY: &str = "sk-hostile-0123456789abcdefghij";

fn openai(url: &str, max_event: usize) -> Providers {
    Providers::new().with(
        OpenAiCompatible::openai()
            .base_url(format!("{url}/v1"))
            .api_key(KEY)
            .max_event_bytes(max_event)
            .build()
            .unwrap(),
    )
}

fn anthropic(url: &str) -> Providers {
    Providers::new().with(
        Anthropic::builder()
            .base_url(url)
            .api_key(KEY)
            .build()
            .unwrap(),
    )
}

fn responses(url: &str) -> Providers {
    Providers::new().with(
        steer_llm::provider::OpenAiResponses::openai()
            .base_url(format!("{url}/v1"))
            .api_key(KEY)
            .build()
            .unwrap(),
    )
}

fn hostile_client(providers: Providers) -> Client {
    Client::builder()
        .providers(providers)
        .retry(RetryPolicy::never())
        .attempt_timeout(Some(Duration::from_millis(400)))
        .stream_timeouts(
            Some(Duration::from_secs(5)),
            Some(Duration::from_millis(400)),
            Some(Duration::from_millis(400)),
        )
        .build()
        .unwrap()
}

fn req(model: &str) -> ChatRequest {
    ChatRequest::new(model).unwrap().user("hi")
}

/// The stream's final error (within a hang detector's bound).
async fn stream_error(mut stream: SteerStream) -> Error {
    let run = async {
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                return e;
            }
        }
        panic!("the stream ended without an error");
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("a hostile stream must not hang")
}

fn category(e: &Error) -> Category {
    e.failure()
        .map(|f| f.category)
        .unwrap_or_else(|| panic!("a classified failure, got {e:?}"))
}

fn sse_head() -> Vec<u8> {
    head("200 OK", "text/event-stream", &[])
}

/// A server that answers every request with an event stream that starts with
/// `start` and then repeats `repeat` (every `pace`) up to 256 MiB.
async fn endless(start: &[u8], repeat: Vec<u8>, pace: Option<Duration>) -> Hostile {
    let head = [sse_head(), start.to_vec()].concat();
    Hostile::start(Arc::new(move |_, _| Reply::Endless {
        head: head.clone(),
        repeat: repeat.clone(),
        pace,
        max: 256 << 20,
    }))
    .await
}

/// Asserts that the client stopped reading long before the server's 256 MiB.
#[track_caller]
fn read_bounded(server: &Hostile) {
    let written = server.written();
    assert!(written < 64 << 20, "{written} bytes written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_line_fails_as_malformed_at_the_event_limit() {
    let server = endless(b"data: ", vec![b'x'; 64 * 1024], None).await;
    let client = hostile_client(openai(&server.url(), 256 * 1024));
    let e = stream_error(client.stream(req("openai/gpt-4o-mini")).await.unwrap()).await;
    assert_eq!(category(&e), Category::MalformedResponse, "{e}");
    assert!(e.to_string().contains("larger than 262144 bytes"), "{e}");
    // Unbounded buffering would have read all 256 MiB.
    read_bounded(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_data_lines_without_a_blank_line_fail_at_the_event_limit() {
    let server = endless(b"", b"data: {\"choices\":[]}\n".repeat(1000), None).await;
    let client = hostile_client(openai(&server.url(), 256 * 1024));
    let e = stream_error(client.stream(req("openai/gpt-4o-mini")).await.unwrap()).await;
    assert_eq!(category(&e), Category::MalformedResponse, "{e}");
    read_bounded(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_keep_alives_without_text_end_at_the_first_token_timeout() {
    let pace = Some(Duration::from_millis(5));
    let server = endless(
        b"",
        b": keep-alive\n\nevent: ping\ndata: {}\n\n".to_vec(),
        pace,
    )
    .await;
    let client = hostile_client(openai(&server.url(), 1 << 20));
    let e = stream_error(client.stream(req("openai/gpt-4o-mini")).await.unwrap()).await;
    // An OpenAI chunk `{}` is not a chunk: malformed at once; pings alone would
    // have hit the first-token timeout.
    assert!(
        matches!(
            category(&e),
            Category::MalformedResponse | Category::Timeout
        ),
        "{e}"
    );

    let pings = endless(b"", b": keep-alive\n\n".to_vec(), pace).await;
    let client = hostile_client(openai(&pings.url(), 1 << 20));
    let e = stream_error(client.stream(req("openai/gpt-4o-mini")).await.unwrap()).await;
    assert_eq!(category(&e), Category::Timeout, "{e}");
}

/// A Responses stream that says forever that it is in progress, or numbers its
/// events past any integer: neither is content, and neither holds the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responses_stream_of_endless_progress_or_absurd_numbers_does_not_hold_the_request() {
    let pace = Some(Duration::from_millis(5));
    let progress = endless(
        b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[]}}\n\n",
        b"event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"sequence_number\":1}\n\n".to_vec(),
        pace,
    )
    .await;
    let client = hostile_client(responses(&progress.url()));
    let e = stream_error(client.stream(req("openai/gpt-5-mini")).await.unwrap()).await;
    assert_eq!(category(&e), Category::Timeout, "{e}");
    read_bounded(&progress);

    let absurd = endless(
        b"",
        b"data: {\"type\":\"response.output_text.delta\",\"sequence_number\":123456789012345678901234567890,\"delta\":\"x\"}\n\n".to_vec(),
        pace,
    )
    .await;
    let client = hostile_client(responses(&absurd.url()));
    let e = stream_error(client.stream(req("openai/gpt-5-mini")).await.unwrap()).await;
    assert_eq!(category(&e), Category::MalformedResponse, "{e}");
    read_bounded(&absurd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_ends_at_the_attempt_timeout() {
    let body = openai_ok();
    let split = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let server = Hostile::start(Arc::new(move |_, _| Reply::Trickle {
        head: body[..split].to_vec(),
        body: body[split..].to_vec(),
        every: Duration::from_millis(50),
    }))
    .await;
    let client = hostile_client(openai(&server.url(), 1 << 20));
    let e = tokio::time::timeout(
        Duration::from_secs(30),
        client.generate(req("openai/gpt-4o-mini")),
    )
    .await
    .expect("no hang")
    .unwrap_err();
    assert_eq!(category(&e), Category::Timeout, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_that_is_not_a_reply_is_a_failure_in_every_format() {
    let bodies: Vec<(&str, &str, &str, Category)> = vec![
        (
            "anthropic",
            "application/json",
            "{}",
            Category::MalformedResponse,
        ),
        (
            "anthropic",
            "application/json",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            Category::Overloaded,
        ),
        (
            "openai",
            "application/json",
            r#"{"status":"ok","proxy":"edge-7"}"#,
            Category::MalformedResponse,
        ),
        (
            "openai",
            "application/json",
            r#"{"error":{"message":"The server had an error","type":"server_error"}}"#,
            Category::ServerError,
        ),
        (
            "openai",
            "text/html",
            "<html>hello</html>",
            Category::MalformedResponse,
        ),
    ];
    for (format, content_type, body, expected) in bodies {
        let reply = response("200 OK", content_type, &[], body);
        let server = Hostile::start(Arc::new(move |_, _| Reply::Bytes(reply.clone()))).await;
        let (providers, model) = match format {
            "anthropic" => (
                anthropic(&server.url()),
                "anthropic/claude-3-5-haiku-latest",
            ),
            _ => (openai(&server.url(), 1 << 20), "openai/gpt-4o-mini"),
        };
        let client = hostile_client(providers);
        let e = client.generate(req(model)).await.unwrap_err();
        assert_eq!(category(&e), expected, "{format} {body}: {e}");
        // The same answer to a streaming request.
        let e = stream_error(client.stream(req(model)).await.unwrap()).await;
        assert_eq!(category(&e), expected, "{format} {body} streamed: {e}");
    }
    // A whole, readable 2xx of the wrong shape is deterministic: with retries
    // allowed it is still sent once (a group would move on), and a whole reply
    // in the format, answered to a streaming request, is that reply.
    for (content_type, body) in [
        ("application/json", r#"{"status":"ok","proxy":"edge-7"}"#),
        ("text/html", "<html>hello</html>"),
    ] {
        let reply = response("200 OK", content_type, &[], body);
        let server = Hostile::start(Arc::new(move |_, _| Reply::Bytes(reply.clone()))).await;
        let client = Client::builder()
            .providers(openai(&server.url(), 1 << 20))
            .retry(RetryPolicy::default())
            .build()
            .unwrap();
        let e = client
            .generate(req("openai/gpt-4o-mini"))
            .await
            .unwrap_err();
        assert_eq!(category(&e), Category::MalformedResponse, "{e}");
        assert!(!e.failure().unwrap().retryable, "{e}");
        let e = stream_error(client.stream(req("openai/gpt-4o-mini")).await.unwrap()).await;
        assert_eq!(category(&e), Category::MalformedResponse, "{e}");
        assert_eq!(server.requests.lock().len(), 2, "{body}: sent once each");
    }
    // A stream of chunks that are not chunks.
    let reply = [
        sse_head(),
        b"data: {\"foo\":1}\n\ndata: [DONE]\n\n".to_vec(),
    ]
    .concat();
    let server = Hostile::start(Arc::new(move |_, _| Reply::Bytes(reply.clone()))).await;
    let client = hostile_client(openai(&server.url(), 1 << 20));
    let e = stream_error(client.stream(req("openai/gpt-4o-mini")).await.unwrap()).await;
    assert_eq!(category(&e), Category::MalformedResponse, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_so_no_key_travels() {
    let elsewhere = Hostile::start(Arc::new(|_, _| Reply::Bytes(openai_ok()))).await;
    let target = format!("{}/v1/messages", elsewhere.url());
    let server = Hostile::start(Arc::new(move |_, _| {
        Reply::Bytes(response(
            "307 Temporary Redirect",
            "text/plain",
            &[format!("location: {target}")],
            "moved",
        ))
    }))
    .await;
    for providers in [anthropic(&server.url()), openai(&server.url(), 1 << 20)] {
        let client = hostile_client(providers);
        let model = if client.providers() == ["anthropic"] {
            "anthropic/claude-3-5-haiku-latest"
        } else {
            "openai/gpt-4o-mini"
        };
        let e = client.generate(req(model)).await.unwrap_err();
        let failure = e.failure().expect("classified");
        assert_eq!(failure.status, Some(307), "{e}");
        assert!(!failure.retryable);
    }
    assert!(
        elsewhere.requests.lock().is_empty(),
        "the redirect's target was never called"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_response_head_is_malformed_not_a_reset() {
    let big = format!("x-padding: {}", "a".repeat(512 * 1024));
    let reply = head("200 OK", "application/json", &[big]);
    let server = Hostile::start(Arc::new(move |_, _| Reply::Bytes(reply.clone()))).await;
    let client = hostile_client(openai(&server.url(), 1 << 20));
    let e = client
        .generate(req("openai/gpt-4o-mini"))
        .await
        .unwrap_err();
    assert_eq!(category(&e), Category::MalformedResponse, "{e}");
    let e = stream_error(client.stream(req("openai/gpt-4o-mini")).await.unwrap()).await;
    assert_eq!(category(&e), Category::MalformedResponse, "{e}");
}

/// A reply body past the 32 MiB limit, sent without a length (read until the
/// server closes) or declaring one: a malformed reply, read no further than the
/// limit (or not at all), never held whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_or_oversized_2xx_body_fails_at_the_body_limit() {
    let endless = Hostile::start(Arc::new(move |_, _| Reply::Endless {
        head: [
            head("200 OK", "application/json", &[]),
            b"{\"id\":\"".to_vec(),
        ]
        .concat(),
        repeat: vec![b'x'; 64 * 1024],
        pace: None,
        max: 256 << 20,
    }))
    .await;
    let declared = format!("content-length: {}", 1u64 << 40);
    let reply = [
        head("200 OK", "application/json", &[declared]),
        b"{".to_vec(),
    ]
    .concat();
    let oversized = Hostile::start(Arc::new(move |_, _| Reply::Bytes(reply.clone()))).await;
    for server in [&endless, &oversized] {
        // Not `hostile_client`: 32 MiB over a loaded loopback may take longer
        // than its 400 ms attempt timeout; this is a hang detector only.
        let client = Client::builder()
            .providers(openai(&server.url(), 1 << 20))
            .retry(RetryPolicy::never())
            .attempt_timeout(Some(Duration::from_secs(30)))
            .build()
            .unwrap();
        let e = client
            .generate(req("openai/gpt-4o-mini"))
            .await
            .unwrap_err();
        assert_eq!(category(&e), Category::MalformedResponse, "{e}");
        assert!(e.to_string().contains("larger than 33554432 bytes"), "{e}");
        read_bounded(server);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_echoed_across_the_body_limit_leaves_no_piece_behind() {
    // The key starts a few bytes before the 64 KiB cut, so a cut-then-scrub
    // would keep its start.
    for before_cut in [1usize, 5, 8, 12, 20, KEY.len()] {
        let limit = steer_llm::provider::http::ERROR_BODY_LIMIT;
        let padding = "a".repeat(limit - before_cut);
        let body = format!("{padding}{KEY} and more text after it");
        let reply = response("400 Bad Request", "text/plain", &[], &body);
        let server = Hostile::start(Arc::new(move |_, _| Reply::Bytes(reply.clone()))).await;
        let client = hostile_client(openai(&server.url(), 1 << 20));
        let e = client
            .generate(req("openai/gpt-4o-mini"))
            .await
            .unwrap_err();
        let shown = format!("{e:?} {e}");
        for n in 8..=KEY.len() {
            assert!(
                !shown.contains(&KEY[..n]),
                "cut {before_cut}: {n} characters of the key leaked"
            );
        }
    }
}

#[test]
fn a_key_is_never_sent_in_clear_text_to_another_host() {
    let build = |url: &str, allow: bool| {
        OpenAiCompatible::openai()
            .base_url(url)
            .api_key(KEY)
            .allow_insecure_http(allow)
            .build()
    };
    for remote in [
        "http://10.1.2.3/v1",
        "http://api.example.com/v1",
        "http://127.0.0.1.example.com/v1",
    ] {
        let e = build(remote, false).unwrap_err();
        assert!(e.to_string().contains("clear text"), "{remote}: {e}");
        assert!(!e.to_string().contains(KEY));
        assert!(build(remote, true).is_ok(), "{remote}: opted in");
    }
    for local in [
        "http://127.0.0.1:8080/v1",
        "http://127.9.9.9/v1",
        "http://localhost:11434/v1",
        "http://[::1]:8080/v1",
        "https://api.example.com/v1",
    ] {
        assert!(build(local, false).is_ok(), "{local}");
    }
    // Without a key there is nothing to leak.
    assert!(OpenAiCompatible::custom("lan", "http://10.1.2.3/v1")
        .build()
        .is_ok());
}

mod extreme_headers {
    use super::*;
    use parking_lot::Mutex;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    /// Values no server should send, and some it might.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "1e19",
                "10000000000000000000",
                "18446744073709551616",
                "1e22",
                "1e300",
                "1e400",
                "inf",
                "-inf",
                "Infinity",
                "NaN",
                "nan",
                "-1",
                "-0",
                "0",
                "0.0000000001",
                "1e-300",
                "86400",
                "604800",
                "3.5",
                "0x10",
                "",
                " ",
                "soon",
                "99999999999999999999999h",
                "1h1h1h1h",
                "2562047788015215h",
                "Fri, 31 Dec 9999 23:59:59 GMT",
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "Sun, 06 Nov 1994 08:49:37 GMT",
                "9999-12-31T23:59:59Z",
                "+275760-09-13T00:00:00Z",
                "2025-13-45T99:99:99Z",
                "true",
                "FALSE",
            ])
            .prop_map(str::to_string),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| f.to_string()),
            (1u64..u64::MAX).prop_map(|n| format!("{n}ms")),
        ]
    }

    fn name() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "retry-after",
            "retry-after-ms",
            // The upstream's waits as a gateway (LiteLLM) passes them on.
            "llm_provider-retry-after",
            "llm_provider-retry-after-ms",
            "x-should-retry",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-requests",
            "x-ratelimit-reset-tokens",
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset",
            "anthropic-ratelimit-tokens-remaining",
            "anthropic-ratelimit-tokens-reset",
            "anthropic-ratelimit-output-tokens-reset",
        ])
    }

    #[test]
    fn no_header_value_panics_pauses_past_the_cap_or_stops_the_breaker() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let headers: Arc<Mutex<Vec<String>>> = Arc::default();
        let current = headers.clone();
        let server = runtime.block_on(Hostile::start(Arc::new(move |n, _| {
            if n % 2 == 1 {
                return Reply::Bytes(openai_ok());
            }
            let body = r#"{"error":{"message":"Rate limit reached. Please try again in 1e19s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
            Reply::Bytes(response(
                "429 Too Many Requests",
                "application/json",
                &current.lock(),
                body,
            ))
        })));
        let client = runtime.block_on(async { hostile_client(openai(&server.url(), 1 << 20)) });
        let cap = steer_llm::BreakerConfig::default().max_pause;
        let mut runner = TestRunner::new(Config {
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = prop::collection::vec((name(), value()), 1..5);
        let result = runner.run(&strategy, |pairs| {
            *headers.lock() = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            runtime.block_on(async {
                let e = client
                    .generate(req("openai/gpt-4o-mini"))
                    .await
                    .expect_err("a 429");
                let failure = e
                    .failure()
                    .ok_or_else(|| TestCaseError::fail(format!("{e:?}")))?;
                prop_assert_eq!(failure.category, Category::RateLimited);
                // The breaker answers, and never pauses for longer than the cap.
                let status = client
                    .breakers()
                    .status("openai")
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(status.paused_for.is_none_or(|p| p <= cap), "{:?}", status);
                prop_assert_eq!(status.state, steer_llm::BreakerState::Closed);
                // Its counters survived: it was not restarted after a failure.
                prop_assert!(status.stats.admitted >= 1, "{:?}", status);
                // And it still protects and admits: after a reset the next call
                // goes through.
                client
                    .breakers()
                    .reset("openai")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let ok = client.generate(req("openai/gpt-4o-mini")).await;
                prop_assert!(ok.is_ok(), "{:?}", ok);
                Ok(())
            })
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}

/// A client that retries at once, a few times (for resumes and their fallbacks).
fn retrying_client(providers: Providers) -> Client {
    Client::builder()
        .providers(providers)
        .retry(RetryPolicy::default().backoff(steer_llm::Backoff {
            max_attempts: 4,
            base: Duration::from_millis(1),
            multiplier: 2.0,
            max_delay: Duration::from_millis(2),
            jitter: steer_llm::Jitter::None,
        }))
        .stream_timeouts(
            Some(Duration::from_secs(5)),
            Some(Duration::from_millis(400)),
            Some(Duration::from_millis(400)),
        )
        .build()
        .unwrap()
}

/// One Responses stream event.
fn rs_event(kind: &str, body: serde_json::Value) -> Vec<u8> {
    let mut body = body;
    body["type"] = serde_json::Value::from(kind);
    format!("event: {kind}\ndata: {body}\n\n").into_bytes()
}

fn rs_created(id: &str, background: bool) -> Vec<u8> {
    rs_event(
        "response.created",
        serde_json::json!({"sequence_number": 0, "response": {"id": id, "object": "response",
            "status": "queued", "background": background, "output": []}}),
    )
}

fn rs_delta(n: u64, text: &str) -> Vec<u8> {
    rs_event(
        "response.output_text.delta",
        serde_json::json!({"sequence_number": n, "output_index": 0, "content_index": 0,
            "delta": text}),
    )
}

fn rs_completed(n: u64) -> Vec<u8> {
    rs_event(
        "response.completed",
        serde_json::json!({"sequence_number": n, "response": {"id": "resp_1", "object": "response",
            "status": "completed", "output": [],
            "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}}}),
    )
}

/// The text of a stream that must end well.
async fn stream_text(mut stream: SteerStream) -> String {
    let run = async {
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            if let steer_llm::StreamEvent::TextDelta { text: t, .. } = item.expect("no error") {
                text.push_str(&t);
            }
        }
        text
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("a hostile stream must not hang")
}

/// Background streams from a hostile server: an id that is a path goes into
/// no URL (the stream continues client-side); a resume that replays from the
/// start, ignoring `starting_after`, repeats nothing; one that says forever
/// that it is in progress is given up for a continuation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_background_resume_never_reaches_another_url_or_repeats_a_character() {
    let broken = |id: &str| {
        [
            sse_head(),
            rs_created(id, true),
            rs_delta(1, "Hel"),
            rs_delta(2, "lo "),
        ]
        .concat()
    };
    // An id with a path in it: no GET; a continuation POST ends the reply.
    let traversal = broken("../../admin?x=1");
    let server = Hostile::start(Arc::new(move |n, _| match n {
        0 => Reply::Bytes(traversal.clone()),
        _ => Reply::Bytes(
            [
                sse_head(),
                rs_created("resp_2", false),
                rs_delta(1, "world."),
                rs_completed(2),
            ]
            .concat(),
        ),
    }))
    .await;
    let client = retrying_client(responses(&server.url()));
    let text = stream_text(
        client
            .stream(req("openai/gpt-5-mini").in_background(true))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(text, "Hello world.");
    let heads = server.requests.lock().clone();
    assert!(
        heads.iter().all(|h| h.starts_with("POST /v1/responses ")),
        "{heads:?}"
    );
    assert!(!heads.iter().any(|h| h.contains("admin")));
    // A resume that replays from the first event.
    let first = broken("resp_ok");
    let replay = [
        sse_head(),
        rs_created("resp_ok", true),
        rs_delta(1, "Hel"),
        rs_delta(2, "lo "),
        rs_delta(3, "world."),
        rs_completed(4),
    ]
    .concat();
    let server = Hostile::start(Arc::new(move |n, _| match n {
        0 => Reply::Bytes(first.clone()),
        _ => Reply::Bytes(replay.clone()),
    }))
    .await;
    let client = retrying_client(responses(&server.url()));
    let text = stream_text(
        client
            .stream(req("openai/gpt-5-mini").in_background(true))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(text, "Hello world.");
    let heads = server.requests.lock().clone();
    assert!(
        heads[1].starts_with("GET /v1/responses/resp_ok?stream=true&starting_after=2 "),
        "{heads:?}"
    );
    // A resume that never gets anywhere: a continuation takes over.
    let first = broken("resp_stuck");
    let stuck = [sse_head(), rs_created("resp_stuck", true)].concat();
    let server = Hostile::start(Arc::new(move |n, _| match n {
        0 => Reply::Bytes(first.clone()),
        1 => Reply::Endless {
            head: stuck.clone(),
            repeat: rs_event(
                "response.in_progress",
                serde_json::json!({"sequence_number": 1}),
            ),
            pace: Some(Duration::from_millis(5)),
            max: 256 << 20,
        },
        _ => Reply::Bytes(
            [
                sse_head(),
                rs_created("resp_3", false),
                rs_delta(1, "world."),
                rs_completed(2),
            ]
            .concat(),
        ),
    }))
    .await;
    let client = retrying_client(responses(&server.url()));
    let text = stream_text(
        client
            .stream(req("openai/gpt-5-mini").in_background(true))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(text, "Hello world.");
    read_bounded(&server);
    let heads = server.requests.lock().clone();
    assert!(heads[1].starts_with("GET "), "{heads:?}");
    // The stuck response is cancelled; the continuation asks afresh.
    let cancel = "POST /v1/responses/resp_stuck/cancel ";
    assert!(heads.iter().any(|h| h.starts_with(cancel)), "{heads:?}");
    let posts = heads
        .iter()
        .filter(|h| h.starts_with("POST /v1/responses "))
        .count();
    assert_eq!(posts, 2, "{heads:?}");
}
