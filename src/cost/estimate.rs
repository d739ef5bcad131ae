//! Token counts steer estimates when a provider sends none: a request's
//! prompt (before it is sent, to reserve a budget; after an attempt that
//! reported nothing) and a broken stream's output. With the model family's
//! public tokenizer where there is one, else on the high side
//! ([`estimate_tokens`]). An estimate is always marked as one where it shows.

use crate::content::Part;
use crate::model::ChatRequest;
use crate::tokens::{self, estimate_tokens};

/// Tokens each message costs beyond its text (its role and separators:
/// OpenAI's published rule counts 3 or 4).
pub const PER_MESSAGE: u64 = 4;

/// Tokens an image costs at most, counted for each image of a prompt (OpenAI
/// counts a high-detail 2048x2048 image as 1,105; Anthropic a 1.15-megapixel
/// one as about 1,600).
pub const PER_IMAGE: u64 = 1_600;

/// `text`'s tokens for `model`: its tokenizer's count where it is public and
/// loaded, else the high-side estimate.
pub fn text_tokens(model: &str, text: &str) -> u64 {
    tokens::count(model, text).unwrap_or_else(|| estimate_tokens(text))
}

/// The prompt tokens of `req`, estimated: every text part, tool call and
/// result, each tool's name, description and schema, and a few tokens a
/// message; images at [`PER_IMAGE`]. Reasoning blocks sent back count as text.
///
/// ```
/// use steer_llm::{cost::estimate, ChatRequest};
/// let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest").unwrap().user("hello there");
/// // "hello" and "there": two tokens each on the high side.
/// assert_eq!(estimate::prompt_tokens(&req), 4 + estimate::PER_MESSAGE);
/// ```
pub fn prompt_tokens(req: &ChatRequest) -> u64 {
    let model = req.model.model();
    let count = |text: &str| text_tokens(model, text);
    let mut total = 0u64;
    for message in &req.messages {
        total = total.saturating_add(PER_MESSAGE);
        for part in &message.content {
            let n = match part {
                Part::Text(t) => count(t),
                Part::Image(_) => PER_IMAGE,
                Part::ToolCall(c) => count(&c.name).saturating_add(count(&c.arguments.to_string())),
                Part::ToolResult(r) => count(&r.content),
                Part::Reasoning(r) => count(&serde_json::to_string(r).unwrap_or_default()),
            };
            total = total.saturating_add(n);
        }
    }
    for tool in &req.tools {
        let description = tool.description.as_deref().unwrap_or("");
        total = total
            .saturating_add(count(&tool.name))
            .saturating_add(count(description))
            .saturating_add(count(&tool.input_schema.to_string()));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tool;

    #[test]
    fn every_part_of_a_prompt_counts() {
        let base = ChatRequest::new("xai/grok-3-mini").unwrap().user("a b c d");
        let n = prompt_tokens(&base);
        assert_eq!(n, 4 + PER_MESSAGE);
        let with_tool = base
            .clone()
            .tool(Tool::new("lookup", serde_json::json!({"type": "object"})));
        assert!(prompt_tokens(&with_tool) > n);
        let two = base.user("more words here");
        assert!(prompt_tokens(&two) >= n + PER_MESSAGE + 3);
    }

    #[test]
    fn a_huge_prompt_counts_without_overflow() {
        let req = ChatRequest::new("xai/grok-3-mini")
            .unwrap()
            .user("word ".repeat(100_000));
        assert_eq!(prompt_tokens(&req), 100_000 + PER_MESSAGE);
    }
}
