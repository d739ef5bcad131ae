//! OpenAI's Responses API (`POST /v1/responses`), as OpenAI, xAI and Azure
//! serve it: input items instead of messages, flat function tools, `text.format`,
//! `max_output_tokens`, and a stream of typed `response.*` events, each with a
//! `sequence_number`.
//!
//! Shapes from openai-python's generated types (`types/responses/`), as listed in
//! the reference (`responses-api.md` §2-§4). The API has no stop sequences:
//! steer applies a request's own ([`super::stop`]), ending the reply before the
//! first, as a server would (the tokens generated past it are billed). A final
//! assistant message is sent as history: the API answers it afresh.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{snippet, DecodeError, Progress, StreamDecoder, TextCursor};
use crate::content::Part;
use crate::model::{ChatRequest, FinishReason, Message, ProviderEvent, Role, Usage};
use crate::tools::{ResponseFormat, ToolCall, ToolChoice};

/// The body of `POST /v1/responses`.
#[derive(Debug, Serialize)]
pub struct RequestBody<'a> {
    /// Model name, without the provider prefix.
    pub model: &'a str,
    /// The conversation as input items.
    pub input: Vec<Value>,
    /// The leading system messages, joined by a blank line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Token limit of the output (reasoning included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Whether to stream.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Function tools, flat (`{"type":"function","name",...}`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
    /// `auto`, `none`, `required` or `{"type":"function","name"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Whether several calls may come in one turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// `{"format": ...}`: JSON object or JSON schema output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Value>,
    /// Background mode: the server keeps the response, so that a broken
    /// stream resumes from it (streams only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
    /// `{"effort", "summary": "auto"}` from the request's [`Effort`](crate::Effort).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Value>,
    /// `["reasoning.encrypted_content"]` with reasoning: its state comes back
    /// with the reply, to be sent back in the history.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<&'static str>,
    /// Whether the server keeps the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
}

impl<'a> RequestBody<'a> {
    /// The body for `req`, or why the Responses API cannot express it.
    pub fn new(req: &'a ChatRequest, stream: bool) -> Result<Self, String> {
        super::check_request(req)?;
        let leading = req
            .messages
            .iter()
            .take_while(|m| m.role == Role::System)
            .count();
        let instructions = (leading > 0).then(|| {
            req.messages[..leading]
                .iter()
                .map(|m| m.text())
                .collect::<Vec<_>>()
                .join("\n\n")
        });
        let mut input = Vec::with_capacity(req.messages.len());
        for (i, m) in req.messages.iter().enumerate().skip(leading) {
            items(m, i, &mut input)?;
        }
        Ok(RequestBody {
            model: req.model.model(),
            input,
            instructions,
            max_output_tokens: req.max_tokens,
            temperature: req.temperature,
            stream,
            tools: req
                .tools
                .iter()
                .map(|t| {
                    let mut tool = serde_json::json!({
                        "type": "function",
                        "name": t.name,
                        "parameters": t.input_schema,
                        "strict": t.strict,
                    });
                    if let (Some(d), Some(fields)) = (&t.description, tool.as_object_mut()) {
                        fields.insert("description".into(), Value::from(d.as_str()));
                    }
                    tool
                })
                .collect(),
            tool_choice: req.tool_choice.as_ref().map(|c| match c {
                ToolChoice::Auto => Value::from("auto"),
                ToolChoice::None => Value::from("none"),
                ToolChoice::Required => Value::from("required"),
                ToolChoice::Tool(name) => serde_json::json!({"type": "function", "name": name}),
            }),
            parallel_tool_calls: req.parallel_tool_calls.filter(|_| !req.tools.is_empty()),
            background: stream && req.background,
            reasoning: req
                .reasoning
                .map(|e| serde_json::json!({"effort": e.as_str(), "summary": "auto"})),
            store: req.store,
            include: if req.reasoning.is_some() {
                vec!["reasoning.encrypted_content"]
            } else {
                Vec::new()
            },
            text: req.response_format.as_ref().map(|f| match f {
                ResponseFormat::Json => serde_json::json!({"format": {"type": "json_object"}}),
                ResponseFormat::JsonSchema {
                    name,
                    schema,
                    strict,
                } => serde_json::json!({"format": {"type": "json_schema", "name": name,
                    "schema": schema, "strict": strict}}),
            }),
        })
    }
}

