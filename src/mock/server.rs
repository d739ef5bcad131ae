//! The mock's HTTP handlers.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde_json::Value;

use super::errors::{self, ErrorResponse};
use super::fault::{FaultPlan, Outcome, WaitHeaders};
use super::render::{self, Frames};
use super::steps::{steps_body, stream_steps, Cut, Step};
use super::text;
use super::{Behaviour, Flavour, RecordedRequest, Shared, FAULT_HEADER, KEY_HEADER};
use crate::content::Part;
use crate::continue_message::rejects_prefill;
use crate::model::Role;

/// `GET /mock/requests`: the recorded requests as JSON (path, model, stream, the
/// fault applied, the last message; never headers, which carry keys).
fn recorded(shared: &Shared) -> axum::response::Response {
    let list: Vec<Value> = shared
        .log
        .lock()
        .iter()
        .map(|r| {
            serde_json::json!({
                "path": r.path,
                "model": r.model(),
                "stream": r.is_stream(),
                "fault": r.fault.as_ref().map(|f| f.to_string()),
                "last_message": r.last_message().map(|(role, text)| serde_json::json!({"role": role, "content": text})),
            })
        })
        .collect();
    json_response(200, Value::Array(list).to_string())
}

use axum::serve::ListenerExt;

pub(super) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(|s: State<Arc<Shared>>, h: HeaderMap, b: Bytes| handle(s, Api::Chat, h, b)),
        )
        .route(
            "/v1/messages",
            post(|s: State<Arc<Shared>>, h: HeaderMap, b: Bytes| handle(s, Api::Messages, h, b)),
        )
        .route(
            "/v1/responses",
            post(|s: State<Arc<Shared>>, h: HeaderMap, b: Bytes| handle(s, Api::Responses, h, b)),
        )
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(
                |s: State<Arc<Shared>>,
                 d: axum::extract::Path<String>,
                 u: axum::http::Uri,
                 h: HeaderMap,
                 b: Bytes| azure_dated(s, Api::Chat, Some(d.0), u, h, b),
            ),
        )
        .route(
            "/openai/responses",
            post(
                |s: State<Arc<Shared>>, u: axum::http::Uri, h: HeaderMap, b: Bytes| {
                    azure_dated(s, Api::Responses, None, u, h, b)
                },
            ),
        )
        .route(
            "/v1/responses/{id}",
            axum::routing::get(super::retrieve::retrieve),
        )
        .route(
            "/openai/responses/{id}",
            axum::routing::get(super::retrieve::retrieve),
        )
        .route(
            "/openai/responses/{id}/cancel",
            post(super::retrieve::cancel),
        )
        .route(
            "/v1/responses/{id}/cancel",
            post(super::retrieve::cancel),
        )
        .route(
            "/mock/requests",
            axum::routing::get(|s: State<Arc<Shared>>| async move { recorded(&s) }),
        )
        .fallback(|| async {
            json_response(
                404,
                r#"{"error":{"message":"steer mock: unknown path (serves POST /v1/chat/completions, POST /v1/messages, POST /v1/responses, GET /v1/responses/{id} and POST /v1/responses/{id}/cancel)","type":"invalid_request_error","param":null,"code":"unknown_url"}}"#.to_string(),
            )
        })
        .with_state(shared);
    // TCP_NODELAY on every connection: without it, on a kept-alive connection
    // Nagle and the client's delayed ACK hold the end of each stream for ~40 ms,
    // for every client (BENCHMARKS.md reports a 20-chunk stream's wall time so
    // that a return of the stall shows).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // Errors here mean the listener died; the server simply stops.
    let _ = axum::serve(listener, app).await;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Chat,
    Messages,
    Responses,
}

