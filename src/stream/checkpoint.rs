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
    /// Text deltas delivered. A delta holds one token or several (Anthropic's
    /// usually do, gateways batch them): never a token count on its own.
    pub chunks: u64,
    /// Tokens delivered, estimated from the text on the high side
    /// ([`estimate_tokens`], summed delta by delta): what a continuation's
    /// budget and cut are counted against, so that the spliced reply stays
    /// within `max_tokens` as the provider counts it.
    pub tokens: u64,
    /// Prompt tokens of the attempts so far (finished attempts plus the current one).
    pub prompt_tokens: u64,
    /// Completion tokens of the attempts so far.
    pub completion_tokens: u64,
    /// The provider's id of the current attempt.
    pub provider_request_id: Option<String>,
    /// Tokens delivered as the provider counted them: the completion tokens
    /// each attempt that delivered text reported after its last delta (vLLM
    /// and SGLang with `continuous_usage_stats` report them with every chunk).
    pub provider_tokens: u64,
    /// An attempt delivered text without reporting its count after it: the
    /// provider's count is not known.
    pub provider_uncounted: bool,
    /// Tokens of the turn's whole reasoning blocks, estimated on the high
    /// side: they count toward `max_tokens` (Anthropic's thinking, the
    /// Responses API's reasoning), so a continuation's budget leaves them out.
    pub reasoning_tokens: u64,
}

impl Checkpoint {
    /// Records one delivered delta; returns its offset (in characters).
    pub fn deliver(&mut self, text: &str) -> usize {
        self.deliver_counted(text, estimate_tokens(text).max(1))
    }

    /// Records one delivered delta counted as `tokens`; returns its offset
    /// (in characters).
    pub fn deliver_counted(&mut self, text: &str, tokens: u64) -> usize {
        let offset = self.chars;
        self.text.push_str(text);
        self.chars = self.chars.saturating_add(text.chars().count());
        self.chunks = self.chunks.saturating_add(1);
        self.tokens = self.tokens.saturating_add(tokens);
        offset
    }

    /// The tokens delivered as the provider counted them, when every attempt
    /// that delivered text reported its count.
    pub fn provider_count(&self) -> Option<u64> {
        (!self.provider_uncounted && !self.text.is_empty() && self.provider_tokens > 0)
            .then_some(self.provider_tokens)
    }
}

pub use crate::tokens::estimate_tokens;

/// The longest overlap searched for, in bytes of the delivered text's tail.
pub const MAX_OVERLAP: usize = 512;
/// The shortest repetition treated as an overlap (shorter ones may be genuine).
pub const MIN_OVERLAP: usize = 4;
/// Bytes of the delivered text's start that a continuation must repeat before it
/// counts as a restart (a server that answered afresh instead of continuing).
pub const RESTART_MIN: usize = 12;

