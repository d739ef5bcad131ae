//! The Responses API (`POST /v1/responses`) as the mock speaks it: a request
//! read as OpenAI reads it (input items, `instructions`, flat tools,
//! `text.format`, `max_output_tokens`), and a reply rendered as a response
//! object or as its `response.*` events with sequence numbers.
//!
//! Shapes from openai-python's generated types (`types/responses/`), as the
//! reference lists them (`responses-api.md` §2-§4): the stream opens with
//! `response.created` and `response.in_progress`, carries text as
//! `response.output_text.delta` and calls as an `output_item.added` with the
//! name whole then `function_call_arguments.delta` pieces, and ends at exactly
//! one `response.completed` or `response.incomplete` carrying the whole
//! response; OpenAI sends no `[DONE]` after it (Floway PR #312), so neither
//! does the mock.

use bytes::Bytes;
use serde_json::{json, Value};

use super::render::Frames;
use super::request::{image_at, str_field, MockRequest};
use super::text::{Finish, Reply};
use crate::content::Part;
use crate::model::{Message, Role};
use crate::tools::{ResponseFormat, Tool, ToolCall, ToolChoice, ToolResult};

/// Reads a `POST /v1/responses` body, or the API's 400 message.
pub(super) fn read(body: &Value) -> Result<MockRequest, String> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or("model: Field required")?
        .to_string();
    let mut messages = Vec::new();
    if let Some(instructions) = body.get("instructions").and_then(Value::as_str) {
        messages.push(Message::system(instructions));
    }
    match body.get("input") {
        Some(Value::String(text)) => messages.push(Message::user(text.as_str())),
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                read_item(item, &format!("input.{i}"), &mut messages)?;
            }
        }
        _ => return Err("input: Field required (a string or a non-empty array)".into()),
    }
    if body.get("stop").is_some() {
        return Err("Unknown parameter: 'stop'.".into());
    }
    let max_tokens = match body.get("max_output_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n >= 1)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                .ok_or("max_output_tokens: Input should be a positive integer")?,
        ),
    };
    let tools = read_tools(body)?;
    let tool_choice = match body.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return Err(format!("tool_choice: unknown {other:?}")),
        }),
        Some(c) => Some(ToolChoice::Tool(
            str_field(c, "name", "tool_choice")?.to_string(),
        )),
    };
    super::request::check_choice(tool_choice.as_ref(), &tools)?;
    Ok(MockRequest {
        model,
        messages,
        max_tokens,
        stop: Vec::new(),
        stream: body.get("stream").and_then(Value::as_bool) == Some(true),
        // The terminal event always carries the usage.
        include_usage: true,
        continuous_usage: false,
        tools,
        tool_choice,
        parallel_tool_calls: body.get("parallel_tool_calls").and_then(Value::as_bool),
        response_format: read_format(body)?,
        // The Responses API answers a final assistant message afresh.
        continues_prefill: false,
        background: body.get("background").and_then(Value::as_bool) == Some(true),
    })
}

/// One input item, appended to the conversation: a message, or a call and its
/// output (calls join the assistant turn before them).
fn read_item(item: &Value, at: &str, out: &mut Vec<Message>) -> Result<(), String> {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    match kind {
        "message" => {
            let role = str_field(item, "role", at)?;
            let parts = read_content(item.get("content"), at)?;
            let role = match role {
                "user" => Role::User,
                "system" | "developer" => Role::System,
                "assistant" => Role::Assistant,
                other => return Err(format!("{at}.role: unexpected role {other:?}")),
            };
            if role != Role::User && parts.iter().any(|p| !matches!(p, Part::Text(_))) {
                return Err(format!("{at}: only user messages may hold images"));
            }
            // An assistant message after its reasoning items is one turn.
            match out.last_mut() {
                Some(last)
                    if role == Role::Assistant
                        && last.role == Role::Assistant
                        && last.content.iter().all(|p| matches!(p, Part::Reasoning(_))) =>
                {
                    last.content.extend(parts)
                }
                _ => out.push(Message::new(role, parts)),
            }
        }
        "function_call" => {
            let call = ToolCall::from_text(
                str_field(item, "call_id", at)?,
                str_field(item, "name", at)?,
                str_field(item, "arguments", at)?,
            );
            match out.last_mut() {
                Some(last) if last.role == Role::Assistant => {
                    last.content.push(Part::ToolCall(call))
                }
                _ => out.push(Message::new(Role::Assistant, vec![Part::ToolCall(call)])),
            }
        }
        "function_call_output" => {
            let result = ToolResult::new(
                str_field(item, "call_id", at)?,
                str_field(item, "output", at)?,
            );
            out.push(Message::new(Role::Tool, vec![Part::ToolResult(result)]));
        }
        // Reasoning items open the assistant turn they led to.
        "reasoning" => {
            let part = Part::Reasoning(crate::reasoning::Reasoning::openai_responses(item.clone()));
            match out.last_mut() {
                Some(last) if last.role == Role::Assistant => last.content.push(part),
                _ => out.push(Message::new(Role::Assistant, vec![part])),
            }
        }
        other => return Err(format!("{at}.type: unknown item type {other:?}")),
    }
    Ok(())
}

