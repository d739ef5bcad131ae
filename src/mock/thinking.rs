//! Reasoning as the mock answers it: Anthropic's extended thinking and the
//! Responses API's reasoning items (responses-api.md §6-§7).
//!
//! - Anthropic: `thinking: {"type": "enabled", "budget_tokens": N}` or
//!   `{"type": "adaptive"}` gives a `thinking` block first, streamed as
//!   `thinking_delta` events and one `signature_delta` just before its
//!   `content_block_stop` (the AWS Bedrock page on thinking encryption). Its
//!   tokens are output tokens and count toward `max_tokens`. The signature is
//!   bound to the conversation before the block and to its text: a block sent
//!   back changed is refused with 400 "Invalid signature in thinking block"
//!   (openclaw #92201), one without its signature with "...signature: Field
//!   required" (opencode-go-copilot v1.12.2). With thinking on, a final
//!   assistant message (a prefill) must start with a thinking block, else the
//!   400 BerriAI/litellm #9020 and aider #3820 quote. Models from Claude 4.7 on
//!   refuse `"enabled"` (the 400 docs.memberjunction.org quotes), and
//!   `budget_tokens` must be at least 1,024 and below `max_tokens`.
//! - The Responses API: a request with `reasoning` gets a `reasoning` item
//!   first (a summary when `reasoning.summary` asks, `encrypted_content` when
//!   `include` asks for `reasoning.encrypted_content`), its tokens counted in
//!   `output_tokens_details.reasoning_tokens`. Encrypted content sent back
//!   changed is refused with 400 `invalid_encrypted_content` "The encrypted
//!   content ... could not be verified." (openai/codex #8145, 2025-12).

use serde_json::Value;

use super::text::{count_tokens, Turn};
use crate::content::Part;
use crate::model::{Message, Role};

/// The reasoning of one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thinking {
    /// Its readable text, chunk by chunk.
    pub chunks: Vec<String>,
    /// Its tokens.
    pub tokens: u64,
    /// What binds it to its conversation: Anthropic's signature, or the
    /// Responses API's encrypted content (`None` when not asked for).
    pub signature: Option<String>,
    /// Whether a Responses API reply shows its summary.
    pub summary: bool,
}

impl Thinking {
    /// The whole text.
    pub fn text(&self) -> String {
        self.chunks.concat()
    }
}

