//! Stream checkpoints and seams: the pure logic of resuming a stream without a
//! lost or repeated character.
//!
//! A [`Checkpoint`] is what a stream's actor keeps after every delta. When a
//! continuation attempt starts, a [`Seam`] sits between it and the consumer and
//! removes what the continuation repeats of the text already delivered.

use std::collections::VecDeque;

use serde::Serialize;

/// What a stream has delivered so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// The text delivered to the consumer.
    pub text: String,
    /// Its length in characters.
    pub chars: usize,
    /// Text deltas delivered. Each delta is at least one token, so this is what
    /// steer counts against the request's `max_tokens` (exact for providers that
    /// send one token a delta, as OpenAI and xAI do).
    pub chunks: u64,
    /// Prompt tokens of the attempts so far (finished attempts plus the current one).
    pub prompt_tokens: u64,
    /// Completion tokens of the attempts so far.
    pub completion_tokens: u64,
    /// The provider's id of the current attempt.
    pub provider_request_id: Option<String>,
    /// Byte lengths of the latest deltas, covering at least the last
    /// [`MAX_OVERLAP`] bytes: how many tokens a continuation may repeat.
    #[serde(skip)]
    recent: VecDeque<usize>,
    /// The sum of `recent`.
    #[serde(skip)]
    recent_bytes: usize,
}

impl Checkpoint {
    /// Records one delivered delta; returns its offset (in characters).
    pub fn deliver(&mut self, text: &str) -> usize {
        let offset = self.chars;
        self.text.push_str(text);
        self.chars = self.chars.saturating_add(text.chars().count());
        self.chunks = self.chunks.saturating_add(1);
        self.recent.push_back(text.len());
        self.recent_bytes = self.recent_bytes.saturating_add(text.len());
        // Keep just enough deltas to cover the overlap window: drop the oldest
        // while the others still cover it (a running sum, not a rescan).
        while let Some(&oldest) = self.recent.front() {
            let without = self.recent_bytes.saturating_sub(oldest);
            if self.recent.len() > 1 && without >= MAX_OVERLAP {
                self.recent.pop_front();
                self.recent_bytes = without;
            } else {
                break;
            }
        }
        offset
    }

    /// How many of the latest deltas hold the last `bytes` bytes of the text:
    /// the tokens a continuation spends if it repeats them.
    pub fn deltas_in_tail(&self, bytes: usize) -> u64 {
        if bytes == 0 {
            return 0;
        }
        let mut covered = 0usize;
        let mut count = 0u64;
        for len in self.recent.iter().rev() {
            count = count.saturating_add(1);
            covered = covered.saturating_add(*len);
            if covered >= bytes {
                break;
            }
        }
        count
    }
}

/// The longest overlap searched for, in bytes of the delivered text's tail.
pub const MAX_OVERLAP: usize = 512;
/// The shortest repetition treated as an overlap (shorter ones may be genuine).
pub const MIN_OVERLAP: usize = 4;

/// What sits at the seam between delivered text and a continuation.
///
/// It is fed the continuation's deltas one by one and gives back, delta by delta,
/// what the consumer does not have yet: a delta wholly repeated is dropped, a
/// delta partly repeated is shortened, the others pass as they are.
#[derive(Debug, Clone)]
pub struct Seam {
    mode: Mode,
    /// Deltas held while the seam cannot yet tell how much is repeated.
    held: Vec<String>,
    /// Bytes held (the sum of `held`).
    held_len: usize,
    decided: bool,
}

#[derive(Debug, Clone)]
enum Mode {
    /// Drop this exact text if the continuation starts with it (whitespace trimmed
    /// from an Anthropic prefill and already delivered).
    Exact(String),
    /// Drop the longest start of the continuation that repeats the end of this
    /// tail of the delivered text.
    Overlap(String),
}

