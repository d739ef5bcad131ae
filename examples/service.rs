//! steer in an actix-web service: `POST /chat` streams a reply over SSE from
//! `client.stream`, `GET /metrics` serves the client's Prometheus families and
//! `GET /reliability` its breakers and counters, all in one app.
//!
//! `cargo run --features mock --example service` serves on 127.0.0.1:8080 (`PORT` to change it)
//! against the real providers when their keys are set, else against the embedded
//! mock, which breaks every third stream mid-reply so that you can watch steer
//! resume it:
//!
//! ```text
//! curl -N localhost:8080/chat -d '{"model":"openai/gpt-4o-mini","prompt":"Name three rivers."}'
//! curl localhost:8080/metrics
//! ```
//!
//! `cargo run --features mock --example service -- --smoke` starts it on a free port, asks it
//! once over HTTP, prints the reply and stops (CI runs this).
//!
//! Placement: request handlers run on actix-web's workers; the client's actors
//! (breakers, retry coordinators, request and stream actors) stay on the
//! client's own arbiters. A handler only sends a message and reads a channel.
//!
//! Shutdown: on SIGINT/SIGTERM (or [`ServerHandle::stop`]) the server stops
//! accepting and gives open streams [`SHUTDOWN_GRACE`] to finish; a stream still
//! open then is dropped, which cancels its request cleanly (its HTTP call is
//! aborted and its breaker permit handed back).
//!
//! [`ServerHandle::stop`]: actix_web::dev::ServerHandle::stop

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{web, App, HttpResponse, HttpServer};
use futures::StreamExt;
use serde::Deserialize;
use steer_llm::{ChatRequest, Client, StreamEvent};

/// How long open streams may run on after a shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The body of `POST /chat`.
#[derive(Debug, Deserialize)]
pub struct ChatBody {
    /// `provider/model` or `group/<name>`.
    pub model: String,
    /// The user's message.
    pub prompt: String,
    /// An optional system message.
    #[serde(default)]
    pub system: Option<String>,
    /// An optional token limit.
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

/// One SSE event: `event: <name>` (unless a plain message) and its JSON data.
fn sse(event: Option<&str>, data: &serde_json::Value) -> web::Bytes {
    let head = event.map(|e| format!("event: {e}\n")).unwrap_or_default();
    web::Bytes::from(format!("{head}data: {data}\n\n"))
}

/// `POST /chat`: the reply's text as SSE `data: {"text": ...}` events, then
/// `event: done` (with the finish reason), or `event: error` (with the error's
/// kind and message). Seams of resumed streams are steer's business: the caller
/// sees one reply, every character once.
async fn chat(client: web::Data<Client>, body: web::Json<ChatBody>) -> HttpResponse {
    let body = body.into_inner();
    let mut req = match ChatRequest::new(&body.model) {
        Ok(r) => r,
        Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
    };
    if let Some(system) = &body.system {
        req = req.system(system);
    }
    req = req.user(&body.prompt);
    if let Some(n) = body.max_tokens {
        req = req.max_tokens(n);
    }
    let stream = match client.stream(req).await {
        Ok(s) => s,
        Err(e) => {
            return HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({"error": e.to_string(), "kind": e.kind()}))
        }
    };
    let events = stream.filter_map(|item| async move {
        let bytes = match item {
            Ok(StreamEvent::TextDelta { text, .. }) => {
                sse(None, &serde_json::json!({ "text": text }))
            }
            Ok(StreamEvent::Complete { finish_reason, .. }) => sse(
                Some("done"),
                &serde_json::json!({ "finish_reason": finish_reason }),
            ),
            Ok(_) => return None,
            Err(e) => sse(
                Some("error"),
                &serde_json::json!({ "error": e.to_string(), "kind": e.kind() }),
            ),
        };
        Some(Ok::<_, actix_web::Error>(bytes))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .streaming(events)
}

/// `GET /metrics`: the client's families in the Prometheus text format.
async fn metrics(client: web::Data<Client>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(client.prometheus_text())
}

/// `GET /reliability`: every provider's breaker and counters, as JSON.
async fn reliability(client: web::Data<Client>) -> HttpResponse {
    match client.metrics().await {
        Ok(snapshot) => HttpResponse::Ok()
            .insert_header(ContentType::json())
            .json(snapshot),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

/// The service's routes, to mount into an `App` that carries the client as
/// `web::Data<Client>`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/chat", web::post().to(chat))
        .route("/metrics", web::get().to(metrics))
        .route("/reliability", web::get().to(reliability));
}

/// Starts the service on `addr` with `workers` actix-web workers; returns the
/// bound address and the running server (await it, or stop it by its handle).
pub fn serve(
    client: Client,
    addr: SocketAddr,
    workers: usize,
) -> std::io::Result<(SocketAddr, actix_web::dev::Server)> {
    let data = web::Data::new(client);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
        .workers(workers)
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .bind(addr)?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    Ok((bound, server.run()))
}

/// The text of an SSE reply of `POST /chat`, and whether it ended with `done`.
pub fn read_sse(body: &str) -> (String, Option<String>) {
    let mut text = String::new();
    let mut end = None;
    for event in body.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let name = event
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .map(str::to_string);
        let data = event.lines().find_map(|l| l.strip_prefix("data: "));
        let value: serde_json::Value = data
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        match name.as_deref() {
            None => text.push_str(value["text"].as_str().unwrap_or_default()),
            Some(other) => end = Some(other.to_string()),
        }
    }
    (text, end)
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let mock; // keeps the embedded mock running
    let providers = if std::env::var("OPENAI_API_KEY").is_ok() {
        steer_llm::Providers::from_env()?
    } else {
        use steer_llm::mock::{FaultPlan, MockServer};
        mock = MockServer::builder().start_background()?;
        // The next stream breaks after four chunks: steer resumes it.
        mock.push_faults([FaultPlan::reset(4)]);
        mock.providers()?
    };
    let client = Client::builder().providers(providers).build()?;
    let port = if smoke {
        0
    } else {
        std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(8080)
    };
    let (addr, server) = serve(client, SocketAddr::from(([127, 0, 0, 1], port)), 2)?;
    println!("serving on http://{addr} (POST /chat, GET /metrics, GET /reliability)");
    if !smoke {
        server.await?;
        return Ok(());
    }
    let handle = server.handle();
    let running = actix_web::rt::spawn(server);
    let body = reqwest::Client::new()
        .post(format!("http://{addr}/chat"))
        .json(&serde_json::json!({"model": "openai/gpt-4o-mini", "prompt": "Name three rivers."}))
        .send()
        .await?
        .text()
        .await?;
    let (text, end) = read_sse(&body);
    println!("{text}");
    handle.stop(true).await;
    running.await??;
    if end.as_deref() != Some("done") {
        return Err(format!("the stream ended with {end:?}").into());
    }
    Ok(())
}
