//! Classification: turns a raw [`ProviderError`] into the provider-neutral
//! [`Failure`] the actors decide from: category, `retryable`, `affects_health`
//! (the breaker counts it), the server-directed wait (uncapped; the retry
//! policy caps it), rate-limit hints, provider, status, the provider's error
//! type and code, a one-line message, both request ids, and the phase (before
//! or after content). The rules are plain functions tested without a runtime:
//!
//! - [`body`] reads an error body of any shape (OpenAI's `error` object,
//!   Anthropic's `{"type":"error","error":{...}}`, xAI's flat `{"code","error"}`,
//!   a gateway's top-level `message`) into type, code and message, then decides
//!   the category in this order: billing (codes, types, 402, then billing
//!   phrases a gateway's rewritten 429 still says), context length, request too
//!   large, OpenAI's exact rate-limit codes, content filter, authentication
//!   (including xAI's 400 "Incorrect API key"), an overload named only in the
//!   message of a 5xx or in-band error, error types, error codes, and last the
//!   status class.
//! - [`wait`]: `x-should-retry`, `retry-after-ms`, `retry-after` (seconds, then
//!   HTTP-date), then the upstream's as LiteLLM passes them on
//!   (`llm_provider-retry-after-ms`, `llm_provider-retry-after`), OpenAI's "try
//!   again in 1.146s" and Azure OpenAI's "retry after 37 seconds" texts, Go
//!   durations (`1m30s`) and RFC 3339 resets.
//! - [`text`]: free text by ordered patterns (timeout before network, billing
//!   before rate limit), for errors from user code or unknown transports.
//!
//! | category | retried | breaker counts it | provider errors |
//! |---|---|---|---|
//! | authentication | no | no | OpenAI 401 `invalid_api_key`; Anthropic 401; xAI 400 "Incorrect API key", 401 |
//! | permission_denied | no | no | OpenAI 403; Anthropic 403 `permission_error`; xAI 403 (not credits) |
//! | not_found | no | no | 404 `model_not_found`, `not_found_error`, xAI `not-found` |
//! | conflict | yes | no | Anthropic 409 `conflict_error`, any 409 |
//! | rate_limited | yes | no (it pauses the provider) | OpenAI 429 `rate_limit_exceeded`; Anthropic 429 `rate_limit_error`; xAI 429; OpenRouter 402 whose `metadata.limit_source` is its in-flight budget (a wait) |
//! | quota_exceeded | no | no | OpenAI 429 `insufficient_quota` and spend-limit codes; Anthropic 402, 400 spend and workspace limits, 429 tier spend limit; xAI 402, 403/429 credits; any other 402 |
//! | invalid_request | no | no | 400 `invalid_request_error` (prefill rejection too), 405, 415, 422; the Responses API's in-band `invalid_prompt`, `invalid_image*`, `image_too_large` |
//! | request_too_large | no | no | OpenAI 429 "Request too large"; 413 (JSON or a proxy's HTML) |
//! | context_length_exceeded | no | no | OpenAI 400 `context_length_exceeded`, "prompt is too long" |
//! | content_filtered | no | no | `content_filter`, `content_policy_violation`, content policy text |
//! | server_error | yes | yes | 500 `server_error` / `api_error`, 502, other 5xx, unknown in-band errors |
//! | overloaded | yes | yes | OpenAI 503 `server_is_overloaded`; Anthropic 529 `overloaded_error`; any 503/529 |
//! | timeout | yes | yes | connect, read and idle timeouts; 408; Anthropic 504 `timeout_error` |
//! | deadline_exceeded | no | no | the request's total deadline ran out |
//! | network | yes | yes | connection refused, DNS, TLS, reset mid-body |
//! | stream_interrupted | yes | yes | a stream ended without `[DONE]` / `message_stop` |
//! | malformed_response | yes | yes | malformed JSON or SSE (a whole 2xx of the wrong shape: not retried on the same target) |
//! | unknown | no | no | any other 4xx; free text that matches nothing |
//!
//! `x-should-retry` overrides `retried` (never for `deadline_exceeded`); it does
//! not change whether the breaker counts the failure. Waits are reported
//! uncapped; a value that is not a finite positive number, or a date in the
//! past, is no wait at all.
//!
//! The table, row by row, as this doc test checks it:
//!
//! ```
//! use steer_llm::{classify::classify, FailureKind, ProviderError, TransportKind};
//! use steer_actors::Category::*;
//! let status = |provider: &str, status: u16, body: &str| {
//!     ProviderError::new(provider, "r".into(), FailureKind::Status { status, body: body.to_string().into() })
//! };
//! let other = |kind| ProviderError::new("openai", "r".into(), kind);
//! let transport = |kind| other(FailureKind::Transport { kind, message: "x".into() });
//! let openai = |code: &str, ty: &str| format!(r#"{{"error":{{"message":"m","type":"{ty}","param":null,"code":"{code}"}}}}"#);
//! let anthropic = |ty: &str| format!(r#"{{"type":"error","error":{{"type":"{ty}","message":"m"}}}}"#);
//! let rows = [
//!     (status("openai", 401, &openai("invalid_api_key", "invalid_request_error")), Authentication, false, false),
//!     (status("anthropic", 403, &anthropic("permission_error")), PermissionDenied, false, false),
//!     (status("openai", 404, &openai("model_not_found", "invalid_request_error")), NotFound, false, false),
//!     (status("anthropic", 409, &anthropic("conflict_error")), Conflict, true, false),
//!     (status("openai", 429, &openai("rate_limit_exceeded", "requests")), RateLimited, true, false),
//!     (status("openai", 429, &openai("insufficient_quota", "insufficient_quota")), QuotaExceeded, false, false),
//!     (status("anthropic", 400, &anthropic("invalid_request_error")), InvalidRequest, false, false),
//!     (other(FailureKind::InBand { body: r#"{"type":"error","code":"invalid_prompt","message":"m","param":null,"sequence_number":2}"#.into() }), InvalidRequest, false, false),
//!     (status("anthropic", 413, "<html><h1>413 Request Entity Too Large</h1></html>"), RequestTooLarge, false, false),
//!     (status("openai", 400, &openai("context_length_exceeded", "invalid_request_error")), ContextLengthExceeded, false, false),
//!     (status("openai", 400, &openai("content_policy_violation", "invalid_request_error")), ContentFiltered, false, false),
//!     (status("openai", 500, &openai("", "server_error")), ServerError, true, true),
//!     (status("anthropic", 529, &anthropic("overloaded_error")), Overloaded, true, true),
//!     (status("openai", 408, ""), Timeout, true, true),
//!     (transport(TransportKind::Timeout), Timeout, true, true),
//!     (transport(TransportKind::Deadline), DeadlineExceeded, false, false),
//!     (transport(TransportKind::Connect), Network, true, true),
//!     (other(FailureKind::Incomplete { events: 3 }), StreamInterrupted, true, true),
//!     (other(FailureKind::Malformed { message: "bad json".into() }), MalformedResponse, true, true),
//!     (status("openai", 418, ""), Unknown, false, false),
//! ];
//! for (error, category, retried, counted) in rows {
//!     let f = classify(&error);
//!     assert_eq!((f.category, f.retryable, f.affects_health), (category, retried, counted), "{error}");
//! }
//! ```
//!
//! In short, by input:
//!
//! | input | category |
//! |---|---|
//! | status + body | by billing words, context length, size, content filter, auth, then `error.type`, `error.code`, then the status class (see [`body::category`]) |
//! | in-band stream error | by the body's `error.type` (the Responses API's `code`), never by the 200 |
//! | transport: connect, DNS, TLS, reset, other | `network` |
//! | transport: connect timeout, read/idle timeout | `timeout` |
//! | transport: total deadline | `deadline_exceeded` (not retryable) |
//! | stream ended without its terminal event | `stream_interrupted` |
//! | malformed JSON or SSE | `malformed_response` |
//! | a whole 2xx of the wrong shape | `malformed_response`, not retried on the same target |
//! | free text ([`classify_text`]) | ordered message patterns, `unknown` otherwise |
//!
//! ```
//! use steer_llm::{classify::classify, FailureKind, ProviderError};
//! use steer_actors::Category;
//! let err = ProviderError::new("openai", "r1".into(), FailureKind::Status {
//!     status: 429,
//!     body: r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#.into(),
//! });
//! let failure = classify(&err);
//! assert_eq!(failure.category, Category::QuotaExceeded);
//! assert!(!failure.retryable);
//! ```