impl Seam {
    /// A seam that drops `already_delivered` from the start of the continuation.
    pub fn exact(already_delivered: &str) -> Self {
        Seam {
            decided: already_delivered.is_empty(),
            mode: Mode::Exact(already_delivered.to_string()),
            held: Vec::new(),
            held_len: 0,
        }
    }

    /// A seam that drops any repetition of the end of `delivered`.
    pub fn overlap(delivered: &str) -> Self {
        let mut start = delivered.len().saturating_sub(MAX_OVERLAP);
        while !delivered.is_char_boundary(start) {
            start = start.saturating_add(1);
        }
        Seam {
            mode: Mode::Overlap(delivered.get(start..).unwrap_or_default().to_string()),
            held: Vec::new(),
            held_len: 0,
            decided: false,
        }
    }

    /// The most bytes of delivered text this seam may drop from a continuation:
    /// what the continuation may spend tokens repeating.
    pub fn droppable(&self) -> usize {
        match &self.mode {
            Mode::Exact(expected) => expected.len(),
            Mode::Overlap(tail) => tail.len(),
        }
    }

    /// Feeds one continuation delta; returns the deltas that may be delivered now.
    pub fn push(&mut self, text: String) -> Vec<String> {
        if self.decided {
            return if text.is_empty() {
                Vec::new()
            } else {
                vec![text]
            };
        }
        self.held_len = self.held_len.saturating_add(text.len());
        self.held.push(text);
        match self.try_decide() {
            Some(drop) => self.release(drop),
            None => Vec::new(),
        }
    }

    /// The continuation ended: decide with what there is. A continuation that
    /// ends while it may still be repeating delivered text delivers none of it.
    pub fn finish(&mut self) -> Vec<String> {
        if self.decided {
            return Vec::new();
        }
        let held = self.held.concat();
        let drop = if self.still_repeating(&held) {
            held.len()
        } else {
            self.best_drop(&held)
        };
        self.release(drop)
    }

    /// Drops `drop` bytes from the start of the held deltas and releases the rest.
    fn release(&mut self, mut drop: usize) -> Vec<String> {
        self.decided = true;
        self.held_len = 0;
        let mut out = Vec::new();
        for piece in std::mem::take(&mut self.held) {
            if drop >= piece.len() {
                drop = drop.saturating_sub(piece.len());
                continue;
            }
            let rest = piece.get(drop..).unwrap_or_default();
            drop = 0;
            if !rest.is_empty() {
                out.push(rest.to_string());
            }
        }
        out
    }

    /// `Some(bytes to drop)` once no longer overlap is possible.
    fn try_decide(&self) -> Option<usize> {
        let held = self.held.concat();
        match &self.mode {
            Mode::Exact(expected) => {
                if held.len() >= expected.len() || !expected.starts_with(&held[..]) {
                    Some(self.best_drop(&held))
                } else {
                    None
                }
            }
            Mode::Overlap(tail) => {
                // Still undecided while the whole buffer could be the start of a
                // longer repetition of the tail.
                let could_grow = char_starts(tail).any(|i| {
                    let suffix = &tail[i..];
                    suffix.len() > held.len() && suffix.starts_with(&held[..])
                });
                (!could_grow).then(|| self.best_drop(&held))
            }
        }
    }

    /// Whether everything held is the start of a repetition of delivered text.
    fn still_repeating(&self, held: &str) -> bool {
        match &self.mode {
            Mode::Exact(expected) => expected.starts_with(held),
            Mode::Overlap(tail) => char_starts(tail).any(|i| {
                let suffix = &tail[i..];
                suffix.len() >= MIN_OVERLAP && suffix.starts_with(held)
            }),
        }
    }

    fn best_drop(&self, held: &str) -> usize {
        match &self.mode {
            Mode::Exact(expected) => common_prefix(expected, held),
            Mode::Overlap(tail) => char_starts(tail)
                .map(|i| &tail[i..])
                .filter(|suffix| suffix.len() >= MIN_OVERLAP && held.starts_with(suffix))
                .map(str::len)
                .max()
                .unwrap_or(0),
        }
    }
}

