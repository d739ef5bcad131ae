//! What a streamed response yields, event by event: what a provider's attempt
//! yields ([`ProviderEvent`]) and what a caller gets ([`StreamEvent`], with the
//! seams of resumption and failover).

use serde::{Deserialize, Serialize};

use super::id::RequestId;
use super::response::{FinishReason, RouteStep, Usage};
use super::resume::{ResumePoint, ResumedBy};
use crate::tools::ToolCall;

/// One event of a streamed response.
///
/// A successful stream is `Start`, any number of `TextDelta` and `Usage`, then
/// exactly one `Complete`. Later releases add events (resumption and failover
/// seams), hence `#[non_exhaustive]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StreamEvent {
    /// Response headers arrived.
    Start {
        /// steer's id of the request.
        request_id: RequestId,
        /// The provider answering.
        provider: String,
        /// The model answering.
        model: String,
        /// The provider's id of the request, if sent.
        provider_request_id: Option<String>,
    },
    /// A piece of generated text.
    TextDelta {
        /// The text.
        text: String,
        /// Where it starts in the whole response text, in characters (Unicode scalar values).
        offset: usize,
    },
    /// Usage so far (cumulative, not an increment).
    Usage(Usage),
    /// A continuation attempt takes over here after the stream broke: the text
    /// before and after the seam is one response, with nothing lost or repeated.
    Resumed {
        /// The attempt that continues (2 for the first retry).
        attempt: u32,
        /// Where the seam is in the response text, in characters.
        offset: usize,
        /// The provider continuing.
        provider: String,
        /// How: a continuation request, or the server's own replay.
        #[serde(default)]
        by: ResumedBy,
    },
    /// A tool call begins (its arguments follow as `ToolCallDelta`s).
    ToolCallStart {
        /// Its position among the response's tool calls (0 for the first).
        index: usize,
        /// The provider's id of the call.
        id: String,
        /// The tool.
        name: String,
    },
    /// A piece of a tool call's argument text.
    ToolCallDelta {
        /// The call's index.
        index: usize,
        /// The piece.
        arguments: String,
    },
    /// A tool call is complete: its arguments, parsed. Delivered exactly once per call.
    ToolCall {
        /// The call's index.
        index: usize,
        /// The call.
        call: ToolCall,
    },
    /// A seam: the stream broke while this call's arguments were arriving, and the
    /// continuation makes the call again from its start. Discard what arrived for
    /// it (its `ToolCallStart` and deltas); its complete `ToolCall` follows.
    ToolCallDiscarded {
        /// The call's index.
        index: usize,
    },
    /// A seam where a model group's next target takes over the stream: the text
    /// before and after it is one response, nothing lost or repeated.
    FailedOver {
        /// The attempt that continues.
        attempt: u32,
        /// Where the seam is in the response text, in characters.
        offset: usize,
        /// The target taking over, `deployment/model`.
        target: String,
    },
    /// The targets a grouped stream tried and how each ended (sent once, just
    /// before `Complete`).
    Route {
        /// The targets, in order; the last one answered.
        steps: Vec<RouteStep>,
    },
    /// A piece of the model's readable reasoning (Anthropic's thinking, the
    /// Responses API's reasoning summary), as it arrives; not part of the text.
    ReasoningDelta {
        /// The block's position among the response's reasoning blocks.
        index: usize,
        /// The piece.
        text: String,
    },
    /// A reasoning block is complete, exactly as its server sent it (with its
    /// signature or encrypted content): keep it for the history. Only blocks
    /// bound to the request's own conversation come so; one a continuation
    /// made after a break (bound to the continuation's) comes as text alone.
    Reasoning {
        /// Its position among the response's reasoning blocks.
        index: usize,
        /// The block.
        block: crate::reasoning::Reasoning,
    },
    /// A seam: the stream broke while this reasoning block was arriving (or
    /// before any text came after it), and the model reasons again. Discard
    /// what arrived for it; the block that replaces it comes with this index.
    ReasoningDiscarded {
        /// The block's index.
        index: usize,
    },
    /// The response starts again from the beginning: discard the text received so far.
    Restarted {
        /// The attempt that starts again.
        attempt: u32,
    },
    /// What the stream spent, every attempt's (retries, continuations, a
    /// group's targets, hedges that lost) at the client's prices: sent once,
    /// just before `Complete`.
    Spend(Box<super::Spend>),
    /// The stream finished successfully.
    Complete {
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Final usage, when the provider sent it.
        usage: Option<Usage>,
    },
}

/// One event of one provider attempt's stream, as a [`Provider`](crate::Provider)
/// yields it: the caller never sees these, the stream actor turns them into
/// [`StreamEvent`]s (offsets across attempts, seams, usage summed).
///
/// An attempt's stream is `Start`, any number of deltas, tool calls, `Usage` and
/// `ResponseId`, then exactly one `Complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderEvent {
    /// Response headers arrived.
    Start {
        /// steer's id of the request.
        request_id: RequestId,
        /// The provider answering.
        provider: String,
        /// The model answering.
        model: String,
        /// The provider's id of the request, if sent.
        provider_request_id: Option<String>,
    },
    /// A piece of generated text.
    TextDelta {
        /// The text.
        text: String,
        /// Where it starts in this attempt's text, in characters.
        offset: usize,
    },
    /// Usage of this attempt so far (cumulative).
    Usage(Usage),
    /// A tool call begins (its arguments follow as `ToolCallDelta`s).
    ToolCallStart {
        /// Its position among the attempt's tool calls (0 for the first).
        index: usize,
        /// The provider's id of the call.
        id: String,
        /// The tool.
        name: String,
    },
    /// A piece of a tool call's argument text.
    ToolCallDelta {
        /// The call's index.
        index: usize,
        /// The piece.
        arguments: String,
    },
    /// A tool call is complete: its arguments, parsed.
    ToolCall {
        /// The call's index.
        index: usize,
        /// The call.
        call: ToolCall,
    },
    /// A piece of readable reasoning of the attempt's block `index`.
    ReasoningDelta {
        /// The block's position among the attempt's reasoning blocks.
        index: usize,
        /// The piece.
        text: String,
    },
    /// The attempt's reasoning block `index` is complete, as sent.
    Reasoning {
        /// The block's position among the attempt's reasoning blocks.
        index: usize,
        /// The block.
        block: crate::reasoning::Reasoning,
    },
    /// The response's own id in its body (`chatcmpl-...`, `msg_...`), when the
    /// provider sends one: once it is known. The client records
    /// it on the request's span (`gen_ai.response.id`).
    ResponseId {
        /// The id.
        id: String,
    },
    /// The attempt may be resumed on the server from here (a background
    /// response of the Responses API): everything before it was yielded.
    Resumable(ResumePoint),
    /// The attempt ends while its server-side response still runs (a
    /// background response cut at a client-side stop sequence): the client
    /// cancels it, so that it stops billing.
    LeftRunning {
        /// The response's id.
        response_id: String,
    },
    /// The attempt finished successfully.
    Complete {
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Final usage, when the provider sent it.
        usage: Option<Usage>,
    },
}
