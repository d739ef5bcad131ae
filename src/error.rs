//! Errors: the raw failure of one provider attempt, and the library's error type.

use std::fmt;

use bytes::Bytes;
use http::HeaderMap;

use steer_actors::breaker::Rejection;
use steer_actors::{Failure, GiveUp};

use crate::fold::{fold_whitespace, truncate_chars};
use crate::model::{InvalidModelId, RequestId};

/// How a request failed below HTTP: the connection, name resolution, TLS, or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// The TCP connection could not be made (refused, unreachable).
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// The connection was reset or closed while the response was being read.
    Reset,
    /// Connecting took longer than the connect timeout.
    ConnectTimeout,
    /// A timeout fired while waiting for the response or between events.
    Timeout,
    /// The request's total deadline ran out.
    Deadline,
    /// Anything else the HTTP stack reported.
    Other,
}

impl TransportKind {
    /// A short lowercase name (`connect`, `dns`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Connect => "connect",
            TransportKind::Dns => "dns",
            TransportKind::Tls => "tls",
            TransportKind::Reset => "reset",
            TransportKind::ConnectTimeout => "connect timeout",
            TransportKind::Timeout => "timeout",
            TransportKind::Deadline => "deadline",
            TransportKind::Other => "other",
        }
    }
}

/// What went wrong, in the raw form the provider showed it.
#[derive(Clone, PartialEq)]
pub enum FailureKind {
    /// The provider answered with a non-success status.
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, whatever its shape (it may not be JSON), at most 64 KiB.
        body: Bytes,
    },
    /// No usable response: the connection, DNS, TLS or a timeout failed.
    Transport {
        /// Which layer failed.
        kind: TransportKind,
        /// The HTTP stack's description.
        message: String,
    },
    /// An error event inside a successful (200) stream: OpenAI's
    /// `data: {"error":...}` or Anthropic's `event: error`. Classify it by its body,
    /// never by the 200.
    InBand {
        /// The event's JSON data, as sent.
        body: String,
    },
    /// The stream ended without its terminal event (`[DONE]`, `message_stop`).
    /// Always a failure, never a success.
    Incomplete {
        /// How many SSE events arrived before the end.
        events: usize,
    },
    /// The response could not be understood: malformed JSON or SSE, a missing field.
    Malformed {
        /// What was wrong.
        message: String,
    },
    /// A 2xx answer that is whole and readable but not a reply: valid JSON of
    /// another shape (`{}`, a proxy's status object), or a page where an event
    /// stream was asked for. The server answers the same again: not retried on
    /// the same target (a group moves on).
    WrongShape {
        /// What it was.
        message: String,
    },
    /// The request cannot be expressed in the provider's wire format (nothing was sent).
    Invalid {
        /// What cannot be expressed.
        message: String,
    },
}

/// The failure of one attempt against one provider, with everything the classifier
/// needs: status, headers, body, transport kind, in-band error, and whether content
/// had already been delivered.
#[derive(Clone)]
pub struct ProviderError {
    /// The provider's name.
    pub provider: String,
    /// steer's id of the request.
    pub request_id: RequestId,
    /// The provider's id of the request, when a response carried one.
    pub provider_request_id: Option<String>,
    /// Response headers, when a response arrived (empty otherwise).
    pub headers: HeaderMap,
    /// Whether text had already been streamed to the caller when it failed.
    pub content_started: bool,
    /// What went wrong.
    pub kind: FailureKind,
}

impl ProviderError {
    /// A failure with no response headers and no content delivered.
    pub fn new(provider: impl Into<String>, request_id: RequestId, kind: FailureKind) -> Self {
        ProviderError {
            provider: provider.into(),
            request_id,
            provider_request_id: None,
            headers: HeaderMap::new(),
            content_started: false,
            kind,
        }
    }

    /// The HTTP status, for [`FailureKind::Status`].
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            FailureKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The body as text (lossy UTF-8) for status and in-band failures.
    pub fn body_text(&self) -> Option<String> {
        match &self.kind {
            FailureKind::Status { body, .. } => Some(String::from_utf8_lossy(body).into_owned()),
            FailureKind::InBand { body } => Some(body.clone()),
            _ => None,
        }
    }

