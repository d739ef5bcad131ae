//! steer-actors: the reliability actors of steer and the domain logic they own.
//!
//! This crate knows no provider and no HTTP: it decides from a classified
//! [`Failure`] (category, retryability, health signal, server-directed wait), which
//! the provider side (`steer-llm`) builds from raw responses.

pub mod failure;

pub use failure::{Category, Failure, Phase, RateLimitHints};
