//! A model's tokens, counted with its family's public tokenizer where there is
//! one: OpenAI's (`o200k_base` for GPT-4o, GPT-4.1, GPT-5 and the o-series,
//! `cl100k_base` for GPT-4 and GPT-3.5), through `tiktoken-rs`, which keeps the
//! model-to-encoding map. Anthropic's and xAI's tokenizers are not public: for
//! their models there is none, and steer estimates on the high side
//! ([`estimate_tokens`]).
//!
//! A tokenizer's tables take a moment to load (about 0.2 s), once a process.
//! [`count`] never waits for them: until they are loaded it answers `None` (the
//! caller estimates) and has them loaded on a thread of their own. [`pieces`]
//! waits (the mock counts as the provider does, every time).
//!
//! ```
//! use steer_llm::tokens;
//! assert_eq!(tokens::pieces("gpt-4o-mini", "hello world").map(|p| p.len()), Some(2));
//! assert_eq!(tokens::pieces("claude-3-5-haiku-latest", "hello world"), None);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

/// One of the public tokenizers steer uses, loaded once.
struct Table {
    cell: OnceLock<Option<CoreBPE>>,
    loading: AtomicBool,
    load: fn() -> Option<CoreBPE>,
}

static O200K: Table = Table {
    cell: OnceLock::new(),
    loading: AtomicBool::new(false),
    load: || tiktoken_rs::o200k_base().ok(),
};

static CL100K: Table = Table {
    cell: OnceLock::new(),
    loading: AtomicBool::new(false),
    load: || tiktoken_rs::cl100k_base().ok(),
};

impl Table {
    /// The tables, loading them here if need be.
    fn get(&'static self) -> Option<&'static CoreBPE> {
        self.cell.get_or_init(self.load).as_ref()
    }

    /// The tables if they are loaded; else `None`, and they are loaded on a
    /// thread of their own (once).
    fn get_now(&'static self) -> Option<&'static CoreBPE> {
        if let Some(loaded) = self.cell.get() {
            return loaded.as_ref();
        }
        if !self.loading.swap(true, Ordering::AcqRel) {
            let spawned = std::thread::Builder::new()
                .name("steer-tokenizer".into())
                .spawn(move || {
                    let _ = self.get();
                });
            if spawned.is_err() {
                self.loading.store(false, Ordering::Release);
            }
        }
        None
    }
}

/// The table of `model`'s tokenizer, if it is public and one steer uses.
fn table(model: &str) -> Option<&'static Table> {
    match get_tokenizer(model)? {
        Tokenizer::O200kBase => Some(&O200K),
        Tokenizer::Cl100kBase => Some(&CL100K),
        _ => None,
    }
}

/// Whether `model`'s tokenizer is public (and steer counts with it).
pub fn has_tokenizer(model: &str) -> bool {
    table(model).is_some()
}

/// Tokens of `text` as `model`'s tokenizer counts them, without waiting:
/// `None` for a model whose tokenizer is not public, or while its tables load.
pub fn count(model: &str, text: &str) -> Option<u64> {
    let bpe = table(model)?.get_now()?;
    u64::try_from(bpe.encode_ordinary(text).len()).ok()
}

/// `text` cut into `model`'s tokens, each piece with the number of tokens it
/// holds (one, or more where a character's bytes span tokens); the pieces
/// concatenate to `text`. Waits for the tables; `None` for a model whose
/// tokenizer is not public.
pub fn pieces(model: &str, text: &str) -> Option<Vec<(String, u32)>> {
    let bpe = table(model)?.get()?;
    let mut out = Vec::new();
    let (mut pending, mut held) = (Vec::new(), 0u32);
    for rank in bpe.encode_ordinary(text) {
        pending.extend(bpe.decode_bytes(&[rank]).ok()?);
        held = held.saturating_add(1);
        if let Ok(piece) = std::str::from_utf8(&pending) {
            out.push((piece.to_string(), held));
            pending.clear();
            held = 0;
        }
    }
    if !pending.is_empty() {
        out.push((String::from_utf8_lossy(&pending).into_owned(), held));
    }
    Some(out)
}

/// Loads `model`'s tokenizer now, if it has one (the mock does at its start,
/// so that its first reply is not slower than the others).
pub fn preload(model: &str) {
    if let Some(t) = table(model) {
        let _ = t.get();
    }
}

/// Tokens in `text`, estimated on the high side for any model whose tokenizer
/// is not public: each word (a run of non-whitespace) counts a token per four
/// ASCII characters, rounded up, and a token per other character; whitespace
/// counts nothing. English averages about four characters a token (this says
/// about 1.3 times that), CJK about one a character. Split across deltas, a
/// word counts at least as much as whole, so a sum over deltas stays high too.
///
/// ```
/// use steer_llm::tokens::estimate_tokens;
/// assert_eq!(estimate_tokens("The river runs."), 5); // 1 + 2 + 2
/// assert_eq!(estimate_tokens("日本語"), 3);
/// assert_eq!(estimate_tokens("  \n"), 0);
/// ```
pub fn estimate_tokens(text: &str) -> u64 {
    text.split(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .map(|w| {
            let (ascii, other) = w.chars().fold((0u64, 0u64), |(a, o), c| {
                if c.is_ascii() {
                    (a.saturating_add(1), o)
                } else {
                    (a, o.saturating_add(1))
                }
            });
            ascii.div_ceil(4).saturating_add(other)
        })
        .fold(0u64, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_models_count_with_their_tokenizer_and_others_have_none() {
        preload("gpt-4o-mini");
        assert_eq!(count("gpt-4o-mini", "hello world"), Some(2));
        assert_eq!(count("gpt-4.1", "hello world"), Some(2));
        assert!(has_tokenizer("gpt-4"));
        for model in ["claude-3-5-haiku-latest", "grok-3-mini", ""] {
            assert!(!has_tokenizer(model), "{model}");
            assert_eq!(count(model, "hello world"), None);
        }
    }

    #[test]
    fn pieces_concatenate_to_the_text_and_hold_every_token() {
        let text = "Lantern résumé 日本語, copper🙂 river.\n\nNext";
        let pieces = pieces("gpt-4o-mini", text).unwrap();
        assert_eq!(
            pieces.iter().map(|(p, _)| p.as_str()).collect::<String>(),
            text
        );
        let tokens: u64 = pieces.iter().map(|(_, n)| u64::from(*n)).sum();
        preload("gpt-4o-mini");
        assert_eq!(Some(tokens), count("gpt-4o-mini", text));
    }
}
