//! How long a model's replies run: the recent output sizes of each model,
//! bounded, and the high percentile a reservation holds for the next one
//! (capped by the request's `max_tokens`).

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;

/// Output sizes kept per model.
pub const KEPT: usize = 256;

/// Models whose sizes are kept; past it, new models use the default.
pub const MAX_MODELS: usize = 256;

/// Outputs held for a model with no history and a request with no
/// `max_tokens` (the most a reply usually runs; a reservation grows past it
/// while a stream delivers).
pub const DEFAULT_OUTPUT: u64 = 4_096;

/// The percentile held.
pub const PERCENTILE: usize = 95;

/// Recent output sizes by model.
///
/// ```
/// use steer_llm::budget::OutputSizes;
/// let sizes = OutputSizes::default();
/// for n in 1..=100 {
///     sizes.record("m", n);
/// }
/// assert_eq!(sizes.expected("m", None), 95);
/// assert_eq!(sizes.expected("m", Some(50)), 50);
/// assert_eq!(sizes.expected("other", Some(300)), 300);
/// ```
#[derive(Debug, Default)]
pub struct OutputSizes {
    models: Mutex<HashMap<String, VecDeque<u64>>>,
}

impl OutputSizes {
    /// A reply of `model` generated `tokens`.
    pub fn record(&self, model: &str, tokens: u64) {
        let mut models = self.models.lock();
        if !models.contains_key(model) && models.len() >= MAX_MODELS {
            return;
        }
        let sizes = models.entry(model.to_string()).or_default();
        if sizes.len() >= KEPT {
            sizes.pop_front();
        }
        sizes.push_back(tokens);
    }

    /// The outputs to hold for `model`'s next reply: the high percentile of
    /// its recent ones (the default without any), at most `limit`.
    pub fn expected(&self, model: &str, limit: Option<u64>) -> u64 {
        let recent = {
            let models = self.models.lock();
            models.get(model).and_then(|s| {
                let mut v: Vec<u64> = s.iter().copied().collect();
                if v.is_empty() {
                    return None;
                }
                v.sort_unstable();
                let at = (v.len() * PERCENTILE).div_ceil(100).saturating_sub(1);
                v.get(at.min(v.len().saturating_sub(1))).copied()
            })
        };
        let guess = recent.unwrap_or(DEFAULT_OUTPUT);
        limit.map_or(guess, |l| guess.min(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_and_the_models_are_bounded() {
        let s = OutputSizes::default();
        for n in 0..(KEPT as u64 * 2) {
            s.record("m", n);
        }
        // Only the last KEPT count: the 95th percentile of 256..512.
        assert!(s.expected("m", None) >= 256 + 240);
        for i in 0..(MAX_MODELS + 5) {
            s.record(&format!("m{i}"), 1);
        }
        assert_eq!(s.models.lock().len(), MAX_MODELS);
        assert_eq!(s.expected("m300", None), DEFAULT_OUTPUT);
    }
}
