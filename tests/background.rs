//! Server-side resume of the Responses API's background mode, over real HTTP
//! against the mock: a broken background stream is taken up by
//! `GET /v1/responses/{id}?stream=true&starting_after=N` (nothing generated
//! again, nothing spliced); a resume the server refuses falls back to the
//! client-side continuation and says so; responses left running are cancelled.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::{expected_chunks, expected_text, request, with_two_tools, TWO_TOOLS_ASK};
use futures::StreamExt;
use steer_llm::mock::{FaultPlan, MockServer, RecordedRequest};
use steer_llm::runtime::SteerStream;
use steer_llm::{ChatRequest, Client, Error, ResumedBy, StreamEvent, ToolCall, Usage};

const MODEL: &str = "openai-responses/gpt-5-mini";

/// Events of the mock's background stream before the first text delta:
/// created, queued, in_progress, output_item.added, content_part.added.
const HEAD: u64 = 5;

fn client(mock: &MockServer, first_token: Duration) -> Client {
    common::quick_builder(mock.providers().unwrap(), 4)
        .stream_timeouts(
            Some(Duration::from_secs(10)),
            Some(first_token),
            Some(Duration::from_millis(200)),
        )
        .build()
        .unwrap()
}

#[derive(Debug, Default)]
struct Seen {
    events: Vec<StreamEvent>,
    error: Option<Error>,
}

impl Seen {
    fn text(&self) -> String {
        let mut text = String::new();
        for e in &self.events {
            if let StreamEvent::TextDelta { text: t, offset } = e {
                assert_eq!(*offset, text.chars().count(), "offsets are contiguous");
                text.push_str(t);
            }
        }
        text
    }

    fn resumed(&self) -> Vec<(usize, ResumedBy)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Resumed { offset, by, .. } => Some((*offset, by.clone())),
                _ => None,
            })
            .collect()
    }

    fn usage(&self) -> Option<Usage> {
        self.events.iter().find_map(|e| match e {
            StreamEvent::Complete { usage, .. } => *usage,
            _ => None,
        })
    }

    fn calls(&self) -> Vec<ToolCall> {
        self.events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall { call, .. } => Some(call.clone()),
                _ => None,
            })
            .collect()
    }

    /// Each call's start and argument pieces, as the consumer saw them: one
    /// start per call, and pieces that add up to its arguments.
    fn streamed_calls(&self) -> Vec<(usize, String)> {
        let mut calls: Vec<(usize, String)> = Vec::new();
        for e in &self.events {
            match e {
                StreamEvent::ToolCallStart { index, .. } => {
                    assert!(
                        !calls.iter().any(|(i, _)| i == index),
                        "{index} started twice"
                    );
                    calls.push((*index, String::new()));
                }
                StreamEvent::ToolCallDelta { index, arguments } => {
                    let call = calls.iter_mut().find(|(i, _)| i == index);
                    call.expect("a piece of a started call")
                        .1
                        .push_str(arguments);
                }
                _ => {}
            }
        }
        calls
    }

    fn discarded(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, StreamEvent::ToolCallDiscarded { .. }))
            .count()
    }
}

async fn collect(stream: SteerStream) -> Seen {
    let (events, error) = common::all_events(stream).await;
    Seen { events, error }
}

fn background(id: &str) -> ChatRequest {
    request(MODEL).request_id(id).in_background(true)
}

/// The paths of the requests of stream `id`, in order.
fn paths(mock: &MockServer, id: &str) -> Vec<String> {
    mock.requests()
        .into_iter()
        .filter(|r| r.header("x-client-request-id") == Some(id))
        .map(|r| r.path.clone())
        .collect()
}

/// The requests of stream `id` to `path`'s kind (`post`, `get`, `cancel`).
fn of_kind(mock: &MockServer, id: &str, kind: &str) -> Vec<RecordedRequest> {
    mock.requests()
        .into_iter()
        .filter(|r| r.header("x-client-request-id") == Some(id))
        .filter(|r| match kind {
            "post" => r.path == "/v1/responses",
            "cancel" => r.path.ends_with("/cancel"),
            _ => r.path.starts_with("/v1/responses/") && !r.path.ends_with("/cancel"),
        })
        .collect()
}

