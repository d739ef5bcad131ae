//! The tool calls of one stream, across its attempts: which were delivered whole,
//! which was being streamed when an attempt broke, and what a continuation may
//! deliver. Plain logic, owned by the stream actor.
//!
//! - In an attempt that continues delivered content, each call is held until it
//!   is complete, then delivered (start, argument pieces, call) unless it repeats
//!   a call already delivered: a complete call is never delivered twice.
//! - Calls are numbered for the consumer in the order they are delivered, so a
//!   call made again after a break keeps the index of the one it replaces.

use crate::model::{ProviderEvent, StreamEvent};
use crate::tools::ToolCall;

/// The tool-call state of a stream.
#[derive(Debug, Default)]
pub(crate) struct StreamCalls {
    /// Calls delivered whole, in order.
    delivered: Vec<ToolCall>,
    /// The consumer's index of a call whose start was delivered but not its end.
    open: Option<usize>,
    /// Whether this attempt continues delivered content (calls are held then).
    holding: bool,
    /// Events of calls held in this attempt, by the attempt's own index.
    held: Vec<(usize, Vec<ProviderEvent>)>,
    /// Whether any tool-call event reached the consumer.
    any: bool,
}

impl StreamCalls {
    /// A new attempt starts; `continuing` when it continues delivered content.
    pub fn begin_attempt(&mut self, continuing: bool) {
        self.holding = continuing;
        self.held.clear();
    }

    /// The calls delivered whole.
    pub fn delivered(&self) -> &[ToolCall] {
        &self.delivered
    }

    /// Whether any tool-call event reached the consumer.
    pub fn any(&self) -> bool {
        self.any
    }

    /// The attempt broke: the index of a call the consumer must discard, if one
    /// was being delivered.
    pub fn interrupted(&mut self) -> Option<usize> {
        self.held.clear();
        self.open.take()
    }

    /// A tool-call event of the attempt; what to deliver now, re-indexed.
    pub fn on_event(&mut self, event: ProviderEvent, out: &mut Vec<StreamEvent>) {
        if !self.holding {
            return self.pass(event, out);
        }
        let key = match &event {
            ProviderEvent::ToolCallStart { index, .. }
            | ProviderEvent::ToolCallDelta { index, .. }
            | ProviderEvent::ToolCall { index, .. } => *index,
            _ => return,
        };
        let complete = matches!(event, ProviderEvent::ToolCall { .. });
        match self.held.iter_mut().find(|(k, _)| *k == key) {
            Some((_, events)) => events.push(event),
            None => self.held.push((key, vec![event])),
        }
        if !complete {
            return;
        }
        let Some(at) = self.held.iter().position(|(k, _)| *k == key) else {
            return;
        };
        let (_, events) = self.held.remove(at);
        let repeat = events.iter().any(|e| match e {
            ProviderEvent::ToolCall { call, .. } => self.delivered.iter().any(|d| d.same_as(call)),
            _ => false,
        });
        if repeat {
            return;
        }
        for e in events {
            self.pass(e, out);
        }
    }

    /// Delivers one event with the consumer's index.
    fn pass(&mut self, event: ProviderEvent, out: &mut Vec<StreamEvent>) {
        let index = self.open.unwrap_or(self.delivered.len());
        self.any = true;
        match event {
            ProviderEvent::ToolCallStart { id, name, .. } => {
                self.open = Some(index);
                out.push(StreamEvent::ToolCallStart { index, id, name });
            }
            ProviderEvent::ToolCallDelta { arguments, .. } => {
                out.push(StreamEvent::ToolCallDelta { index, arguments })
            }
            ProviderEvent::ToolCall { call, .. } => {
                self.open = None;
                self.delivered.push(call.clone());
                out.push(StreamEvent::ToolCall { index, call });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, city: &str) -> ToolCall {
        ToolCall::new(format!("id-{city}"), name, json!({ "city": city }))
    }

    fn events(index: usize, c: &ToolCall) -> Vec<ProviderEvent> {
        vec![
            ProviderEvent::ToolCallStart {
                index,
                id: c.id.clone(),
                name: c.name.clone(),
            },
            ProviderEvent::ToolCallDelta {
                index,
                arguments: c.arguments.to_string(),
            },
            ProviderEvent::ToolCall {
                index,
                call: c.clone(),
            },
        ]
    }

    /// What the consumer gets of `events(index, c)`.
    fn delivered(index: usize, c: &ToolCall) -> Vec<StreamEvent> {
        vec![
            StreamEvent::ToolCallStart {
                index,
                id: c.id.clone(),
                name: c.name.clone(),
            },
            StreamEvent::ToolCallDelta {
                index,
                arguments: c.arguments.to_string(),
            },
            StreamEvent::ToolCall {
                index,
                call: c.clone(),
            },
        ]
    }

    fn feed(calls: &mut StreamCalls, evs: Vec<ProviderEvent>) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        for e in evs {
            calls.on_event(e, &mut out);
        }
        out
    }

    #[test]
    fn a_call_cut_in_half_is_discarded_and_made_again_at_its_index() {
        let mut s = StreamCalls::default();
        s.begin_attempt(false);
        let oslo = call("weather", "Oslo");
        let rome = call("weather", "Rome");
        assert_eq!(feed(&mut s, events(0, &oslo)).len(), 3);
        // Call 1 starts, then the attempt breaks.
        let mut half = events(1, &rome);
        half.pop();
        feed(&mut s, half);
        assert_eq!(s.interrupted(), Some(1));
        // The continuation makes Oslo again (a repeat, dropped) and Rome whole.
        s.begin_attempt(true);
        let mut again = events(0, &oslo);
        again.extend(events(1, &rome));
        let out = feed(&mut s, again);
        assert_eq!(out, delivered(1, &rome));
        assert_eq!(s.delivered(), &[oslo, rome]);
    }

    #[test]
    fn a_held_call_is_not_delivered_before_it_is_whole() {
        let mut s = StreamCalls::default();
        s.begin_attempt(true);
        let oslo = call("weather", "Oslo");
        let mut evs = events(0, &oslo);
        let last = evs.pop().unwrap();
        assert!(feed(&mut s, evs).is_empty());
        assert_eq!(s.interrupted(), None, "nothing of it reached the consumer");
        s.begin_attempt(true);
        assert_eq!(feed(&mut s, vec![last]).len(), 1);
    }
}
