//! `steer drill --live`: a proxy on 127.0.0.1 in front of a real endpoint
//! that injects the scenario's faults on the way. An error fault is
//! answered by the proxy itself, in the endpoint's wire format, without
//! calling the endpoint (it costs nothing); a cut, a stall, keep-alives or a
//! trickle strike the endpoint's real response after its first events; a
//! slow reply waits before it is forwarded. Everything else passes through
//! unchanged (the key's header too: steer reaches the proxy on loopback, the
//! proxy the endpoint over TLS, and follows no redirect).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;

use crate::mock::{errors, render, FaultPlan, Flavour, Outcome};

/// The longest a stalled or pinging response is held open.
const HOLD_OPEN: Duration = Duration::from_secs(300);
/// The largest request body forwarded.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Headers that belong to one hop.
const HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
];

struct Shared {
    /// The endpoint's origin (`https://api.openai.com`).
    origin: String,
    flavour: Flavour,
    http: reqwest::Client,
    fault: Mutex<Option<FaultPlan>>,
    rng: Mutex<fastrand::Rng>,
    requests: AtomicU64,
}

/// A running fault proxy; stopped when dropped.
pub(super) struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FaultProxy {
    /// A proxy to `origin` (scheme, host and port), answering errors in
    /// `flavour`'s format; `seed` draws its mixes.
    pub fn start(origin: &str, flavour: Flavour, seed: u64) -> std::io::Result<FaultProxy> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            origin: origin.trim_end_matches('/').to_string(),
            flavour,
            http,
            fault: Mutex::new(None),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            requests: AtomicU64::new(0),
        });
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        std::thread::Builder::new()
            .name("steer-drill-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        Ok(FaultProxy {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fault every request meets from now on (`None`: none).
    pub fn set_fault(&self, plan: Option<FaultPlan>) {
        *self.shared.fault.lock() = plan;
    }

    /// Requests the proxy answered itself or sent on.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The fault this request meets: the plan, its mix drawn.
fn draw(shared: &Shared) -> Option<FaultPlan> {
    let mut plan = shared.fault.lock().clone()?;
    if let Outcome::Mix(mix) = &plan.outcome {
        plan.outcome = mix.pick(shared.rng.lock().f64() * 100.0);
    }
    let plan = plan.slow_as_latency();
    let faulted = plan.outcome != Outcome::Normal || plan.latency.is_some();
    faulted.then_some(plan)
}

fn reply(status: u16, content_type: &str, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    if let Ok(v) = axum::http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert("content-type", v);
    }
    resp
}

/// An error the proxy answers itself, with the wait headers asked for.
fn local_error(shared: &Shared, outcome: &Outcome) -> Option<Response> {
    let (err, wait) = match outcome {
        Outcome::Error { name, wait } => (
            errors::status_error(shared.flavour, name, "req_drill")?,
            wait,
        ),
        Outcome::Status { code, wait } => (
            render::generic_error(shared.flavour, *code, "req_drill"),
            wait,
        ),
        _ => return None,
    };
    let mut resp = reply(err.status, err.content_type, err.body);
    if let Some(v) = wait
        .retry_after
        .as_deref()
        .and_then(|v| axum::http::HeaderValue::from_str(v).ok())
    {
        resp.headers_mut().insert("retry-after", v);
    }
    Some(resp)
}

