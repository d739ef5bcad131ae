//! The library's error type ([`Error`]), and what a failed request carries
//! ([`FailedRequest`]). The raw failure of one attempt is
//! [`ProviderError`], re-exported here from `provider_error`.

use std::fmt;
use steer_actors::limit::LimitRejection;

use steer_actors::breaker::Rejection;
use steer_actors::lifecycle::request::RequestError;
use steer_actors::{Failure, GiveUp};

use crate::model::{InvalidModelId, RequestId};
pub(crate) use crate::provider_error::body_summary;
pub use crate::provider_error::{FailureKind, ProviderError, TransportKind};

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
    /// A setting is invalid (a bad base URL, a key with characters a header
    /// cannot hold, a group without a target, ...): what, typed ([`ConfigError`]).
    #[error("invalid configuration: {0}")]
    Config(ConfigError),
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
    /// The provider did not admit the request: its circuit breaker (open,
    /// paused, probes busy), its adaptive concurrency limit (overloaded: no
    /// slot, its queue full or the wait too long; `kind()` `overloaded`), or
    /// adaptive throttling (`throttled`).
    #[error("{provider}: not admitted by {} ({}){} (request {request_id})",
        rejection_gate(rejection),
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

/// What refused: the breaker, the concurrency limit or the throttle.
fn rejection_gate(r: &Rejection) -> &'static str {
    match r {
        Rejection::ConcurrencyLimit(_) => "its concurrency limit",
        Rejection::Throttled => "adaptive throttling",
        _ => "the circuit breaker",
    }
}