/// FNV-1a, 64 bits: the mock's stand-in for a server's signing key.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The conversation before a reply, as a signature binds it.
fn conversation(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|m| {
            let t = Turn::of(m);
            format!("{}:{}", t.role, t.content)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Anthropic's signature of `thinking` after `messages`.
fn sign(messages: &[Message], thinking: &str) -> String {
    format!("EqMock{:016x}", fnv(&[&conversation(messages), thinking]))
}

/// The Responses API's encrypted content of reasoning after `messages`.
fn encrypt(messages: &[Message], summary: &str) -> String {
    format!(
        "gAAAAMock{:016x}",
        fnv(&["rs", &conversation(messages), summary])
    )
}

/// What the reasoning says: a few words on the last user message.
fn words(messages: &[Message]) -> String {
    let topic = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| {
            m.text()
                .split_whitespace()
                .take(4)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    format!("The user asks: {topic} A short answer will do.")
}

/// Cuts `text` into stream chunks of about two words.
fn chunks(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    words.chunks(2).map(|c| c.concat()).collect()
}

/// A 400 of the mock's reasoning checks.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The message.
    pub message: String,
    /// OpenAI's `code`, where it has one.
    pub code: Option<&'static str>,
}

fn refuse(message: impl Into<String>) -> Refusal {
    Refusal {
        message: message.into(),
        code: None,
    }
}

/// Message `k`'s index on Anthropic's wire, where the system prompt is no message.
fn wire_index(messages: &[Message], k: usize) -> usize {
    k.saturating_sub(usize::from(
        messages.first().is_some_and(|m| m.role == Role::System),
    ))
}

/// Models that refuse `thinking.type: enabled` (Claude 4.7 and later).
fn adaptive_only(model: &str) -> bool {
    model.contains("-4-7")
        || model.starts_with("claude-opus-5")
        || model.starts_with("claude-sonnet-5")
        || model.starts_with("claude-haiku-5")
        || model.contains("-5-")
}

/// Anthropic: the reasoning a request asks for (`None` without thinking),
/// or the 400 it gets: a bad `thinking`, a changed or unsigned block, a
/// prefill that does not start with one.
pub fn anthropic(
    model: &str,
    body: &Value,
    messages: &[Message],
    max_tokens: Option<u32>,
) -> Result<Option<Thinking>, Refusal> {
    for (k, m) in messages.iter().enumerate() {
        for (j, p) in m.content.iter().enumerate() {
            let Part::Reasoning(r) = p else { continue };
            let at = format!("messages.{}.content.{j}", wire_index(messages, k));
            if r.block.get("type").and_then(Value::as_str) != Some("thinking") {
                continue;
            }
            let text = r
                .block
                .get("thinking")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let signature = r.block.get("signature").and_then(Value::as_str);
            match signature {
                None => return Err(refuse(format!("{at}.thinking.signature: Field required"))),
                Some(s) if s != sign(&messages[..k], text) => {
                    return Err(refuse(format!("{at}: Invalid signature in thinking block")))
                }
                Some(_) => {}
            }
        }
    }
    let Some(thinking) = body.get("thinking") else {
        return Ok(None);
    };
    let kind = thinking
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "disabled" => return Ok(None),
        "adaptive" => {}
        "enabled" if adaptive_only(model) => {
            return Err(refuse(
                "\"thinking.type.enabled\" is not supported for this model. Use \
                 \"thinking.type.adaptive\" and \"output_config.effort\" to control thinking \
                 behavior.",
            ))
        }
        "enabled" => {
            let budget = thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if budget < 1024 {
                return Err(refuse(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                ));
            }
            if max_tokens.is_some_and(|m| u64::from(m) <= budget) {
                return Err(refuse(
                    "`max_tokens` must be greater than `thinking.budget_tokens`",
                ));
            }
        }
        other => return Err(refuse(format!("thinking.type: unknown {other:?}"))),
    }
    let last = messages.len().checked_sub(1).map(|k| (k, &messages[k]));
    if let Some((k, last)) = last.filter(|(_, m)| m.role == Role::Assistant) {
        let leads = matches!(last.content.first(), Some(Part::Reasoning(_)));
        if !leads {
            let found = last.content.first().map_or("text", |p| p.kind());
            return Err(refuse(format!(
                "messages.{}.content.0.type: Expected `thinking` or `redacted_thinking`, but \
                 found `{found}`. When `thinking` is enabled, a final `assistant` message must \
                 start with a thinking block (preceeding the lastmost set of `tool_use` and \
                 `tool_result` blocks). We recommend you include thinking blocks from previous \
                 turns. To avoid this requirement, disable `thinking`. Please consult our \
                 documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking",
                wire_index(messages, k)
            )));
        }
        // A prefill continues the turn: its thinking is done.
        return Ok(None);
    }
    let text = words(messages);
    Ok(Some(Thinking {
        tokens: count_tokens(model, &text),
        signature: Some(sign(messages, &text)),
        chunks: chunks(&text),
        summary: true,
    }))
}

/// The Responses API: the reasoning a request asks for (`None` without
/// `reasoning`), or the 400 of encrypted content sent back changed.
pub fn responses(
    model: &str,
    body: &Value,
    messages: &[Message],
) -> Result<Option<Thinking>, Refusal> {
    for (k, m) in messages.iter().enumerate() {
        for p in &m.content {
            let Part::Reasoning(r) = p else { continue };
            let Some(sent) = r.block.get("encrypted_content").and_then(Value::as_str) else {
                continue;
            };
            let summary = crate::reasoning::Reasoning::openai_responses(r.block.clone()).text();
            if sent != encrypt(&messages[..k], &summary) {
                let shown: String = sent.chars().take(4).collect();
                return Err(Refusal {
                    message: format!("The encrypted content {shown}... could not be verified."),
                    code: Some("invalid_encrypted_content"),
                });
            }
        }
    }
    let Some(reasoning) = body.get("reasoning").filter(|r| r.is_object()) else {
        return Ok(None);
    };
    let summary = reasoning
        .get("summary")
        .and_then(Value::as_str)
        .is_some_and(|s| s != "none");
    let encrypted = body
        .get("include")
        .and_then(Value::as_array)
        .is_some_and(|i| {
            i.iter()
                .any(|v| v.as_str() == Some("reasoning.encrypted_content"))
        });
    let text = words(messages);
    let shown = if summary { text.clone() } else { String::new() };
    Ok(Some(Thinking {
        tokens: count_tokens(model, &text),
        signature: encrypted.then(|| encrypt(messages, &shown)),
        chunks: chunks(&text),
        summary,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convo() -> Vec<Message> {
        vec![Message::user("Tell me about rivers.")]
    }

    #[test]
    fn a_signed_block_is_accepted_unchanged_and_refused_changed() {
        let body = json!({"thinking": {"type": "adaptive"}});
        let t = anthropic("claude-sonnet-4-5", &body, &convo(), Some(2048))
            .expect("accepted")
            .expect("thinking");
        let block = json!({"type": "thinking", "thinking": t.text(), "signature": t.signature});
        let mut history = convo();
        history.push(Message::new(
            Role::Assistant,
            vec![
                Part::Reasoning(crate::reasoning::Reasoning::anthropic(block.clone())),
                Part::Text("Rivers flow.".into()),
            ],
        ));
        history.push(Message::user("More?"));
        assert!(anthropic("claude-sonnet-4-5", &body, &history, Some(2048)).is_ok());
        let mut changed = block;
        changed["thinking"] = json!("The user asks something else.");
        history[1].content[0] = Part::Reasoning(crate::reasoning::Reasoning::anthropic(changed));
        let err = anthropic("claude-sonnet-4-5", &body, &history, Some(2048)).expect_err("changed");
        assert!(
            err.message.ends_with("Invalid signature in thinking block"),
            "{}",
            err.message
        );
    }

    #[test]
    fn thinking_refuses_a_prefill_without_a_block_and_enabled_on_later_models() {
        let body = json!({"thinking": {"type": "enabled", "budget_tokens": 1024}});
        let mut prefill = convo();
        prefill.push(Message::assistant("Rivers"));
        let err =
            anthropic("claude-sonnet-4-5", &body, &prefill, Some(2048)).expect_err("no block");
        assert!(
            err.message.contains("must start with a thinking block"),
            "{}",
            err.message
        );
        let err = anthropic("claude-opus-4-7", &body, &convo(), Some(2048)).expect_err("enabled");
        assert!(err.message.contains("thinking.type.adaptive"));
        let err = anthropic("claude-sonnet-4-5", &body, &convo(), Some(1024)).expect_err("budget");
        assert!(err.message.contains("budget_tokens"));
    }

    #[test]
    fn encrypted_reasoning_is_verified_against_its_conversation() {
        let body = json!({"reasoning": {"effort": "low", "summary": "auto"},
            "include": ["reasoning.encrypted_content"]});
        let t = responses("gpt-5-mini", &body, &convo())
            .expect("ok")
            .expect("reasoning");
        let item = json!({"type": "reasoning", "id": "rs_1", "encrypted_content": t.signature,
            "summary": [{"type": "summary_text", "text": t.text()}]});
        let mut history = convo();
        history.push(Message::new(
            Role::Assistant,
            vec![Part::Reasoning(
                crate::reasoning::Reasoning::openai_responses(item.clone()),
            )],
        ));
        history.push(Message::user("More?"));
        assert!(responses("gpt-5-mini", &body, &history).is_ok());
        history[0] = Message::user("Tell me about lakes.");
        let err = responses("gpt-5-mini", &body, &history).expect_err("another conversation");
        assert_eq!(err.code, Some("invalid_encrypted_content"));
    }
}