async fn forward(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let plan = draw(&shared);
    if let Some(plan) = &plan {
        if let Some(resp) = local_error(&shared, &plan.outcome) {
            return resp;
        }
        if let Some(late) = plan.latency {
            tokio::time::sleep(late).await;
        }
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return reply(
            413,
            "text/plain",
            "steer drill proxy: request body too large",
        );
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut upstream = shared
        .http
        .request(parts.method.clone(), format!("{}{path}", shared.origin))
        .body(body);
    for (name, value) in &parts.headers {
        if !HOP.contains(&name.as_str()) {
            upstream = upstream.header(name, value);
        }
    }
    let resp = match upstream.send().await {
        Ok(r) => r,
        Err(e) => {
            return reply(
                502,
                "text/plain",
                format!("steer drill proxy: the endpoint did not answer: {e}"),
            )
        }
    };
    let status = resp.status().as_u16();
    let mut out = Response::new(Body::empty());
    *out.status_mut() = resp.status();
    for (name, value) in resp.headers() {
        if !HOP.contains(&name.as_str()) {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let stream = resp.bytes_stream();
    *out.body_mut() = match plan.map(|p| p.outcome) {
        Some(outcome) if (200..300).contains(&status) => cut(stream, outcome, shared.flavour, sse),
        _ => Body::from_stream(stream),
    };
    out
}

/// What happens after `after` events of a response.
#[derive(Clone)]
enum Tail {
    Reset,
    End,
    Send(Bytes),
    Stall,
    Pings(Bytes, Duration),
    Trickle(Duration),
}

enum Phase {
    /// Events pass until `left` more have.
    Passing,
    /// The allowed events are through: the tail now.
    Struck,
    Done,
}

struct Cut {
    upstream: futures::stream::BoxStream<'static, reqwest::Result<Bytes>>,
    /// Events (or, for a body that is not a stream, bytes) still let through.
    left: usize,
    sse: bool,
    tail: Tail,
    phase: Phase,
    /// The rest of the chunk the cut fell in (a trickle sends it late).
    pending: Option<Bytes>,
    pings: u32,
}

/// Keep-alives one response sends at most.
const MAX_PINGS: u32 = 10_000;

/// Where `left` more events of `chunk` end, counting them off; `None` if
/// the chunk ends first.
fn events_end(chunk: &[u8], left: &mut usize) -> Option<usize> {
    let mut from = 0;
    while *left > 0 {
        let i = chunk[from..].windows(2).position(|w| w == b"\n\n")?;
        from += i + 2;
        *left -= 1;
    }
    Some(from)
}

impl Cut {
    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        match self.phase {
            Phase::Done => None,
            Phase::Struck => self.strike().await,
            Phase::Passing => {
                let chunk = match self.upstream.next().await? {
                    Ok(c) => c,
                    Err(e) => {
                        self.phase = Phase::Done;
                        return Some(Err(std::io::Error::other(e)));
                    }
                };
                let end = if self.sse {
                    events_end(&chunk, &mut self.left)
                } else {
                    let take = self.left.min(chunk.len());
                    self.left -= take;
                    (self.left == 0).then_some(take)
                };
                let Some(at) = end else {
                    return Some(Ok(chunk));
                };
                self.phase = Phase::Struck;
                self.pending = Some(chunk.slice(at..)).filter(|b| !b.is_empty());
                Some(Ok(chunk.slice(..at)))
            }
        }
    }

    async fn strike(&mut self) -> Option<std::io::Result<Bytes>> {
        match self.tail.clone() {
            Tail::Reset => {
                self.phase = Phase::Done;
                // Let what was sent reach the caller before the line dies.
                tokio::time::sleep(Duration::from_millis(1)).await;
                Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "steer drill: connection reset",
                )))
            }
            Tail::End => None,
            Tail::Send(frame) => {
                self.phase = Phase::Done;
                Some(Ok(frame))
            }
            Tail::Stall => {
                tokio::time::sleep(HOLD_OPEN).await;
                None
            }
            Tail::Pings(frame, every) => {
                if self.pings >= MAX_PINGS {
                    return None;
                }
                self.pings += 1;
                tokio::time::sleep(every).await;
                Some(Ok(frame))
            }
            Tail::Trickle(every) => {
                let next = match self.pending.take() {
                    Some(rest) => Ok(rest),
                    None => self.upstream.next().await?.map_err(std::io::Error::other),
                };
                tokio::time::sleep(every).await;
                Some(next)
            }
        }
    }
}

/// The response's body, struck by `outcome` after its first events (the
/// opening ones, a role chunk or `message_start`, and `after` more); a body
/// that is not a stream is struck after a dozen bytes.
fn cut(
    stream: impl futures::Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    outcome: Outcome,
    flavour: Flavour,
    sse: bool,
) -> Body {
    let (after, tail) = match outcome {
        Outcome::Reset { after } => (after, Tail::Reset),
        Outcome::Truncate { after } => (after, Tail::End),
        Outcome::Stall { after } => (after, Tail::Stall),
        Outcome::Pings { after, ms } if sse => (
            after,
            Tail::Pings(render::keep_alive_frame(flavour), Duration::from_millis(ms)),
        ),
        Outcome::Pings { after, .. } => (after, Tail::Stall),
        Outcome::Trickle { after, ms } if sse => (after, Tail::Trickle(Duration::from_millis(ms))),
        Outcome::MalformedJson { after } => {
            (after, Tail::Send(render::malformed_json_frame(flavour)))
        }
        Outcome::MalformedSse { after } => (after, Tail::Send(render::malformed_sse_frame())),
        Outcome::StreamError { name, after } => match errors::in_band_error(flavour, &name) {
            Some((event, body)) if sse => (after, Tail::Send(render::in_band_frame(event, &body))),
            _ => (after, Tail::End),
        },
        _ => return Body::from_stream(stream),
    };
    let left = if sse {
        after.unwrap_or(0).saturating_add(2)
    } else {
        12
    };
    let state = Cut {
        upstream: stream.boxed(),
        left,
        sse,
        tail,
        phase: Phase::Passing,
        pending: None,
        pings: 0,
    };
    Body::from_stream(futures::stream::unfold(state, |mut cut| async move {
        let item = cut.next().await?;
        Some((item, cut))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_end_counts_whole_events_across_chunks() {
        let mut left = 2;
        assert_eq!(events_end(b"data: a\n\ndata: b", &mut left), None);
        assert_eq!(left, 1, "one event ended in the first chunk");
        assert_eq!(events_end(b"\n\ndata: c\n\n", &mut left), Some(2));
        assert_eq!(left, 0);
        let mut none = 0;
        assert_eq!(events_end(b"anything", &mut none), Some(0));
    }
}
