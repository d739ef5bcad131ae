//! Reads a request body the way the real API would: messages with their parts,
//! tools, tool choice, output format; or the API's 400 message.
//!
//! It reads into steer's own provider-neutral model, so a test can send a
//! request through a wire format and read it back (`tests/wire_props.rs`).

use serde_json::Value;

use super::Flavour;
use crate::content::{ImageSource, Part};
use crate::model::{Message, Role};
use crate::tools::{ResponseFormat, Tool, ToolCall, ToolChoice, ToolResult};

/// A request as the mock read it.
#[derive(Debug, Clone, PartialEq)]
pub struct MockRequest {
    /// The model.
    pub model: String,
    /// The conversation, system prompt first (Anthropic's `system` becomes a
    /// system message).
    pub messages: Vec<Message>,
    /// `max_tokens` (or `max_completion_tokens`).
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Whether it streams.
    pub stream: bool,
    /// Whether it asked for the final usage chunk.
    pub include_usage: bool,
    /// Whether it asked for usage on every chunk (vLLM's and SGLang's
    /// `stream_options.continuous_usage_stats`).
    pub continuous_usage: bool,
    /// Tools.
    pub tools: Vec<Tool>,
    /// Tool choice.
    pub tool_choice: Option<ToolChoice>,
    /// Whether parallel calls are allowed (`None`: the provider's default, yes).
    pub parallel_tool_calls: Option<bool>,
    /// Output format.
    pub response_format: Option<ResponseFormat>,
    /// Whether a final assistant message is a prefill the server continues:
    /// always in Anthropic's Messages (before Claude 4.6; later models refuse
    /// it); in Chat Completions only when the request says so, with DeepSeek's
    /// and Mistral's `"prefix": true` on it or vLLM's `continue_final_message`.
    /// Otherwise OpenAI treats it as a finished turn and answers afresh.
    pub continues_prefill: bool,
    /// Whether it asked for background mode (the Responses API's `background`).
    pub background: bool,
}

/// The text of a message's content: a string, or the `text` of its parts.
pub(crate) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

/// The string field `key` of `v`, or the API's "Field required" for `at.key`.
pub(super) fn str_field<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}.{key}: Field required"))
}

/// An image part by URL (`data:` or http(s)), refused as the APIs refuse one.
pub(super) fn image_at(url: &str, at: &str) -> Result<Part, String> {
    let source = ImageSource::from_url(url);
    source.validate().map_err(|e| format!("{at}: {e}"))?;
    Ok(Part::Image(source))
}

/// Reads `body` as `flavour`'s API would.
pub fn read(flavour: Flavour, body: &Value) -> Result<MockRequest, String> {
    if flavour == Flavour::Responses {
        return super::responses::read(body);
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or("model: Field required")?
        .to_string();
    let raw = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("messages: Field required (a non-empty array)")?;
    let mut messages = Vec::with_capacity(raw.len() + 1);
    if let Some(system) = body.get("system").and_then(text_of) {
        messages.push(Message::system(system));
    }
    for (i, m) in raw.iter().enumerate() {
        let at = format!("messages.{i}");
        match flavour {
            Flavour::Anthropic => messages.push(anthropic_message(m, &at)?),
            Flavour::OpenAi | Flavour::Xai | Flavour::Responses => {
                messages.push(openai_message(m, &at)?)
            }
        }
    }
    let max_tokens = match body
        .get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"))
    {
        None | Some(Value::Null) if flavour == Flavour::Anthropic => {
            return Err("max_tokens: Field required".into())
        }
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n >= 1)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                .ok_or("max_tokens: Input should be a positive integer")?,
        ),
    };
    let stop = match body.get("stop").or_else(|| body.get("stop_sequences")) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let flagged = |v: Option<&Value>| v.and_then(Value::as_bool) == Some(true);
    let continue_final = flagged(body.get("continue_final_message"));
    if continue_final && flagged(body.get("add_generation_prompt")) {
        // vLLM's own check (the two exclude each other).
        return Err("continue_final_message and add_generation_prompt cannot both be true".into());
    }
    let last_raw = raw.last();
    let continues_prefill = messages.last().is_some_and(|m| m.role == Role::Assistant)
        && match flavour {
            Flavour::Anthropic => true,
            Flavour::OpenAi | Flavour::Xai | Flavour::Responses => {
                continue_final || flagged(last_raw.and_then(|m| m.get("prefix")))
            }
        };
    let tools = read_tools(flavour, body)?;
    let (tool_choice, parallel_tool_calls) = read_choice(flavour, body)?;
    check_choice(tool_choice.as_ref(), &tools)?;
    Ok(MockRequest {
        model,
        messages,
        max_tokens,
        stop,
        stream: body.get("stream").and_then(Value::as_bool) == Some(true),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true),
        continuous_usage: body
            .pointer("/stream_options/continuous_usage_stats")
            .and_then(Value::as_bool)
            == Some(true),
        tools,
        tool_choice,
        parallel_tool_calls,
        response_format: read_format(flavour, body)?,
        continues_prefill,
        background: false,
    })
}

