//! The life of a request as plain state machines, without a runtime: the
//! actors own one and run the steps it gives.
//!
//! - [`attempts`]: one request's attempts at one target (permit, attempt,
//!   decision, backoff), for the request actor and the stream actor alike.
//! - [`shell`]: what carries out an [`Attempts`]' steps inside an actor
//!   (messages to the breaker and the coordinator, actor timers, meters, spans).
//! - [`request`]: the supervised request actor, a shell around one; [`reply`]:
//!   what it is given and what it answers.
//! - [`attempt_end`]: how an attempt ended, for its meters, limit and throttle.

pub mod attempt_end;
pub mod attempts;
pub mod reply;
pub mod request;
pub mod shell;

pub use attempt_end::AttemptEnd;
pub use attempts::{Attempts, Phase, Run, Step, Stop};
