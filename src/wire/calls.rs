//! Streamed tool calls assembled from their pieces, as servers really send them.
//!
//! Real OpenAI puts a call's `id`, `name` and first (empty) `arguments` in one
//! delta; other servers split them: the `id` in one delta and the `name` in the
//! next (FakeAI), the name itself in fragments, arguments before the name, or no
//! `index` at all (Gemini's OpenAI-compatible endpoint). So a call is keyed by
//! the provider's index, its first non-empty id is kept, name and argument
//! fragments are appended, and the consumer's `ToolCallStart` waits until the
//! call has its name whole: the first argument fragment, or the call's end.
//! A call the server gave no id gets one (an empty `tool_call_id` on the next
//! turn is refused by every provider).

use crate::model::ProviderEvent;
use crate::tools::ToolCall;

use super::{DecodeError, MAX_TOOL_ARGUMENTS};

/// The longest tool name kept (OpenAI allows 64 characters; a longer one is a
/// server's error, refused rather than grown without bound).
pub const MAX_TOOL_NAME: usize = 1024;

/// Calls open at once, at most (a stream of ever-lower indices closes none):
/// past it the stream is malformed rather than memory grown without bound.
pub const MAX_OPEN_CALLS: usize = 128;

/// Assembles streamed tool calls from their pieces, keyed by the provider's
/// index, numbered 0, 1, ... in the order they start.
///
/// ```
/// use steer_llm::wire::CallAssembler;
/// use steer_llm::ProviderEvent;
/// let mut calls = CallAssembler::default();
/// let mut out = Vec::new();
/// // The id in one piece, the name in the next, then the arguments.
/// calls.piece(0, Some("call_1"), None, None, &mut out).unwrap();
/// calls.piece(0, None, Some("get_weather"), None, &mut out).unwrap();
/// calls.piece(0, None, None, Some(r#"{"city":"Oslo"}"#), &mut out).unwrap();
/// calls.finish_all(&mut out);
/// assert!(matches!(&out[0], ProviderEvent::ToolCallStart { id, name, .. }
///     if id == "call_1" && name == "get_weather"));
/// assert!(matches!(&out[2], ProviderEvent::ToolCall { call, .. } if call.id == "call_1"));
/// ```
#[derive(Debug, Default)]
pub struct CallAssembler {
    open: Vec<OpenCall>,
    next: usize,
    /// The key of the call a piece without an index extends.
    last_key: Option<usize>,
}

#[derive(Debug)]
struct OpenCall {
    key: usize,
    /// The consumer's index, once its `ToolCallStart` went out.
    index: Option<usize>,
    id: String,
    name: String,
    arguments: String,
}

impl CallAssembler {
    /// An assembler whose first call is numbered `next` (a stream resumed after
    /// that many calls).
    pub fn starting_at(next: usize) -> Self {
        CallAssembler {
            next,
            ..CallAssembler::default()
        }
    }

    /// How many calls were announced (the next one's index).
    pub fn announced(&self) -> usize {
        self.next
    }

    /// Whether a call is open (begun and not complete).
    pub fn is_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// A call starts whole: its id and name are known (Anthropic's `tool_use`
    /// block). A second start of the same key is ignored.
    pub fn start(
        &mut self,
        key: usize,
        id: String,
        name: String,
        out: &mut Vec<ProviderEvent>,
    ) -> Result<(), DecodeError> {
        if self.open.iter().any(|c| c.key == key) {
            return Ok(());
        }
        if self.open.len() >= MAX_OPEN_CALLS {
            return Err(DecodeError::Malformed(format!(
                "more than {MAX_OPEN_CALLS} tool calls open at once"
            )));
        }
        self.open.push(OpenCall {
            key,
            index: None,
            id,
            name,
            arguments: String::new(),
        });
        self.last_key = Some(key);
        if let Some(call) = self.open.last_mut() {
            announce(call, &mut self.next, out);
        }
        Ok(())
    }

    /// The key a piece without an index belongs to: a new non-empty id that
    /// differs from the last call's starts a new call, anything else extends it.
    pub fn key_for(&self, index: Option<usize>, id: Option<&str>) -> usize {
        if let Some(index) = index {
            return index;
        }
        let Some(last) = self.last_key else {
            return 0;
        };
        let last_id = self
            .open
            .iter()
            .find(|c| c.key == last)
            .map(|c| c.id.as_str());
        match id.filter(|id| !id.is_empty()) {
            Some(id) if last_id != Some(id) => last.saturating_add(1),
            _ => last,
        }
    }