fn openai_message(m: &Value, at: &str) -> Result<Message, String> {
    let role = str_field(m, "role", at)?;
    let content = m.get("content").filter(|c| !c.is_null());
    let parts = |content: &Value| -> Result<Vec<Part>, String> {
        match content {
            Value::String(s) => Ok(vec![Part::Text(s.clone())]),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    let at = format!("{at}.content.{j}");
                    match str_field(p, "type", &at)? {
                        "text" => Ok(Part::Text(str_field(p, "text", &at)?.to_string())),
                        "image_url" => {
                            let url = p
                                .pointer("/image_url/url")
                                .and_then(Value::as_str)
                                .ok_or(format!("{at}.image_url.url: Field required"))?;
                            image_at(url, &at)
                        }
                        other => Err(format!("{at}.type: unknown part type {other:?}")),
                    }
                })
                .collect(),
            _ => Err(format!("{at}.content: expected a string or an array")),
        }
    };
    match role {
        "system" | "developer" | "user" => {
            let content = content.ok_or(format!("{at}.content: Field required"))?;
            let parts = parts(content)?;
            if role != "user" && parts.iter().any(|p| !matches!(p, Part::Text(_))) {
                return Err(format!("{at}: only user messages may hold images"));
            }
            let role = if role == "user" {
                Role::User
            } else {
                Role::System
            };
            Ok(Message::new(role, parts))
        }
        "assistant" => {
            let mut out = match content {
                Some(c) => parts(c)?,
                None => Vec::new(),
            };
            for (j, c) in m
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let at = format!("{at}.tool_calls.{j}");
                let id = str_field(c, "id", &at)?;
                let f = c
                    .get("function")
                    .ok_or(format!("{at}.function: Field required"))?;
                let name = str_field(f, "name", &at)?;
                let args = str_field(f, "arguments", &at)?;
                out.push(Part::ToolCall(ToolCall::from_text(id, name, args)));
            }
            if out.is_empty() {
                return Err(format!("{at}.content: Field required"));
            }
            Ok(Message::new(Role::Assistant, out))
        }
        "tool" => {
            let id = str_field(m, "tool_call_id", at)?;
            let content = content
                .and_then(text_of)
                .ok_or(format!("{at}.content: Field required"))?;
            Ok(Message::new(
                Role::Tool,
                vec![Part::ToolResult(ToolResult::new(id, content))],
            ))
        }
        other => Err(format!("{at}.role: unexpected role {other:?}")),
    }
}

fn anthropic_message(m: &Value, at: &str) -> Result<Message, String> {
    let role = str_field(m, "role", at)?;
    let role = match role {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => return Err(format!("{at}.role: unexpected role {other:?}")),
    };
    let content = m
        .get("content")
        .ok_or(format!("{at}.content: Field required"))?;
    let blocks = match content {
        Value::String(s) => return Ok(Message::new(role, vec![Part::Text(s.clone())])),
        Value::Array(blocks) => blocks,
        _ => return Err(format!("{at}.content: expected a string or an array")),
    };
    let mut parts = Vec::with_capacity(blocks.len());
    let mut results = 0usize;
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{at}.content.{j}");
        let part = match (role, str_field(b, "type", &at)?) {
            (_, "text") => Part::Text(str_field(b, "text", &at)?.to_string()),
            (Role::User, "image") => {
                let source = b
                    .get("source")
                    .ok_or(format!("{at}.source: Field required"))?;
                let source = match str_field(source, "type", &at)? {
                    "base64" => ImageSource::base64(
                        str_field(source, "media_type", &at)?,
                        str_field(source, "data", &at)?,
                    ),
                    "url" => ImageSource::url(str_field(source, "url", &at)?),
                    other => return Err(format!("{at}.source.type: unknown {other:?}")),
                };
                source.validate().map_err(|e| format!("{at}: {e}"))?;
                Part::Image(source)
            }
            (Role::Assistant, "tool_use") => {
                let input = b.get("input").cloned().unwrap_or(Value::Null);
                if !input.is_object() {
                    return Err(format!("{at}.input: Input should be an object"));
                }
                Part::ToolCall(ToolCall::new(
                    str_field(b, "id", &at)?,
                    str_field(b, "name", &at)?,
                    input,
                ))
            }
            (Role::Assistant, "thinking" | "redacted_thinking") => {
                Part::Reasoning(crate::reasoning::Reasoning::anthropic(b.clone()))
            }
            (Role::User, "tool_result") => {
                results += 1;
                let content = b.get("content").and_then(text_of).unwrap_or_default();
                Part::ToolResult(ToolResult {
                    call_id: str_field(b, "tool_use_id", &at)?.to_string(),
                    content,
                    is_error: b.get("is_error").and_then(Value::as_bool) == Some(true),
                })
            }
            (_, other) => return Err(format!("{at}.type: unexpected block {other:?}")),
        };
        parts.push(part);
    }
    // A user turn of tool results is, in steer's terms, a tool message.
    let role = if results > 0 && results == parts.len() {
        Role::Tool
    } else {
        role
    };
    Ok(Message::new(role, parts))
}