/// The JSON of `req`'s body, extra body fields merged in (they win).
pub fn request_json(req: &ChatRequest, stream: bool) -> Result<Vec<u8>, String> {
    let body = RequestBody::new(req, stream)?;
    super::with_extra(&body, &req.extra_body)
}

/// The input items of message `i`: a message item for its text and images, a
/// `function_call` item per tool call, a `function_call_output` per result.
fn items(m: &Message, i: usize, out: &mut Vec<Value>) -> Result<(), String> {
    let unsupported = |p: &Part| {
        Err(format!(
            "messages.{i}: a {} message cannot hold a {} part in the Responses API",
            m.role.as_str(),
            p.kind()
        ))
    };
    match m.role {
        Role::System | Role::User => {
            let mut content = Vec::with_capacity(m.content.len());
            for p in &m.content {
                match p {
                    Part::Text(text) => {
                        content.push(serde_json::json!({"type": "input_text", "text": text}))
                    }
                    Part::Image(src) if m.role == Role::User => content.push(
                        serde_json::json!({"type": "input_image", "image_url": src.as_url()}),
                    ),
                    other => return unsupported(other),
                }
            }
            // A system message after the conversation began speaks as the developer.
            let role = if m.role == Role::System {
                "developer"
            } else {
                "user"
            };
            out.push(serde_json::json!({"type": "message", "role": role, "content": content}));
        }
        Role::Assistant => {
            // Reasoning items first, unchanged, where they came: before the
            // message and the calls they led to. Another family's are dropped.
            for p in &m.content {
                if let Part::Reasoning(r) = p {
                    if r.replays_to(crate::reasoning::ReasoningFamily::OpenAiResponses) {
                        out.push(r.block.clone());
                    }
                }
            }
            let text = m.text();
            if !text.is_empty() {
                out.push(serde_json::json!({"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}));
            }
            for p in &m.content {
                match p {
                    Part::Text(_) | Part::Reasoning(_) => {}
                    Part::ToolCall(c) => out.push(serde_json::json!({"type": "function_call",
                        "call_id": c.id, "name": c.name, "arguments": c.arguments_text()})),
                    other => return unsupported(other),
                }
            }
        }
        Role::Tool => {
            for p in &m.content {
                match p {
                    Part::ToolResult(r) if r.is_error => {
                        return Err(format!(
                            "messages.{i}: the Responses API has no error flag for tool \
                             results; say so in the result's content"
                        ))
                    }
                    Part::ToolResult(r) => out.push(serde_json::json!({
                        "type": "function_call_output", "call_id": r.call_id,
                        "output": r.content})),
                    other => return unsupported(other),
                }
            }
        }
    }
    Ok(())
}

/// Token usage as the Responses API sends it.
#[derive(Debug, Clone, Copy, Deserialize, Default)]
pub struct WireUsage {
    /// Input tokens (cached ones included).
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens (reasoning included).
    #[serde(default)]
    pub output_tokens: u64,
    /// Total tokens.
    #[serde(default)]
    pub total_tokens: Option<u64>,
    /// `cached_tokens`.
    #[serde(default)]
    pub input_tokens_details: Option<InputDetails>,
    /// `reasoning_tokens`.
    #[serde(default)]
    pub output_tokens_details: Option<OutputDetails>,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Clone, Copy, Deserialize, Default)]
pub struct InputDetails {
    /// Input tokens read from the cache.
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Copy, Deserialize, Default)]
pub struct OutputDetails {
    /// Tokens spent on reasoning.
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Usage {
        let mut usage = Usage::new(u.input_tokens, u.output_tokens);
        if let Some(total) = u.total_tokens {
            usage.total_tokens = total;
        }
        usage.cached_prompt_tokens = u.input_tokens_details.and_then(|d| d.cached_tokens);
        usage.reasoning_tokens = u.output_tokens_details.and_then(|d| d.reasoning_tokens);
        usage
    }
}

/// A response object: the body of a non-streaming reply, and what the
/// terminal stream events carry.
#[derive(Debug, Deserialize)]
pub struct ResponseObject {
    /// `resp_...`.
    #[serde(default)]
    pub id: Option<String>,
    /// Must be `response`: anything else is not a response object.
    pub object: String,
    /// `queued`, `in_progress`, `completed`, `failed`, `cancelled`, `incomplete`.
    #[serde(default)]
    pub status: Option<String>,
    /// The model that answered.
    #[serde(default)]
    pub model: Option<String>,
    /// Output items, in order.
    #[serde(default)]
    pub output: Vec<Value>,
    /// Usage.
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// The tier the reply was served (and billed) at: `default`, `flex`,
    /// `priority` (not the `auto` a request may ask).
    #[serde(default)]
    pub service_tier: Option<String>,
    /// Why an `incomplete` response stopped.
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
    /// What a `failed` response failed with: `{code, message}`.
    #[serde(default)]
    pub error: Option<Value>,
    /// Whether it runs in background mode (stored, resumable).
    #[serde(default)]
    pub background: Option<bool>,
}

/// `incomplete_details`.
#[derive(Debug, Deserialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    #[serde(default)]
    pub reason: Option<String>,
}