fn rejection_text(r: &Rejection) -> String {
    match r {
        Rejection::Open { retry_in } => format!("open, half-opens in {retry_in:?}"),
        Rejection::ProbesBusy => "half-open, every probe slot is taken".into(),
        Rejection::ForcedOpen => "forced open by an operator".into(),
        Rejection::Paused { retry_in } => {
            format!("paused by a server-directed wait, {retry_in:?} left")
        }
        Rejection::ConcurrencyLimit(why) => match why {
            LimitRejection::AtLimit { limit } => {
                format!("overloaded: all {limit} slots of its concurrency limit are taken")
            }
            LimitRejection::QueueFull { limit, queue } => format!(
                "overloaded: all {limit} slots of its concurrency limit are taken and its queue of {queue} is full"
            ),
            LimitRejection::TimedOut { limit } => {
                format!("overloaded: no slot of its concurrency limit of {limit} freed in time")
            }
        },
        Rejection::Throttled => {
            "shed: the deployment rejected most recent calls (rate limits, overloads)".into()
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
    /// What the request spent before it failed, every attempt's (see
    /// [`crate::cost`]): with a budget's refusal, what this request had
    /// spent of it.
    pub spend: crate::model::Spend,
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
            GiveUp::Throttled => {
                "retries to this target are throttled: its failures outrun its successes"
                    .to_string()
            }
            GiveUp::WaitElsewhere { wait } => {
                format!("the server asked to wait {wait:?}; another target could answer now")
            }
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
    /// The caller's error for a request that ended with `e` at `provider`,
    /// with the text a stream delivered before it (`partial`).
    pub(crate) fn from_request(
        e: RequestError<ProviderError>,
        request_id: &RequestId,
        provider: &str,
        partial: Option<String>,
    ) -> Error {
        match e {
            RequestError::Failed {
                failure,
                reason,
                attempts,
                last,
            } => Error::Failed(Box::new(FailedRequest {
                failure,
                reason,
                attempts,
                last,
                partial,
                spend: crate::model::Spend::default(),
            })),
            RequestError::Rejected {
                rejection,
                attempts,
                last,
            } => Error::Rejected {
                provider: provider.to_string(),
                request_id: request_id.clone(),
                rejection,
                attempts,
                last: last.map(Box::new),
                partial,
            },
            RequestError::DeadlineExceeded { attempts, last } => Error::DeadlineExceeded {
                request_id: request_id.clone(),
                attempts,
                last: last.map(Box::new),
                partial,
            },
            RequestError::Panicked { message, attempts } => Error::Panicked {
                request_id: request_id.clone(),
                message,
                attempts,
            },
            RequestError::Internal(m) => Error::Internal(format!("request {request_id}: {m}")),
        }
    }

    /// A short, fixed word for what went wrong, fit for a metric label or the
    /// OpenTelemetry `error.type` attribute: the failure's category
    /// (`rate_limited`, `server_error`, ...) when there is one, else
    /// `breaker_rejected`, `overloaded` (a deployment's adaptive concurrency
    /// limit had no slot: at its limit, its queue full or the wait too long),
    /// `throttled` (client-side adaptive throttling shed the call),
    /// `deadline_exceeded`, `panicked`, `group_exhausted`, `client_overloaded`
    /// (the client's own `max_in_flight`), `invalid_request`,
    /// `unknown_provider`, `invalid_model_id`, `config` or `internal`.
    ///
    /// ```
    /// use steer_llm::{limit::LimitRejection, runtime::Rejection};
    /// let e = steer_llm::Error::Overloaded { max_in_flight: 8 };
    /// assert_eq!(e.kind(), "client_overloaded");
    /// let full = steer_llm::Error::Rejected {
    ///     provider: "openai".into(),
    ///     request_id: "req-1".into(),
    ///     rejection: Rejection::ConcurrencyLimit(LimitRejection::QueueFull { limit: 4, queue: 100 }),
    ///     attempts: 0,
    ///     last: None,
    ///     partial: None,
    /// };
    /// assert_eq!(full.kind(), "overloaded");
    /// assert!(full.to_string().starts_with(
    ///     "openai: not admitted by its concurrency limit (overloaded: all 4 slots"
    /// ));
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Provider(e) => crate::classify::classify(e).category.as_str(),
            Error::Failed(f) => f.failure.category.as_str(),
            Error::Rejected { rejection, .. } => match rejection {
                Rejection::ConcurrencyLimit(_) => "overloaded",
                Rejection::Throttled => "throttled",
                _ => "breaker_rejected",
            },
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

    /// Whether steer refused the request because too much was at once: the
    /// client's own `max_in_flight` ([`Error::Overloaded`]), or a deployment's
    /// adaptive concurrency limit (no slot, its queue full, or the wait too
    /// long: [`Error::Rejected`] with [`Rejection::ConcurrencyLimit`], which
    /// names the limit). One check for "back off, then try again".
    ///
    /// ```
    /// use steer_llm::{limit::LimitRejection, runtime::Rejection, Error};
    /// assert!(Error::Overloaded { max_in_flight: 8 }.is_overloaded());
    /// let full = Error::Rejected {
    ///     provider: "openai".into(),
    ///     request_id: "req-1".into(),
    ///     rejection: Rejection::ConcurrencyLimit(LimitRejection::QueueFull { limit: 4, queue: 100 }),
    ///     attempts: 0,
    ///     last: None,
    ///     partial: None,
    /// };
    /// assert!(full.is_overloaded());
    /// let open = Error::Rejected {
    ///     rejection: Rejection::ForcedOpen,
    ///     provider: "openai".into(), request_id: "req-2".into(), attempts: 0, last: None, partial: None,
    /// };
    /// assert!(!open.is_overloaded(), "a breaker's rejection is not an overload");
    /// ```
    pub fn is_overloaded(&self) -> bool {
        matches!(
            self,
            Error::Overloaded { .. }
                | Error::Rejected {
                    rejection: Rejection::ConcurrencyLimit(_),
                    ..
                }
        )
    }

    /// The classified failure behind this error, if there is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Error::Failed(f) => Some(&f.failure),
            Error::Rejected { last, .. } | Error::DeadlineExceeded { last, .. } => last.as_deref(),
            _ => None,
        }
    }

    /// The budget that refused the request's next attempt (category
    /// `budget_exceeded`): which, what it had spent and held, what was
    /// asked (its `remaining()` is what was left).
    pub fn budget_refusal(&self) -> Option<&steer_actors::budget::Refusal> {
        match self {
            Error::Failed(f) => match f.last.as_ref().map(|e| &e.kind) {
                Some(crate::provider_error::FailureKind::Budget { refusal }) => Some(refusal),
                _ => None,
            },
            _ => None,
        }
    }

    /// What the request spent before it failed (a failed request's; the
    /// spend of a stream that failed is also `SteerStream::spend()`).
    pub fn spend(&self) -> Option<&crate::model::Spend> {
        match self {
            Error::Failed(f) => Some(&f.spend),
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

/// What is wrong with a configuration, by where it is wrong.
///
/// ```
/// use steer_llm::{ConfigError, Error, OpenAiCompatible};
/// let e = OpenAiCompatible::custom("local", "not a url").build().unwrap_err();
/// assert!(matches!(e, Error::Config(ConfigError::Endpoint { ref provider, .. }) if provider == "local"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting's value is out of its range or malformed (a breaker's
    /// threshold, a retry policy, the retry budget's ratio, a feature not built).
    #[error("{setting}: {reason}")]
    Setting {
        /// The setting.
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A deployment's endpoint cannot be used: no base URL, one that is not an
    /// http(s) URL, a key a header cannot carry, a key over clear text.
    #[error("provider {provider:?}: {reason}")]
    Endpoint {
        /// The deployment's name.
        provider: String,
        /// What is wrong.
        reason: String,
    },
    /// A model group is invalid (no target, a target no provider serves).
    #[error("group {group:?}: {reason}")]
    Group {
        /// The group.
        group: String,
        /// What is wrong.
        reason: String,
    },
    /// The configuration file cannot be read or parsed (the reason names the
    /// line and the key).
    #[error("{source_name}: {reason}")]
    File {
        /// The file's path, or `configuration` for text.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// The client has no provider to send to.
    #[error("no provider is registered")]
    NoProvider,
    /// Something the client needs could not start (its actor system, its HTTP
    /// client).
    #[error("{0}")]
    Start(String),
}

impl ConfigError {
    /// A setting's error.
    pub(crate) fn setting(setting: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Config(ConfigError::Setting {
            setting: setting.into(),
            reason: reason.into(),
        })
    }

    /// An endpoint's error.
    pub(crate) fn endpoint(provider: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Config(ConfigError::Endpoint {
            provider: provider.into(),
            reason: reason.into(),
        })
    }

    /// A group's error.
    pub(crate) fn group(group: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Config(ConfigError::Group {
            group: group.into(),
            reason: reason.into(),
        })
    }

    /// A configuration file's error.
    pub(crate) fn file(source_name: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Config(ConfigError::File {
            source_name: source_name.into(),
            reason: reason.into(),
        })
    }

    /// What failed to start.
    pub(crate) fn start(what: impl Into<String>) -> Error {
        Error::Config(ConfigError::Start(what.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_becomes_its_typed_error_with_the_partial_and_is_counted_by_its_kind() {
        use steer_actors::lifecycle::shell::Stop;
        use steer_actors::retry::RequestEnd;
        let id = RequestId::from("r");
        let stopped = |why| RequestError::<ProviderError>::stopped(why, 2, None);
        let e = stopped(Stop::DeadlineExceeded);
        assert_eq!(e.end().outcome(), "deadline_exceeded");
        let e = Error::from_request(e, &id, "p", Some("ab".into()));
        assert!(
            matches!(e, Error::DeadlineExceeded { attempts: 2, ref partial, .. } if partial.as_deref() == Some("ab"))
        );
        let e = stopped(Stop::Rejected(Rejection::ProbesBusy));
        assert_eq!(e.end(), RequestEnd::Rejected);
        let e = Error::from_request(e, &id, "p", None);
        assert!(matches!(e, Error::Rejected { ref provider, .. } if provider == "p"));
        let e = Error::from_request(stopped(Stop::Internal("gone")), &id, "p", None);
        assert_eq!(e.kind(), "internal");
        assert!(e.to_string().contains("request r: gone"), "{e}");
    }
}
