//! Stop sequences applied by the client, for an API that has none (the
//! Responses API): the reply ends before the first stop sequence, as a server
//! that checks them while generating would end it. Streamed text is scanned
//! across chunks: what could still be the start of a stop sequence is held
//! back until the next chunk says, even past a stop sequence already seen
//! (one that begins earlier and is not yet whole would end the reply first).

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
///
/// // "." is whole, but "é. " may begin before it: held until the text says.
/// let mut scan = StopScan::new(vec![".".into(), "é. ".into()]);
/// assert_eq!(scan.push("a é."), (String::from("a "), false));
/// assert_eq!(scan.push(" b"), (String::from(""), true));
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
        let whole = first_stop(&self.held, &self.stops);
        // Where a stop sequence may yet begin: the longest end of the text that
        // begins one, before any stop sequence already whole (a later one
        // cannot end the reply first).
        let open = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .take_while(|&i| whole.is_none_or(|at| i < at))
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops
                    .iter()
                    .any(|s| s.len() > tail.len() && s.starts_with(tail))
            });
        match (whole, open) {
            (Some(at), None) => {
                self.stopped = true;
                let mut pass = std::mem::take(&mut self.held);
                pass.truncate(at);
                (pass, true)
            }
            (_, Some(keep)) => {
                let rest = self.held.split_off(keep);
                (std::mem::replace(&mut self.held, rest), false)
            }
            (None, None) => (std::mem::take(&mut self.held), false),
        }
    }

    /// The text ended: what was held back passes, up to a stop sequence it
    /// holds (one that waited on a longer one beginning before it), and
    /// whether one ended the reply.
    pub fn finish(&mut self) -> (String, bool) {
        let mut held = std::mem::take(&mut self.held);
        match first_stop(&held, &self.stops) {
            Some(at) => {
                held.truncate(at);
                self.stopped = true;
                (held, true)
            }
            None => (held, self.stopped),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Found by the property below: "." is whole at the first chunk's end,
    /// but "é. " begins before it and is whole only with the next; and when the
    /// text ends first, the held "." still ends the reply.
    #[test]
    fn a_longer_stop_beginning_earlier_wins_over_one_already_whole() {
        let stops = vec![".".to_string(), "é. ".to_string()];
        let mut scan = StopScan::new(stops.clone());
        assert_eq!(scan.push("a  é."), ("a  ".to_string(), false));
        assert_eq!(scan.push(" "), (String::new(), true));
        let mut scan = StopScan::new(stops);
        assert_eq!(scan.push("a  é."), ("a  ".to_string(), false));
        assert_eq!(scan.finish(), ("é".to_string(), true));
        assert_eq!(scan.push("more"), (String::new(), true));
    }

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
                let (rest, s) = scan.finish();
                passed.push_str(&rest);
                stopped |= s;
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
