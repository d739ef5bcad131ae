//! The "continue" message: what steer sends a model that rejects an assistant
//! prefill, to resume an interrupted response, and which models those are. Shared
//! by the runtime, which writes it, and the mock provider, which reads it and
//! answers as a model would.
//!
//! ```
//! use steer_llm::continue_message;
//! let message = continue_message::write("Once upon a ");
//! assert_eq!(continue_message::read(&message), Some("Once upon a "));
//! assert!(continue_message::rejects_prefill("claude-opus-4-6"));
//! ```

/// Opening of the message.
pub const PREFIX: &str =
    "Your previous response was interrupted. Here is what you had written so far:\n\n<partial>\n";
/// End of the message.
pub const SUFFIX: &str =
    "\n</partial>\n\nContinue exactly where it stopped, without repeating any of it.";

/// The message quoting `delivered`, the text the consumer already has.
pub fn write(delivered: &str) -> String {
    format!("{PREFIX}{delivered}{SUFFIX}")
}

/// The quoted text, if `content` is a continue message (without tool calls).
pub fn read(content: &str) -> Option<&str> {
    content.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)
}

/// Between the quoted text and the quoted tool calls.
const CALLS_OPEN: &str = "\n</partial>\n\nThe tool calls you had made, complete:\n<tool_calls>\n";
/// After the quoted tool calls.
const CALLS_CLOSE: &str =
    "\n</tool_calls>\n\nContinue exactly where it stopped, without repeating any of it or any of those calls.";

/// The message quoting `delivered` and the tool calls already made whole (their
/// names and arguments); without calls, [`write()`].
pub fn write_with_calls(delivered: &str, calls: &[crate::tools::ToolCall]) -> String {
    if calls.is_empty() {
        return write(delivered);
    }
    let quoted: Vec<serde_json::Value> = calls
        .iter()
        .map(|c| serde_json::json!({"name": c.name, "arguments": c.arguments}))
        .collect();
    format!(
        "{PREFIX}{delivered}{CALLS_OPEN}{}{CALLS_CLOSE}",
        serde_json::Value::Array(quoted)
    )
}

/// What a continue message quotes: the text, and the tool calls (name, arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct Quoted {
    /// The text delivered.
    pub text: String,
    /// The tool calls made whole, in order.
    pub calls: Vec<(String, serde_json::Value)>,
}

/// Reads a continue message, with or without quoted tool calls.
pub fn read_quoted(content: &str) -> Option<Quoted> {
    if let Some(text) = read(content) {
        return Some(Quoted {
            text: text.to_string(),
            calls: Vec::new(),
        });
    }
    let inner = content.strip_prefix(PREFIX)?.strip_suffix(CALLS_CLOSE)?;
    let at = inner.rfind(CALLS_OPEN)?;
    let text = &inner[..at];
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&inner[at + CALLS_OPEN.len()..]).ok()?;
    let calls = list
        .into_iter()
        .map(|c| {
            let name = c.get("name")?.as_str()?.to_string();
            Some((name, c.get("arguments")?.clone()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Quoted {
        text: text.to_string(),
        calls,
    })
}

/// Whether an Anthropic model rejects a final assistant message: Claude 4.6 and later
/// (`claude-opus-4-6`, `claude-sonnet-4-6`, `claude-opus-4-7`, `claude-*-5`).
pub fn rejects_prefill(model: &str) -> bool {
    let Some(rest) = model.strip_prefix("claude-") else {
        return false;
    };
    let numbers: Vec<u32> = rest
        .split('-')
        .filter(|p| !p.is_empty() && p.len() <= 2)
        .filter_map(|p| p.parse().ok())
        .collect();
    match numbers.as_slice() {
        [major, minor, ..] => (*major, *minor) >= (4, 6),
        [major] => *major >= 5,
        [] => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_what_it_quotes() {
        for text in ["", "Hello ", "line\n</partial>\nmore"] {
            assert_eq!(read(&write(text)), Some(text));
        }
        assert_eq!(read("Continue, please."), None);
    }

    #[test]
    fn a_message_with_calls_reads_back_its_text_and_calls() {
        let call =
            crate::tools::ToolCall::new("id", "get_weather", serde_json::json!({"city": "Oslo"}));
        let message = write_with_calls("Let me check.", std::slice::from_ref(&call));
        let quoted = read_quoted(&message).unwrap();
        assert_eq!(quoted.text, "Let me check.");
        assert_eq!(
            quoted.calls,
            vec![("get_weather".to_string(), call.arguments)]
        );
        assert_eq!(read_quoted(&write("abc")).unwrap().calls, vec![]);
        assert_eq!(write_with_calls("abc", &[]), write("abc"));
    }

    #[test]
    fn prefill_is_rejected_from_claude_4_6_on() {
        for (model, rejects) in [
            ("claude-3-5-haiku-latest", false),
            ("claude-sonnet-4-5-20250929", false),
            ("claude-sonnet-4-20250514", false),
            ("claude-opus-4-6", true),
            ("claude-sonnet-4-6", true),
            ("claude-opus-4-7", true),
            ("claude-opus-5", true),
            ("gpt-4o-mini", false),
        ] {
            assert_eq!(rejects_prefill(model), rejects, "{model}");
        }
    }
}