pub(super) fn json_response(status: u16, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn invalid_request(flavour: Flavour, message: &str, request_id: &str) -> ErrorResponse {
    let body = match flavour {
        Flavour::OpenAi | Flavour::Responses => {
            serde_json::json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})
        }
        Flavour::Anthropic => {
            serde_json::json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}, "request_id": request_id})
        }
        Flavour::Xai => serde_json::json!({"code": "invalid-argument", "error": message}),
    };
    ErrorResponse {
        status: 400,
        content_type: "application/json",
        body: body.to_string(),
    }
}

fn unauthenticated(flavour: Flavour, request_id: &str) -> ErrorResponse {
    let body = match flavour {
        Flavour::OpenAi | Flavour::Responses => {
            serde_json::json!({"error": {"message": "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", "type": "invalid_request_error", "param": null, "code": null}})
        }
        Flavour::Anthropic => {
            serde_json::json!({"type": "error", "error": {"type": "authentication_error", "message": "x-api-key header is required"}, "request_id": request_id})
        }
        Flavour::Xai => {
            serde_json::json!({"code": "unauthenticated", "error": "Missing or invalid authorization header."})
        }
    };
    ErrorResponse {
        status: 401,
        content_type: "application/json",
        body: body.to_string(),
    }
}

/// Counts a request dropped before it is answered, unless told it was.
struct Abandoned<'a>(Option<&'a std::sync::atomic::AtomicU64>);

impl Abandoned<'_> {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.0 {
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Picks the fault plan: header, keyed script, queue, default; then draws a mix.
pub(super) fn choose_fault(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<Option<FaultPlan>, String> {
    let plan = if let Some(spec) = headers.get(FAULT_HEADER) {
        let spec = spec
            .to_str()
            .map_err(|_| format!("{FAULT_HEADER} is not ASCII"))?;
        Some(spec.parse::<FaultPlan>().map_err(|e| e.to_string())?)
    } else {
        shared.scripted_plan(headers.get(KEY_HEADER).and_then(|k| k.to_str().ok()))
    };
    Ok(plan.map(|mut plan| {
        if let Outcome::Mix(mix) = &plan.outcome {
            let mut guard = shared.mix_rng.lock();
            if guard.as_ref().map(|(seed, _)| *seed) != Some(mix.seed) {
                *guard = Some((mix.seed, fastrand::Rng::with_seed(mix.seed)));
            }
            let draw = guard
                .as_mut()
                .map(|(_, rng)| rng.f64() * 100.0)
                .unwrap_or(100.0);
            plan.outcome = mix.pick(draw);
        }
        plan.slow_as_latency()
    }))
}

/// Records a request (its headers, its body as `body` makes it, the fault
/// drawn for it), if the mock records requests.
pub(super) fn record(
    shared: &Shared,
    path: &str,
    headers: &HeaderMap,
    body: impl FnOnce() -> Value,
    flavour: Flavour,
    fault: &Result<Option<FaultPlan>, String>,
) {
    if !shared.records() {
        return;
    }
    shared.record(RecordedRequest {
        path: path.to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body(),
        flavour,
        fault: fault.as_ref().ok().cloned().flatten(),
        received_at: SystemTime::now(),
    });
}

/// Azure OpenAI's dated API (responses-api.md §8): every URL carries
/// `?api-version=`, without which Azure answers 404 "Resource not found"; Chat
/// Completions names the deployment in the path (it is the model).
async fn azure_dated(
    shared: State<Arc<Shared>>,
    api: Api,
    deployment: Option<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let versioned = uri.query().unwrap_or_default().split('&').any(|p| {
        p.strip_prefix("api-version=")
            .is_some_and(|v| !v.is_empty())
    });
    if !versioned {
        return azure_not_found();
    }
    let body = match deployment {
        Some(deployment) => match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut fields)) => {
                fields.insert("model".into(), Value::String(deployment));
                Bytes::from(Value::Object(fields).to_string())
            }
            _ => body,
        },
        None => body,
    };
    handle_at(shared, api, uri.path(), headers, body).await
}

