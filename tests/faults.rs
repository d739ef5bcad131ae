//! Every fault the mock injects, through the real HTTP path, with the exact failure
//! information the client returns.
#![cfg(feature = "mock")]

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{delta_text, drain, expected_text, request, MODELS};
use futures::StreamExt;
use steer_llm::mock::errors::{self, ErrorResponse};
use steer_llm::mock::{FaultPlan, Flavour, MockServer, FAULT_HEADER};
use steer_llm::{Error, FailureKind, ProviderError, Providers, TransportKind};

fn flavour_of(model: &str) -> Flavour {
    match model.split('/').next() {
        Some("anthropic") => Flavour::Anthropic,
        Some("xai") => Flavour::Xai,
        Some("openai-responses") => Flavour::Responses,
        _ => Flavour::OpenAi,
    }
}

async fn generate_err(providers: &Providers, model: &str) -> ProviderError {
    match providers.generate(&request(model)).await {
        Err(Error::Provider(e)) => *e,
        other => panic!("{model}: expected a provider error, got {other:?}"),
    }
}

async fn stream_err(providers: &Providers, model: &str) -> (String, ProviderError) {
    let stream = match providers.stream(&request(model)).await {
        Ok(s) => s,
        Err(e) => panic!("{model}: the stream should open, got {e}"),
    };
    let (events, err) = drain(stream).await;
    (
        delta_text(&events),
        err.unwrap_or_else(|| panic!("{model}: the stream should fail")),
    )
}

/// The body the mock sends for `name`, with Anthropic's request id filled in.
fn expected_body(flavour: Flavour, name: &str, err: &ProviderError) -> ErrorResponse {
    let request_id = err.provider_request_id.clone().unwrap_or_default();
    errors::status_error(flavour, name, &request_id).unwrap()
}

#[tokio::test]
async fn every_status_error_of_every_provider_arrives_whole() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    let mut checked = 0;
    for model in MODELS {
        let flavour = flavour_of(model);
        for name in errors::names(flavour) {
            mock.push_faults([FaultPlan::error(name)]);
            let err = generate_err(&providers, model).await;
            let expected = expected_body(flavour, name, &err);
            assert_eq!(err.status(), Some(expected.status), "{model} {name}");
            assert_eq!(err.body_text().unwrap(), expected.body, "{model} {name}");
            assert_eq!(
                err.header("content-type"),
                Some(expected.content_type),
                "{model} {name}"
            );
            assert_eq!(err.provider, model.split('/').next().unwrap());
            assert!(!err.content_started);
            assert!(err.provider_request_id.is_some(), "{model} {name}");
            // Display is one line naming status and request.
            let line = err.to_string();
            assert!(!line.contains('\n') && line.contains(&format!("HTTP {}", expected.status)));
            checked += 1;
        }
    }
    assert!(checked >= 35, "only {checked} errors checked");
}

#[tokio::test]
async fn rate_limit_waits_arrive_in_every_form() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        let cases = [
            (
                FaultPlan::error("rate_limit").retry_after("2"),
                Some("2"),
                None,
            ),
            (
                FaultPlan::error("rate_limit").retry_after_ms("150.5"),
                None,
                Some("150.5"),
            ),
            (
                FaultPlan::error("rate_limit").retry_after("86400"),
                Some("86400"),
                None,
            ),
            (FaultPlan::error("rate_limit"), None, None),
        ];
        for (plan, retry_after, retry_after_ms) in cases {
            mock.push_faults([plan.clone()]);
            let err = generate_err(&providers, model).await;
            assert_eq!(err.status(), Some(429), "{model} {plan}");
            assert_eq!(err.header("retry-after"), retry_after, "{model} {plan}");
            assert_eq!(
                err.header("retry-after-ms"),
                retry_after_ms,
                "{model} {plan}"
            );
        }
        mock.push_faults([FaultPlan::error("rate_limit").retry_after_date(30)]);
        let err = generate_err(&providers, model).await;
        let date = httpdate::parse_http_date(err.header("retry-after").unwrap()).unwrap();
        let wait = date.duration_since(SystemTime::now()).unwrap_or_default();
        assert!(
            wait > Duration::from_secs(20) && wait <= Duration::from_secs(31),
            "{wait:?}"
        );
    }
}