impl ResponseObject {
    /// Why generation stopped, for a terminal status; `None` for a response
    /// that has not ended (queued, in progress) or failed.
    fn finish_reason(&self, has_calls: bool) -> Option<FinishReason> {
        match self.status.as_deref() {
            Some("completed") if has_calls => Some(FinishReason::ToolCalls),
            Some("completed") => Some(FinishReason::Stop),
            Some("incomplete") => Some(
                match self
                    .incomplete_details
                    .as_ref()
                    .and_then(|d| d.reason.as_deref())
                {
                    Some("max_output_tokens") => FinishReason::Length,
                    Some("content_filter") => FinishReason::ContentFilter,
                    Some(other) => FinishReason::Other(other.to_string()),
                    None => FinishReason::Other("incomplete".into()),
                },
            ),
            _ => None,
        }
    }
}

/// The text of a message output item (its `output_text` parts; a refusal's
/// text when it has no other).
fn message_text(item: &Value) -> (String, bool) {
    let mut text = String::new();
    let mut refusal = String::new();
    for part in item
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match part.get("type").and_then(Value::as_str) {
            Some("output_text") => {
                text.push_str(part.get("text").and_then(Value::as_str).unwrap_or_default())
            }
            Some("refusal") => refusal.push_str(
                part.get("refusal")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ),
            _ => {}
        }
    }
    if text.is_empty() && !refusal.is_empty() {
        return (refusal, true);
    }
    (text, false)
}

/// A function call output item as a [`ToolCall`].
fn function_call(item: &Value) -> Option<ToolCall> {
    if item.get("type").and_then(Value::as_str) != Some("function_call") {
        return None;
    }
    let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
    let id = Some(text("call_id"))
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .unwrap_or_else(super::calls::made_up_id);
    Some(ToolCall::from_text(id, text("name"), text("arguments")))
}

/// Parses a non-streaming reply. A `failed` response is the error it carries
/// ([`DecodeError::InBand`]); one that has not ended, or a body that is not a
/// response object, is malformed.
pub fn parse_response(body: &[u8]) -> Result<super::openai::Parsed, DecodeError> {
    let response: ResponseObject = serde_json::from_slice(body).map_err(|e| {
        if super::carries_error(body) {
            DecodeError::InBand(String::from_utf8_lossy(body).into_owned())
        } else {
            DecodeError::Malformed(format!("response body: {e}"))
        }
    })?;
    if response.object != "response" {
        return Err(DecodeError::Malformed(format!(
            "a {:?} object where a response was expected",
            snippet(&response.object)
        )));
    }
    if matches!(response.status.as_deref(), Some("failed" | "cancelled")) {
        return Err(failed(&response, body));
    }
    let mut text = String::new();
    let mut refused = false;
    let mut tool_calls = Vec::new();
    let mut reasoning = Vec::new();
    for item in &response.output {
        match item.get("type").and_then(Value::as_str) {
            Some("reasoning") => {
                reasoning.push(crate::reasoning::Reasoning::openai_responses(item.clone()))
            }
            Some("message") => {
                let (t, refusal) = message_text(item);
                refused |= refusal;
                text.push_str(&t);
            }
            Some("function_call") => tool_calls.extend(function_call(item)),
            _ => {}
        }
    }
    let finish = response
        .finish_reason(!tool_calls.is_empty())
        .ok_or_else(|| {
            DecodeError::Malformed(format!(
                "a response still {} (a background response is read by polling it)",
                response.status.as_deref().unwrap_or("without a status")
            ))
        })?;
    Ok(super::openai::Parsed {
        reasoning,
        text,
        finish_reason: if refused {
            FinishReason::ContentFilter
        } else {
            finish
        },
        usage: super::openai::with_tier(
            response.usage.map(Usage::from).unwrap_or_default(),
            response.service_tier.as_deref(),
        ),
        model: response.model,
        id: response.id,
        tool_calls,
    })
}

