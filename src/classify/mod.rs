//! Classification: turns a raw [`ProviderError`] into the provider-neutral
//! [`Failure`] the actors decide from.
//!
//! | input | category |
//! |---|---|
//! | status + body | by billing words, context length, size, content filter, auth, then `error.type`, `error.code`, then the status class (see [`body::category`]) |
//! | in-band stream error | by the body's `error.type`, never by the 200 |
//! | transport: connect, DNS, TLS, reset, other | `network` |
//! | transport: connect timeout, read/idle timeout | `timeout` |
//! | transport: total deadline | `deadline_exceeded` (not retryable) |
//! | stream ended without its terminal event | `stream_interrupted` |
//! | malformed JSON or SSE | `malformed_response` |
//! | a whole 2xx of the wrong shape | `malformed_response`, not retried on the same target |
//! | free text ([`classify_text`]) | ordered message patterns, `unknown` otherwise |
//!
//! Retryability is the category's default, overridden by `x-should-retry`. The
//! server-directed wait is `retry-after-ms`, then `retry-after` (seconds, then
//! HTTP-date), then OpenAI's "try again in ..." text; it is reported uncapped.
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
    };
    // A 2xx of the wrong shape is deterministic: the same target answers the
    // same again (a group still moves on).
    let deterministic = matches!(err.kind, FailureKind::WrongShape { .. });
    let retryable = wait::should_retry_in(&headers).unwrap_or(category.retryable_by_default())
        && category != Category::DeadlineExceeded
        && !deterministic;
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