fn read_content(content: Option<&Value>, at: &str) -> Result<Vec<Part>, String> {
    match content {
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let at = format!("{at}.content.{j}");
                match str_field(p, "type", &at)? {
                    "input_text" | "output_text" => {
                        Ok(Part::Text(str_field(p, "text", &at)?.to_string()))
                    }
                    "input_image" => image_at(str_field(p, "image_url", &at)?, &at),
                    other => Err(format!("{at}.type: unknown part type {other:?}")),
                }
            })
            .collect(),
        _ => Err(format!("{at}.content: Field required")),
    }
}

fn read_tools(body: &Value) -> Result<Vec<Tool>, String> {
    let Some(list) = body.get("tools").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let at = format!("tools.{i}");
            if t.get("function").is_some() {
                // Chat Completions' nested shape: the Responses API refuses it.
                return Err(format!("{at}.name: Field required"));
            }
            super::request::read_tool(t, "parameters", &at)
        })
        .collect()
}

fn read_format(body: &Value) -> Result<Option<ResponseFormat>, String> {
    let Some(format) = body.pointer("/text/format") else {
        return Ok(None);
    };
    match str_field(format, "type", "text.format")? {
        "text" => Ok(None),
        "json_object" => Ok(Some(ResponseFormat::Json)),
        "json_schema" => Ok(Some(ResponseFormat::JsonSchema {
            name: str_field(format, "name", "text.format")?.to_string(),
            schema: format
                .get("schema")
                .cloned()
                .ok_or("text.format.schema: Field required")?,
            strict: format.get("strict").and_then(Value::as_bool) == Some(true),
        })),
        other => Err(format!("text.format.type: unknown {other:?}")),
    }
}

/// The status of a reply that ended for `finish`, and why it is incomplete.
fn status(finish: Finish) -> (&'static str, Value) {
    match finish {
        Finish::Length => ("incomplete", json!({"reason": "max_output_tokens"})),
        Finish::Stop | Finish::StopSequence | Finish::ToolUse => ("completed", Value::Null),
    }
}