/// A failed (or cancelled) response as the error it carries, in the
/// `{"error": {code, message}}` shape the classifier reads; the whole body when
/// it names none.
fn failed(response: &ResponseObject, whole: &[u8]) -> DecodeError {
    match &response.error {
        Some(error) if error.is_object() => {
            DecodeError::InBand(serde_json::json!({ "error": error }).to_string())
        }
        _ => DecodeError::InBand(String::from_utf8_lossy(whole).into_owned()),
    }
}

/// One stream event: its `type`, its sequence number, and the fields steer reads.
#[derive(Deserialize)]
struct Event {
    /// Required, but for a gateway's error line (`{"error": {...}}`).
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    sequence_number: Option<u64>,
    #[serde(default)]
    delta: Option<String>,
    #[serde(default)]
    output_index: Option<usize>,
    #[serde(default)]
    item: Option<Value>,
    #[serde(default)]
    response: Option<ResponseObject>,
}

/// Decodes a Responses API stream: `response.*` events, each a JSON object
/// with its `type`, ending at `response.completed`, `response.incomplete` or
/// `response.failed` (a `data: [DONE]` after it is accepted and not needed).
/// `response.created` is no success: an `error` event may follow it.
///
/// ```
/// use steer_llm::wire::{responses::Decoder, Progress, StreamDecoder};
/// use steer_llm::{FinishReason, ProviderEvent};
/// let mut d = Decoder::default();
/// let mut out = Vec::new();
/// d.on_event("response.output_text.delta",
///     r#"{"type":"response.output_text.delta","sequence_number":3,"output_index":0,"content_index":0,"delta":"Hi"}"#,
///     &mut out).unwrap();
/// let done = r#"{"type":"response.completed","sequence_number":4,"response":{"id":"resp_1","object":"response","status":"completed","output":[],"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}}"#;
/// assert_eq!(d.on_event("response.completed", done, &mut out).unwrap(), Progress::Done);
/// assert!(matches!(&out[0], ProviderEvent::TextDelta { text, offset: 0 } if text == "Hi"));
/// assert!(matches!(out.last(), Some(ProviderEvent::Complete { finish_reason: FinishReason::Stop, .. })));
/// assert_eq!(d.last_sequence_number(), Some(4));
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    stop: super::stop::StopScan,
    cursor: TextCursor,
    calls: super::CallAssembler,
    id_sent: bool,
    any_call: bool,
    refusal: bool,
    ended: bool,
    last_sequence: Option<u64>,
    /// A background response's id: its stream can be resumed on the server.
    background: Option<String>,
    /// The sequence number of the last resume point reported.
    reported: Option<u64>,
    /// A resumed stream reads only the events after this one (a server that
    /// replays from the start repeats nothing).
    resumed_after: Option<u64>,
    /// Reasoning items begun (the next one's index).
    reasoning: usize,
    /// The reasoning item arriving: its output index and its index.
    open_reasoning: Option<(usize, usize)>,
}

impl Decoder {
    /// A decoder that ends the reply before the first of `stops`.
    pub fn with_stops(stops: Vec<String>) -> Self {
        Decoder {
            stop: super::stop::StopScan::new(stops),
            ..Decoder::default()
        }
    }

    /// A decoder for a stream resumed at `point`: its calls numbered after the
    /// ones begun before it, and the events up to it (should a server send
    /// them again) skipped.
    pub fn resuming(stops: Vec<String>, point: &crate::model::ResumePoint) -> Self {
        Decoder {
            stop: super::stop::StopScan::new(stops),
            calls: super::CallAssembler::starting_at(point.calls),
            id_sent: true,
            any_call: point.calls > 0,
            refusal: point.refusal,
            last_sequence: Some(point.after),
            background: Some(point.response_id.clone()),
            reported: Some(point.after),
            resumed_after: Some(point.after),
            reasoning: point.reasoning,
            ..Decoder::default()
        }
    }

    /// After an event: a background response reports a resume point where
    /// nothing is held back (text that may begin a stop sequence) and no call
    /// is open, once per new sequence number.
    fn report_point(&mut self, out: &mut Vec<ProviderEvent>) {
        let (Some(id), Some(after)) = (&self.background, self.last_sequence) else {
            return;
        };
        if self.ended
            || self.stop.is_holding()
            || self.calls.is_open()
            || self.open_reasoning.is_some()
            || self.reported.is_some_and(|r| r >= after)
        {
            return;
        }
        self.reported = Some(after);
        out.push(ProviderEvent::Resumable(crate::model::ResumePoint {
            response_id: id.clone(),
            after,
            calls: self.calls.announced(),
            reasoning: self.reasoning,
            refusal: self.refusal,
        }));
    }

