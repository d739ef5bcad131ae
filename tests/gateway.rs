//! A gateway in front of the providers (LiteLLM's proxy, the most deployed), as
//! the mock reproduces it from shared/reference/real-servers.md §5, over HTTP:
//! errors rewritten into its own shape, upstream waits in prefixed headers,
//! overloads passed on as 500s and mid-stream error lines, and a whole JSON
//! reply to a streaming request.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::{expected_text, request, MODELS};
use futures::StreamExt;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::{Category, Error, FinishReason, RetryPolicy, StreamEvent};

fn category(e: &Error) -> Option<Category> {
    e.failure().map(|f| f.category)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_error_a_gateway_calls_throttling_is_never_retried() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = common::fault_tolerant_client(&mock);
    for model in MODELS {
        let id = format!("quota-{model}");
        mock.clear_requests();
        mock.script_key(
            &id,
            std::iter::repeat_n(FaultPlan::error("gateway_quota"), 5),
        );
        let e = client
            .generate(request(model).request_id(id.as_str()))
            .await
            .unwrap_err();
        assert_eq!(category(&e), Some(Category::QuotaExceeded), "{model}: {e}");
        assert_eq!(mock.requests().len(), 1, "{model}: sent once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_wait_in_a_prefixed_header_is_honoured() {
    let mock = MockServer::builder().start_background().unwrap();
    // Waits above a second are not waited for here: the request fails at once
    // with the wait it was told, instead of spending its attempts inside it.
    let client = steer_llm::Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::default().max_server_wait(Duration::from_secs(1)))
        .build()
        .unwrap();
    mock.script_key(
        "wait",
        std::iter::repeat_n(
            FaultPlan::error("gateway_rate_limit").gateway_retry_after("60"),
            3,
        ),
    );
    let e = client
        .generate(request("openai/gpt-4o-mini").request_id("wait"))
        .await
        .unwrap_err();
    let failure = e.failure().expect("classified");
    assert_eq!(failure.category, Category::RateLimited);
    assert_eq!(failure.retry_after, Some(Duration::from_secs(60)), "{e}");
    assert_eq!(mock.requests().len(), 1, "no attempt spent inside the wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overload_passed_on_as_a_500_or_mid_stream_is_an_overload() {
    let mock = MockServer::builder().start_background().unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        mock.push_faults([FaultPlan::error("gateway_overloaded")]);
        let Err(Error::Provider(e)) = providers.generate(&request(model)).await else {
            panic!("{model}: expected a provider error")
        };
        assert_eq!(e.classify().category, Category::Overloaded, "{model}");
        // Mid-stream, in any wire format: a `data:` line of its own shape.
        mock.push_faults([FaultPlan::stream_error("gateway_stream_error", 2)]);
        let (events, err) = common::drain(providers.stream(&request(model)).await.unwrap()).await;
        let err = err.expect("the stream fails");
        assert_eq!(
            err.classify().category,
            Category::Overloaded,
            "{model}: {err:?}"
        );
        assert!(err.content_started && !common::delta_text(&events).is_empty());
    }
    // Through the client, the stream is resumed and whole.
    let client = common::fault_tolerant_client(&mock);
    for model in MODELS {
        let id = format!("resume-{model}");
        mock.script_key(&id, [FaultPlan::stream_error("gateway_stream_error", 3)]);
        let req = request(model).request_id(id.as_str());
        let mut stream = client.stream(req.clone()).await.unwrap();
        let mut text = String::new();
        while let Some(event) = stream.next().await {
            if let StreamEvent::TextDelta { text: t, .. } = event.unwrap() {
                text.push_str(&t);
            }
        }
        assert_eq!(text, expected_text(&req, None), "{model}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_json_reply_to_a_streaming_request_is_a_stream_of_that_reply() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = common::fault_tolerant_client(&mock);
    for model in MODELS {
        let id = format!("whole-{model}");
        mock.clear_requests();
        mock.script_key(&id, [FaultPlan::whole_reply()]);
        let req = request(model).request_id(id.as_str());
        let mut stream = client.stream(req.clone()).await.unwrap();
        let (mut text, mut finish) = (String::new(), None);
        while let Some(event) = stream.next().await {
            match event.unwrap_or_else(|e| panic!("{model}: {e}")) {
                StreamEvent::TextDelta { text: t, .. } => text.push_str(&t),
                StreamEvent::Complete { finish_reason, .. } => finish = Some(finish_reason),
                _ => {}
            }
        }
        assert_eq!(text, expected_text(&req, None), "{model}");
        assert_eq!(finish, Some(FinishReason::Stop), "{model}");
        let log = mock.requests();
        assert_eq!(log.len(), 1, "{model}: read as it came, not asked again");
        assert!(log[0].is_stream());
    }
}

/// A whole reply to a streaming request holds what the API leaves to the
/// client: the Responses API's stop sequences end it as a stream's would, and
/// Anthropic's thinking block arrives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_json_reply_keeps_the_clients_stop_sequences_and_its_reasoning() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = common::fault_tolerant_client(&mock);
    let req = request("openai-responses/gpt-5-mini");
    let whole = expected_text(&req, None);
    let stop = whole
        .split_whitespace()
        .nth(2)
        .expect("a third word")
        .to_string();
    mock.script_key("whole-stop", [FaultPlan::whole_reply()]);
    let mut stream = client
        .stream(req.clone().stop(stop.as_str()).request_id("whole-stop"))
        .await
        .unwrap();
    let (mut text, mut finish) = (String::new(), None);
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::TextDelta { text: t, .. } => text.push_str(&t),
            StreamEvent::Complete { finish_reason, .. } => finish = Some(finish_reason),
            _ => {}
        }
    }
    assert_eq!(Some(text.as_str()), whole.split(stop.as_str()).next());
    assert_eq!(finish, Some(FinishReason::Stop));
    let thinking = request("anthropic/claude-sonnet-4-6")
        .extra_body("thinking", serde_json::json!({"type": "adaptive"}))
        .request_id("whole-thinking");
    mock.script_key("whole-thinking", [FaultPlan::whole_reply()]);
    let mut stream = client.stream(thinking).await.unwrap();
    let mut blocks = Vec::new();
    while let Some(event) = stream.next().await {
        if let StreamEvent::Reasoning { block, .. } = event.unwrap() {
            blocks.push(block);
        }
    }
    assert_eq!(blocks.len(), 1);
    assert!(blocks[0].is_signed());
}

