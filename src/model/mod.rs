//! The request model: model ids, messages, requests, responses and stream events.
//!
//! These types are provider-neutral. Each provider translates them into its own
//! wire format (see [`crate::wire`]) and back.

mod events;
mod id;
mod rate_floor;
mod request;
mod response;
mod resume;
mod spend;
mod usd;

pub use events::{ProviderEvent, StreamEvent};
pub use id::{InvalidModelId, ModelId, RequestId};
pub use rate_floor::RateFloor;
pub use request::{ChatRequest, ExtraHeaders, Message, Role, TOKEN_LIMIT_FIELDS};
pub use response::{
    CacheAccounting, ChatResponse, FinishReason, InferenceGeo, RouteStep, ServiceTier, Usage,
};
pub use resume::{ResumePoint, ResumedBy};
pub use spend::{AttemptSpend, Fate, Spend, MAX_LISTED};
pub use usd::Usd;