    /// Text generated: passed on, or held while it may begin a stop sequence;
    /// at a stop sequence the reply completes there.
    fn text(&mut self, text: String, out: &mut Vec<ProviderEvent>) -> Progress {
        if !self.stop.is_active() {
            self.cursor.delta(text, out);
            return Progress::Continue;
        }
        let (pass, stopped) = self.stop.push(&text);
        self.cursor.delta(pass, out);
        if !stopped {
            return Progress::Continue;
        }
        self.stopped_here(out)
    }

    /// What was held back passes, now that its text ended; a stop sequence
    /// in it (one that waited on a longer one beginning before it) ends the
    /// reply there.
    fn release_held(&mut self, out: &mut Vec<ProviderEvent>) -> Option<Progress> {
        let (held, stopped) = self.stop.finish();
        self.cursor.delta(held, out);
        stopped.then(|| self.stopped_here(out))
    }

    /// A stop sequence ended the reply before the server did.
    fn stopped_here(&mut self, out: &mut Vec<ProviderEvent>) -> Progress {
        // Calls after the stop are not made; the usage is not known yet. A
        // background response runs on without a reader: it is cancelled.
        self.ended = true;
        if let Some(response_id) = self.background.take() {
            out.push(ProviderEvent::LeftRunning { response_id });
        }
        out.push(ProviderEvent::Complete {
            finish_reason: FinishReason::Stop,
            usage: None,
        });
        Progress::Done
    }

    /// The sequence number of the last event read: where a server-side resume
    /// starts after (`starting_after`).
    pub fn last_sequence_number(&self) -> Option<u64> {
        self.last_sequence
    }

    fn response_id(&mut self, response: Option<&ResponseObject>, out: &mut Vec<ProviderEvent>) {
        let Some(response) = response else {
            return;
        };
        if let (Some(id), true) = (&response.id, response.background == Some(true)) {
            if self.background.is_none() {
                self.background = Some(id.clone());
            }
        }
        if let (Some(id), false) = (response.id.clone(), self.id_sent) {
            self.id_sent = true;
            out.push(ProviderEvent::ResponseId { id });
        }
    }

    fn terminal(
        &mut self,
        response: Option<ResponseObject>,
        out: &mut Vec<ProviderEvent>,
    ) -> Result<Progress, DecodeError> {
        let response = response.ok_or_else(|| {
            DecodeError::Malformed("a terminal event without its response".into())
        })?;
        self.response_id(Some(&response), out);
        let (held, stopped) = self.stop.finish();
        self.cursor.delta(held, out);
        let tier = response.service_tier.as_deref();
        let usage = response
            .usage
            .map(|u| super::openai::with_tier(Usage::from(u), tier));
        if let Some(u) = usage {
            out.push(ProviderEvent::Usage(u));
        }
        if stopped {
            // The last text held a stop sequence: the reply ends there, its
            // usage known, and no call after it is made.
            self.ended = true;
            out.push(ProviderEvent::Complete {
                finish_reason: FinishReason::Stop,
                usage,
            });
            return Ok(Progress::Done);
        }
        let finish = response.finish_reason(self.any_call).map(|f| {
            if self.refusal {
                FinishReason::ContentFilter
            } else {
                f
            }
        });
        self.ended = true;
        Ok(super::end_of_stream(&mut self.calls, finish, usage, out))
    }
}

impl StreamDecoder for Decoder {
    fn whole_reply(&self) -> Option<super::ParseReply> {
        Some(parse_response)
    }

    fn on_event(
        &mut self,
        _event: &str,
        data: &str,
        out: &mut Vec<ProviderEvent>,
    ) -> Result<Progress, DecodeError> {
        let progress = self.event(data, out)?;
        if progress == Progress::Continue {
            self.report_point(out);
        }
        Ok(progress)
    }
}

