//! The raw failure of one provider attempt ([`ProviderError`]): what the
//! transport or the server said, before steer classifies it (`classify`) and
//! before it becomes the library's [`Error`](crate::Error). Below both.

use std::fmt;

use bytes::Bytes;
use http::HeaderMap;

use crate::fold::{fold_whitespace, truncate_chars};
use crate::model::RequestId;

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
    /// The client's spend budget had no room for the attempt (nothing was
    /// sent): which budget, what it had spent and held, what was asked.
    Budget {
        /// The refusal.
        refusal: Box<steer_actors::budget::Refusal>,
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
            FailureKind::Budget { refusal } => write!(f, "not sent: {refusal}")?,
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
            FailureKind::Budget { refusal } => {
                f.debug_struct("Budget").field("refusal", refusal).finish()
            }
        }
    }
}

impl std::error::Error for ProviderError {}

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
