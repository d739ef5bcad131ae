//! Renders replies in each provider's wire format: JSON bodies and SSE events.

use bytes::Bytes;
use serde_json::json;

use super::errors::ErrorResponse;
use super::text::{Finish, Reply};
use super::{Behaviour, Flavour};

/// The SSE events of a streamed reply, in three runs: before the text, one event
/// per text chunk, and the closing events (finish, usage, terminal event).
#[derive(Debug, Clone)]
pub struct Frames {
    /// Events before the first text chunk.
    pub head: Vec<Bytes>,
    /// One event per text chunk.
    pub content: Vec<Bytes>,
    /// Finish, usage and the terminal event.
    pub tail: Vec<Bytes>,
}

fn data(json: &str) -> Bytes {
    Bytes::from(format!("data: {json}\n\n"))
}

fn event(name: &str, json: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn openai_finish(f: Finish) -> &'static str {
    match f {
        Finish::Stop | Finish::StopSequence => "stop",
        Finish::Length => "length",
        Finish::ToolUse => "tool_calls",
    }
}

fn anthropic_stop(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "end_turn",
        Finish::StopSequence => "stop_sequence",
        Finish::Length => "max_tokens",
        Finish::ToolUse => "tool_use",
    }
}

/// The id prefix of tool calls in a flavour.
fn call_prefix(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::Anthropic => "toolu_",
        Flavour::OpenAi | Flavour::Xai | Flavour::Responses => "call_",
    }
}

/// Tokens the reply generated: its text chunks and its calls' argument pieces.
pub(super) fn completion_tokens(reply: &Reply) -> u64 {
    let pieces: usize = reply.calls.iter().map(|c| c.pieces.len()).sum();
    let thinking = reply.thinking.as_ref().map_or(0, |t| t.tokens);
    reply
        .tokens
        .saturating_add(pieces as u64)
        .saturating_add(thinking)
}

/// The events of a streamed reply, as the API documents them.
pub fn sse_frames(
    flavour: Flavour,
    model: &str,
    reply: &Reply,
    include_usage: bool,
    id: &str,
    created: u64,
) -> Frames {
    sse_frames_as(
        flavour,
        model,
        reply,
        StreamUsage {
            last: include_usage,
            every_chunk: false,
        },
        id,
        created,
        Behaviour::Standard,
    )
}

/// Where a Chat Completions stream reports usage.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamUsage {
    /// In a last chunk of its own (`stream_options.include_usage`).
    pub last: bool,
    /// On every chunk, cumulative (vLLM's and SGLang's
    /// `stream_options.continuous_usage_stats`).
    pub every_chunk: bool,
}

