//! The stored responses of the Responses API's background mode, over HTTP:
//! `GET /v1/responses/{id}` (the response; with `?stream=true&starting_after=N`
//! its events after event `N`) and `POST /v1/responses/{id}/cancel`. What each
//! does, and the sources, are in `background.rs`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use super::background::{Refusal, State as Stored};
use super::fault::{FaultPlan, WaitHeaders};
use super::server::{self, Ctx};
use super::steps::{self, Step};
use super::{Behaviour, Flavour, Shared};

/// What the query of a retrieve asks: a stream, and after which event.
fn read_query(uri: &Uri) -> (bool, Option<u64>) {
    let mut stream = false;
    let mut after = None;
    for pair in uri.query().unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("stream", v)) => stream = v == "true",
            Some(("starting_after", v)) => after = v.parse().ok(),
            _ => {}
        }
    }
    (stream, after)
}

/// A request about a stored response: recorded, authenticated, its fault
/// drawn; or the error response it gets instead.
fn begin(
    shared: Arc<Shared>,
    path: &str,
    headers: &HeaderMap,
    body: Value,
) -> Result<(Ctx, FaultPlan), Box<Response>> {
    let n = shared.next_id();
    let fault = server::choose_fault(&shared, headers);
    server::record(&shared, path, headers, || body, Flavour::Responses, &fault);
    let ctx = Ctx {
        flavour: Flavour::Responses,
        request_id: format!("req_mock{n:020}"),
        shared: shared.clone(),
        behaviour: Behaviour::Standard,
    };
    let refuse = |ctx: &Ctx, message: &str| {
        let err = server::invalid_request(Flavour::Responses, message, &ctx.request_id);
        ctx.error_response(err, &WaitHeaders::default())
    };
    let plan = match fault {
        Ok(plan) => plan.unwrap_or_default(),
        Err(message) => return Err(Box::new(refuse(&ctx, &format!("steer mock: {message}")))),
    };
    if let Some(resp) = ctx.check_headers(headers) {
        return Err(Box::new(resp));
    }
    Ok((ctx, plan))
}

/// A refusal in OpenAI's error shape.
fn refused(ctx: &Ctx, refusal: Refusal) -> Response {
    let mut err = server::invalid_request(Flavour::Responses, &refusal.message, &ctx.request_id);
    err.status = refusal.status;
    ctx.error_response(err, &WaitHeaders::default())
}

/// `GET /v1/responses/{id}`: with `stream=true`, the stored events after
/// `starting_after` (all of them without it), cut by the request's fault like
/// any stream; without it, the response's status.
pub(super) async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (stream, after) = read_query(&uri);
    let body = json!({"stream": stream, "starting_after": after});
    let (ctx, plan) = match begin(shared, uri.path(), &headers, body) {
        Ok(begun) => begun,
        Err(resp) => return *resp,
    };
    if let Some(d) = plan.latency {
        tokio::time::sleep(d).await;
    }
    // `whole_reply`: the poll's answer to a stream's resume, as a proxy that
    // drops the query string gives it.
    let polled = !stream || plan.outcome == super::fault::Outcome::WholeReply;
    if polled {
        let status = match ctx.shared.store.lock().state(&id) {
            None => {
                let message = format!("Response with id '{id}' not found.");
                return refused(
                    &ctx,
                    Refusal {
                        status: 404,
                        message,
                    },
                );
            }
            Some(Stored::Running) => "in_progress",
            Some(Stored::Ended) => "completed",
            Some(Stored::Stuck) => "queued",
            Some(Stored::Cancelled) => "cancelled",
        };
        let body = json!({"id": id, "object": "response", "status": status, "background": true});
        return server::json_response(200, body.to_string());
    }
    let cut = match ctx.stream_cut(plan.outcome, true) {
        Ok(cut) => cut,
        Err(resp) => return *resp,
    };
    let window = ctx.shared.config.resume_window;
    let resumed = ctx
        .shared
        .store
        .lock()
        .resume(&id, after, window, cut.is_none());
    let resumed = match resumed {
        Ok(r) => r,
        Err(refusal) => return refused(&ctx, refusal),
    };
    let mut steps = steps::stream_steps(resumed.frames, cut, None);
    if resumed.stuck {
        // A response stuck in `queued` sends nothing more.
        steps.push(Step::Stall);
    }
    let body = steps::steps_body(
        steps,
        plan.chunk_delay,
        ctx.shared.config.stall_limit,
        ctx.shared.body_counters(),
    );
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    ctx.base_headers(&mut resp, false);
    resp
}

/// `POST /v1/responses/{id}/cancel`: the cancelled response, or why not.
pub(super) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (ctx, _) = match begin(shared, uri.path(), &headers, Value::Null) {
        Ok(begun) => begun,
        Err(resp) => return *resp,
    };
    let cancelled = ctx.shared.store.lock().cancel(&id);
    match cancelled {
        Ok(response) => {
            let mut resp = server::json_response(200, response.to_string());
            ctx.base_headers(&mut resp, false);
            resp
        }
        Err(refusal) => refused(&ctx, refusal),
    }
}