#[tokio::test]
async fn rate_limit_headers_and_should_retry_are_kept() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    mock.push_faults([FaultPlan::error("server_error").should_retry(false)]);
    let err = generate_err(&providers, "openai/gpt-4o-mini").await;
    assert_eq!(err.status(), Some(500));
    assert_eq!(err.header("x-should-retry"), Some("false"));

    mock.push_faults([FaultPlan::error("rate_limit")]);
    let err = generate_err(&providers, "openai/gpt-4o-mini").await;
    assert_eq!(err.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(err.header("x-ratelimit-reset-tokens"), Some("1m30s"));

    mock.push_faults([FaultPlan::error("rate_limit")]);
    let err = generate_err(&providers, "anthropic/claude-3-5-haiku-latest").await;
    assert_eq!(
        err.header("anthropic-ratelimit-requests-remaining"),
        Some("0")
    );
    let reset = err.header("anthropic-ratelimit-tokens-reset").unwrap();
    assert!(
        time::OffsetDateTime::parse(reset, &time::format_description::well_known::Rfc3339).is_ok(),
        "{reset}"
    );
}

#[tokio::test]
async fn a_413_from_a_proxy_keeps_its_html_body() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        mock.push_faults([FaultPlan::error("payload_too_large")]);
        let err = generate_err(&providers, model).await;
        assert_eq!(err.status(), Some(413));
        assert!(err
            .body_text()
            .unwrap()
            .contains("<title>413 Request Entity Too Large"));
        assert!(err.to_string().contains("413 Request Entity Too Large"));
    }
}

#[tokio::test]
async fn in_band_stream_errors_arrive_after_the_text_before_them() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        for name in ["server_error", "overloaded", "rate_limit"] {
            mock.push_faults([FaultPlan::stream_error(name, 2)]);
            let (text, err) = stream_err(&providers, model).await;
            let first_two: String = common::expected_chunks(&request(model))[..2].concat();
            assert_eq!(text, first_two, "{model} {name}");
            let FailureKind::InBand { body } = &err.kind else {
                panic!("{model} {name}: {err:?}")
            };
            let (_, expected) = errors::in_band_error(flavour_of(model), name).unwrap();
            assert_eq!(body, &expected);
            assert!(err.content_started);
            assert!(err.provider_request_id.is_some());
        }
    }
    // Anthropic's in-band overload is the documented body.
    mock.push_faults([FaultPlan::stream_error("overloaded", 0)]);
    let (_, err) = stream_err(&providers, "anthropic/claude-3-5-haiku-latest").await;
    let body: serde_json::Value = serde_json::from_str(&err.body_text().unwrap()).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");
    assert!(!err.content_started);
}

#[tokio::test]
async fn a_stream_error_on_a_non_streaming_request_is_its_status_form() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    mock.push_faults([FaultPlan::stream_error("overloaded", 3)]);
    let err = generate_err(&providers, "anthropic/claude-3-5-haiku-latest").await;
    assert_eq!(err.status(), Some(529));
}

#[tokio::test]
async fn broken_streams_fail_with_their_kind_and_keep_the_text_before() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        let chunks = common::expected_chunks(&request(model));
        let prefix = |n: usize| chunks[..n].concat();
        for after in [0, 1, 4] {
            mock.push_faults([FaultPlan::truncate(after)]);
            let (text, err) = stream_err(&providers, model).await;
            assert_eq!(text, prefix(after), "{model} truncate {after}");
            assert!(
                matches!(err.kind, FailureKind::Incomplete { .. }),
                "{err:?}"
            );
            assert_eq!(err.content_started, after > 0);

            mock.push_faults([FaultPlan::reset(after)]);
            let (text, err) = stream_err(&providers, model).await;
            assert_eq!(text, prefix(after), "{model} reset {after}");
            assert_eq!(err.transport_kind(), Some(TransportKind::Reset), "{err:?}");

            mock.push_faults([FaultPlan::malformed_json(after)]);
            let (text, err) = stream_err(&providers, model).await;
            assert_eq!(text, prefix(after), "{model} malformed_json {after}");
            assert!(matches!(err.kind, FailureKind::Malformed { .. }), "{err:?}");

            mock.push_faults([FaultPlan::malformed_sse(after)]);
            let (text, err) = stream_err(&providers, model).await;
            assert_eq!(text, prefix(after), "{model} malformed_sse {after}");
            assert!(
                matches!(&err.kind, FailureKind::Malformed { message } if message.contains("UTF-8")),
                "{err:?}"
            );
        }
        // A fault point past the last chunk cuts just before the terminal events.
        mock.push_faults([FaultPlan::truncate(10_000)]);
        let (text, err) = stream_err(&providers, model).await;
        assert_eq!(text, chunks.concat());
        assert!(matches!(err.kind, FailureKind::Incomplete { .. }));
    }
}

