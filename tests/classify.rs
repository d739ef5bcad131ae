//! Classification of every provider error of providers.md, every transport failure
//! and every mock fault, through the real HTTP path where there is one.
#![cfg(feature = "mock")]

mod common;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::{drain, request, MODELS};
use futures::StreamExt;
use steer_llm::classify::{classify, classify_at, classify_text};
use steer_llm::mock::{errors, FaultPlan, Flavour, MockServer};
use steer_llm::{
    Category, Error, Failure, FailureKind, Phase, ProviderError, Providers, RequestId,
    TransportKind,
};

use Category::*;

fn model_of(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::OpenAi => MODELS[0],
        Flavour::Anthropic => MODELS[1],
        Flavour::Xai => MODELS[2],
        Flavour::Responses => MODELS[3],
    }
}

async fn failure(providers: &Providers, model: &str) -> Failure {
    match providers.generate(&request(model)).await {
        Err(Error::Provider(e)) => classify(&e),
        other => panic!("{model}: expected a provider error, got {other:?}"),
    }
}

async fn stream_failure(providers: &Providers, model: &str) -> Failure {
    let (_, err) = drain(providers.stream(&request(model)).await.unwrap()).await;
    classify(&err.expect("the stream should fail"))
}

/// (flavour, error name, status, category, error type, error code)
type Row = (
    Flavour,
    &'static str,
    u16,
    Category,
    Option<&'static str>,
    Option<&'static str>,
);