/// Azure's 404 for a URL without its `api-version` (or an unknown resource).
pub(super) fn azure_not_found() -> Response {
    json_response(
        404,
        r#"{"error":{"code":"404","message":"Resource not found"}}"#.to_string(),
    )
}

async fn handle(shared: State<Arc<Shared>>, api: Api, headers: HeaderMap, body: Bytes) -> Response {
    let path = match api {
        Api::Chat => "/v1/chat/completions",
        Api::Messages => "/v1/messages",
        Api::Responses => "/v1/responses",
    };
    handle_at(shared, api, path, headers, body).await
}

/// A request to `api`, as it arrived at `path`.
async fn handle_at(
    State(shared): State<Arc<Shared>>,
    api: Api,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = shared.next_id();
    let request_id = format!("req_mock{n:020}");
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let flavour = match api {
        Api::Messages => Flavour::Anthropic,
        Api::Responses => Flavour::Responses,
        Api::Chat => {
            let model = json.get("model").and_then(|m| m.as_str()).unwrap_or("");
            if model.starts_with("grok") {
                Flavour::Xai
            } else {
                Flavour::OpenAi
            }
        }
    };
    let fault = choose_fault(&shared, &headers);
    record(&shared, path, &headers, || json.clone(), flavour, &fault);
    let behaviour = match headers.get(super::BEHAVIOUR_HEADER).map(|v| {
        v.to_str()
            .map_err(|_| "not text".to_string())
            .and_then(|v| v.trim().parse::<Behaviour>().map_err(|e| e.to_string()))
    }) {
        None => Ok(shared.config.behaviour),
        Some(parsed) => parsed,
    };
    let ctx = Ctx {
        flavour,
        request_id,
        shared: shared.clone(),
        behaviour: *behaviour.as_ref().unwrap_or(&Behaviour::Standard),
    };
    if let Err(message) = behaviour {
        return ctx.error_response(
            invalid_request(flavour, &format!("steer mock: {message}"), &ctx.request_id),
            &WaitHeaders::default(),
        );
    }
    let plan = match fault {
        Ok(plan) => plan.unwrap_or_default(),
        Err(message) => {
            return ctx.error_response(
                invalid_request(flavour, &format!("steer mock: {message}"), &ctx.request_id),
                &WaitHeaders::default(),
            )
        }
    };
    if let Some(d) = plan.latency {
        // Dropped mid-wait (the client closed the connection): counted.
        let waiting = Abandoned(Some(&shared.abandoned));
        tokio::time::sleep(d).await;
        waiting.answered();
    }
    if let Some(resp) = ctx.check_headers(&headers) {
        return resp;
    }
    if api == Api::Chat && flavour == Flavour::OpenAi && responses_only(&json) {
        // OpenAI's answer to a Responses-only model on Chat Completions
        // (responses-api.md §10: tmuxai #82, crewAI fixtures).
        let mut err = invalid_request(
            flavour,
            "This model is only supported in v1/responses and not in v1/chat/completions.",
            &ctx.request_id,
        );
        err.body = err.body.replace(r#""param":null"#, r#""param":"model""#);
        return ctx.error_response(err, &WaitHeaders::default());
    }
    if json.is_null() {
        let message = "We could not parse the JSON body of your request.";
        return ctx.error_response(
            invalid_request(flavour, message, &ctx.request_id),
            &WaitHeaders::default(),
        );
    }
    let parsed = match super::request::read(flavour, &json) {
        Ok(mut p) if ctx.behaviour == Behaviour::Gateway && flavour == Flavour::Anthropic => {
            // LiteLLM strips a prefill's trailing whitespace before Anthropic.
            let last = p.messages.last_mut().filter(|m| m.role == Role::Assistant);
            if let Some(Part::Text(t)) = last.and_then(|m| m.content.last_mut()) {
                t.truncate(t.trim_end().len());
            }
            p
        }
        Ok(p) => p,
        Err(message) => {
            return ctx.error_response(
                invalid_request(flavour, &message, &ctx.request_id),
                &WaitHeaders::default(),
            )
        }
    };
    if flavour == Flavour::Anthropic {
        if let Some(last) = parsed
            .messages
            .last()
            .filter(|m| m.role == crate::model::Role::Assistant)
        {
            let name = if rejects_prefill(&parsed.model) {
                Some("prefill_rejected")
            } else if last.text().ends_with(char::is_whitespace) {
                Some("trailing_whitespace")
            } else {
                None
            };
            if let Some(resp) = name.and_then(|n| errors::status_error(flavour, n, &ctx.request_id))
            {
                return ctx.error_response(resp, &WaitHeaders::default());
            }
        }
    }
    let thinking = match flavour {
        Flavour::Anthropic => {
            super::thinking::anthropic(&parsed.model, &json, &parsed.messages, parsed.max_tokens)
        }
        Flavour::Responses => super::thinking::responses(&parsed.model, &json, &parsed.messages),
        Flavour::OpenAi | Flavour::Xai => Ok(None),
    };
    match thinking {
        Ok(thinking) => ctx.respond(plan, parsed, thinking),
        Err(refusal) => {
            let mut err = invalid_request(flavour, &refusal.message, &ctx.request_id);
            if let Some(code) = refusal.code {
                err.body = err
                    .body
                    .replace(r#""code":null"#, &format!(r#""code":"{code}""#));
            }
            ctx.error_response(err, &WaitHeaders::default())
        }
    }
}

/// Whether the body names a model OpenAI serves only on the Responses API:
/// the codex models and the `*-pro` ones (gpt-5-pro, o1-pro, o3-pro).
fn responses_only(body: &Value) -> bool {
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    model.contains("codex") || model.ends_with("-pro")
}

/// Anthropic's rate-limit headers: names, limit and remaining count.
const ANTHROPIC_LIMITS: [(&str, &str, &str, &str, &str); 4] = [
    (
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
        "1000",
        "999",
    ),
    (
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
        "96000",
        "95000",
    ),
    (
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
        "80000",
        "79000",
    ),
    (
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
        "16000",
        "15900",
    ),
];

pub(super) struct Ctx {
    pub(super) flavour: Flavour,
    pub(super) request_id: String,
    pub(super) shared: Arc<Shared>,
    pub(super) behaviour: Behaviour,
}

impl Ctx {
    pub(super) fn check_headers(&self, headers: &HeaderMap) -> Option<Response> {
        let present = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| !v.trim().is_empty())
        };
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|k| !k.trim().is_empty());
        // Anthropic takes `x-api-key`; its current Python client sends the key as a
        // bearer token, which the API accepts too.
        // Azure OpenAI serves OpenAI's APIs with the key in `api-key`.
        let authenticated = match self.flavour {
            Flavour::Anthropic => present("x-api-key") || bearer,
            Flavour::OpenAi | Flavour::Responses => bearer || present("api-key"),
            Flavour::Xai => bearer,
        };
        if !authenticated {
            return Some(self.error_response(
                unauthenticated(self.flavour, &self.request_id),
                &WaitHeaders::default(),
            ));
        }
        if self.flavour == Flavour::Anthropic && !present("anthropic-version") {
            return Some(self.error_response(
                invalid_request(
                    self.flavour,
                    "anthropic-version: header is required",
                    &self.request_id,
                ),
                &WaitHeaders::default(),
            ));
        }
        None
    }

    pub(super) fn base_headers(&self, resp: &mut Response, limited: bool) {
        let h = resp.headers_mut();
        let id = HeaderValue::from_str(&self.request_id).ok();
        match self.flavour {
            Flavour::OpenAi | Flavour::Responses => {
                let remaining = if limited { "0" } else { "9999" };
                h.insert(
                    "x-ratelimit-limit-requests",
                    HeaderValue::from_static("10000"),
                );
                h.insert(
                    "x-ratelimit-remaining-requests",
                    HeaderValue::from_static(remaining),
                );
                h.insert(
                    "x-ratelimit-reset-requests",
                    HeaderValue::from_static("6ms"),
                );
                h.insert(
                    "x-ratelimit-limit-tokens",
                    HeaderValue::from_static("150000"),
                );
                h.insert(
                    "x-ratelimit-remaining-tokens",
                    HeaderValue::from_static(if limited { "0" } else { "149984" }),
                );
                h.insert(
                    "x-ratelimit-reset-tokens",
                    HeaderValue::from_static(if limited { "1m30s" } else { "6m0s" }),
                );
                if let Some(id) = id {
                    h.insert("x-request-id", id);
                }
                h.insert("openai-processing-ms", HeaderValue::from_static("1"));
            }
            Flavour::Anthropic => {
                let reset = SystemTime::now() + Duration::from_secs(if limited { 30 } else { 1 });
                let reset = time::OffsetDateTime::from(reset)
                    .replace_nanosecond(0)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .and_then(|s| HeaderValue::from_str(&s).ok());
                for (limit_name, remaining_name, reset_name, limit, remaining) in ANTHROPIC_LIMITS {
                    h.insert(limit_name, HeaderValue::from_static(limit));
                    h.insert(
                        remaining_name,
                        HeaderValue::from_static(if limited { "0" } else { remaining }),
                    );
                    if let Some(reset) = reset.clone() {
                        h.insert(reset_name, reset);
                    }
                }
                if let Some(id) = id {
                    h.insert("request-id", id);
                }
            }
            Flavour::Xai => {
                if let Some(id) = id {
                    h.insert("x-request-id", id);
                }
            }
        }
    }

    pub(super) fn error_response(&self, err: ErrorResponse, wait: &WaitHeaders) -> Response {
        let mut resp = Response::new(Body::from(err.body));
        *resp.status_mut() =
            StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static(err.content_type));
        self.base_headers(&mut resp, err.status == 429 && !wait.capacity_left);
        let h = resp.headers_mut();
        if let Some(v) = wait
            .retry_after
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            h.insert("retry-after", v);
        }
        if let Some(secs) = wait.retry_after_date {
            let at = if secs >= 0 {
                SystemTime::now() + Duration::from_secs(secs.unsigned_abs())
            } else {
                SystemTime::now() - Duration::from_secs(secs.unsigned_abs())
            };
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
                h.insert("retry-after", v);
            }
        }
        if let Some(v) = wait
            .retry_after_ms
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            h.insert("retry-after-ms", v);
        }
        if let Some(v) = wait
            .gateway_retry_after
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            h.insert("llm_provider-retry-after", v);
        }
        if let Some(v) = wait.should_retry {
            h.insert(
                "x-should-retry",
                HeaderValue::from_static(if v { "true" } else { "false" }),
            );
        }
        resp
    }

    fn named_error(&self, name: &str) -> ErrorResponse {
        errors::status_error(self.flavour, name, &self.request_id).unwrap_or_else(|| {
            invalid_request(
                self.flavour,
                &format!(
                    "steer mock: {:?} has no error named {name:?}; it has: {}",
                    self.flavour,
                    errors::names(self.flavour).join(", ")
                ),
                &self.request_id,
            )
        })
    }

    /// How a fault plan's outcome cuts a stream (`None`: it does not), or the
    /// error response it is instead.
    pub(super) fn stream_cut(
        &self,
        outcome: Outcome,
        stream: bool,
    ) -> Result<Option<(usize, Cut)>, Box<Response>> {
        let after = |a: Option<usize>| a.unwrap_or(0);
        Ok(match outcome {
            Outcome::Normal
            | Outcome::NearlySpent
            | Outcome::WholeReply
            | Outcome::Slow { .. }
            | Outcome::Mix(_) => None,
            Outcome::Error { name, mut wait } => {
                let name = match self.behaviour.rewritten_error(&name) {
                    Some(rewritten) => {
                        // The upstream's wait comes back prefixed.
                        if wait.gateway_retry_after.is_none() {
                            wait.gateway_retry_after = wait.retry_after.take();
                        }
                        rewritten.to_string()
                    }
                    None => name,
                };
                return Err(Box::new(
                    self.error_response(self.named_error(&name), &wait),
                ));
            }
            Outcome::Status { code, wait } => {
                return Err(Box::new(self.error_response(
                    render::generic_error(self.flavour, code, &self.request_id),
                    &wait,
                )))
            }
            Outcome::StreamError { name, after: a } => {
                let name = self
                    .behaviour
                    .rewritten_stream_error(&name)
                    .map_or(name, str::to_string);
                let in_band = errors::in_band_error(self.flavour, &name).filter(|_| stream);
                match in_band {
                    Some((event, body)) => {
                        Some((after(a), Cut::Send(render::in_band_frame(event, &body))))
                    }
                    None => {
                        let err = self.named_error(&name);
                        return Err(Box::new(self.error_response(err, &WaitHeaders::default())));
                    }
                }
            }
            Outcome::StuckQueued => Some((0, Cut::Reset)),
            Outcome::Trickle { after: a, ms } => {
                Some((after(a), Cut::Trickle(Duration::from_millis(ms))))
            }
            Outcome::Stall { after: a } => Some((after(a), Cut::Stall)),
            Outcome::Pings { .. } if !stream => Some((0, Cut::Stall)),
            Outcome::Pings { after: a, ms } => Some((
                after(a),
                Cut::Pings {
                    frame: render::keep_alive_frame(self.flavour),
                    every: Duration::from_millis(ms),
                    until: self.shared.config.stall_limit,
                },
            )),
            Outcome::Truncate { after: a } => Some((after(a), Cut::End)),
            Outcome::Reset { after: a } => Some((after(a), Cut::Reset)),
            Outcome::MalformedJson { after: a } => Some((
                after(a),
                Cut::Send(render::malformed_json_frame(self.flavour)),
            )),
            Outcome::MalformedSse { after: a } => {
                Some((after(a), Cut::Send(render::malformed_sse_frame())))
            }
        })
    }

    fn respond(
        &self,
        plan: FaultPlan,
        mut parsed: super::request::MockRequest,
        thinking: Option<super::thinking::Thinking>,
    ) -> Response {
        let spent = plan.outcome == Outcome::NearlySpent;
        let whole = plan.outcome == Outcome::WholeReply;
        let stuck = plan.outcome == Outcome::StuckQueued;
        let failed_in_band = matches!(plan.outcome, Outcome::StreamError { .. });
        let stream_fault = match self.stream_cut(plan.outcome, parsed.stream) {
            Ok(cut) => cut,
            Err(resp) => return *resp,
        };
        if let Some(t) = &thinking {
            // Reasoning tokens are output tokens within the limit.
            let budget = u32::try_from(t.tokens).unwrap_or(u32::MAX);
            parsed.max_tokens = parsed.max_tokens.map(|m| m.saturating_sub(budget).max(1));
        }
        let mut reply = text::respond(&parsed, self.shared.config.reply_words);
        reply.thinking = thinking;
        if parsed.stream && self.behaviour == Behaviour::CharChunks {
            // mockllm: a character a chunk.
            reply.chunks = reply.chunks.concat().chars().map(String::from).collect();
            // (A character is no token count: no usage per chunk.)
            reply.chunk_tokens.clear();
        }
        let id = match self.flavour {
            Flavour::Anthropic => format!("msg_{}", &self.request_id[4..]),
            Flavour::Responses => format!("resp_{}", &self.request_id[4..]),
            _ => format!("chatcmpl-{}", &self.request_id[4..]),
        };
        let created = unix_now();
        let (content_type, body) = if parsed.stream && !whole {
            let background = parsed.background && self.flavour == Flavour::Responses;
            let mut frames = if background {
                let completion = render::completion_tokens(&reply);
                super::responses::frames(&parsed.model, &reply, &id, created, completion, true)
            } else {
                render::sse_frames_as(
                    self.flavour,
                    &parsed.model,
                    &reply,
                    render::StreamUsage {
                        last: parsed.include_usage,
                        every_chunk: parsed.continuous_usage,
                    },
                    &id,
                    created,
                    self.behaviour,
                )
            };
            if stuck {
                // It never leaves the queue: `response.created` and (in
                // background mode) `response.queued`, then the line drops.
                frames.head.truncate(2);
                frames.content.clear();
                frames.tail.clear();
            }
            if background {
                self.keep(
                    &id,
                    &parsed.model,
                    &frames,
                    stream_fault.as_ref(),
                    stuck,
                    failed_in_band,
                );
            }
            let whole_stream = stream_fault.is_none();
            let mut steps = stream_steps(frames, stream_fault, plan.first_token);
            if whole_stream && self.behaviour == Behaviour::Lingering {
                if self.flavour == Flavour::Responses {
                    steps.push(Step::Send(Bytes::from_static(b"data: [DONE]\n\n")));
                }
                steps.push(Step::Stall);
            }
            (
                "text/event-stream; charset=utf-8",
                steps_body(
                    steps,
                    plan.chunk_delay,
                    self.shared.config.stall_limit,
                    self.shared.body_counters(),
                ),
            )
        } else {
            let json = render::json_body(self.flavour, &parsed.model, &reply, &id, created);
            let body = match stream_fault {
                // A whole reply does not trickle: it comes whole, late.
                None | Some((_, Cut::Trickle(_))) => Body::from(json),
                Some((_, cut)) => {
                    let half = Bytes::from(json).slice(..CUT_BODY_AT);
                    let steps = match cut {
                        Cut::Stall => vec![Step::Send(half), Step::Stall],
                        Cut::End => vec![Step::Send(half)],
                        Cut::Reset => vec![Step::Send(half), Step::Reset],
                        Cut::Send(frame) => vec![Step::Send(non_json(frame))],
                        Cut::Trickle(_) => vec![Step::Send(half)],
                        Cut::Pings { .. } => vec![Step::Send(half), Step::Stall],
                    };
                    steps_body(
                        steps,
                        None,
                        self.shared.config.stall_limit,
                        self.shared.body_counters(),
                    )
                }
            };
            ("application/json", body)
        };
        let mut resp = Response::new(body);
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static(content_type));
        if parsed.stream && !whole {
            resp.headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-cache"));
        }
        self.base_headers(&mut resp, spent);
        resp
    }
}