/// The events of a streamed reply, as a server of `behaviour` sends them.
pub fn sse_frames_as(
    flavour: Flavour,
    model: &str,
    reply: &Reply,
    usage: StreamUsage,
    id: &str,
    created: u64,
    behaviour: Behaviour,
) -> Frames {
    let include_usage = usage.last;
    let completion = completion_tokens(reply);
    match flavour {
        Flavour::Responses => {
            super::responses::frames(model, reply, id, created, completion, false)
        }
        Flavour::OpenAi | Flavour::Xai => {
            let prefix = format!(
                r#"{{"id":{},"object":"chat.completion.chunk","created":{created},"model":{},"system_fingerprint":"fp_mock","choices":"#,
                quote(id),
                quote(model)
            );
            let head = vec![data(&format!(
                r#"{prefix}[{{"index":0,"delta":{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null}}]}}"#
            ))];
            // Per-chunk counts only where they match the chunks.
            let counted = usage.every_chunk && reply.chunk_tokens.len() == reply.chunks.len();
            let mut so_far = 0u64;
            let mut content: Vec<Bytes> = reply
                .chunks
                .iter()
                .zip(reply.chunk_tokens.iter().chain(std::iter::repeat(&0)))
                .map(|(c, n)| {
                    so_far = so_far.saturating_add(u64::from(*n));
                    let usage = if counted {
                        format!(
                            r#","usage":{{"prompt_tokens":{},"completion_tokens":{so_far},"total_tokens":{}}}"#,
                            reply.prompt_tokens,
                            reply.prompt_tokens.saturating_add(so_far)
                        )
                    } else {
                        String::new()
                    };
                    data(&format!(
                        r#"{prefix}[{{"index":0,"delta":{{"content":{}}},"logprobs":null,"finish_reason":null}}],"obfuscation":"x1"{usage}}}"#,
                        quote(c)
                    ))
                })
                .collect();
            let delta = |calls: serde_json::Value| {
                data(&format!(
                    r#"{prefix}[{{"index":0,"delta":{{"tool_calls":{calls}}},"logprobs":null,"finish_reason":null}}]}}"#
                ))
            };
            for (i, call) in reply.calls.iter().enumerate() {
                let id = call.id(call_prefix(flavour), reply.call_seed);
                if behaviour == Behaviour::SplitCalls {
                    // FakeAI: the id alone, then the name alone.
                    content.push(delta(json!([{"index": i, "id": id, "type": "function",
                        "function": null}])));
                    content.push(delta(json!([{"index": i, "id": null, "type": null,
                        "function": {"name": call.name, "arguments": null}}])));
                } else {
                    content.push(delta(json!([{"index": i, "id": id, "type": "function",
                        "function": {"name": call.name, "arguments": ""}}])));
                }
                for piece in &call.pieces {
                    content.push(delta(
                        json!([{"index": i, "function": {"arguments": piece}}]),
                    ));
                }
            }
            let mut tail = vec![data(&format!(
                r#"{prefix}[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{}"}}]}}"#,
                openai_finish(reply.finish)
            ))];
            if include_usage {
                tail.push(data(&format!(
                    r#"{prefix}[],"usage":{{"prompt_tokens":{},"completion_tokens":{completion},"total_tokens":{}}}}}"#,
                    reply.prompt_tokens,
                    reply.prompt_tokens + completion
                )));
            }
            tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
            Frames {
                head,
                content,
                tail,
            }
        }
        Flavour::Anthropic => {
            let start = json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "content": [], "model": model,
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": reply.prompt_tokens, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 0, "output_tokens": 1}}});
            // A reply of tool calls alone has no text block.
            let text_block = !reply.chunks.is_empty() || reply.calls.is_empty();
            let mut head = vec![event("message_start", &start.to_string())];
            let block_stop = |i: usize| {
                event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": i}).to_string(),
                )
            };
            // Thinking first: its events are content (a break may cut them).
            let mut content: Vec<Bytes> = Vec::new();
            if let Some(t) = &reply.thinking {
                content.push(event("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#));
                for c in &t.chunks {
                    content.push(event(
                        "content_block_delta",
                        &json!({"type": "content_block_delta",
                        "index": 0, "delta": {"type": "thinking_delta", "thinking": c}})
                        .to_string(),
                    ));
                }
                content.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta",
                    "index": 0, "delta": {"type": "signature_delta", "signature": t.signature}})
                    .to_string(),
                ));
                content.push(block_stop(0));
            }
            let ti = usize::from(reply.thinking.is_some());
            if text_block {
                let start = event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": ti,
                        "content_block": {"type": "text", "text": ""}})
                    .to_string(),
                );
                if ti == 0 {
                    head.push(start);
                } else {
                    content.push(start);
                }
            }
            head.push(event("ping", r#"{"type": "ping"}"#));
            content.extend(reply.chunks.iter().map(|c| {
                event(
                    "content_block_delta",
                    &format!(
                        r#"{{"type":"content_block_delta","index":{ti},"delta":{{"type":"text_delta","text":{}}}}}"#,
                        quote(c)
                    ),
                )
            }));
            let mut tail = Vec::with_capacity(3);
            if reply.calls.is_empty() {
                tail.push(block_stop(ti));
            } else {
                if text_block {
                    content.push(block_stop(ti));
                }
                let first = ti + usize::from(text_block);
                for (j, call) in reply.calls.iter().enumerate() {
                    let index = first + j;
                    let id = call.id(call_prefix(flavour), reply.call_seed);
                    content.push(event("content_block_start", &json!({"type": "content_block_start",
                        "index": index, "content_block": {"type": "tool_use", "id": id, "name": call.name, "input": {}}}).to_string()));
                    for piece in &call.pieces {
                        content.push(event("content_block_delta", &json!({"type": "content_block_delta",
                            "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}).to_string()));
                    }
                    content.push(block_stop(index));
                }
            }
            let delta = json!({"type": "message_delta",
                "delta": {"stop_reason": anthropic_stop(reply.finish), "stop_sequence": reply.stop_sequence},
                "usage": {"output_tokens": completion}});
            tail.push(event("message_delta", &delta.to_string()));
            tail.push(event("message_stop", r#"{"type":"message_stop"}"#));
            Frames {
                head,
                content,
                tail,
            }
        }
    }
}

/// The JSON body of a non-streaming reply.
pub fn json_body(flavour: Flavour, model: &str, reply: &Reply, id: &str, created: u64) -> String {
    let text = reply.text();
    let completion = completion_tokens(reply);
    let prefix = call_prefix(flavour);
    match flavour {
        Flavour::Responses => {
            return super::responses::json_body(model, reply, id, created, completion)
        }
        Flavour::OpenAi | Flavour::Xai => {
            let mut message = json!({"role": "assistant", "content": text, "refusal": null, "annotations": []});
            if !reply.calls.is_empty() {
                if text.is_empty() {
                    message["content"] = serde_json::Value::Null;
                }
                message["tool_calls"] = reply
                    .calls
                    .iter()
                    .map(|c| json!({"id": c.id(prefix, reply.call_seed), "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments.to_string()}}))
                    .collect();
            }
            json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0,
                "message": message,
                "logprobs": null, "finish_reason": openai_finish(reply.finish)}],
            "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": completion,
                "total_tokens": reply.prompt_tokens + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
            "service_tier": "default", "system_fingerprint": "fp_mock"
            })
        }
        Flavour::Anthropic => {
            let mut content = Vec::with_capacity(reply.calls.len() + 2);
            if let Some(t) = &reply.thinking {
                content.push(json!({"type": "thinking", "thinking": t.text(),
                    "signature": t.signature}));
            }
            if !text.is_empty() || reply.calls.is_empty() {
                content.push(json!({"type": "text", "text": text}));
            }
            for c in &reply.calls {
                content.push(json!({"type": "tool_use", "id": c.id(prefix, reply.call_seed),
                    "name": c.name, "input": c.arguments}));
            }
            json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": content,
            "stop_reason": anthropic_stop(reply.finish), "stop_sequence": reply.stop_sequence,
            "usage": {"input_tokens": reply.prompt_tokens, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0, "output_tokens": completion, "service_tier": "standard"}
            })
        }
    }
    .to_string()
}

/// The in-band error event for error `name` (see [`super::errors::in_band_error`]).
pub fn in_band_frame(event_name: Option<&str>, body: &str) -> Bytes {
    match event_name {
        Some(name) => event(name, body),
        None => data(body),
    }
}

/// A data line whose JSON is cut short.
pub fn malformed_json_frame(flavour: Flavour) -> Bytes {
    match flavour {
        Flavour::Anthropic => event(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_del"#,
        ),
        Flavour::OpenAi | Flavour::Xai => {
            data(r#"{"id":"chatcmpl-mock","choices":[{"delta":{"con"#)
        }
        Flavour::Responses => super::responses::malformed_frame(),
    }
}

/// A keep-alive: Anthropic's `ping` event, an SSE comment elsewhere (see
/// [`super::Outcome::Pings`]).
pub fn keep_alive_frame(flavour: Flavour) -> Bytes {
    match flavour {
        Flavour::Anthropic => Bytes::from_static(b"event: ping\ndata: {\"type\": \"ping\"}\n\n"),
        _ => Bytes::from_static(b": keep-alive\n\n"),
    }
}

/// Bytes that no SSE parser can read as text.
pub fn malformed_sse_frame() -> Bytes {
    Bytes::from_static(b"data: \xff\xfe\xfd broken\n\n")
}

/// A status error without a named body: the flavour's generic shape.
pub fn generic_error(flavour: Flavour, status: u16, request_id: &str) -> ErrorResponse {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let client_error = status < 500;
    let body = match flavour {
        Flavour::OpenAi | Flavour::Responses => {
            let kind = if client_error {
                "invalid_request_error"
            } else {
                "server_error"
            };
            json!({"error": {"message": reason, "type": kind, "param": null, "code": null}})
        }
        Flavour::Anthropic => {
            let kind = if client_error {
                "invalid_request_error"
            } else {
                "api_error"
            };
            json!({"type": "error", "error": {"type": kind, "message": reason}, "request_id": request_id})
        }
        Flavour::Xai => {
            let code = if client_error {
                "invalid-argument"
            } else {
                "internal"
            };
            json!({"code": code, "error": reason})
        }
    };
    ErrorResponse {
        status,
        content_type: "application/json",
        body: body.to_string(),
    }
}
