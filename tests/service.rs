//! The actix-web service example over real HTTP, with a faulty mock behind it:
//! what the service's caller receives over SSE is the fault-free reply, every
//! character once; a graceful stop lets an open stream finish; a hard stop
//! cancels it cleanly.
#![cfg(feature = "mock")]

mod common;

#[allow(dead_code)]
#[path = "../examples/service.rs"]
mod service;

use common::metrics_show;
use std::net::SocketAddr;
use std::time::Duration;

use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::ChatRequest;

const PROMPT: &str = "Tell me about rivers.";

/// What the mock answers a `POST /chat` with this model and prompt, fault-free.
fn fault_free(model: &str) -> String {
    let req = ChatRequest::new(model).unwrap().user(PROMPT);
    common::expected_text(&req, None)
}

fn start(mock: &MockServer) -> (SocketAddr, actix_web::dev::ServerHandle, steer_llm::Client) {
    let client = common::fault_tolerant_client(mock);
    let (addr, server) = service::serve(client.clone(), "127.0.0.1:0".parse().unwrap(), 2).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (addr, handle, client)
}

async fn post_chat(addr: SocketAddr, model: &str) -> reqwest::Response {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/chat"))
        .json(&serde_json::json!({ "model": model, "prompt": PROMPT }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    resp
}

#[actix_rt::test]
async fn the_caller_of_the_service_receives_the_fault_free_reply() {
    let mock = MockServer::builder().start_background().unwrap();
    let (addr, handle, _client) = start(&mock);
    let cases = [
        ("openai/gpt-4o-mini", FaultPlan::reset(3)),
        (
            "anthropic/claude-3-5-haiku-latest",
            FaultPlan::stream_error("overloaded", 2),
        ),
        ("xai/grok-3-mini", FaultPlan::truncate(5)),
        (
            "openai/gpt-4o",
            FaultPlan::error("rate_limit").retry_after_ms("5"),
        ),
    ];
    for (model, fault) in cases {
        mock.push_faults([fault]);
        let body = post_chat(addr, model).await.text().await.unwrap();
        let (text, end) = service::read_sse(&body);
        assert_eq!(end.as_deref(), Some("done"), "{model}: {body}");
        assert_eq!(text, fault_free(model), "{model}");
    }
    // The same app serves the operator endpoints.
    let metrics = common::get_text(addr, "/metrics").await;
    assert!(
        metrics.contains(r#"steer_resumptions_total{provider="openai",model="gpt-4o-mini"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("steer_time_to_first_token_seconds_bucket"));
    let reliability = common::get_json(addr, "/reliability").await;
    // OpenAI, Anthropic, xAI and the Responses API.
    assert_eq!(reliability["providers"].as_array().map(Vec::len), Some(4));
    handle.stop(true).await;
}

#[actix_rt::test]
async fn a_graceful_stop_lets_an_open_stream_finish() {
    let mock = MockServer::builder().start_background().unwrap();
    let (addr, handle, _client) = start(&mock);
    let model = "openai/gpt-4o-mini";
    mock.push_faults([FaultPlan::normal().with_chunk_delay(Duration::from_millis(5))]);
    let mut resp = post_chat(addr, model).await;
    let mut body = String::from_utf8(resp.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    // Stop while the stream is open: it runs to its end.
    let stopping = actix_web::rt::spawn(async move { handle.stop(true).await });
    while let Some(chunk) = resp.chunk().await.unwrap() {
        body.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let (text, end) = service::read_sse(&body);
    assert_eq!(end.as_deref(), Some("done"));
    assert_eq!(text, fault_free(model));
    stopping.await.unwrap();
    assert!(
        reqwest::Client::new()
            .post(format!("http://{addr}/chat"))
            .send()
            .await
            .is_err(),
        "the stopped server accepts nothing"
    );
}

#[actix_rt::test]
async fn a_hard_stop_cancels_the_open_stream_cleanly() {
    let mock = MockServer::builder().start_background().unwrap();
    let (addr, handle, client) = start(&mock);
    mock.push_faults([FaultPlan::normal().with_chunk_delay(Duration::from_millis(200))]);
    let mut resp = post_chat(addr, "openai/gpt-4o-mini").await;
    resp.chunk().await.unwrap();
    assert!(metrics_show(&client, r#"steer_open_streams{provider="openai"} 1"#).await);
    handle.stop(false).await;
    // The connection is gone; the stream's request is cancelled, its slot freed.
    while let Ok(Some(_)) = resp.chunk().await {}
    assert!(
        metrics_show(
            &client,
            r#"steer_requests_total{provider="openai",model="gpt-4o-mini",outcome="cancelled"} 1"#
        )
        .await,
        "{}",
        client.prometheus_text()
    );
    assert!(metrics_show(&client, r#"steer_open_streams{provider="openai"} 0"#).await);
    assert!(metrics_show(&client, r#"steer_in_flight_requests{provider="openai"} 0"#).await);
}