#[tokio::test]
async fn a_stall_sends_the_first_chunks_then_nothing() {
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        mock.push_faults([FaultPlan::stall(2)]);
        let mut stream = providers.stream(&request(model)).await.unwrap();
        let mut deltas = 0;
        loop {
            match tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
                Ok(Some(Ok(steer_llm::ProviderEvent::TextDelta { .. }))) => deltas += 1,
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("{model}: a stalled stream must not end: {other:?}"),
                Err(_elapsed) => break,
            }
        }
        assert_eq!(deltas, 2, "{model}");
    }
}

#[tokio::test]
async fn non_streaming_bodies_that_break_are_typed_errors() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        for plan in [
            FaultPlan::truncate(0),
            FaultPlan::malformed_json(0),
            FaultPlan::malformed_sse(0),
        ] {
            mock.push_faults([plan.clone()]);
            let err = generate_err(&providers, model).await;
            assert!(
                matches!(err.kind, FailureKind::Malformed { .. }),
                "{model} {plan}: {err:?}"
            );
            assert!(err.provider_request_id.is_some());
        }
        mock.push_faults([FaultPlan::reset(0)]);
        let err = generate_err(&providers, model).await;
        assert_eq!(err.transport_kind(), Some(TransportKind::Reset), "{err:?}");
    }
}

#[tokio::test]
async fn latency_and_chunk_delay_slow_the_response_down() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    mock.push_faults([FaultPlan::normal().with_latency(Duration::from_millis(60))]);
    let started = Instant::now();
    providers
        .generate(&request("openai/gpt-4o-mini"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(60));

    let req = request("anthropic/claude-3-5-haiku-latest").max_tokens(5);
    mock.push_faults([FaultPlan::normal().with_chunk_delay(Duration::from_millis(10))]);
    let started = Instant::now();
    let (events, err) = drain(providers.stream(&req).await.unwrap()).await;
    assert!(err.is_none());
    // Anthropic sends 3 events before the text and 3 after: 11 delayed events.
    assert!(started.elapsed() >= Duration::from_millis(110));
    assert_eq!(delta_text(&events), expected_text(&req, None));
}

#[tokio::test]
async fn the_fault_header_works_black_box_and_bad_specs_get_a_400() {
    let mock = MockServer::start().await.unwrap();
    let http = reqwest::Client::new();
    let send = |spec: &'static str| {
        http.post(format!("{}/chat/completions", mock.openai_base_url()))
            .bearer_auth("k")
            .header(FAULT_HEADER, spec)
            .json(&serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let resp = send("overloaded?retry_after=1").await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let resp = send("explode").await.unwrap();
    assert_eq!(resp.status(), 400);
    let body = resp.text().await.unwrap();
    assert!(body.contains("steer mock: invalid fault spec"), "{body}");
    // A flavour without that error says so.
    let resp = send("billing").await.unwrap();
    assert_eq!(resp.status(), 400);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("has no error named") && body.contains("billing"),
        "{body}"
    );
}

