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

/// The quoted text, if `content` is a continue message.
pub fn read(content: &str) -> Option<&str> {
    content.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)
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