/// Waits (a bounded while) for stream `id`'s cancel to reach the mock: it is
/// sent by a task of its own.
async fn cancelled(mock: &MockServer, id: &str) -> bool {
    for _ in 0..200 {
        if !of_kind(mock, id, "cancel").is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

type FaultAt = fn(usize) -> FaultPlan;

/// Breaks of the line: the response runs on at the server.
fn breaks() -> Vec<(&'static str, FaultAt)> {
    vec![
        ("reset", FaultPlan::reset),
        ("truncate", FaultPlan::truncate),
        ("malformed json", FaultPlan::malformed_json),
        ("malformed sse", FaultPlan::malformed_sse),
        ("stall past the idle timeout", FaultPlan::stall),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_background_stream_resumes_on_the_server_exactly_and_spends_nothing_again() {
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(2))
        .start_background()
        .unwrap();
    let client = client(&mock, Duration::from_secs(10));
    let words = expected_chunks(&request(MODEL)).len();
    let whole = expected_text(&request(MODEL), None);
    // What the fault-free background stream reports.
    let clean = collect(client.stream(background("clean")).await.unwrap()).await;
    assert_eq!(clean.text(), whole);
    let usage = clean.usage().expect("the terminal event's usage");
    assert_eq!(of_kind(&mock, "clean", "post")[0].body["background"], true);
    let mut case = 0;
    for (name, fault) in breaks() {
        for after in [0, 1, words / 2, words - 1, 10_000] {
            case += 1;
            let id = format!("bg-{case}");
            mock.script_key(&id, [fault(after)]);
            let got = collect(client.stream(background(&id)).await.unwrap()).await;
            let what = format!("{name} after {after}");
            assert!(got.error.is_none(), "{what}: {:?}", got.error);
            assert_eq!(got.text(), whole, "{what}");
            // The server's own count of the whole response: nothing twice.
            assert_eq!(got.usage(), Some(usage), "{what}");
            let before: String = expected_chunks(&request(MODEL))[..after.min(words)].concat();
            let seams = if before.is_empty() {
                vec![]
            } else {
                vec![(before.chars().count(), ResumedBy::Server)]
            };
            assert_eq!(got.resumed(), seams, "{what}");
            // One request generated; the resume asked after the last event read.
            assert_eq!(of_kind(&mock, &id, "post").len(), 1, "{what}");
            let gets = of_kind(&mock, &id, "get");
            assert_eq!(gets.len(), 1, "{what}: {:?}", paths(&mock, &id));
            let point = HEAD - 1 + after.min(words) as u64;
            assert_eq!(gets[0].body["starting_after"], point, "{what}");
            assert!(
                gets[0].path.starts_with("/v1/responses/resp_"),
                "{what}: {}",
                gets[0].path
            );
            assert!(of_kind(&mock, &id, "cancel").is_empty(), "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_inside_a_tool_call_makes_every_call_once_with_no_seam() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock, Duration::from_secs(10));
    let ask = |id: &str| {
        with_two_tools(
            ChatRequest::new(MODEL)
                .unwrap()
                .user(format!("Weather in Oslo?{TWO_TOOLS_ASK}")),
        )
        .request_id(id)
        .in_background(true)
    };
    let clean = collect(client.stream(ask("tools-clean")).await.unwrap()).await;
    assert_eq!(clean.calls().len(), 2, "{:?}", clean.events);
    // Every point of the stream, the calls' arguments included.
    for after in 0..40 {
        let id = format!("tools-{after}");
        mock.script_key(&id, [FaultPlan::reset(after)]);
        let got = collect(client.stream(ask(&id)).await.unwrap()).await;
        assert!(got.error.is_none(), "after {after}: {:?}", got.error);
        assert_eq!(got.text(), clean.text(), "after {after}");
        let (calls, want) = (got.calls(), clean.calls());
        assert_eq!(calls.len(), want.len(), "after {after}: {:?}", got.events);
        assert!(
            calls.iter().zip(&want).all(|(a, b)| a.same_as(b)),
            "after {after}"
        );
        assert_eq!(got.discarded(), 0, "no call is made twice: after {after}");
        assert_eq!(
            got.streamed_calls(),
            clean.streamed_calls(),
            "after {after}"
        );
        assert_eq!(of_kind(&mock, &id, "post").len(), 1, "after {after}");
        assert_eq!(got.usage(), clean.usage(), "after {after}");
    }
}

/// Asserts that stream `id` fell back from a refused resume to the
/// client-side continuation: the whole text, a seam that says why, and the
/// response left behind cancelled (unless it failed: then it runs no more).
async fn fell_back(mock: &MockServer, got: &Seen, id: &str, after: usize, why: &str) {
    fell_back_and(mock, got, id, after, why, true).await
}

async fn fell_back_and(
    mock: &MockServer,
    got: &Seen,
    id: &str,
    after: usize,
    why: &str,
    cancels: bool,
) {
    assert!(got.error.is_none(), "{id}: {:?}", got.error);
    assert_eq!(got.text(), expected_text(&request(MODEL), None), "{id}");
    let before: String = expected_chunks(&request(MODEL))[..after].concat();
    let resumed = got.resumed();
    assert_eq!(resumed.len(), 1, "{id}: {resumed:?}");
    assert_eq!(resumed[0].0, before.chars().count(), "{id}");
    match &resumed[0].1 {
        ResumedBy::ContinuationAfterRefusal { refusal } => {
            assert!(refusal.contains(why), "{id}: {refusal}")
        }
        other => panic!("{id}: {other:?}"),
    }
    assert_eq!(of_kind(mock, id, "get").len(), 1, "{id}");
    let posts = of_kind(mock, id, "post");
    assert_eq!(posts.len(), 2, "{id}: {:?}", paths(mock, id));
    let (role, content) = posts[1].last_message().unwrap();
    assert_eq!(role, "user", "{id}");
    assert_eq!(
        steer_llm::continue_message::read(&content),
        Some(before.as_str()),
        "{id}"
    );
    if cancels {
        assert!(cancelled(mock, id).await, "{id}: {:?}", paths(mock, id));
    } else {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(of_kind(mock, id, "cancel").is_empty(), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_past_the_window_falls_back_to_a_continuation_and_says_so() {
    let mock = MockServer::builder()
        .resume_window(Duration::ZERO)
        .start_background()
        .unwrap();
    let client = client(&mock, Duration::from_secs(10));
    mock.script_key("late", [FaultPlan::reset(3)]);
    let got = collect(client.stream(background("late")).await.unwrap()).await;
    fell_back(&mock, &got, "late", 3, "can no longer be streamed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_the_server_answers_with_404_or_a_failed_response_falls_back() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock, Duration::from_secs(10));
    // A response the server no longer has.
    mock.script_key("gone", [FaultPlan::reset(2), FaultPlan::status(404)]);
    let got = collect(client.stream(background("gone")).await.unwrap()).await;
    fell_back(&mock, &got, "gone", 2, "").await;
    // A resume answered with the response's failure, in band.
    mock.script_key(
        "failed",
        [
            FaultPlan::reset(4),
            FaultPlan::stream_error("server_error", 0),
        ],
    );
    let got = collect(client.stream(background("failed")).await.unwrap()).await;
    fell_back_and(&mock, &got, "failed", 4, "The server had an error", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_answered_with_json_instead_of_events_falls_back_at_once() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock, Duration::from_secs(10));
    // A proxy that drops the query answers the poll: a 2xx, not a stream.
    mock.script_key("polled", [FaultPlan::reset(3), FaultPlan::whole_reply()]);
    let got = collect(client.stream(background("polled")).await.unwrap()).await;
    fell_back(&mock, &got, "polled", 3, "not a reply").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_that_failed_in_band_is_continued_without_asking_to_resume_it() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock, Duration::from_secs(10));
    for (id, name) in [("failed-500", "server_error"), ("failed-503", "overloaded")] {
        mock.script_key(id, [FaultPlan::stream_error(name, 4)]);
        let got = collect(client.stream(background(id)).await.unwrap()).await;
        assert!(got.error.is_none(), "{id}: {:?}", got.error);
        assert_eq!(got.text(), expected_text(&request(MODEL), None), "{id}");
        let before: String = expected_chunks(&request(MODEL))[..4].concat();
        let seam = (before.chars().count(), ResumedBy::Continuation);
        assert_eq!(got.resumed(), vec![seam], "{id}");
        assert!(of_kind(&mock, id, "get").is_empty(), "{id}");
        assert_eq!(of_kind(&mock, id, "post").len(), 2, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_stuck_in_queued_is_cancelled_and_asked_again() {
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(5))
        .start_background()
        .unwrap();
    // The resume sends nothing: the first-token timeout ends it.
    let client = client(&mock, Duration::from_millis(150));
    mock.script_key("stuck", ["stuck_queued".parse::<FaultPlan>().unwrap()]);
    let got = collect(client.stream(background("stuck")).await.unwrap()).await;
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got.text(), expected_text(&request(MODEL), None));
    assert!(got.resumed().is_empty(), "nothing was delivered before");
    let gets = of_kind(&mock, "stuck", "get");
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].body["starting_after"], 1, "after response.queued");
    assert_eq!(of_kind(&mock, "stuck", "post").len(), 2);
    assert!(cancelled(&mock, "stuck").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_response_whose_consumer_went_away_is_cancelled() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock, Duration::from_secs(10));
    mock.script_key(
        "dropped",
        [FaultPlan::normal().with_chunk_delay(Duration::from_millis(20))],
    );
    let mut stream = client.stream(background("dropped")).await.unwrap();
    let mut deltas = 0;
    while deltas < 2 {
        match stream.next().await {
            Some(Ok(StreamEvent::TextDelta { .. })) => deltas += 1,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    drop(stream);
    assert!(
        cancelled(&mock, "dropped").await,
        "{:?}",
        paths(&mock, "dropped")
    );
    let cancel = &of_kind(&mock, "dropped", "cancel")[0];
    assert!(cancel.path.starts_with("/v1/responses/resp_"));
    // The key travels as on every request.
    assert!(cancel.header("authorization").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_stream_cut_at_a_stop_sequence_cancels_the_response_it_leaves() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock, Duration::from_secs(10));
    let whole = expected_text(&request(MODEL), None);
    let stop: String = whole
        .split_whitespace()
        .nth(3)
        .expect("a fourth word")
        .to_string();
    let got = collect(
        client
            .stream(background("stopped").stop(stop.as_str()))
            .await
            .unwrap(),
    )
    .await;
    assert!(got.error.is_none(), "{:?}", got.error);
    assert!(!got.text().contains(&stop), "{}", got.text());
    assert!(cancelled(&mock, "stopped").await);
    // A stream read to its terminal event leaves nothing to cancel.
    let _ = collect(client.stream(background("read")).await.unwrap()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(of_kind(&mock, "read", "cancel").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_mode_is_opt_in_and_a_deployment_can_turn_it_on() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock, Duration::from_secs(10));
    // Off by default: a break is continued client-side, with no resume.
    mock.script_key("plain", [FaultPlan::reset(3)]);
    let got = collect(
        client
            .stream(request(MODEL).request_id("plain"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.resumed().len(), 1);
    assert_eq!(got.resumed()[0].1, ResumedBy::Continuation);
    let posts = of_kind(&mock, "plain", "post");
    assert!(posts[0].body.get("background").is_none());
    assert!(of_kind(&mock, "plain", "get").is_empty());
    // A non-streaming request never asks for it (it would have to poll).
    let _ = client
        .generate(request(MODEL).request_id("whole").in_background(true))
        .await
        .unwrap();
    assert!(of_kind(&mock, "whole", "post")[0]
        .body
        .get("background")
        .is_none());
    // A deployment in background mode.
    let deployment = steer_llm::provider::OpenAiResponses::custom("bg", &mock.openai_base_url())
        .api_key("k")
        .background(true)
        .build()
        .unwrap();
    let mut providers = steer_llm::Providers::new();
    providers.register(std::sync::Arc::new(deployment));
    let client = Client::builder().providers(providers).build().unwrap();
    mock.script_key("deployed", [FaultPlan::reset(2)]);
    let got = collect(
        client
            .stream(
                ChatRequest::new("bg/gpt-5-mini")
                    .unwrap()
                    .system("You are terse.")
                    .user("Tell me about rivers.")
                    .request_id("deployed"),
            )
            .await
            .unwrap(),
    )
    .await;
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got.resumed().len(), 1);
    assert_eq!(got.resumed()[0].1, ResumedBy::Server);
    assert_eq!(of_kind(&mock, "deployed", "get").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_moved_to_the_responses_api_resumes_on_the_server_too() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock, Duration::from_secs(10));
    let req = ChatRequest::new("openai/gpt-5-codex")
        .unwrap()
        .user("Tell me about rivers.")
        .request_id("codex")
        .in_background(true);
    mock.script_key("codex", [FaultPlan::reset(2)]);
    let got = collect(client.stream(req.clone()).await.unwrap()).await;
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got.text(), expected_text(&req, None));
    assert_eq!(got.resumed().len(), 1);
    assert_eq!(got.resumed()[0].1, ResumedBy::Server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_in_background_mode_resumes_on_the_server_and_cancels_what_a_failover_leaves() {
    let mock = MockServer::builder().start_background().unwrap();
    let group = steer_llm::Group::new([MODEL, "openai/gpt-4o-mini"])
        .unwrap()
        .background(true);
    let client = common::quick_builder(mock.providers().unwrap(), 4)
        .group("g", group)
        .build()
        .unwrap();
    let ask = |id: &str| {
        ChatRequest::new("group/g")
            .unwrap()
            .system("You are terse.")
            .user("Tell me about rivers.")
            .request_id(id)
    };
    mock.script_key("grouped", [FaultPlan::reset(3)]);
    let got = collect(client.stream(ask("grouped")).await.unwrap()).await;
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got.text(), expected_text(&request(MODEL), None));
    assert_eq!(got.resumed().len(), 1);
    assert_eq!(got.resumed()[0].1, ResumedBy::Server);
    // The resume keeps failing at a busy server until the target gives up:
    // the stream fails over, and the response it leaves is cancelled.
    let busy = FaultPlan::error("overloaded");
    mock.script_key(
        "moved",
        [FaultPlan::reset(3), busy.clone(), busy.clone(), busy],
    );
    let got = collect(client.stream(ask("moved")).await.unwrap()).await;
    assert!(got.error.is_none(), "{:?}", got.error);
    assert!(
        got.events
            .iter()
            .any(|e| matches!(e, StreamEvent::FailedOver { .. })),
        "{:?}",
        got.events
    );
    assert_eq!(of_kind(&mock, "moved", "get").len(), 3);
    assert!(
        cancelled(&mock, "moved").await,
        "{:?}",
        paths(&mock, "moved")
    );
}
