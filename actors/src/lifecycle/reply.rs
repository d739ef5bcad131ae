//! What a request actor is given and what it answers: the attempt it runs
//! ([`MakeAttempt`]), its reply ([`RequestResult`]: [`Completed`] or a
//! [`RequestError`]), and the message that cancels it ([`Cancel`]).

use std::future::Future;

use actix::prelude::*;

use crate::breaker::Rejection;
use crate::failure::{Category, Failure};
use crate::lifecycle::attempts::Stop;
use crate::retry::{GiveUp, RequestEnd};
use crate::telemetry::meters::TargetMeters;

/// What makes a request's attempts: given the attempt number (1-based) and the
/// request's metric series (its provider and model, resolved once a request),
/// a future of the value or of the classified failure with the raw error.
///
/// Any such closure is one, its future kept as it is (inline in what the
/// actor spawns, no box of its own).
///
/// ```
/// use steer_actors::lifecycle::reply::{AttemptError, MakeAttempt};
/// use steer_actors::telemetry::meters::{Meters, TargetMeters};
///
/// fn attempts() -> impl MakeAttempt<u32, ()> {
///     |number: u32, _: &TargetMeters| async move { Ok::<_, AttemptError<()>>(number * 10) }
/// }
/// let mut make = attempts();
/// let target = Meters::new().target_meters("p", "m");
/// let value = futures::executor::block_on(make.attempt(2, &target));
/// assert_eq!(value.ok(), Some(20));
/// ```
pub trait MakeAttempt<T, E>: Send + Unpin + 'static {
    /// An attempt in flight.
    type Future: Future<Output = Result<T, AttemptError<E>>> + Send + 'static;

    /// Starts attempt `number` of the request whose series are `target`.
    fn attempt(&mut self, number: u32, target: &TargetMeters) -> Self::Future;
}

impl<T, E, F, Fut> MakeAttempt<T, E> for F
where
    F: FnMut(u32, &TargetMeters) -> Fut + Send + Unpin + 'static,
    Fut: Future<Output = Result<T, AttemptError<E>>> + Send + 'static,
{
    type Future = Fut;

    fn attempt(&mut self, number: u32, target: &TargetMeters) -> Fut {
        self(number, target)
    }
}

/// A failed attempt: the classified failure and the raw error. Boxed, so that the
/// success path moves small values.
pub type AttemptError<E> = Box<(Failure, E)>;

/// A successful request.
#[derive(Debug)]
pub struct Completed<T> {
    /// The value.
    pub value: T,
    /// Attempts made.
    pub attempts: u32,
}

/// Why a request failed for good.
#[derive(Debug)]
pub enum RequestError<E> {
    /// The last attempt failed and no retry was allowed.
    Failed {
        /// The last failure.
        failure: Failure,
        /// Why it was not retried.
        reason: GiveUp,
        /// Attempts made.
        attempts: u32,
        /// The raw error of the last attempt, when there is one.
        last: Option<E>,
    },
    /// The breaker did not admit the call.
    Rejected {
        /// Why.
        rejection: Rejection,
        /// Attempts made before.
        attempts: u32,
        /// The failure before the rejection, if there was an attempt.
        last: Option<Failure>,
    },
    /// The request's deadline passed.
    DeadlineExceeded {
        /// Attempts made.
        attempts: u32,
        /// The last failure, if any.
        last: Option<Failure>,
    },
    /// Provider or user code panicked during an attempt.
    Panicked {
        /// The panic message.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// An actor the request depends on is gone.
    Internal(String),
}

impl<E> RequestError<E> {
    /// The error of a request that stopped for `why` after `attempts`, the
    /// last failure (if any) kept.
    pub fn stopped(why: Stop, attempts: u32, last: Option<Failure>) -> Self {
        match why {
            Stop::DeadlineExceeded => RequestError::DeadlineExceeded { attempts, last },
            Stop::Rejected(rejection) => RequestError::Rejected {
                rejection,
                attempts,
                last,
            },
            Stop::Internal(message) => RequestError::Internal(message.into()),
        }
    }

    /// How a request that ends with this error is counted.
    pub fn end(&self) -> RequestEnd {
        let category = match self {
            RequestError::Failed { failure, .. } => failure.category,
            RequestError::Rejected { .. } => return RequestEnd::Rejected,
            RequestError::DeadlineExceeded { .. } => Category::DeadlineExceeded,
            RequestError::Panicked { .. } | RequestError::Internal(_) => Category::Unknown,
        };
        RequestEnd::Failed { category }
    }
}

/// The reply of a request actor. The error is boxed, so that the success path
/// moves small values.
pub type RequestResult<T, E> = Result<Completed<T>, Box<RequestError<E>>>;

/// Cancels a request (its caller went away).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Cancel;
