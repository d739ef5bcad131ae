//! The life of a request as plain state machines, without a runtime: the
//! actors own one and run the steps it gives.
//!
//! - [`attempts`]: one request's attempts at one target (permit, attempt,
//!   decision, backoff), for the request actor and the stream actor alike.

pub mod attempts;

pub use attempts::{Attempts, Phase, Run, Step, Stop};