    /// A piece of the call of `key`: any of its id, a fragment of its name, a
    /// fragment of its arguments. Empty and absent fields add nothing.
    pub fn piece(
        &mut self,
        key: usize,
        id: Option<&str>,
        name: Option<&str>,
        arguments: Option<&str>,
        out: &mut Vec<ProviderEvent>,
    ) -> Result<(), DecodeError> {
        let (id, name, arguments) = (
            id.filter(|s| !s.is_empty()),
            name.filter(|s| !s.is_empty()),
            arguments.filter(|s| !s.is_empty()),
        );
        let at = match self.open.iter().position(|c| c.key == key) {
            Some(at) => at,
            None if id.is_none() && name.is_none() && arguments.is_none() => return Ok(()),
            None if self.open.len() >= MAX_OPEN_CALLS => {
                return Err(DecodeError::Malformed(format!(
                    "more than {MAX_OPEN_CALLS} tool calls open at once"
                )))
            }
            None => {
                self.open.push(OpenCall {
                    key,
                    index: None,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                self.open.len().saturating_sub(1)
            }
        };
        self.last_key = Some(key);
        let Some(call) = self.open.get_mut(at) else {
            return Ok(());
        };
        if let (Some(id), true) = (id, call.id.is_empty()) {
            call.id = id.to_string();
        }
        if let Some(name) = name {
            if call.index.is_some() {
                // The consumer has its start: a name cannot grow after it.
                return Err(DecodeError::Malformed(format!(
                    "tool call {:?}: a name fragment after its arguments began",
                    call.name
                )));
            }
            if call.name.len().saturating_add(name.len()) > MAX_TOOL_NAME {
                return Err(DecodeError::Malformed(format!(
                    "tool call name longer than {MAX_TOOL_NAME} bytes"
                )));
            }
            call.name.push_str(name);
        }
        let Some(piece) = arguments else {
            return Ok(());
        };
        if call.arguments.len().saturating_add(piece.len()) > MAX_TOOL_ARGUMENTS {
            return Err(DecodeError::Malformed(format!(
                "tool call {:?}: arguments larger than {MAX_TOOL_ARGUMENTS} bytes",
                call.name
            )));
        }
        call.arguments.push_str(piece);
        match call.index {
            Some(index) => out.push(ProviderEvent::ToolCallDelta {
                index,
                arguments: piece.to_string(),
            }),
            // Arguments began: the name is whole. The start, then what came so far.
            None if !call.name.is_empty() => announce(call, &mut self.next, out),
            // Arguments before any name: held until the name comes.
            None => {}
        }
        Ok(())
    }

    /// A piece of an open call's arguments (pieces of unknown calls are dropped).
    pub fn delta(
        &mut self,
        key: usize,
        piece: String,
        out: &mut Vec<ProviderEvent>,
    ) -> Result<(), DecodeError> {
        if !self.open.iter().any(|c| c.key == key) {
            return Ok(());
        }
        self.piece(key, None, None, Some(&piece), out)
    }

    /// The call of `key` is complete. A call that never had a name is not a
    /// call: it is dropped.
    pub fn finish(&mut self, key: usize, out: &mut Vec<ProviderEvent>) {
        let Some(at) = self.open.iter().position(|c| c.key == key) else {
            return;
        };
        let mut call = self.open.remove(at);
        if call.index.is_none() {
            if call.name.is_empty() {
                return;
            }
            announce(&mut call, &mut self.next, out);
        }
        let index = call.index.unwrap_or_default();
        out.push(ProviderEvent::ToolCall {
            index,
            call: ToolCall::from_text(call.id, call.name, &call.arguments),
        });
    }

    /// Completes every open call whose key is below `key`.
    pub fn finish_below(&mut self, key: usize, out: &mut Vec<ProviderEvent>) {
        let mut below: Vec<usize> = self
            .open
            .iter()
            .map(|c| c.key)
            .filter(|k| *k < key)
            .collect();
        below.sort_unstable();
        for k in below {
            self.finish(k, out);
        }
    }

    /// Completes every open call, in key order.
    pub fn finish_all(&mut self, out: &mut Vec<ProviderEvent>) {
        let mut keys: Vec<usize> = self.open.iter().map(|c| c.key).collect();
        keys.sort_unstable();
        for k in keys {
            self.finish(k, out);
        }
    }
}

/// Gives `call` the consumer's next index and sends its start (with an id made
/// up if the server sent none), then the arguments it already has.
fn announce(call: &mut OpenCall, next: &mut usize, out: &mut Vec<ProviderEvent>) {
    let index = *next;
    *next = next.saturating_add(1);
    call.index = Some(index);
    if call.id.is_empty() {
        call.id = made_up_id();
    }
    out.push(ProviderEvent::ToolCallStart {
        index,
        id: call.id.clone(),
        name: call.name.clone(),
    });
    if !call.arguments.is_empty() {
        out.push(ProviderEvent::ToolCallDelta {
            index,
            arguments: call.arguments.clone(),
        });
    }
}

/// An id for a call the server gave none: `call_` and 24 letters and digits.
pub(super) fn made_up_id() -> String {
    let mut id = String::with_capacity(29);
    id.push_str("call_");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(24));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(out: &[ProviderEvent]) -> Vec<ToolCall> {
        out.iter()
            .filter_map(|e| match e {
                ProviderEvent::ToolCall { call, .. } => Some(call.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn id_name_and_arguments_in_separate_pieces_make_one_call() {
        let mut a = CallAssembler::default();
        let mut out = Vec::new();
        a.piece(0, Some("call_abc"), None, None, &mut out).unwrap();
        a.piece(0, None, Some("get_"), None, &mut out).unwrap();
        a.piece(0, None, Some("weather"), None, &mut out).unwrap();
        assert!(out.is_empty(), "no start before the name is whole");
        a.piece(0, None, None, Some(r#"{"city":"#), &mut out)
            .unwrap();
        a.piece(0, None, None, Some(r#""Oslo"}"#), &mut out)
            .unwrap();
        a.finish_all(&mut out);
        assert_eq!(
            out[0],
            ProviderEvent::ToolCallStart {
                index: 0,
                id: "call_abc".into(),
                name: "get_weather".into()
            }
        );
        let got = calls(&out);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "call_abc");
        assert_eq!(got[0].name, "get_weather");
        assert_eq!(got[0].arguments, serde_json::json!({"city": "Oslo"}));
    }

    #[test]
    fn arguments_before_the_name_are_held_and_an_id_is_never_empty() {
        let mut a = CallAssembler::default();
        let mut out = Vec::new();
        a.piece(3, None, None, Some("{}"), &mut out).unwrap();
        assert!(out.is_empty());
        a.piece(3, None, Some("f"), None, &mut out).unwrap();
        a.finish(3, &mut out);
        let got = calls(&out);
        assert_eq!(got[0].name, "f");
        assert!(got[0].id.starts_with("call_") && got[0].id.len() == 29);
        assert!(
            matches!(&out[1], ProviderEvent::ToolCallDelta { arguments, .. } if arguments == "{}")
        );
    }

    #[test]
    fn pieces_without_an_index_follow_their_ids() {
        let mut a = CallAssembler::default();
        let mut out = Vec::new();
        for (id, name, args) in [
            (Some("a"), Some("f"), Some("{}")),
            (Some("b"), Some("g"), Some("{\"x\"")),
            (None, None, Some(":1}")),
        ] {
            let key = a.key_for(None, id);
            a.piece(key, id, name, args, &mut out).unwrap();
        }
        a.finish_all(&mut out);
        let got = calls(&out);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].id.as_str(), got[0].name.as_str()), ("a", "f"));
        assert_eq!(got[1].arguments, serde_json::json!({"x": 1}));
    }

    #[test]
    fn a_nameless_call_is_dropped_and_oversized_names_are_refused() {
        let mut a = CallAssembler::default();
        let mut out = Vec::new();
        a.piece(0, Some("id"), None, None, &mut out).unwrap();
        a.finish_all(&mut out);
        assert!(out.is_empty());
        let long = "n".repeat(MAX_TOOL_NAME + 1);
        assert!(a.piece(1, None, Some(&long), None, &mut out).is_err());
    }

    #[test]
    fn ever_lower_indices_cannot_open_calls_without_bound() {
        let mut a = CallAssembler::default();
        let mut out = Vec::new();
        let mut last = Ok(());
        for key in (0..1_000).rev() {
            a.finish_below(key, &mut out);
            last = a.piece(key, Some("id"), Some("f"), None, &mut out);
            if last.is_err() {
                break;
            }
        }
        assert!(matches!(last, Err(DecodeError::Malformed(_))));
        assert!(a.open.len() <= MAX_OPEN_CALLS);
    }

    #[test]
    fn the_first_id_is_kept() {
        let mut a = CallAssembler::default();
        let mut out = Vec::new();
        a.piece(0, Some("first"), Some("f"), Some("{}"), &mut out)
            .unwrap();
        a.piece(0, Some("second"), None, None, &mut out).unwrap();
        a.finish_all(&mut out);
        assert_eq!(calls(&out)[0].id, "first");
    }
}