/// The output items of a whole reply: its message (unless it is calls alone),
/// then its calls.
fn output(reply: &Reply, id: &str) -> Vec<Value> {
    let mut items = Vec::with_capacity(reply.calls.len() + 2);
    if let Some(t) = &reply.thinking {
        items.push(reasoning_item(t, id));
    }
    let text = reply.text();
    if !text.is_empty() || reply.calls.is_empty() {
        items.push(
            json!({"type": "message", "id": format!("msg_{id}"), "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}),
        );
    }
    for (i, c) in reply.calls.iter().enumerate() {
        items.push(
            json!({"type": "function_call", "id": format!("fc_{id}_{i}"),
            "call_id": c.id("call_", reply.call_seed), "name": c.name,
            "arguments": c.arguments.to_string(), "status": "completed"}),
        );
    }
    items
}

/// A reasoning item, whole: its summary when asked, its encrypted content
/// when asked.
fn reasoning_item(t: &super::thinking::Thinking, id: &str) -> Value {
    let summary: Vec<Value> = if t.summary {
        vec![json!({"type": "summary_text", "text": t.text()})]
    } else {
        Vec::new()
    };
    let mut item = json!({"type": "reasoning", "id": format!("rs_{id}"), "summary": summary});
    if let (Some(e), Some(fields)) = (&t.signature, item.as_object_mut()) {
        fields.insert("encrypted_content".into(), Value::from(e.as_str()));
    }
    item
}

/// The response object: the whole reply (`output` filled) or, in the opening
/// events, the response in progress.
fn response(
    model: &str,
    reply: &Reply,
    id: &str,
    created: u64,
    completion: u64,
    whole: bool,
) -> Value {
    let (status, incomplete) = if whole {
        status(reply.finish)
    } else {
        ("in_progress", Value::Null)
    };
    let usage = if whole {
        json!({"input_tokens": reply.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reply.thinking.as_ref().map_or(0, |t| t.tokens)},
            "total_tokens": reply.prompt_tokens.saturating_add(completion)})
    } else {
        Value::Null
    };
    json!({"id": id, "object": "response", "created_at": created, "status": status,
        "background": false, "error": null, "incomplete_details": incomplete,
        "model": model, "output": if whole { output(reply, id) } else { Vec::new() },
        "parallel_tool_calls": true, "store": true, "text": {"format": {"type": "text"}},
        "usage": usage})
}

/// The JSON body of a non-streaming reply.
pub(super) fn json_body(
    model: &str,
    reply: &Reply,
    id: &str,
    created: u64,
    completion: u64,
) -> String {
    response(model, reply, id, created, completion, true).to_string()
}

/// A response object as a background response shows it: `background` set,
/// and `status` given (a background response starts `queued`).
fn in_background(mut response: Value, status: Option<&str>) -> Value {
    if let Some(fields) = response.as_object_mut() {
        fields.insert("background".into(), Value::Bool(true));
        if let Some(status) = status {
            fields.insert("status".into(), Value::from(status));
        }
    }
    response
}

/// Numbers the events of one stream, in order.
struct Events {
    next: u64,
}

impl Events {
    fn frame(&mut self, kind: &str, mut body: Value) -> Bytes {
        if let Some(fields) = body.as_object_mut() {
            fields.insert("type".into(), Value::from(kind));
            fields.insert("sequence_number".into(), Value::from(self.next));
        }
        self.next = self.next.saturating_add(1);
        Bytes::from(format!("event: {kind}\ndata: {body}\n\n"))
    }
}

/// The events of a streamed reply; in background mode the response is
/// `queued` first (`response.created`, `response.queued`, then
/// `response.in_progress`), and says `background: true` throughout.
pub(super) fn frames(
    model: &str,
    reply: &Reply,
    id: &str,
    created: u64,
    completion: u64,
    background: bool,
) -> Frames {
    let mut ev = Events { next: 0 };
    let mut open = response(model, reply, id, created, completion, false);
    let mut head = Vec::with_capacity(5);
    if background {
        let queued = in_background(open.clone(), Some("queued"));
        head.push(ev.frame("response.created", json!({"response": queued})));
        head.push(ev.frame("response.queued", json!({"response": queued})));
        open = in_background(open, None);
    } else {
        head.push(ev.frame("response.created", json!({"response": open})));
    }
    head.push(ev.frame("response.in_progress", json!({"response": open})));
    let message_id = format!("msg_{id}");
    let text_item = !reply.chunks.is_empty() || reply.calls.is_empty();
    // Reasoning first, at output index 0: its events are content (a break may
    // cut them), and the message and calls come after it.
    let mut content: Vec<Bytes> = Vec::new();
    let mi = usize::from(reply.thinking.is_some());
    if let Some(t) = &reply.thinking {
        let rs_id = format!("rs_{id}");
        content.push(ev.frame(
            "response.output_item.added",
            json!({"output_index": 0,
            "item": {"type": "reasoning", "id": rs_id, "summary": []}}),
        ));
        if t.summary {
            content.push(ev.frame(
                "response.reasoning_summary_part.added",
                json!({"item_id": rs_id, "output_index": 0, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}}),
            ));
            for c in &t.chunks {
                content.push(ev.frame(
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": rs_id, "output_index": 0, "summary_index": 0, "delta": c}),
                ));
            }
            content.push(ev.frame(
                "response.reasoning_summary_text.done",
                json!({"item_id": rs_id, "output_index": 0, "summary_index": 0, "text": t.text()}),
            ));
            content.push(ev.frame(
                "response.reasoning_summary_part.done",
                json!({"item_id": rs_id, "output_index": 0, "summary_index": 0,
                    "part": {"type": "summary_text", "text": t.text()}}),
            ));
        }
        content.push(ev.frame(
            "response.output_item.done",
            json!({"output_index": 0, "item": reasoning_item(t, id)}),
        ));
    }
    let opening = if mi == 0 { &mut head } else { &mut content };
    if text_item {
        opening.push(ev.frame(
            "response.output_item.added",
            json!({"output_index": mi,
            "item": {"type": "message", "id": message_id, "role": "assistant",
                "status": "in_progress", "content": []}}),
        ));
        opening.push(ev.frame(
            "response.content_part.added",
            json!({"item_id": message_id,
            "output_index": mi, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
        ));
    }
    content.extend(reply.chunks.iter().map(|c| {
        ev.frame(
            "response.output_text.delta",
            json!({"item_id": message_id,
            "output_index": mi, "content_index": 0, "delta": c, "logprobs": []}),
        )
    }));
    let text = reply.text();
    let text_done = |ev: &mut Events| {
        vec![
            ev.frame(
                "response.output_text.done",
                json!({"item_id": message_id,
                "output_index": mi, "content_index": 0, "text": text, "logprobs": []}),
            ),
            ev.frame(
                "response.content_part.done",
                json!({"item_id": message_id,
                "output_index": mi, "content_index": 0,
                "part": {"type": "output_text", "text": text, "annotations": []}}),
            ),
            ev.frame(
                "response.output_item.done",
                json!({"output_index": mi,
                "item": {"type": "message", "id": message_id, "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}}),
            ),
        ]
    };
    let mut tail = Vec::new();
    if reply.calls.is_empty() {
        tail.extend(text_done(&mut ev));
    } else {
        if text_item {
            content.extend(text_done(&mut ev));
        }
        let first = mi + usize::from(text_item);
        for (j, call) in reply.calls.iter().enumerate() {
            let index = first + j;
            let item_id = format!("fc_{id}_{j}");
            let call_id = call.id("call_", reply.call_seed);
            content.push(ev.frame(
                "response.output_item.added",
                json!({"output_index": index,
                "item": {"type": "function_call", "id": item_id, "call_id": call_id,
                    "name": call.name, "arguments": "", "status": "in_progress"}}),
            ));
            for piece in &call.pieces {
                content.push(ev.frame(
                    "response.function_call_arguments.delta",
                    json!({"item_id": item_id, "output_index": index, "delta": piece}),
                ));
            }
            let arguments = call.arguments.to_string();
            content.push(ev.frame(
                "response.function_call_arguments.done",
                json!({"item_id": item_id, "output_index": index, "arguments": arguments}),
            ));
            content.push(ev.frame(
                "response.output_item.done",
                json!({"output_index": index,
                "item": {"type": "function_call", "id": item_id, "call_id": call_id,
                    "name": call.name, "arguments": arguments, "status": "completed"}}),
            ));
        }
    }
    let mut done = response(model, reply, id, created, completion, true);
    if background {
        done = in_background(done, None);
    }
    let terminal = if done["status"] == "incomplete" {
        "response.incomplete"
    } else {
        "response.completed"
    };
    tail.push(ev.frame(terminal, json!({"response": done})));
    Frames {
        head,
        content,
        tail,
    }
}

/// The in-band `error` event of an OpenAI error body (`{"error": {...}}`).
pub(super) fn error_event(status_body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(status_body).ok()?;
    let e = v.get("error")?;
    Some(
        json!({"type": "error",
            "code": e.get("code").filter(|c| !c.is_null()).cloned().unwrap_or_else(|| {
                // The event has no `type` of its own to carry the error's: its code
                // says it (`invalid_prompt` for a request the model refused).
                match e.get("type").and_then(Value::as_str) {
                    Some("invalid_request_error") => Value::from("invalid_prompt"),
                    Some(other) => Value::from(other),
                    None => Value::Null,
                }
            }),
            "message": e.get("message").cloned().unwrap_or(Value::Null),
            "param": e.get("param").cloned().unwrap_or(Value::Null),
            "sequence_number": 0})
        .to_string(),
    )
}

/// An event whose JSON is cut short.
pub(super) fn malformed_frame() -> Bytes {
    Bytes::from_static(
        b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hel\n\n",
    )
}
