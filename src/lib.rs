#![warn(missing_docs)]
//! steer: LLM provider calls that survive rate limits, overloads, dropped connections
//! and streams that die halfway.
//!
//! This crate holds the provider side: the request model ([`model`]), the wire formats
//! of OpenAI, Anthropic and xAI ([`wire`]), the HTTP provider clients ([`provider`]),
//! the fault-injecting mock provider (`mock`) and the `steer` CLI. The reliability
//! actors live in the `steer-actors` crate.
//!
//! Lean by default: `steer-llm = "0.1"` alone compiles no HTTP server, no CLI
//! parser and no log subscriber. Features: `mock` (the mock provider, an HTTP
//! server on 127.0.0.1: turn it on in your dev-dependencies), `http-endpoint`
//! (`runtime::http`: `GET /metrics` and `GET /reliability`), `cli` (the `steer`
//! binary), `shared-redis` (state shared across replicas), `dev` (the first three).
//!
//! ```no_run
//! use steer_llm::{ChatRequest, Providers};
//! # async fn run() -> Result<(), steer_llm::Error> {
//! let providers = Providers::from_env()?;
//! let req = ChatRequest::new("openai/gpt-4o-mini")?.user("Say hi");
//! let resp = providers.generate(&req).await?;
//! println!("{}", resp.text);
//! # Ok(()) }
//! ```

pub mod budget;
pub mod classify;
pub mod config;
pub mod content;
pub mod continue_message;
pub mod cost;
#[cfg(feature = "mock")]
pub mod drill;
pub mod error;
mod fold;
#[cfg(feature = "mock")]
pub mod mock;
pub mod model;
pub mod observe;
pub mod prefill;
pub mod provider;
pub mod provider_error;
pub mod reasoning;
pub mod route;
pub mod runtime;
pub mod secret;
pub mod shared;
pub mod stream;
pub mod tokens;
pub mod tools;
pub mod wire;

pub use async_trait::async_trait;
pub use content::{ImageSource, Part};
pub use error::{ConfigError, Error, FailedRequest, FailureKind, ProviderError, TransportKind};
pub use model::{
    ChatRequest, ChatResponse, FinishReason, InvalidModelId, Message, ModelId, ProviderEvent,
    RequestId, ResumePoint, ResumedBy, Role, StreamEvent, Usage,
};
pub use prefill::Prefill;
pub use provider::{Anthropic, EventStream, OpenAiCompatible, Provider, Providers};
pub use reasoning::{Effort, Reasoning, ReasoningFamily};
pub use route::{Group, Selection};
pub use runtime::{Breakers, Client, ClientBuilder, Generate, GenerateOptions, Overload};
pub use secret::ApiKey;
/// Concurrency that adapts per deployment (see [`ClientBuilder::adaptive_limit`]).
pub use steer_actors::limit;
pub use steer_actors::{
    Backoff, BreakerConfig, BreakerState, BudgetConfig, Category, Failure, GiveUp, Jitter, Phase,
    RateLimitHints, RetryPolicy, ThrottleConfig,
};
pub use stream::{Continuation, Divergence, SteerStream};
pub use tools::{OutputError, ResponseFormat, Tool, ToolCall, ToolChoice, ToolResult};

/// The README's examples, compiled as doc tests so that they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