#[tokio::test]
async fn scripts_apply_in_order_and_by_request_key() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    mock.script_key(
        "keyed",
        [
            FaultPlan::error("overloaded"),
            FaultPlan::error("server_error"),
        ],
    );
    mock.push_faults([FaultPlan::error("rate_limit")]);
    let model = "openai/gpt-4o-mini";
    let keyed = || request(model).request_id("keyed");
    let status = |r: Result<steer_llm::ChatResponse, Error>| match r {
        Ok(_) => 200,
        Err(Error::Provider(e)) => e.status().unwrap_or(0),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status(providers.generate(&keyed()).await), 503);
    assert_eq!(status(providers.generate(&request(model)).await), 429);
    assert_eq!(status(providers.generate(&request(model)).await), 200);
    assert_eq!(status(providers.generate(&keyed()).await), 500);
    assert_eq!(status(providers.generate(&keyed()).await), 200);
    let log = mock.requests();
    assert_eq!(log.len(), 5);
    assert_eq!(
        log.iter()
            .map(|r| r.fault.as_ref().map(|f| f.to_string()))
            .collect::<Vec<_>>(),
        vec![
            Some("overloaded".to_string()),
            Some("rate_limit".to_string()),
            None,
            Some("server_error".to_string()),
            None
        ]
    );
}

#[tokio::test]
async fn a_seeded_mix_draws_the_same_outcomes_every_run_in_its_proportions() {
    let plan: FaultPlan = "mix?seed=42&server_error=20&reset=10&rate_limit=10"
        .parse()
        .unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mock = MockServer::builder()
            .default_fault(plan.clone())
            .start()
            .await
            .unwrap();
        let providers = mock.providers().unwrap();
        let mut outcomes = Vec::new();
        for _ in 0..200 {
            outcomes.push(
                match providers.generate(&request("openai/gpt-4o-mini")).await {
                    Ok(_) => "ok".to_string(),
                    Err(Error::Provider(e)) => match e.status() {
                        Some(s) => s.to_string(),
                        None => format!("{:?}", e.transport_kind()),
                    },
                    Err(e) => panic!("{e}"),
                },
            );
        }
        runs.push(outcomes);
    }
    assert_eq!(runs[0], runs[1]);
    let count = |k: &str| runs[0].iter().filter(|o| *o == k).count();
    assert!((20..=60).contains(&count("500")), "{}", count("500"));
    assert!((5..=35).contains(&count("429")), "{}", count("429"));
    assert!(
        (5..=35).contains(&count("Some(Reset)")),
        "{}",
        count("Some(Reset)")
    );
    assert!((90..=150).contains(&count("ok")), "{}", count("ok"));
}

#[tokio::test]
async fn transport_failures_are_typed() {
    // Connection refused: a port that was just free.
    let providers = common::refused_provider();
    let err = generate_err(&providers, "openai/gpt-4o-mini").await;
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::Connect),
        "{err:?}"
    );

    // TLS spoken to a plain-HTTP server.
    let mock = MockServer::start().await.unwrap();
    let providers = common::openai_at(
        &format!("https://{}/v1", mock.addr()),
        reqwest::Client::new(),
    );
    let err = generate_err(&providers, "openai/gpt-4o-mini").await;
    assert_eq!(err.transport_kind(), Some(TransportKind::Tls), "{err:?}");

    // DNS: a resolver that knows no names (no traffic leaves the machine).
    struct NoNames;
    impl reqwest::dns::Resolve for NoNames {
        fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            Box::pin(async {
                Err::<reqwest::dns::Addrs, _>(Box::new(std::io::Error::other("no such host")) as _)
            })
        }
    }
    let http = reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(NoNames))
        .build()
        .unwrap();
    let providers = common::openai_at("https://api.example.invalid/v1", http);
    let err = generate_err(&providers, "openai/gpt-4o-mini").await;
    assert_eq!(err.transport_kind(), Some(TransportKind::Dns), "{err:?}");

    // A timeout of the caller's HTTP client (the mock answers too late).
    let mock = MockServer::start().await.unwrap();
    mock.push_faults([FaultPlan::normal().with_latency(Duration::from_secs(2))]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let providers = common::openai_at(&mock.openai_base_url(), http);
    let err = generate_err(&providers, "openai/gpt-4o-mini").await;
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::Timeout),
        "{err:?}"
    );
}
