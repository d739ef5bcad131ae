//! Stream checkpoints and seams: the pure logic of resuming a stream without a
//! lost or repeated character.
//!
//! A [`Checkpoint`] is what a stream's actor keeps after every delta. When a
//! continuation attempt starts, a [`Seam`] sits between it and the consumer and
//! removes what the continuation repeats of the text already delivered.

use serde::Serialize;

/// What a stream has delivered so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// The text delivered to the consumer.
    pub text: String,
    /// Its length in characters.
    pub chars: usize,
    /// Text deltas delivered.
    pub chunks: u64,
    /// Prompt tokens of the attempts so far (finished attempts plus the current one).
    pub prompt_tokens: u64,
    /// Completion tokens of the attempts so far.
    pub completion_tokens: u64,
    /// The provider's id of the current attempt.
    pub provider_request_id: Option<String>,
}

impl Checkpoint {
    /// Records delivered text; returns its offset (in characters).
    pub fn deliver(&mut self, text: &str) -> usize {
        let offset = self.chars;
        self.text.push_str(text);
        self.chars += text.chars().count();
        self.chunks += 1;
        offset
    }
}

/// The longest overlap searched for, in bytes of the delivered text's tail.
pub const MAX_OVERLAP: usize = 512;
/// The shortest repetition treated as an overlap (shorter ones may be genuine).
pub const MIN_OVERLAP: usize = 4;

/// What sits at the seam between delivered text and a continuation.
#[derive(Debug, Clone)]
pub struct Seam {
    mode: Mode,
    buffer: String,
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
            buffer: String::new(),
        }
    }

    /// A seam that drops any repetition of the end of `delivered`.
    pub fn overlap(delivered: &str) -> Self {
        let mut start = delivered.len().saturating_sub(MAX_OVERLAP);
        while !delivered.is_char_boundary(start) {
            start += 1;
        }
        Seam {
            mode: Mode::Overlap(delivered[start..].to_string()),
            buffer: String::new(),
            decided: false,
        }
    }

    /// Feeds continuation text; returns what may be delivered now.
    pub fn push(&mut self, text: &str) -> String {
        if self.decided {
            return text.to_string();
        }
        self.buffer.push_str(text);
        match self.try_decide() {
            Some(drop) => self.release(drop),
            None => String::new(),
        }
    }

    /// The continuation ended: decide with what there is.
    pub fn finish(&mut self) -> String {
        if self.decided {
            return String::new();
        }
        let drop = self.best_drop();
        self.release(drop)
    }

    fn release(&mut self, drop: usize) -> String {
        self.decided = true;
        let out = self.buffer[drop..].to_string();
        self.buffer.clear();
        out
    }

    /// `Some(bytes to drop)` once no longer overlap is possible.
    fn try_decide(&self) -> Option<usize> {
        match &self.mode {
            Mode::Exact(expected) => {
                if self.buffer.len() >= expected.len() || !expected.starts_with(&self.buffer[..]) {
                    Some(self.best_drop())
                } else {
                    None
                }
            }
            Mode::Overlap(tail) => {
                // Still undecided while the whole buffer could be the start of a
                // longer repetition of the tail.
                let could_grow = char_starts(tail).any(|i| {
                    let suffix = &tail[i..];
                    suffix.len() > self.buffer.len() && suffix.starts_with(&self.buffer[..])
                });
                (!could_grow).then(|| self.best_drop())
            }
        }
    }

    fn best_drop(&self) -> usize {
        match &self.mode {
            Mode::Exact(expected) => common_prefix(expected, &self.buffer),
            Mode::Overlap(tail) => char_starts(tail)
                .map(|i| &tail[i..])
                .filter(|suffix| suffix.len() >= MIN_OVERLAP && self.buffer.starts_with(suffix))
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
        let mut out: String = pieces.iter().map(|p| seam.push(p)).collect();
        out.push_str(&seam.finish());
        out
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