    /// The transport kind, for [`FailureKind::Transport`].
    pub fn transport_kind(&self) -> Option<TransportKind> {
        match &self.kind {
            FailureKind::Transport { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The most useful short line of an error body: its `message` if it is JSON that
/// has one, else its first characters.
pub(crate) fn body_summary(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let msg = v
            .pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .and_then(|m| m.as_str());
        if let Some(m) = msg {
            return one_line(m);
        }
    }
    one_line(&String::from_utf8_lossy(body))
}

/// Folds all whitespace (newlines included) to single spaces and shortens to 300 characters.
fn one_line(text: &str) -> String {
    truncate_chars(&fold_whitespace(text), 300)
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.provider)?;
        match &self.kind {
            FailureKind::Status { status, body } => {
                write!(f, "HTTP {status}: {}", body_summary(body))?
            }
            FailureKind::Transport { kind, message } => {
                write!(f, "{} error: {}", kind.as_str(), one_line(message))?
            }
            FailureKind::InBand { body } => write!(
                f,
                "error event in stream: {}",
                body_summary(body.as_bytes())
            )?,
            FailureKind::Incomplete { events } => write!(
                f,
                "stream ended without its terminal event after {events} events"
            )?,
            FailureKind::Malformed { message } => {
                write!(f, "malformed response: {}", one_line(message))?
            }
            FailureKind::WrongShape { message } => write!(f, "not a reply: {}", one_line(message))?,
            FailureKind::Invalid { message } => {
                write!(f, "invalid request: {}", one_line(message))?
            }
        }
        write!(f, " (request {}", self.request_id)?;
        if let Some(id) = &self.provider_request_id {
            write!(f, ", provider request {id}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Debug for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers are shown by name only: response headers carry no keys, but a
        // proxy could echo anything back.
        let header_names: Vec<&str> = self.headers.keys().map(|k| k.as_str()).collect();
        f.debug_struct("ProviderError")
            .field("provider", &self.provider)
            .field("request_id", &self.request_id)
            .field("provider_request_id", &self.provider_request_id)
            .field("content_started", &self.content_started)
            .field("kind", &self.kind)
            .field("headers", &header_names)
            .finish()
    }
}

impl fmt::Debug for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Status { status, body } => f
                .debug_struct("Status")
                .field("status", status)
                .field("body", &String::from_utf8_lossy(body))
                .finish(),
            FailureKind::Transport { kind, message } => f
                .debug_struct("Transport")
                .field("kind", kind)
                .field("message", message)
                .finish(),
            FailureKind::InBand { body } => f.debug_struct("InBand").field("body", body).finish(),
            FailureKind::Incomplete { events } => f
                .debug_struct("Incomplete")
                .field("events", events)
                .finish(),
            FailureKind::Malformed { message } => f
                .debug_struct("Malformed")
                .field("message", message)
                .finish(),
            FailureKind::WrongShape { message } => f
                .debug_struct("WrongShape")
                .field("message", message)
                .finish(),
            FailureKind::Invalid { message } => {
                f.debug_struct("Invalid").field("message", message).finish()
            }
        }
    }
}

impl std::error::Error for ProviderError {}

/// Everything a steer call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider failed (after whatever retries the caller configured).
    #[error(transparent)]
    Provider(Box<ProviderError>),
    /// No provider is registered under this name.
    #[error("unknown provider {name:?}; registered: {}", known.join(", "))]
    UnknownProvider {
        /// The name asked for.
        name: String,
        /// The names that are registered.
        known: Vec<String>,
    },
    /// The model id is not `provider/model`.
    #[error(transparent)]
    InvalidModelId(#[from] InvalidModelId),
    /// A setting is invalid (a bad base URL, a key with characters a header cannot hold, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The request cannot be sent as it is: its provider's wire format cannot
    /// express it (an image in a system message, a JSON mode Anthropic lacks, a
    /// tool choice naming no tool, ...). Nothing was sent.
    #[error("invalid request for {provider}: {message}")]
    InvalidRequest {
        /// The provider.
        provider: String,
        /// What cannot be expressed.
        message: String,
    },
    /// The request failed for good: its last failure was not retried.
    #[error(transparent)]
    Failed(Box<FailedRequest>),
    /// The provider's circuit breaker did not admit the request.
    #[error("{provider}: not admitted by the circuit breaker ({}){} (request {request_id})",
        rejection_text(rejection),
        last.as_ref().map(|f| format!(" after {attempts} attempts, last: {f}")).unwrap_or_default())]
    Rejected {
        /// The provider.
        provider: String,
        /// steer's request id.
        request_id: RequestId,
        /// Why it was not admitted.
        rejection: Rejection,
        /// Attempts made before.
        attempts: u32,
        /// The failure before the rejection, if any.
        last: Option<Box<Failure>>,
        /// For a stream: the text delivered before the rejection.
        partial: Option<String>,
    },
    /// The request's total deadline passed.
    #[error("request {request_id}: deadline exceeded after {attempts} attempts{}",
        last.as_ref().map(|f| format!(", last: {f}")).unwrap_or_default())]
    DeadlineExceeded {
        /// steer's request id.
        request_id: RequestId,
        /// Attempts made.
        attempts: u32,
        /// The last failure, if any.
        last: Option<Box<Failure>>,
        /// For a stream: the text delivered before the deadline.
        partial: Option<String>,
    },
    /// Provider or user code panicked during the request.
    #[error("request {request_id}: panicked in attempt {attempts}: {message}")]
    Panicked {
        /// steer's request id.
        request_id: RequestId,
        /// The panic message.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Every target of a model group failed or was unavailable.
    #[error("group {group}: no target answered ({}){}",
        steps.iter().map(|s| format!("{}: {}", s.target, s.outcome)).collect::<Vec<_>>().join(", "),
        back_in.map(|d| format!("; the first is back in {d:?}")).unwrap_or_default())]
    GroupExhausted {
        /// The group.
        group: String,
        /// Each target tried and how it ended.
        steps: Vec<crate::model::RouteStep>,
        /// When the first target is back, if one said.
        back_in: Option<std::time::Duration>,
    },
    /// Too many requests in flight (the client's `max_in_flight`).
    #[error("overloaded: {max_in_flight} requests already in flight")]
    Overloaded {
        /// The bound.
        max_in_flight: usize,
    },
    /// steer itself failed (an actor it needs is gone).
    #[error("internal error: {0}")]
    Internal(String),
}

