//! Streams that trickle after a fast first token, over real HTTP against the
//! mock (its `trickle` fault): with a rate floor the trickling attempt is a
//! `slow_stream` failure of its target, resumed or failed over with the exact
//! seam; without one (the default) nothing changes.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::{expected_text, request};
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::{RateFloor, SteerStream};
use steer_llm::{Error, StreamEvent};

fn trickle(after: usize, ms: u64) -> FaultPlan {
    format!("trickle?after={after}&ms={ms}").parse().unwrap()
}

#[derive(Debug, Default)]
struct Seen {
    text: String,
    seams: Vec<StreamEvent>,
    route: Vec<steer_llm::model::RouteStep>,
    error: Option<Error>,
}

async fn collect(stream: SteerStream) -> Seen {
    let (events, error) = common::all_events(stream).await;
    let mut seen = Seen {
        error,
        ..Seen::default()
    };
    for event in events {
        match event {
            StreamEvent::TextDelta { text, offset } => {
                assert_eq!(offset, seen.text.chars().count());
                seen.text.push_str(&text);
            }
            e @ (StreamEvent::Resumed { .. } | StreamEvent::FailedOver { .. }) => {
                seen.seams.push(e)
            }
            StreamEvent::Route { steps } => seen.route = steps,
            _ => {}
        }
    }
    seen
}

/// 200 characters a second over 300 ms: a chunk every 150 ms (a few
/// characters) is far below it, the mock's unhurried stream far above.
fn floor() -> RateFloor {
    RateFloor::new(200, Duration::from_millis(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_stream_below_its_floor_is_resumed_with_the_exact_seam() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = common::quick_builder(mock.providers().unwrap(), 3)
        .stream_min_rate(Some(floor()))
        .build()
        .unwrap();
    for model in ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"] {
        let id = format!("slow-{model}");
        mock.script_key(&id, [trickle(2, 150)]);
        let req = request(model).request_id(id.as_str());
        let seen = collect(client.stream(req.clone()).await.unwrap()).await;
        assert!(seen.error.is_none(), "{model}: {:?}", seen.error);
        assert_eq!(seen.text, expected_text(&req, None), "{model}");
        assert_eq!(seen.seams.len(), 1, "{model}: {:?}", seen.seams);
    }
    let line =
        r#"steer_attempts_total{provider="openai",model="gpt-4o-mini",outcome="slow_stream"} 1"#;
    assert!(
        common::metrics_show(&client, line).await,
        "{}",
        client.prometheus_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_moves_a_trickling_stream_to_its_next_target_once() {
    let mock = MockServer::builder().start_background().unwrap();
    let group = steer_llm::Group::new(["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"])
        .unwrap()
        .min_rate(floor());
    let client = common::quick_builder(mock.providers().unwrap(), 1)
        .group("pair", group)
        .build()
        .unwrap();
    mock.script_key("moved", [trickle(3, 150)]);
    let req = steer_llm::ChatRequest::new("group/pair")
        .unwrap()
        .system("You are terse.")
        .user("Tell me about rivers.")
        .request_id("moved");
    let seen = collect(client.stream(req).await.unwrap()).await;
    assert!(seen.error.is_none(), "{:?}", seen.error);
    assert_eq!(seen.seams.len(), 1, "{:?}", seen.seams);
    let StreamEvent::FailedOver { offset, target, .. } = &seen.seams[0] else {
        panic!("{:?}", seen.seams);
    };
    assert_eq!(target, "anthropic/claude-3-5-haiku-latest");
    // Before the seam: the first target's own text, every character once.
    let own = expected_text(&request("openai/gpt-4o-mini"), None);
    let before: String = seen.text.chars().take(*offset).collect();
    assert!(!before.is_empty() && own.starts_with(&before), "{before:?}");
    assert_eq!(seen.route[0].outcome, "slow_stream", "{:?}", seen.route);
    assert_eq!(
        seen.route.last().map(|s| s.outcome.as_str()),
        Some("answered")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_floor_a_trickling_stream_is_read_to_its_end() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = common::fault_tolerant_client(&mock);
    mock.script_key("unhurried", [trickle(1, 20)]);
    let req = request("openai/gpt-4o-mini").request_id("unhurried");
    let seen = collect(client.stream(req.clone()).await.unwrap()).await;
    assert!(seen.error.is_none(), "{:?}", seen.error);
    assert_eq!(seen.text, expected_text(&req, None));
    assert!(seen.seams.is_empty());
}