fn char_starts(s: &str) -> impl Iterator<Item = usize> + '_ {
    s.char_indices().map(|(i, _)| i)
}

/// Bytes of the longest common prefix, on a character boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    a.chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut seam: Seam, pieces: &[&str]) -> String {
        let mut out: String = pieces
            .iter()
            .flat_map(|p| seam.push(p.to_string()))
            .collect();
        out.push_str(&seam.finish().concat());
        out
    }

    #[test]
    fn deltas_keep_their_boundaries_and_wholly_repeated_ones_vanish() {
        let mut seam = Seam::overlap("The river runs to the sea. It ");
        let mut out = Vec::new();
        for piece in ["sea. ", "It ", "carries ", "silt."] {
            out.extend(seam.push(piece.to_string()));
        }
        out.extend(seam.finish());
        assert_eq!(out, vec!["carries ", "silt."]);
        let mut exact = Seam::exact(" ");
        assert!(exact.push(" ".into()).is_empty());
        assert_eq!(exact.push("next ".into()), vec!["next "]);
    }

    #[test]
    fn a_continuation_that_ends_inside_the_repetition_delivers_nothing() {
        // The model starts again at "sea. It " and is cut after "sea. I".
        assert_eq!(run(Seam::overlap("to the sea. It "), &["sea. ", "I"]), "");
        assert_eq!(run(Seam::exact("\n\n"), &["\n"]), "");
        // Text that is not a repetition is kept at the end too.
        assert_eq!(run(Seam::overlap("to the sea. It "), &["Then"]), "Then");
    }

    #[test]
    fn the_checkpoint_knows_how_many_deltas_hold_its_tail() {
        let mut c = Checkpoint::default();
        for d in ["The ", "river ", "runs."] {
            c.deliver(d);
        }
        assert_eq!(c.deltas_in_tail(0), 0);
        assert_eq!(c.deltas_in_tail(1), 1);
        assert_eq!(c.deltas_in_tail(6), 2);
        assert_eq!(c.deltas_in_tail(1000), 3);
        for _ in 0..1000 {
            c.deliver("word ");
        }
        // Bounded: just enough deltas for the overlap window.
        assert!(c.deltas_in_tail(usize::MAX) <= (MAX_OVERLAP / 5 + 2) as u64);
    }

    #[test]
    fn exact_mode_drops_the_restored_whitespace_once() {
        assert_eq!(
            run(Seam::exact("\n\n"), &["\n", "\nNext", " word"]),
            "Next word"
        );
        assert_eq!(run(Seam::exact(" "), &[" Next"]), "Next");
        assert_eq!(run(Seam::exact(" "), &["Next"]), "Next");
        assert_eq!(run(Seam::exact(""), &[" Next"]), " Next");
    }

    #[test]
    fn overlap_mode_drops_the_repeated_end_however_it_is_chunked() {
        let delivered = "The river runs to the sea. It ";
        let continuation = "sea. It carries silt.";
        for cut in 0..continuation.len() {
            let (a, b) = continuation.split_at(cut);
            assert_eq!(
                run(Seam::overlap(delivered), &[a, b]),
                "carries silt.",
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn overlap_mode_keeps_text_that_does_not_repeat() {
        assert_eq!(
            run(Seam::overlap("The river runs"), &[" to the sea."]),
            " to the sea."
        );
        // A repetition shorter than MIN_OVERLAP may be genuine: kept.
        assert_eq!(run(Seam::overlap("a cat"), &["at home"]), "at home");
        // Multi-byte text.
        assert_eq!(
            run(Seam::overlap("日本語 café über"), &["café über naïve"]),
            " naïve"
        );
    }

    #[test]
    fn checkpoints_count_characters() {
        let mut c = Checkpoint::default();
        assert_eq!(c.deliver("日本"), 0);
        assert_eq!(c.deliver("語"), 2);
        assert_eq!((c.chars, c.chunks, c.text.as_str()), (3, 2, "日本語"));
    }
}
