//! Stop sequences applied by the client, for an API that has none (the
//! Responses API): the reply ends before the first stop sequence, as a server
//! that checks them while generating would end it. Streamed text is scanned
//! across chunks: what could still be the start of a stop sequence is held
//! back until the next chunk says.

/// Where `text` ends before its first stop sequence, if one occurs.
///
/// ```
/// use steer_llm::wire::stop::first_stop;
/// assert_eq!(first_stop("one. two. END three", &["END".into(), "two".into()]), Some(5));
/// assert_eq!(first_stop("no stop here", &["END".into()]), None);
/// ```
pub fn first_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

/// Scans streamed text for stop sequences.
///
/// ```
/// use steer_llm::wire::stop::StopScan;
/// let mut scan = StopScan::new(vec!["END".into()]);
/// assert_eq!(scan.push("Hello E"), (String::from("Hello "), false));
/// assert_eq!(scan.push("ND more"), (String::new(), true));
/// ```
#[derive(Debug, Default)]
pub struct StopScan {
    stops: Vec<String>,
    /// Text received and not yet passed on: it may begin a stop sequence.
    held: String,
    stopped: bool,
}

impl StopScan {
    /// A scan for `stops` (empty ones are ignored).
    pub fn new(mut stops: Vec<String>) -> Self {
        stops.retain(|s| !s.is_empty());
        StopScan {
            stops,
            held: String::new(),
            stopped: false,
        }
    }

    /// Whether there is anything to scan for.
    pub fn is_active(&self) -> bool {
        !self.stops.is_empty()
    }

    /// Whether text is held back (it may begin a stop sequence).
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether a stop sequence was found: nothing more passes.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The next chunk: the text that may pass now, and whether a stop
    /// sequence ended the reply (the text before it has passed then).
    pub fn push(&mut self, chunk: &str) -> (String, bool) {
        if self.stopped {
            return (String::new(), true);
        }
        self.held.push_str(chunk);
        if let Some(at) = first_stop(&self.held, &self.stops) {
            self.stopped = true;
            let mut pass = std::mem::take(&mut self.held);
            pass.truncate(at);
            return (pass, true);
        }
        // Hold back the longest end of the text that begins a stop sequence.
        let keep = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let rest = self.held.split_off(keep);
        let pass = std::mem::replace(&mut self.held, rest);
        (pass, false)
    }

    /// The reply ended without a stop sequence: what was held back passes.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// However the text is cut into chunks, what passes is the text before
        /// its first stop sequence (or all of it), and the stop is reported
        /// exactly when one occurs.
        #[test]
        fn streamed_text_stops_where_the_whole_text_would(
            text in "[ab é.]{0,40}",
            stops in proptest::collection::vec("[ab é.]{0,3}", 0..3),
            cuts in proptest::collection::vec(0usize..40, 0..8),
        ) {
            let mut at: Vec<usize> = cuts
                .into_iter()
                .map(|c| c.min(text.len()))
                .filter(|c| text.is_char_boundary(*c))
                .collect();
            at.sort_unstable();
            at.dedup();
            let mut scan = StopScan::new(stops.clone());
            let (mut passed, mut stopped, mut from) = (String::new(), false, 0);
            for c in at.into_iter().chain([text.len()]) {
                let (pass, s) = scan.push(&text[from..c]);
                passed.push_str(&pass);
                stopped |= s;
                from = c;
            }
            if !stopped {
                passed.push_str(&scan.finish());
            }
            let expected = match first_stop(&text, &stops) {
                Some(at) => &text[..at],
                None => text.as_str(),
            };
            prop_assert_eq!(passed.as_str(), expected);
            prop_assert_eq!(stopped, first_stop(&text, &stops).is_some());
        }
    }
}
