//! A stream's budget cap, the reader's side: the outputs an attempt delivers
//! are counted (estimated as they arrive) against what its hold holds; before
//! a delta would pass it, the hold grows (the delta waits for the ledger's
//! answer; past three quarters, growth is asked ahead without waiting). A
//! growth refused ends the stream there, complete with
//! `FinishReason::Budget`: the reply so far is kept, and no more than the
//! delta that met the cap was generated past it.

use std::future::Future;
use std::pin::Pin;

use crate::budget::gate::Grower;
use crate::cost::estimate;
use crate::model::ProviderEvent;
use steer_actors::budget::Refusal;

/// Tokens a growth adds at least.
pub const MIN_STEP: u64 = 256;

type Growing = Pin<Box<dyn Future<Output = Result<u64, Refusal>> + Send>>;

/// The cap of one attempt (see the module).
pub(crate) struct BudgetCap {
    /// Outputs the attempt delivered, estimated.
    pub delivered: u64,
    /// A growth in flight.
    growing: Option<Growing>,
    /// A growth asked ahead was refused: no more are asked ahead (a delta
    /// that does not fit still asks).
    pub ahead_refused: bool,
}

/// What an event means for the cap.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fits {
    /// It fits what is held (counted delivered).
    Yes,
    /// It does not: the hold must grow first.
    No,
}

impl BudgetCap {
    pub(crate) fn new() -> Self {
        BudgetCap {
            delivered: 0,
            growing: None,
            ahead_refused: false,
        }
    }

    /// The outputs `event` carries, estimated for `model`.
    pub(crate) fn tokens(model: &str, event: &ProviderEvent) -> u64 {
        match event {
            ProviderEvent::TextDelta { text, .. } | ProviderEvent::ReasoningDelta { text, .. } => {
                estimate::text_tokens(model, text)
            }
            ProviderEvent::ToolCallDelta { arguments, .. } => {
                estimate::text_tokens(model, arguments)
            }
            _ => 0,
        }
    }

    /// Whether `tokens` more fit `held`; counted when they do. Past three
    /// quarters of it, `hold` (when given) starts growing ahead.
    pub(crate) fn fits(&mut self, tokens: u64, held: u64) -> Fits {
        let Some(after) = self.delivered.checked_add(tokens) else {
            return Fits::No;
        };
        if tokens > 0 && after > held {
            return Fits::No;
        }
        self.delivered = after;
        Fits::Yes
    }

    /// Whether a growth should be asked ahead: past three quarters held.
    pub(crate) fn ahead(&self, held: u64) -> bool {
        !self.ahead_refused && self.growing.is_none() && self.delivered > held / 4 * 3
    }

    /// Whether a growth is in flight.
    pub(crate) fn growing(&self) -> bool {
        self.growing.is_some()
    }

    /// Grows a hold of `held` outputs by at least enough for `tokens` more
    /// (nothing, when asked ahead), and by half of it besides where the
    /// budgets have room.
    pub(crate) fn grow(&mut self, grower: Grower, held: u64, tokens: u64) {
        let wanted = (held / 2).max(MIN_STEP).max(tokens);
        self.growing = Some(Box::pin(grower.grow(wanted, tokens)));
    }

    /// The growth in flight, polled: the outputs it granted, once it answers.
    pub(crate) fn poll_growth(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<u64, Refusal>>> {
        let Some(growing) = self.growing.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        match growing.as_mut().poll(cx) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(done) => {
                self.growing = None;
                std::task::Poll::Ready(Some(done))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_fits_until_the_hold_is_full_and_growth_is_asked_ahead() {
        let mut cap = BudgetCap::new();
        assert_eq!(cap.fits(70, 100), Fits::Yes);
        assert!(!cap.ahead(100));
        assert_eq!(cap.fits(10, 100), Fits::Yes);
        assert!(cap.ahead(100), "past three quarters");
        assert_eq!(cap.fits(21, 100), Fits::No);
        assert_eq!(cap.delivered, 80, "not counted until it fits");
        assert_eq!(cap.fits(20, 100), Fits::Yes);
        assert_eq!(cap.fits(0, 100), Fits::Yes, "nothing always fits");
        assert_eq!(cap.fits(u64::MAX, u64::MAX), Fits::No);
    }

    #[test]
    fn only_content_counts() {
        let text = ProviderEvent::TextDelta {
            text: "a b c".into(),
            offset: 0,
        };
        assert_eq!(BudgetCap::tokens("claude-x", &text), 3);
        let usage = ProviderEvent::Usage(crate::model::Usage::new(5, 5));
        assert_eq!(BudgetCap::tokens("claude-x", &usage), 0);
    }
}