const TABLE: &[Row] = &[
    // OpenAI
    (
        Flavour::OpenAi,
        "content_policy",
        400,
        ContentFiltered,
        Some("invalid_request_error"),
        Some("content_policy_violation"),
    ),
    (
        Flavour::OpenAi,
        "context_length_exceeded",
        400,
        ContextLengthExceeded,
        Some("invalid_request_error"),
        Some("context_length_exceeded"),
    ),
    (
        Flavour::OpenAi,
        "invalid_request",
        400,
        InvalidRequest,
        Some("invalid_request_error"),
        None,
    ),
    (
        Flavour::OpenAi,
        "invalid_api_key",
        401,
        Authentication,
        Some("invalid_request_error"),
        Some("invalid_api_key"),
    ),
    (
        Flavour::OpenAi,
        "permission_denied",
        403,
        PermissionDenied,
        Some("request_forbidden"),
        Some("unsupported_country_region_territory"),
    ),
    (
        Flavour::OpenAi,
        "model_not_found",
        404,
        NotFound,
        Some("invalid_request_error"),
        Some("model_not_found"),
    ),
    (
        Flavour::OpenAi,
        "rate_limit",
        429,
        RateLimited,
        Some("requests"),
        Some("rate_limit_exceeded"),
    ),
    (
        Flavour::OpenAi,
        "tokens_rate_limit",
        429,
        RateLimited,
        Some("tokens"),
        Some("rate_limit_exceeded"),
    ),
    (
        Flavour::OpenAi,
        "request_too_large",
        429,
        RequestTooLarge,
        Some("tokens"),
        Some("rate_limit_exceeded"),
    ),
    (
        Flavour::OpenAi,
        "insufficient_quota",
        429,
        QuotaExceeded,
        Some("insufficient_quota"),
        Some("insufficient_quota"),
    ),
    (
        Flavour::OpenAi,
        "slow_down",
        429,
        RateLimited,
        Some("rate_limit_error"),
        Some("slow_down"),
    ),
    (
        Flavour::OpenAi,
        "server_error",
        500,
        ServerError,
        Some("server_error"),
        None,
    ),
    (
        Flavour::OpenAi,
        "overloaded",
        503,
        Overloaded,
        Some("service_unavailable_error"),
        Some("server_is_overloaded"),
    ),
    (
        Flavour::OpenAi,
        "payload_too_large",
        413,
        RequestTooLarge,
        None,
        None,
    ),
    // Anthropic
    (
        Flavour::Anthropic,
        "invalid_request",
        400,
        InvalidRequest,
        Some("invalid_request_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "spend_limit",
        400,
        QuotaExceeded,
        Some("invalid_request_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "workspace_limit",
        400,
        QuotaExceeded,
        Some("invalid_request_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "enforced_spend_limit",
        429,
        QuotaExceeded,
        Some("rate_limit_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "prefill_rejected",
        400,
        InvalidRequest,
        Some("invalid_request_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "trailing_whitespace",
        400,
        InvalidRequest,
        Some("invalid_request_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "authentication",
        401,
        Authentication,
        Some("authentication_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "billing",
        402,
        QuotaExceeded,
        Some("billing_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "permission",
        403,
        PermissionDenied,
        Some("permission_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "not_found",
        404,
        NotFound,
        Some("not_found_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "conflict",
        409,
        Conflict,
        Some("conflict_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "request_too_large",
        413,
        RequestTooLarge,
        None,
        None,
    ),
    (
        Flavour::Anthropic,
        "rate_limit",
        429,
        RateLimited,
        Some("rate_limit_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "spend_cap",
        429,
        QuotaExceeded,
        Some("rate_limit_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "api_error",
        500,
        ServerError,
        Some("api_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "timeout",
        504,
        Timeout,
        Some("timeout_error"),
        None,
    ),
    (
        Flavour::Anthropic,
        "overloaded",
        529,
        Overloaded,
        Some("overloaded_error"),
        None,
    ),
    // xAI
    (
        Flavour::Xai,
        "invalid_api_key",
        400,
        Authentication,
        None,
        Some("Client specified an invalid argument"),
    ),
    (
        Flavour::Xai,
        "invalid_api_key_v2",
        400,
        Authentication,
        None,
        Some("invalid-argument"),
    ),
    (
        Flavour::Xai,
        "invalid_request",
        400,
        InvalidRequest,
        None,
        Some("invalid-argument"),
    ),
    (
        Flavour::Xai,
        "unauthorized",
        401,
        Authentication,
        None,
        Some("unauthenticated"),
    ),
    (
        Flavour::Xai,
        "out_of_credits",
        402,
        QuotaExceeded,
        None,
        None,
    ),
    (
        Flavour::Xai,
        "credits_exhausted",
        403,
        QuotaExceeded,
        None,
        Some("permission-denied"),
    ),
    (
        Flavour::Xai,
        "credits_exhausted_legacy",
        429,
        QuotaExceeded,
        None,
        Some("Some resource has been exhausted"),
    ),
    (
        Flavour::Xai,
        "not_found",
        404,
        NotFound,
        None,
        Some("not-found"),
    ),
    (
        Flavour::Xai,
        "method_not_allowed",
        405,
        InvalidRequest,
        None,
        Some("method-not-allowed"),
    ),
    (
        Flavour::Xai,
        "unsupported_media_type",
        415,
        InvalidRequest,
        None,
        Some("unsupported-media-type"),
    ),
    (
        Flavour::Xai,
        "unprocessable",
        422,
        InvalidRequest,
        None,
        Some("invalid-argument"),
    ),
    (
        Flavour::Xai,
        "rate_limit",
        429,
        RateLimited,
        None,
        Some("resource-exhausted"),
    ),
    (
        Flavour::Xai,
        "server_error",
        500,
        ServerError,
        None,
        Some("internal"),
    ),
    (
        Flavour::Xai,
        "overloaded",
        503,
        Overloaded,
        None,
        Some("unavailable"),
    ),
    // A gateway in front of the provider (LiteLLM's proxy): rewritten bodies.
    (
        Flavour::OpenAi,
        "gateway_quota",
        429,
        QuotaExceeded,
        Some("throttling_error"),
        Some("429"),
    ),
    (
        Flavour::OpenAi,
        "gateway_rate_limit",
        429,
        RateLimited,
        Some("throttling_error"),
        Some("429"),
    ),
    (
        Flavour::OpenAi,
        "gateway_overloaded",
        500,
        Overloaded,
        Some("internal_server_error"),
        Some("500"),
    ),
    (
        Flavour::OpenAi,
        "gateway_stream_error",
        500,
        Overloaded,
        None,
        Some("500"),
    ),
    // A gateway in front of the provider (LiteLLM's proxy): rewritten bodies.
    (
        Flavour::Anthropic,
        "gateway_quota",
        429,
        QuotaExceeded,
        Some("throttling_error"),
        Some("429"),
    ),
    (
        Flavour::Anthropic,
        "gateway_rate_limit",
        429,
        RateLimited,
        Some("throttling_error"),
        Some("429"),
    ),
    (
        Flavour::Anthropic,
        "gateway_overloaded",
        500,
        Overloaded,
        Some("internal_server_error"),
        Some("500"),
    ),
    (
        Flavour::Anthropic,
        "gateway_stream_error",
        500,
        Overloaded,
        None,
        Some("500"),
    ),
    // A gateway in front of the provider (LiteLLM's proxy): rewritten bodies.
    (
        Flavour::Xai,
        "gateway_quota",
        429,
        QuotaExceeded,
        Some("throttling_error"),
        Some("429"),
    ),
    (
        Flavour::Xai,
        "gateway_rate_limit",
        429,
        RateLimited,
        Some("throttling_error"),
        Some("429"),
    ),
    (
        Flavour::Xai,
        "gateway_overloaded",
        500,
        Overloaded,
        Some("internal_server_error"),
        Some("500"),
    ),
    (
        Flavour::Xai,
        "gateway_stream_error",
        500,
        Overloaded,
        None,
        Some("500"),
    ),
    (
        Flavour::OpenAi,
        "openrouter_in_flight_budget",
        402,
        RateLimited,
        None,
        Some("402"),
    ),
    (
        Flavour::OpenAi,
        "openrouter_credits",
        402,
        QuotaExceeded,
        None,
        Some("402"),
    ),
    (
        Flavour::Anthropic,
        "openrouter_in_flight_budget",
        402,
        RateLimited,
        None,
        Some("402"),
    ),
    (
        Flavour::Anthropic,
        "openrouter_credits",
        402,
        QuotaExceeded,
        None,
        Some("402"),
    ),
    (
        Flavour::Xai,
        "openrouter_in_flight_budget",
        402,
        RateLimited,
        None,
        Some("402"),
    ),
    (
        Flavour::Xai,
        "openrouter_credits",
        402,
        QuotaExceeded,
        None,
        Some("402"),
    ),
];

#[tokio::test]
async fn every_provider_error_is_classified_exactly() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for (flavour, name, status, category, kind, code) in TABLE {
        mock.push_faults([FaultPlan::error(name)]);
        let model = model_of(*flavour);
        let f = failure(&providers, model).await;
        let what = format!("{flavour:?} {name}");
        assert_eq!(f.category, *category, "{what}: {f:?}");
        assert_eq!(f.status, Some(*status), "{what}");
        assert_eq!(f.retryable, category.retryable_by_default(), "{what}");
        assert_eq!(f.affects_health, category.affects_health(), "{what}");
        assert_eq!(f.error_type.as_deref(), *kind, "{what}");
        assert_eq!(f.error_code.as_deref(), *code, "{what}");
        assert_eq!(f.provider, model.split('/').next().unwrap());
        assert_eq!(f.phase, Phase::BeforeContent);
        assert!(f.provider_request_id.is_some(), "{what}");
        assert!(f.request_id.is_some());
        assert!(!f.message.is_empty() && !f.message.contains('\n'), "{what}");
    }
    // The table covers every named error of every flavour.
    for flavour in [Flavour::OpenAi, Flavour::Anthropic, Flavour::Xai] {
        for name in errors::names(flavour) {
            let aliased = [
                "authentication",
                "invalid_api_key",
                "model_not_found",
                "not_found",
                "permission_denied",
                "server_error",
                "payload_too_large",
            ];
            assert!(
                TABLE.iter().any(|r| r.0 == flavour && r.1 == name) || aliased.contains(&name),
                "{flavour:?} {name} is not in the table"
            );
        }
    }
}

#[tokio::test]
async fn server_directed_waits_in_every_form() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    let secs = Duration::from_secs;
    for model in MODELS {
        let cases = [
            (
                FaultPlan::error("rate_limit").retry_after("2"),
                Some(secs(2)),
            ),
            (
                FaultPlan::error("rate_limit").retry_after_ms("150.5"),
                Some(Duration::from_micros(150_500)),
            ),
            (
                FaultPlan::error("rate_limit").retry_after("86400"),
                Some(secs(86_400)),
            ),
            // The upstream's wait as a gateway passes it on, prefixed.
            (
                FaultPlan::error("gateway_rate_limit").gateway_retry_after("60"),
                Some(secs(60)),
            ),
            // The gateway's own wait wins over the upstream's.
            (
                FaultPlan::error("gateway_rate_limit")
                    .gateway_retry_after("60")
                    .retry_after("30"),
                Some(secs(30)),
            ),
            (FaultPlan::error("rate_limit").retry_after("inf"), None),
            (FaultPlan::error("rate_limit").retry_after("-3"), None),
            (FaultPlan::error("rate_limit").retry_after("nan"), None),
            (FaultPlan::error("rate_limit").retry_after_date(-30), None),
        ];
        for (plan, expected) in cases {
            mock.push_faults([plan.clone()]);
            let f = failure(&providers, model).await;
            // OpenAI's message says "try again in 1s": the last resort when no header is usable.
            let expected = match expected {
                None if model.starts_with("openai") => Some(secs(1)),
                other => other,
            };
            assert_eq!(f.retry_after, expected, "{model} {plan}");
            assert_eq!(f.category, RateLimited);
        }
        mock.push_faults([FaultPlan::error("rate_limit").retry_after_date(30)]);
        let f = failure(&providers, model).await;
        let wait = f.retry_after.expect("a date in the future is a wait");
        assert!(wait > secs(25) && wait <= secs(30), "{model}: {wait:?}");
    }
    // OpenAI's tokens message: "Please try again in 84ms".
    mock.push_faults([FaultPlan::error("tokens_rate_limit")]);
    let f = failure(&providers, "openai/gpt-4o-mini").await;
    assert_eq!(f.retry_after, Some(Duration::from_millis(84)));
    // No wait at all.
    mock.push_faults([FaultPlan::error("rate_limit")]);
    let f = failure(&providers, "anthropic/claude-3-5-haiku-latest").await;
    assert_eq!(f.retry_after, None);
}

#[tokio::test]
async fn x_should_retry_overrides_the_status_rules() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        mock.push_faults([FaultPlan::error("server_error").should_retry(false)]);
        let f = failure(&providers, model).await;
        assert_eq!(f.category, ServerError);
        assert!(!f.retryable, "{model}");
        assert!(
            f.affects_health,
            "{model}: the override does not change health"
        );
        mock.push_faults([FaultPlan::error("invalid_request").should_retry(true)]);
        let f = failure(&providers, model).await;
        assert_eq!(f.category, InvalidRequest);
        assert!(f.retryable, "{model}");
    }
}

#[tokio::test]
async fn statuses_no_table_names_fall_back_on_their_class() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        for (code, category, retryable) in [
            (408, Timeout, true),
            (409, Conflict, true),
            (429, RateLimited, true),
            (418, Unknown, false),
            (451, Unknown, false),
            (500, ServerError, true),
            (502, ServerError, true),
            (503, Overloaded, true),
            (504, Timeout, true),
            (529, Overloaded, true),
            (599, ServerError, true),
        ] {
            mock.push_faults([FaultPlan::status(code)]);
            let f = failure(&providers, model).await;
            assert_eq!(
                (f.category, f.retryable),
                (category, retryable),
                "{model} {code}"
            );
        }
    }
}

#[tokio::test]
async fn rate_limit_hints_come_from_every_response() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    mock.push_faults([FaultPlan::error("rate_limit")]);
    let f = failure(&providers, "openai/gpt-4o-mini").await;
    assert_eq!(f.rate_limit.requests_remaining, Some(0));
    assert_eq!(f.rate_limit.tokens_reset, Some(Duration::from_secs(90)));
    mock.push_faults([FaultPlan::error("rate_limit")]);
    let f = failure(&providers, "anthropic/claude-3-5-haiku-latest").await;
    assert_eq!(f.rate_limit.requests_remaining, Some(0));
    let reset = f.rate_limit.requests_reset.unwrap();
    assert!(
        reset <= Duration::from_secs(30) && reset >= Duration::from_secs(25),
        "{reset:?}"
    );
    assert!(f.rate_limit.exhausted_until().is_some());
}

#[tokio::test]
async fn in_band_errors_are_classified_by_their_body_never_by_the_200() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        for (name, category) in [
            ("server_error", ServerError),
            ("overloaded", Overloaded),
            ("rate_limit", RateLimited),
            ("invalid_request", InvalidRequest),
        ] {
            for after in [0, 3] {
                mock.push_faults([FaultPlan::stream_error(name, after)]);
                let f = stream_failure(&providers, model).await;
                assert_eq!(f.category, category, "{model} {name}");
                assert_eq!(f.status, None, "{model} {name}: never the 200");
                let phase = if after == 0 {
                    Phase::BeforeContent
                } else {
                    Phase::AfterContent
                };
                assert_eq!(f.phase, phase, "{model} {name} {after}");
            }
        }
    }
    // The documented Anthropic overload event.
    mock.push_faults([FaultPlan::stream_error("overloaded", 2)]);
    let f = stream_failure(&providers, "anthropic/claude-3-5-haiku-latest").await;
    assert_eq!(f.error_type.as_deref(), Some("overloaded_error"));
    assert_eq!(f.message, "Overloaded");
    assert!(f.retryable && f.affects_health);
}

#[tokio::test]
async fn every_stream_fault_is_classified() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        for (plan, category) in [
            (FaultPlan::truncate(2), StreamInterrupted),
            (FaultPlan::reset(2), Network),
            (FaultPlan::malformed_json(2), MalformedResponse),
            (FaultPlan::malformed_sse(2), MalformedResponse),
        ] {
            mock.push_faults([plan.clone()]);
            let f = stream_failure(&providers, model).await;
            assert_eq!(f.category, category, "{model} {plan}");
            assert!(f.retryable && f.affects_health, "{model} {plan}");
            assert_eq!(f.phase, Phase::AfterContent);
        }
        for (plan, category) in [
            (FaultPlan::truncate(0), MalformedResponse),
            (FaultPlan::reset(0), Network),
        ] {
            mock.push_faults([plan.clone()]);
            let f = failure(&providers, model).await;
            assert_eq!(f.category, category, "{model} {plan}");
        }
    }
}

#[tokio::test]
async fn a_stall_past_the_clients_timeout_is_a_timeout() {
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    mock.push_faults([FaultPlan::stall(0)]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let providers = common::openai_at(&mock.openai_base_url(), http);
    let mut stream = providers
        .stream(&request("openai/gpt-4o-mini"))
        .await
        .unwrap();
    let mut last = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            last = Some(e);
        }
    }
    let f = classify(&last.expect("the stall ends in an error"));
    assert_eq!(f.category, Timeout);
    assert!(f.retryable && f.affects_health);
}

fn transport(kind: TransportKind) -> ProviderError {
    ProviderError::new(
        "openai",
        RequestId::from("r"),
        FailureKind::Transport {
            kind,
            message: "x".into(),
        },
    )
}

#[test]
fn every_transport_kind_has_its_category() {
    for (kind, category, retryable) in [
        (TransportKind::Connect, Network, true),
        (TransportKind::Dns, Network, true),
        (TransportKind::Tls, Network, true),
        (TransportKind::Reset, Network, true),
        (TransportKind::Other, Network, true),
        (TransportKind::ConnectTimeout, Timeout, true),
        (TransportKind::Timeout, Timeout, true),
        (TransportKind::Deadline, DeadlineExceeded, false),
    ] {
        let f = classify(&transport(kind));
        assert_eq!((f.category, f.retryable), (category, retryable), "{kind:?}");
        assert_eq!(f.status, None);
    }
    // A deadline stays final even if a header asked for a retry.
    let mut e = transport(TransportKind::Deadline);
    e.headers.insert("x-should-retry", "true".parse().unwrap());
    assert!(!classify(&e).retryable);
}

#[tokio::test]
async fn real_transport_failures_are_classified() {
    // Connection refused: a port that was just free.
    let providers = common::refused_provider();
    let f = failure(&providers, "openai/gpt-4o-mini").await;
    assert_eq!(f.category, Network);
    assert!(f.message.starts_with("connect error"), "{}", f.message);
}

#[test]
fn http_dates_are_read_against_the_injected_clock() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut e = ProviderError::new(
        "anthropic",
        RequestId::from("r"),
        FailureKind::Status {
            status: 429,
            body: Bytes::from_static(
                br#"{"type":"error","error":{"type":"rate_limit_error","message":"rate limit"}}"#,
            ),
        },
    );
    e.headers.insert(
        "retry-after",
        httpdate::fmt_http_date(now + Duration::from_secs(42))
            .parse()
            .unwrap(),
    );
    assert_eq!(
        classify_at(&e, now).retry_after,
        Some(Duration::from_secs(42))
    );
    assert_eq!(
        classify_at(&e, now + Duration::from_secs(40)).retry_after,
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        classify_at(&e, now + Duration::from_secs(50)).retry_after,
        None
    );
}

#[test]
fn free_text_follows_the_ordered_patterns() {
    for (text, category, retryable) in [
        ("Connection error: timeout", Timeout, true),
        ("request timed out after 30s", Timeout, true),
        ("Connection refused (os error 111)", Network, true),
        ("connection reset by peer", Network, true),
        ("Quota exceeded for this month", QuotaExceeded, false),
        ("Rate limit reached, slow down", RateLimited, true),
        ("HTTP 429 Too Many Requests", RateLimited, true),
        ("Unauthorized: invalid API key", Authentication, false),
        ("403 Forbidden", PermissionDenied, false),
        ("blocked by the content filter", ContentFiltered, false),
        (
            "maximum context length is 8192 tokens",
            ContextLengthExceeded,
            false,
        ),
        ("The model is overloaded", Overloaded, true),
        ("502 Bad Gateway", ServerError, true),
        ("Internal Server Error", ServerError, true),
        ("validation failed: temperature", InvalidRequest, false),
        ("the cat sat on the mat", Unknown, false),
        ("used 5000 tokens", Unknown, false), // "500" inside a number is not a status
        ("", Unknown, false),
    ] {
        let f = classify_text("custom", text);
        assert_eq!((f.category, f.retryable), (category, retryable), "{text:?}");
        assert_eq!(f.provider, "custom");
    }
}

/// Spend limits are what they are (issue 29): a provider's spend cap moves a
/// group to its next target at once and is never retried at the deployment;
/// OpenRouter's in-flight budget is a wait, retried after its `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spend_limit_moves_a_group_on_and_an_in_flight_budget_is_waited_out() {
    let capped = MockServer::builder().start_background().unwrap();
    let healthy = MockServer::builder().start_background().unwrap();
    let providers = Providers::new()
        .with(common::deployment("capped", &capped))
        .with(common::deployment("healthy", &healthy));
    let client = common::quick_builder(providers, 3)
        .group(
            "fast",
            steer_llm::runtime::group::Group::new(["capped/gpt-4o-mini", "healthy/gpt-4o-mini"])
                .unwrap(),
        )
        .build()
        .unwrap();
    let ask = |model: &str| steer_llm::ChatRequest::new(model).unwrap().user("hi");
    for cap in ["openrouter_credits", "insufficient_quota"] {
        capped.push_faults([FaultPlan::error(cap)]);
        let before = capped.request_count();
        let reply = common::within(client.generate(ask("group/fast")))
            .await
            .unwrap();
        assert_eq!(reply.provider, "healthy", "{cap}");
        assert_eq!(reply.route[0].outcome, "quota_exceeded", "{cap}");
        assert_eq!(capped.request_count() - before, 1, "{cap}: never retried");
    }
    // The in-flight budget asks for a wait: retried at the same deployment
    // after it (a millisecond wait here).
    capped.push_faults([FaultPlan::error("openrouter_in_flight_budget").retry_after_ms("20")]);
    let before = capped.request_count();
    let reply = common::within(client.generate(ask("capped/gpt-4o-mini")))
        .await
        .unwrap();
    assert_eq!(reply.provider, "capped");
    assert_eq!(capped.request_count() - before, 2, "one wait, one retry");
}