impl Ctx {
    /// Keeps a background response's events for resumes: all of them when the
    /// stream breaks on the way (the response runs on), those up to its error
    /// when it fails in band (the response failed), none past `queued` when it
    /// is stuck there.
    fn keep(
        &self,
        id: &str,
        model: &str,
        frames: &Frames,
        fault: Option<&(usize, Cut)>,
        stuck: bool,
        failed_in_band: bool,
    ) {
        use super::background::State;
        let mut kept = frames.clone();
        let state = match fault {
            _ if stuck => State::Stuck,
            None | Some((_, Cut::Trickle(_))) => State::Ended,
            Some((after, Cut::Send(frame))) if failed_in_band => {
                kept.content.truncate(*after);
                kept.tail = vec![frame.clone()];
                State::Ended
            }
            Some(_) => State::Running,
        };
        self.shared.store.lock().keep(id, model, kept, state);
    }
}

/// Where a cut non-streaming body ends: a dozen bytes in, always inside the JSON.
const CUT_BODY_AT: usize = 12;

/// A body that is not JSON, for malformed-response faults on non-streaming requests.
fn non_json(frame: Bytes) -> Bytes {
    let mut out = b"{\"id\":\"mock\",".to_vec();
    out.extend_from_slice(&frame);
    Bytes::from(out)
}