/// What sits at the seam between delivered text and a continuation.
///
/// It is fed the continuation's deltas one by one and gives back, delta by delta,
/// what the consumer does not have yet: a delta wholly repeated is dropped, a
/// delta partly repeated is shortened, the others pass as they are.
///
/// A seam [verified](Seam::verified_against) against the whole delivered text
/// also catches a server that restarted instead of continuing (it answered a
/// prefill or a "continue" message afresh): a continuation that repeats all
/// the delivered text has the repetition dropped; one that repeats its start
/// ([`RESTART_MIN`] bytes or more) and then differs cannot be spliced, and the
/// seam says so ([`Seam::diverged`]) instead of appending it.
#[derive(Debug, Clone)]
pub struct Seam {
    mode: Mode,
    /// The whole delivered text, when the seam checks for a restart.
    delivered: Option<String>,
    /// Deltas held while the seam cannot yet tell how much is repeated.
    held: Vec<String>,
    /// Bytes held (the sum of `held`).
    held_len: usize,
    decided: bool,
    /// The continuation restarted and then differed from the delivered text.
    diverged: bool,
    /// Bytes of the delivered text's start that what is held repeats, while
    /// all of it does; `None` once it differs (followed delta by delta, so a
    /// long restart costs its length once, not once a delta).
    repeating: Option<usize>,
    /// Where what is held first differed from the delivered text's start.
    differed_at: usize,
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
            delivered: None,
            held: Vec::new(),
            held_len: 0,
            diverged: false,
            repeating: Some(0),
            differed_at: 0,
        }
    }

    /// This seam, also checking the continuation against `delivered`, the whole
    /// text the consumer has, for a server that restarted.
    ///
    /// ```
    /// use steer_llm::stream::checkpoint::Seam;
    /// // A server that answered a prefill afresh: the repetition is dropped.
    /// let mut seam = Seam::exact("").verified_against("One two ");
    /// let mut out = seam.push("One two three".into());
    /// out.extend(seam.finish());
    /// assert_eq!(out.concat(), "three");
    /// // One that restarted and then said something else cannot be spliced.
    /// let mut seam = Seam::exact("").verified_against("Rivers run to the sea. ");
    /// let out = seam.push("Rivers run to a lake.".into());
    /// assert!(seam.diverged());
    /// assert_eq!(out.concat(), "Rivers run to a lake.");
    /// ```
    pub fn verified_against(mut self, delivered: &str) -> Self {
        if !delivered.is_empty() {
            self.delivered = Some(delivered.to_string());
            self.decided = false;
        }
        self
    }

    /// Whether the continuation restarted and then differed from the delivered
    /// text: it cannot be spliced, and what the seam gave back is the
    /// continuation whole, from its start.
    pub fn diverged(&self) -> bool {
        self.diverged
    }

    /// A seam that drops any repetition of the end of `delivered`.
    pub fn overlap(delivered: &str) -> Self {
        let mut start = delivered.len().saturating_sub(MAX_OVERLAP);
        while !delivered.is_char_boundary(start) {
            start = start.saturating_add(1);
        }
        Seam {
            mode: Mode::Overlap(delivered.get(start..).unwrap_or_default().to_string()),
            delivered: None,
            held: Vec::new(),
            held_len: 0,
            decided: false,
            diverged: false,
            repeating: Some(0),
            differed_at: 0,
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
        self.follow(&text);
        self.held.push(text);
        match self.try_decide() {
            Some(drop) => self.release(drop),
            None => Vec::new(),
        }
    }

    /// The continuation ended on its own (a natural end, a stop sequence, tool
    /// calls): decide with what there is. What it said is its own unless it is
    /// a whole repetition: of the delivered text's tail (an overlap) or of all
    /// the delivered text (a restart). One that repeated the delivered text's
    /// start ([`RESTART_MIN`] bytes or more) and ended where that text went on
    /// restarted and differed ([`Seam::diverged`]); a shorter repetition of
    /// its start is new text (a continuation cut by a stop sequence after "O"
    /// said "O", whatever the delivered text began with).
    ///
    /// ```
    /// use steer_llm::stream::checkpoint::Seam;
    /// let mut seam = Seam::overlap("Ocean canyon ancho").verified_against("Ocean canyon ancho");
    /// let mut out = seam.push("O".into());
    /// out.extend(seam.finish());
    /// assert_eq!(out.concat(), "O");
    /// ```
    pub fn finish(&mut self) -> Vec<String> {
        self.end(false)
    }

    /// The continuation was cut short by its token limit: decide with what
    /// there is. One cut while it may still be repeating delivered text (it
    /// spent its tokens on the repetition) delivers none of it.
    ///
    /// ```
    /// use steer_llm::stream::checkpoint::Seam;
    /// let mut seam = Seam::exact("").verified_against("One two three ");
    /// let mut out = seam.push("One two".into());
    /// out.extend(seam.finish_cut());
    /// assert_eq!(out.concat(), "");
    /// ```
    pub fn finish_cut(&mut self) -> Vec<String> {
        self.end(true)
    }

    /// The continuation ended, cut short by its limit or not: what is held
    /// is dropped as far as the rules of [`finish`](Self::finish) and
    /// [`finish_cut`](Self::finish_cut) say, the rest released.
    fn end(&mut self, cut: bool) -> Vec<String> {
        if self.decided {
            return Vec::new();
        }
        let held = self.held.concat();
        let drop = match (self.restart(), cut) {
            (Restart::Repeated(all), _) => all,
            (Restart::Diverged, _) => {
                self.diverged = true;
                0
            }
            // Cut while it may still be repeating: none of it is new.
            (Restart::Possible, true) => held.len(),
            (Restart::No, true) if self.still_repeating(&held) => held.len(),
            // Ended on its own after a restart's worth of the start.
            (Restart::Possible, false) if held.len() >= RESTART_MIN => {
                self.diverged = true;
                0
            }
            (Restart::Possible | Restart::No, _) => self.best_drop(&held),
        };
        self.release(drop)
    }

    /// Follows one more held delta against the delivered text's start.
    fn follow(&mut self, text: &str) {
        let (Some(matched), Some(delivered)) = (self.repeating, self.delivered.as_deref()) else {
            return;
        };
        let rest = delivered.get(matched..).unwrap_or_default();
        let same = common_prefix(rest, text);
        let now = matched.saturating_add(same);
        if same == text.len() || same == rest.len() {
            self.repeating = Some(now);
        } else {
            self.repeating = None;
            self.differed_at = now;
        }
    }

    /// What the held text says of a restart.
    fn restart(&self) -> Restart {
        let Some(delivered) = self.delivered.as_deref() else {
            return Restart::No;
        };
        match self.repeating {
            Some(matched) if matched >= delivered.len() => Restart::Repeated(delivered.len()),
            Some(_) => Restart::Possible,
            None if self.differed_at >= RESTART_MIN => Restart::Diverged,
            None => Restart::No,
        }
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

    /// `Some(bytes to drop)` once no longer overlap (or restart) is possible.
    fn try_decide(&mut self) -> Option<usize> {
        match self.restart() {
            Restart::Possible => return None,
            Restart::Repeated(all) => return Some(all),
            Restart::Diverged => {
                self.diverged = true;
                return Some(0);
            }
            Restart::No => {}
        }
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

/// Whether a continuation is a restart of the delivered text.
enum Restart {
    /// Not a restart (or the seam does not check).
    No,
    /// All that came so far repeats the delivered text's start: wait.
    Possible,
    /// It repeated the whole delivered text (these bytes): drop them.
    Repeated(usize),
    /// It repeated the start and then differed: cannot be spliced.
    Diverged,
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

    fn run(seam: Seam, pieces: &[&str]) -> String {
        run_to(seam, pieces, Seam::finish)
    }

    /// `run`, for a continuation cut short by its token limit.
    fn run_cut(seam: Seam, pieces: &[&str]) -> String {
        run_to(seam, pieces, Seam::finish_cut)
    }

    fn run_to(mut seam: Seam, pieces: &[&str], end: fn(&mut Seam) -> Vec<String>) -> String {
        let mut out: String = pieces
            .iter()
            .flat_map(|p| seam.push(p.to_string()))
            .collect();
        out.push_str(&end(&mut seam).concat());
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
    fn a_continuation_cut_inside_the_repetition_delivers_nothing() {
        // The model starts again at "sea. It " and its limit cuts it after
        // "sea. I"; one that ended there on its own (a stop sequence "t")
        // repeated no whole tail of the delivered text: what it said is new.
        assert_eq!(
            run_cut(Seam::overlap("to the sea. It "), &["sea. ", "I"]),
            ""
        );
        assert_eq!(
            run(Seam::overlap("to the sea. It "), &["sea. ", "I"]),
            "sea. I"
        );
        assert_eq!(run_cut(Seam::exact("\n\n"), &["\n"]), "");
        assert_eq!(run(Seam::exact("\n\n"), &["\n"]), "");
        // Text that is not a repetition is kept at the end too.
        assert_eq!(run(Seam::overlap("to the sea. It "), &["Then"]), "Then");
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
    fn a_verified_seam_drops_a_whole_restart_however_it_is_chunked() {
        let delivered = "One two three ";
        let continuation = "One two three four five.";
        for cut in 0..continuation.len() {
            let (a, b) = continuation.split_at(cut);
            for seam in [
                Seam::exact(" ").verified_against(delivered),
                Seam::overlap(delivered).verified_against(delivered),
            ] {
                assert_eq!(run(seam, &[a, b]), "four five.", "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_long_restart_in_small_deltas_is_followed_delta_by_delta() {
        let delivered = "word résumé 日本語 ".repeat(2_000);
        let continuation = format!("{delivered}and then more.");
        let mut seam = Seam::overlap(&delivered).verified_against(&delivered);
        let mut out = Vec::new();
        let mut rest = continuation.as_str();
        while !rest.is_empty() {
            let mut cut = rest.len().min(7);
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            let (piece, tail) = rest.split_at(cut);
            out.extend(seam.push(piece.to_string()));
            rest = tail;
        }
        out.extend(seam.finish());
        assert_eq!(out.concat(), "and then more.");
        assert!(!seam.diverged());
    }

    #[test]
    fn a_verified_seam_passes_a_real_continuation_and_flags_a_divergent_restart() {
        // A continuation, even one that starts with the reply's first letters.
        let seam = Seam::exact(" ").verified_against("One two ");
        assert_eq!(run(seam, &[" three"]), "three");
        let seam = Seam::exact("").verified_against("Once upon ");
        assert_eq!(run(seam, &["Onwards"]), "Onwards");
        // A restart that says something else: given back whole, flagged.
        let mut seam = Seam::overlap("The river runs to the sea. ")
            .verified_against("The river runs to the sea. ");
        let mut out = seam.push("The river runs ".into());
        assert!(
            out.is_empty() && !seam.diverged(),
            "still a possible restart"
        );
        out.extend(seam.push("north.".into()));
        assert!(seam.diverged());
        assert_eq!(out.concat(), "The river runs north.");
        // A restart cut short by its limit while still repeating delivers
        // nothing; one that ended there on its own said it (a stop sequence
        // can end a new reply one letter in, and that letter may be the
        // delivered text's first), unless it repeated a restart's worth.
        let seam = Seam::exact("").verified_against("One two three ");
        assert_eq!(run_cut(seam, &["One two"]), "");
        let seam = Seam::exact("").verified_against("One two three ");
        assert_eq!(run(seam, &["One two"]), "One two");
        let seam = Seam::overlap("Ocean canyon ancho").verified_against("Ocean canyon ancho");
        assert_eq!(run(seam, &["O"]), "O");
        let seam = Seam::overlap("Ocean canyon ancho").verified_against("Ocean canyon ancho");
        assert_eq!(run_cut(seam, &["O"]), "");
        let mut seam = Seam::exact("").verified_against("Rivers run to the sea and on. ");
        let mut out = seam.push("Rivers run to the sea".into());
        out.extend(seam.finish());
        assert!(seam.diverged(), "a restart that ended early");
        assert_eq!(out.concat(), "Rivers run to the sea");
        // An overlap with the tail cut by a natural end is not one.
        let seam = Seam::overlap("to the sea. ");
        assert_eq!(run(seam, &["the s"]), "the s");
        let seam = Seam::overlap("to the sea. ");
        assert_eq!(run_cut(seam, &["the s"]), "");
        // A break after a character or two: a continuation that starts the
        // reply again (as mockllm's one-character chunks showed) repeats it.
        let seam = Seam::overlap("O").verified_against("O");
        assert_eq!(run(seam, &["O", "cean river."]), "cean river.");
        let seam = Seam::exact("").verified_against("Hi");
        assert_eq!(run(seam, &[" there"]), " there");
    }

    #[test]
    fn the_estimate_never_falls_when_a_word_is_split_across_deltas() {
        let text = "Lantern résumé 日本語, copper🙂 river.\n\nNext";
        let whole = estimate_tokens(text);
        for (cut, _) in text.char_indices() {
            let (a, b) = text.split_at(cut);
            assert!(
                estimate_tokens(a) + estimate_tokens(b) >= whole,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn checkpoints_count_characters() {
        let mut c = Checkpoint::default();
        assert_eq!(c.deliver("日本"), 0);
        assert_eq!(c.deliver("語"), 2);
        assert_eq!((c.chars, c.chunks, c.text.as_str()), (3, 2, "日本語"));
    }
}