/// A tool choice the tools cannot satisfy, as the APIs refuse it.
pub(super) fn check_choice(choice: Option<&ToolChoice>, tools: &[Tool]) -> Result<(), String> {
    match choice {
        Some(ToolChoice::Tool(name)) if !tools.iter().any(|t| &t.name == name) => {
            Err(format!("tool_choice: no tool named {name:?}"))
        }
        Some(ToolChoice::Required | ToolChoice::Tool(_)) if tools.is_empty() => {
            Err("tool_choice: requires tools".into())
        }
        _ => Ok(()),
    }
}

fn read_tools(flavour: Flavour, body: &Value) -> Result<Vec<Tool>, String> {
    let Some(list) = body.get("tools").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let at = format!("tools.{i}");
            let (def, schema_key) = match flavour {
                Flavour::Anthropic => (t, "input_schema"),
                _ => (
                    t.get("function")
                        .ok_or(format!("{at}.function: Field required"))?,
                    "parameters",
                ),
            };
            read_tool(def, schema_key, &at)
        })
        .collect()
}

/// One tool definition: its name, its schema under `schema_key`, its
/// description and strictness, validated as the APIs validate them.
pub(super) fn read_tool(def: &Value, schema_key: &str, at: &str) -> Result<Tool, String> {
    let schema = def
        .get(schema_key)
        .cloned()
        .ok_or(format!("{at}.{schema_key}: Field required"))?;
    let mut tool = Tool::new(str_field(def, "name", at)?, schema);
    tool.description = def
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    tool.strict = def.get("strict").and_then(Value::as_bool) == Some(true);
    tool.validate().map_err(|e| format!("{at}: {e}"))?;
    Ok(tool)
}

fn read_choice(
    flavour: Flavour,
    body: &Value,
) -> Result<(Option<ToolChoice>, Option<bool>), String> {
    let choice = body.get("tool_choice");
    match flavour {
        Flavour::Anthropic => {
            let Some(c) = choice else {
                return Ok((None, None));
            };
            let kind = str_field(c, "type", "tool_choice")?;
            let parallel = c
                .get("disable_parallel_tool_use")
                .and_then(Value::as_bool)
                .map(|disabled| !disabled);
            let choice = match kind {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                "any" => ToolChoice::Required,
                "tool" => ToolChoice::Tool(str_field(c, "name", "tool_choice")?.to_string()),
                other => return Err(format!("tool_choice.type: unknown {other:?}")),
            };
            Ok((Some(choice), parallel))
        }
        Flavour::OpenAi | Flavour::Xai | Flavour::Responses => {
            let parallel = body.get("parallel_tool_calls").and_then(Value::as_bool);
            let choice = match choice {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(match s.as_str() {
                    "auto" => ToolChoice::Auto,
                    "none" => ToolChoice::None,
                    "required" => ToolChoice::Required,
                    other => return Err(format!("tool_choice: unknown {other:?}")),
                }),
                Some(c) => Some(ToolChoice::Tool(
                    c.pointer("/function/name")
                        .and_then(Value::as_str)
                        .ok_or("tool_choice.function.name: Field required")?
                        .to_string(),
                )),
            };
            Ok((choice, parallel))
        }
    }
}

fn read_format(flavour: Flavour, body: &Value) -> Result<Option<ResponseFormat>, String> {
    match flavour {
        Flavour::Anthropic => {
            let Some(format) = body.pointer("/output_config/format") else {
                return Ok(None);
            };
            match str_field(format, "type", "output_config.format")? {
                "json_schema" => Ok(Some(ResponseFormat::JsonSchema {
                    name: "output".into(),
                    schema: format
                        .get("schema")
                        .cloned()
                        .ok_or("output_config.format.schema: Field required")?,
                    strict: true,
                })),
                other => Err(format!("output_config.format.type: unknown {other:?}")),
            }
        }
        Flavour::OpenAi | Flavour::Xai | Flavour::Responses => {
            let Some(format) = body.get("response_format") else {
                return Ok(None);
            };
            match str_field(format, "type", "response_format")? {
                "text" => Ok(None),
                "json_object" => Ok(Some(ResponseFormat::Json)),
                "json_schema" => {
                    let spec = format
                        .get("json_schema")
                        .ok_or("response_format.json_schema: Field required")?;
                    Ok(Some(ResponseFormat::JsonSchema {
                        name: str_field(spec, "name", "response_format.json_schema")?.to_string(),
                        schema: spec
                            .get("schema")
                            .cloned()
                            .ok_or("response_format.json_schema.schema: Field required")?,
                        strict: spec.get("strict").and_then(Value::as_bool) == Some(true),
                    }))
                }
                other => Err(format!("response_format.type: unknown {other:?}")),
            }
        }
    }
}
