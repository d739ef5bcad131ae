//! How one attempt ended, as its shell records it: what the metrics count it
//! under, and what it tells the deployment's adaptive limit and throttle.
//!
//! ```
//! use steer_actors::lifecycle::AttemptEnd;
//! use steer_actors::limit::Signal;
//! use steer_actors::Category;
//! assert_eq!(AttemptEnd::Failed(Category::RateLimited).outcome(), "rate_limited");
//! assert_eq!(AttemptEnd::Failed(Category::Timeout).limit_signal(None), Signal::Drop);
//! assert!(!AttemptEnd::Failed(Category::Overloaded).accepted());
//! ```

use std::time::Duration;

use crate::failure::Category;
use crate::limit::Signal;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    /// It succeeded.
    Success,
    /// It failed with this category.
    Failed(Category),
    /// Its caller (or a race it lost) cancelled it.
    Cancelled,
    /// Code it ran panicked.
    Panicked,
    /// A continuation differed from what it continues (a stream's).
    Diverged,
}

impl AttemptEnd {
    /// The word it is counted and traced under: `success`, `cancelled`,
    /// `panicked`, `diverged`, or the failure's category.
    pub fn outcome(self) -> &'static str {
        match self {
            AttemptEnd::Success => "success",
            AttemptEnd::Failed(c) => c.as_str(),
            AttemptEnd::Cancelled => "cancelled",
            AttemptEnd::Panicked => "panicked",
            AttemptEnd::Diverged => "diverged",
        }
    }

    /// What it says about capacity to the adaptive limit: a clean success
    /// (with its time to first token), a drop (a rate limit, an overload, a
    /// timeout, a stream below its floor), or nothing (a cancelled attempt
    /// never teaches a false success or failure).
    pub fn limit_signal(self, ttft: Option<Duration>) -> Signal {
        use Category::*;
        match self {
            AttemptEnd::Success => Signal::Clean { ttft },
            AttemptEnd::Failed(RateLimited | Overloaded | Timeout | SlowStream) => Signal::Drop,
            _ => Signal::Ignore,
        }
    }

    /// Whether the server accepted the call (anything but a rate limit or an
    /// overload), for adaptive throttling.
    pub fn accepted(self) -> bool {
        !matches!(
            self,
            AttemptEnd::Failed(Category::RateLimited | Category::Overloaded)
        )
    }
}