/// An upstream that leaves the body open after the terminal event (and, for
/// the Responses API, sends `data: [DONE]` after it): the stream ends at the
/// terminal event, whatever follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_left_open_after_its_terminal_event_ends_the_stream_there() {
    let mock = MockServer::builder()
        .behaviour(steer_llm::mock::Behaviour::Lingering)
        .start_background()
        .unwrap();
    let client = common::fault_tolerant_client(&mock);
    for model in MODELS {
        let req = request(model);
        let mut stream = client.stream(req.clone()).await.unwrap();
        let mut text = String::new();
        let mut complete = false;
        loop {
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
                .await
                .unwrap_or_else(|_| panic!("{model}: the stream waited on the open body"));
            match next {
                None => break,
                Some(Ok(StreamEvent::TextDelta { text: t, .. })) => text.push_str(&t),
                Some(Ok(StreamEvent::Complete { .. })) => complete = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{model}: {e}"),
            }
        }
        assert!(complete, "{model}");
        assert_eq!(text, expected_text(&req, None), "{model}");
    }
    // The mock does leave it open: after `[DONE]`, no end of body.
    let mut body = reqwest::Client::new()
        .post(format!("{}/v1/responses", mock.base_url()))
        .header("authorization", "Bearer k")
        .body(r#"{"model":"gpt-5-mini","input":"hi","stream":true}"#)
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("[DONE]") {
        let chunk = body.chunk().await.unwrap().expect("more body");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("response.completed"));
    let after = tokio::time::timeout(Duration::from_millis(300), body.chunk()).await;
    assert!(after.is_err(), "the body ended: {after:?}");
}
