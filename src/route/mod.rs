//! Routing through model groups, without a runtime: the group and its rules
//! ([`group`]), each target's load ([`Load`]), the route machine that carries one
//! request or stream through a group ([`machine::Route`]), and the handle through
//! which a route reaches its targets (`Targets`). The route actor and the stream
//! actor (`runtime`) both run a [`machine::Route`].

mod ejected;
pub mod group;
pub mod hedge;
mod load;
pub mod machine;
pub mod outliers;
mod targets;

pub(crate) use ejected::{EjectedFlags, LegEnded};
pub use group::{Group, GroupTarget, Move, Selection, GROUP_PROVIDER};
pub use load::Load;
pub(crate) use load::{failure_sample, stream_sample, InFlight};
pub use machine::{Next, Route, Verdict};
pub(crate) use targets::Targets;
