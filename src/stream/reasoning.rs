//! A stream's reasoning blocks across attempts: each numbered for the consumer
//! once, a block broken off discarded and thought again, and the whole blocks
//! of the turn kept for a continuation's prefill (a server with thinking on
//! takes a prefill only behind the thinking blocks of the turn, unchanged).
//!
//! Only the turn's blocks reach the consumer whole (`Reasoning`): a block a
//! continuation made is bound to the continuation's conversation (the
//! "continue" message), which the consumer's history will not hold, so a
//! server would refuse it there. Its text still arrives (`ReasoningDelta`).

use crate::model::StreamEvent;
use crate::reasoning::Reasoning;

/// The reasoning blocks of one stream.
#[derive(Debug, Default)]
pub(crate) struct StreamReasoning {
    /// Whole blocks of the turn (from attempts that did not continue one): a
    /// prefill continuation carries them, unchanged.
    turn: Vec<Reasoning>,
    /// The consumer's index of the next block.
    next: usize,
    /// This attempt's blocks: its index, the consumer's, and whether whole.
    attempt: Vec<(usize, usize, bool)>,
    /// Whether the attempt continues delivered content.
    continuing: bool,
}

impl StreamReasoning {
    /// A new attempt starts.
    pub fn begin_attempt(&mut self, continuing: bool) {
        self.attempt.clear();
        self.continuing = continuing;
    }

    /// The consumer's index of the attempt's block `index`.
    fn index(&mut self, index: usize) -> usize {
        if let Some((_, at, _)) = self.attempt.iter().find(|(i, _, _)| *i == index) {
            return *at;
        }
        let at = self.next;
        self.next = self.next.saturating_add(1);
        self.attempt.push((index, at, false));
        at
    }

    /// A piece of the attempt's block `index`.
    pub fn delta(&mut self, index: usize, text: String) -> StreamEvent {
        StreamEvent::ReasoningDelta {
            index: self.index(index),
            text,
        }
    }

    /// The attempt's block `index` is whole: the consumer's event, unless a
    /// continuation made it (then it is bound to another conversation).
    pub fn whole(&mut self, index: usize, block: Reasoning) -> Option<StreamEvent> {
        let at = self.index(index);
        if let Some(entry) = self.attempt.iter_mut().find(|(i, _, _)| *i == index) {
            entry.2 = true;
        }
        if self.continuing {
            return None;
        }
        self.turn.push(block.clone());
        Some(StreamEvent::Reasoning { index: at, block })
    }

    /// The whole blocks of the turn, for a prefill.
    pub fn turn(&self) -> &[Reasoning] {
        &self.turn
    }

    /// The attempt broke. What the consumer discards: the block it broke in,
    /// or, when `restarts` (nothing but reasoning came, and the request is
    /// asked again), every block of the attempt. Their indices are given
    /// again to the blocks that replace them.
    pub fn broken(&mut self, restarts: bool) -> Vec<StreamEvent> {
        let discarded: Vec<(usize, usize, bool)> = self
            .attempt
            .iter()
            .copied()
            .filter(|(_, _, whole)| restarts || !whole)
            .collect();
        if let Some(first) = discarded.iter().map(|(_, at, _)| *at).min() {
            self.next = first;
        }
        if restarts {
            let whole = self.attempt.iter().filter(|(_, _, w)| *w).count();
            if !self.continuing {
                let keep = self.turn.len().saturating_sub(whole);
                self.turn.truncate(keep);
            }
        }
        self.attempt.clear();
        discarded
            .into_iter()
            .map(|(_, index, _)| StreamEvent::ReasoningDiscarded { index })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str) -> Reasoning {
        Reasoning::anthropic(
            serde_json::json!({"type": "thinking", "thinking": text, "signature": "s"}),
        )
    }

    #[test]
    fn a_block_broken_off_is_discarded_and_its_index_given_again() {
        let mut r = StreamReasoning::default();
        r.begin_attempt(false);
        assert!(matches!(
            r.delta(0, "a".into()),
            StreamEvent::ReasoningDelta { index: 0, .. }
        ));
        assert!(matches!(
            r.whole(0, block("a")),
            Some(StreamEvent::Reasoning { index: 0, .. })
        ));
        assert!(matches!(
            r.delta(1, "b".into()),
            StreamEvent::ReasoningDelta { index: 1, .. }
        ));
        // Text came: only the block it broke in goes.
        assert_eq!(
            r.broken(false),
            vec![StreamEvent::ReasoningDiscarded { index: 1 }]
        );
        assert_eq!(r.turn().len(), 1);
        r.begin_attempt(true);
        assert!(
            r.whole(0, block("c")).is_none(),
            "bound to the continuation's conversation"
        );
        assert_eq!(
            r.turn().len(),
            1,
            "a continuation's blocks are not the turn's"
        );
    }

    #[test]
    fn an_attempt_asked_again_discards_every_block_it_gave() {
        let mut r = StreamReasoning::default();
        r.begin_attempt(false);
        r.whole(0, block("a"));
        r.delta(1, "b".into());
        let discarded = r.broken(true);
        assert_eq!(
            discarded,
            vec![
                StreamEvent::ReasoningDiscarded { index: 0 },
                StreamEvent::ReasoningDiscarded { index: 1 }
            ]
        );
        assert!(r.turn().is_empty());
        r.begin_attempt(false);
        assert!(matches!(
            r.whole(0, block("a")),
            Some(StreamEvent::Reasoning { index: 0, .. })
        ));
        assert_eq!(r.turn().len(), 1);
    }
}
