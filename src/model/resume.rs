//! Where a server-side resume picks a stream up, and how a stream was resumed.

use serde::{Deserialize, Serialize};

/// A point a broken stream can be resumed from on the server: a background
/// response of the Responses API, read up to and including the event numbered
/// `after`, with nothing held back and no tool call open there.
///
/// The Responses decoder reports one ([`crate::ProviderEvent::Resumable`])
/// after each event that ends in such a state; the stream resumes from the
/// last with `GET /v1/responses/{id}?stream=true&starting_after={after}`.
///
/// ```
/// use steer_llm::ResumePoint;
/// let point = ResumePoint::new("resp_1", 7);
/// assert_eq!((point.response_id.as_str(), point.after, point.calls), ("resp_1", 7, 0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// The response's id (`resp_...`).
    pub response_id: String,
    /// The sequence number of the last event read.
    pub after: u64,
    /// Tool calls the response began before it (the next is numbered so).
    pub calls: usize,
    /// Reasoning items the response began before it.
    #[serde(default)]
    pub reasoning: usize,
    /// Whether the reply so far is a refusal.
    pub refusal: bool,
}

impl ResumePoint {
    /// The point after event `after` of response `response_id`, before any call.
    pub fn new(response_id: impl Into<String>, after: u64) -> Self {
        ResumePoint {
            response_id: response_id.into(),
            after,
            calls: 0,
            reasoning: 0,
            refusal: false,
        }
    }
}

/// How a broken stream went on, in its [`crate::StreamEvent::Resumed`] seam.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResumedBy {
    /// A continuation request (a prefill or the "continue" message) behind a
    /// verified seam: the tokens before it are sent again as input.
    #[default]
    Continuation,
    /// The server replayed its stored response after the last event received
    /// (the Responses API's background mode): nothing generated again, nothing
    /// spliced.
    Server,
    /// The server refused the resume (`refusal` says why: a response past its
    /// resume window, one stuck in `queued`, one it no longer has): a
    /// continuation request took over instead, behind a verified seam.
    ContinuationAfterRefusal {
        /// The server's answer, or what failed.
        refusal: String,
    },
}