fn rejection_text(r: &Rejection) -> String {
    match r {
        Rejection::Open { retry_in } => format!("open, half-opens in {retry_in:?}"),
        Rejection::ProbesBusy => "half-open, every probe slot is taken".into(),
        Rejection::ForcedOpen => "forced open by an operator".into(),
        Rejection::Paused { retry_in } => {
            format!("paused by a server-directed wait, {retry_in:?} left")
        }
    }
}

/// A request that failed for good after its retries.
#[derive(Debug)]
pub struct FailedRequest {
    /// The last failure, classified.
    pub failure: Failure,
    /// Why it was not retried.
    pub reason: GiveUp,
    /// Attempts made.
    pub attempts: u32,
    /// The raw error of the last attempt (absent for a timeout steer imposed).
    pub last: Option<ProviderError>,
    /// For a stream: the text delivered before it failed.
    pub partial: Option<String>,
}

impl fmt::Display for FailedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            GiveUp::NotRetryable => "not retryable".to_string(),
            GiveUp::CategoryDisabled => "retries of this category are off".to_string(),
            GiveUp::AttemptsExhausted => "attempts exhausted".to_string(),
            GiveUp::ServerWaitTooLong { wait } => {
                format!("the server asked to wait {wait:?}, above the cap")
            }
            GiveUp::BackoffLimit => "total backoff limit reached".to_string(),
            GiveUp::Deadline => "the next retry would pass the deadline".to_string(),
            GiveUp::BudgetExhausted => "the provider's retry budget is spent".to_string(),
        };
        write!(
            f,
            "{} after {} attempt{} ({why})",
            self.failure,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for FailedRequest {}

impl Error {
    /// A short, fixed word for what went wrong, fit for a metric label or the
    /// OpenTelemetry `error.type` attribute: the failure's category
    /// (`rate_limited`, `server_error`, ...) when there is one, else
    /// `breaker_rejected`, `deadline_exceeded`, `panicked`, `group_exhausted`,
    /// `client_overloaded`, `invalid_request`, `unknown_provider`,
    /// `invalid_model_id`, `config` or `internal`.
    ///
    /// ```
    /// let e = steer_llm::Error::Overloaded { max_in_flight: 8 };
    /// assert_eq!(e.kind(), "client_overloaded");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Provider(e) => crate::classify::classify(e).category.as_str(),
            Error::Failed(f) => f.failure.category.as_str(),
            Error::Rejected { .. } => "breaker_rejected",
            Error::DeadlineExceeded { .. } => "deadline_exceeded",
            Error::Panicked { .. } => "panicked",
            Error::GroupExhausted { .. } => "group_exhausted",
            Error::Overloaded { .. } => "client_overloaded",
            Error::InvalidRequest { .. } => "invalid_request",
            Error::UnknownProvider { .. } => "unknown_provider",
            Error::InvalidModelId(_) => "invalid_model_id",
            Error::Config(_) => "config",
            Error::Internal(_) => "internal",
        }
    }

    /// The classified failure behind this error, if there is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Error::Failed(f) => Some(&f.failure),
            Error::Rejected { last, .. } | Error::DeadlineExceeded { last, .. } => last.as_deref(),
            _ => None,
        }
    }

    /// For a failed stream: the text it delivered before failing.
    pub fn partial_text(&self) -> Option<&str> {
        match self {
            Error::Failed(f) => f.partial.as_deref(),
            Error::DeadlineExceeded { partial, .. } | Error::Rejected { partial, .. } => {
                partial.as_deref()
            }
            _ => None,
        }
    }
}

impl From<ProviderError> for Error {
    fn from(e: ProviderError) -> Self {
        Error::Provider(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_the_json_message() {
        let mut e = ProviderError::new(
            "openai",
            RequestId::from("r1"),
            FailureKind::Status {
                status: 429,
                body: Bytes::from_static(
                    br#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
                ),
            },
        );
        e.provider_request_id = Some("req_abc".into());
        let s = e.to_string();
        assert_eq!(
            s,
            "openai: HTTP 429: Rate limit reached (request r1, provider request req_abc)"
        );
    }

    #[test]
    fn display_of_a_non_json_body_folds_whitespace() {
        let e = ProviderError::new(
            "anthropic",
            RequestId::from("r2"),
            FailureKind::Status {
                status: 413,
                body: Bytes::from_static(b"<html>\n<h1>413 Request Entity Too Large</h1>\n</html>"),
            },
        );
        assert!(!e.to_string().contains('\n'));
        assert!(e.to_string().contains("413 Request Entity Too Large"));
    }
}
