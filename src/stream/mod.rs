//! Streams: the stream actor that runs one streamed request, the reader that
//! turns each attempt's events into the consumer's, the delivery state and its
//! checkpoint, the seam between an attempt and its continuation, the tool calls
//! a stream carries, and [`SteerStream`], what the consumer holds.
//!
//! The life of one stream (ARCHITECTURE.md, "The life of one stream"): the
//! consumer's first poll starts the stream actor; each attempt is read by the
//! consumer's own task (the reader) with the delivery state lent to it; on a
//! break after content the actor asks for a [`continuation`] and splices it at
//! a verified [`checkpoint::Seam`].

mod abandoned;
pub(crate) mod actor;
mod budget_cap;
pub(crate) mod calls;
pub mod checkpoint;
pub mod continuation;
pub(crate) mod delivery;
mod ending;
pub(crate) mod machine;
pub(crate) mod race;
pub mod rate;
pub(crate) mod reader;
mod reasoning;
mod settings;
mod steer_stream;

pub use continuation::{Continuation, Divergence};
pub use steer_stream::SteerStream;