pub mod body;
pub mod key_limit;
pub mod text;
pub mod wait;

use std::time::SystemTime;

use steer_actors::{Category, Failure, Phase};

use crate::fold::{fold_whitespace, is_folded};
use crate::provider_error::{body_summary, FailureKind, ProviderError, TransportKind};

/// Classifies a failure, reading HTTP-dates against the system clock.
pub fn classify(err: &ProviderError) -> Failure {
    classify_at(err, SystemTime::now())
}

/// Classifies a failure, reading HTTP-dates and reset instants against `now`.
pub fn classify_at(err: &ProviderError, now: SystemTime) -> Failure {
    let (category, mut info, status) = match &err.kind {
        FailureKind::Status { status, body } => {
            let info = body::parse(body);
            (body::category(Some(*status), &info), info, Some(*status))
        }
        FailureKind::InBand { body } => {
            let info = body::parse(body.as_bytes());
            (body::category(None, &info), info, None)
        }
        FailureKind::Transport { kind, .. } => (
            match kind {
                TransportKind::ConnectTimeout | TransportKind::Timeout => Category::Timeout,
                TransportKind::Deadline => Category::DeadlineExceeded,
                TransportKind::Connect
                | TransportKind::Dns
                | TransportKind::Tls
                | TransportKind::Reset
                | TransportKind::Other => Category::Network,
            },
            body::ErrorInfo::default(),
            None,
        ),
        FailureKind::Incomplete { .. } => (
            Category::StreamInterrupted,
            body::ErrorInfo::default(),
            None,
        ),
        FailureKind::Malformed { .. } | FailureKind::WrongShape { .. } => (
            Category::MalformedResponse,
            body::ErrorInfo::default(),
            None,
        ),
        FailureKind::Invalid { .. } => (Category::InvalidRequest, body::ErrorInfo::default(), None),
        FailureKind::Budget { .. } => (Category::BudgetExceeded, body::ErrorInfo::default(), None),
    };
    let headers = wait::Scanned::of(&err.headers);
    let retry_after = wait::retry_after_in(&headers, now).or_else(|| {
        info.message
            .as_deref()
            .filter(|_| category == Category::RateLimited)
            .and_then(wait::try_again_in)
    });
    let message = match (info.message.take(), &err.kind) {
        (Some(m), _) if is_folded(&m) => m,
        (Some(m), _) => fold_whitespace(&m),
        (None, FailureKind::Status { body, .. }) => body_summary(body),
        (None, FailureKind::InBand { body }) => body_summary(body.as_bytes()),
        (None, FailureKind::Transport { kind, message }) => {
            format!("{} error: {message}", kind.as_str())
        }
        (None, FailureKind::Incomplete { events }) => {
            format!("stream ended without its terminal event after {events} events")
        }
        (None, FailureKind::Malformed { message }) => format!("malformed response: {message}"),
        (None, FailureKind::WrongShape { message }) => format!("not a reply: {message}"),
        (None, FailureKind::Invalid { message }) => format!("invalid request: {message}"),
        (None, FailureKind::Budget { refusal }) => refusal.to_string(),
    };
    // A 2xx of the wrong shape is deterministic: the same target answers the
    // same again (a group still moves on).
    let deterministic = matches!(err.kind, FailureKind::WrongShape { .. });
    let retryable = wait::should_retry_in(&headers).unwrap_or(category.retryable_by_default())
        && category != Category::DeadlineExceeded
        && !deterministic;
    let key_limit = category == Category::RateLimited
        && key_limit::names_a_key_limit(&message, info.code.as_deref());
    Failure {
        category,
        retryable,
        affects_health: category.affects_health(),
        retry_after,
        rate_limit: wait::rate_limit_hints_in(&headers, now),
        provider: err.provider.clone(),
        status,
        error_type: info.kind,
        error_code: info.code,
        message,
        request_id: Some(err.request_id.as_str().to_owned()),
        provider_request_id: err.provider_request_id.clone(),
        phase: if err.content_started {
            Phase::AfterContent
        } else {
            Phase::BeforeContent
        },
        key_limit,
    }
}

/// Classifies a free-text error (from user code or an unknown transport) with
/// ordered message patterns; `unknown` and not retryable when none matches.
pub fn classify_text(provider: &str, message: &str) -> Failure {
    Failure::new(text::category(message), provider, &fold_whitespace(message))
}

impl ProviderError {
    /// This failure, classified (see [`classify`]).
    pub fn classify(&self) -> Failure {
        classify(self)
    }
}