impl Decoder {
    /// One event of the stream.
    fn event(&mut self, data: &str, out: &mut Vec<ProviderEvent>) -> Result<Progress, DecodeError> {
        let data = data.trim();
        if data == "[DONE]" {
            return if self.ended {
                Ok(Progress::Done)
            } else {
                Err(DecodeError::Malformed(
                    "the stream ended ([DONE]) before a terminal response event".into(),
                ))
            };
        }
        if data.is_empty() || self.ended {
            return Ok(Progress::Continue);
        }
        let event: Event = serde_json::from_str(data).map_err(|e| {
            DecodeError::Malformed(format!("stream event {:?}: {e}", snippet(data)))
        })?;
        let replayed = |kind: Option<&str>| {
            !matches!(kind, Some("error" | "response.failed") | None)
                && event
                    .sequence_number
                    .zip(self.resumed_after)
                    .is_some_and(|(n, after)| n <= after)
        };
        if replayed(event.kind.as_deref()) {
            // A resumed stream already has it.
            return Ok(Progress::Continue);
        }
        if let Some(n) = event.sequence_number {
            self.last_sequence = Some(self.last_sequence.map_or(n, |last| last.max(n)));
        }
        let Some(kind) = event.kind.as_deref() else {
            // A gateway (LiteLLM) passes an upstream's failure on as an error
            // object of its own, in every format.
            return Err(if event.error.is_some() {
                DecodeError::InBand(data.to_string())
            } else {
                DecodeError::Malformed(format!("stream event without a type: {:?}", snippet(data)))
            });
        };
        match kind {
            "response.created" | "response.in_progress" | "response.queued" => {
                self.response_id(event.response.as_ref(), out)
            }
            "response.output_text.delta" => {
                if let Some(text) = event.delta {
                    return Ok(self.text(text, out));
                }
            }
            "response.refusal.delta" => {
                if let Some(text) = event.delta {
                    self.refusal = true;
                    return Ok(self.text(text, out));
                }
            }
            // A stop sequence lies within one text: what was held back
            // because it might begin one passes when the text ends, before
            // any call that follows it.
            "response.output_text.done" | "response.refusal.done" => {
                if let Some(done) = self.release_held(out) {
                    return Ok(done);
                }
            }
            "response.output_item.added" => {
                if let Some(done) = self.release_held(out) {
                    return Ok(done);
                }
                let item = event.item.as_ref();
                if item.and_then(|i| i.get("type")).and_then(Value::as_str) == Some("reasoning") {
                    let key = event.output_index.unwrap_or_default();
                    self.open_reasoning = Some((key, self.reasoning));
                    self.reasoning = self.reasoning.saturating_add(1);
                }
                if item.and_then(|i| i.get("type")).and_then(Value::as_str) == Some("function_call")
                {
                    let field = |k: &str| {
                        item.and_then(|i| i.get(k))
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    let key = event.output_index.unwrap_or_default();
                    self.any_call = true;
                    self.calls
                        .start(key, field("call_id"), field("name"), out)?;
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(piece) = event.delta {
                    let key = event.output_index.unwrap_or_default();
                    self.calls.delta(key, piece, out)?;
                }
            }
            "response.output_item.done" => {
                let item = event.item;
                let reasoning = item
                    .as_ref()
                    .and_then(|i| i.get("type"))
                    .and_then(Value::as_str)
                    == Some("reasoning");
                if let (true, Some(item)) = (reasoning, item) {
                    // Whole, as sent: its encrypted content goes back unchanged.
                    let index = match self.open_reasoning.take() {
                        Some((_, index)) => index,
                        None => {
                            let index = self.reasoning;
                            self.reasoning = self.reasoning.saturating_add(1);
                            index
                        }
                    };
                    out.push(ProviderEvent::Reasoning {
                        index,
                        block: crate::reasoning::Reasoning::openai_responses(item),
                    });
                } else if let Some(key) = event.output_index {
                    self.calls.finish(key, out);
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                let open = self
                    .open_reasoning
                    .filter(|(key, _)| event.output_index.is_none_or(|k| k == *key));
                if let (Some((_, index)), Some(text)) = (open, event.delta) {
                    out.push(ProviderEvent::ReasoningDelta { index, text });
                }
            }
            "response.completed" | "response.incomplete" => {
                return self.terminal(event.response, out)
            }
            "response.failed" => {
                return Err(match &event.response {
                    Some(response) => failed(response, data.as_bytes()),
                    None => DecodeError::InBand(data.to_string()),
                })
            }
            "error" => return Err(DecodeError::InBand(data.to_string())),
            // Reasoning, hosted tools, annotations and what later versions add.
            _ => {}
        }
        Ok(Progress::Continue)
    }
}

#[cfg(test)]
mod tests;
