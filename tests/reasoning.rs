//! Reasoning state over real HTTP against the mock, which signs Anthropic's
//! thinking and the Responses API's encrypted reasoning by their conversation
//! and refuses a block sent back changed, as the real servers do: blocks are
//! delivered, kept and sent back byte for byte, only to their own family; a
//! stream broken inside a block thinks it again; a continuation with thinking
//! on leads with the turn's whole blocks.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::expected_text;
use serde_json::json;
use steer_llm::mock::{FaultPlan, MockServer, RecordedRequest};
use steer_llm::runtime::SteerStream;
use steer_llm::{ChatRequest, Client, Error, Reasoning, ReasoningFamily, RetryPolicy, StreamEvent};

fn client(mock: &MockServer) -> Client {
    common::fault_tolerant_client(mock)
}

/// A request with Anthropic's adaptive thinking on.
fn thinking(model: &str, id: &str) -> ChatRequest {
    ChatRequest::new(model)
        .unwrap()
        .system("You are terse.")
        .user("Tell me about rivers.")
        .extra_body("thinking", json!({"type": "adaptive"}))
        .request_id(id)
}

#[derive(Debug, Default)]
struct Seen {
    text: String,
    /// Whole blocks by index (a later one of an index replaces a discarded one).
    blocks: Vec<(usize, Reasoning)>,
    /// Reasoning text by index, as it arrived (cleared at a discard).
    pieces: Vec<(usize, String)>,
    discarded: Vec<usize>,
    seams: usize,
    error: Option<Error>,
}

async fn collect(stream: SteerStream) -> Seen {
    let (events, error) = common::all_events(stream).await;
    let mut seen = Seen {
        error,
        ..Seen::default()
    };
    for item in events {
        match item {
            StreamEvent::TextDelta { text, offset } => {
                assert_eq!(offset, seen.text.chars().count());
                seen.text.push_str(&text);
            }
            StreamEvent::ReasoningDelta { index, text } => {
                match seen.pieces.iter_mut().find(|(i, _)| *i == index) {
                    Some((_, t)) => t.push_str(&text),
                    None => seen.pieces.push((index, text)),
                }
            }
            StreamEvent::Reasoning { index, block } => {
                assert!(
                    !seen.blocks.iter().any(|(i, _)| *i == index),
                    "block {index} twice"
                );
                seen.blocks.push((index, block));
            }
            StreamEvent::ReasoningDiscarded { index } => {
                seen.discarded.push(index);
                seen.blocks.retain(|(i, _)| *i != index);
                seen.pieces.retain(|(i, _)| *i != index);
            }
            StreamEvent::Resumed { .. } | StreamEvent::FailedOver { .. } => seen.seams += 1,
            _ => {}
        }
    }
    seen
}

fn log_of(mock: &MockServer, id: &str) -> Vec<RecordedRequest> {
    mock.requests()
        .into_iter()
        .filter(|r| r.header("x-client-request-id") == Some(id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thinking_block_is_kept_and_sent_back_byte_for_byte_and_a_changed_one_is_refused() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    let req = thinking("anthropic/claude-sonnet-4-5", "think-1");
    let reply = client.generate(req.clone()).await.unwrap();
    assert_eq!(reply.reasoning.len(), 1);
    let block = &reply.reasoning[0];
    assert_eq!(block.family, ReasoningFamily::Anthropic);
    assert!(block.is_signed() && !block.text().is_empty());
    // The streamed reply carries the same block, its pieces adding up to it.
    let seen = collect(
        client
            .stream(req.clone().request_id("think-2"))
            .await
            .unwrap(),
    )
    .await;
    assert!(seen.error.is_none(), "{:?}", seen.error);
    assert_eq!(seen.blocks, vec![(0, block.clone())]);
    assert_eq!(seen.pieces, vec![(0, block.text())]);
    assert_eq!(seen.text, reply.text);
    // The next turn with the reply as its history: accepted (the signature holds).
    let next = req
        .clone()
        .message(reply.message())
        .user("And lakes?")
        .request_id("think-3");
    assert!(client.generate(next.clone()).await.is_ok());
    let sent = &log_of(&mock, "think-3")[0].body["messages"][1]["content"][0];
    assert_eq!(sent, &block.block, "sent back as received");
    // A block rewritten (as a client that trims or edits would) is refused.
    let mut changed = next.clone().request_id("think-4");
    if let steer_llm::Part::Reasoning(r) = &mut changed.messages[2].content[0] {
        r.block["thinking"] = json!(format!("{} ", block.text()));
    }
    let err = client.generate(changed).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Invalid signature in thinking block"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_broken_inside_a_thinking_block_thinks_it_again_and_never_splices_it() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    let clean = client
        .generate(thinking("anthropic/claude-sonnet-4-5", "clean"))
        .await
        .unwrap();
    // Content frames: start, deltas, signature, stop of the thinking block,
    // then the text block. Every point inside the block and just after it.
    for after in 0..8 {
        let id = format!("inside-{after}");
        mock.script_key(&id, [FaultPlan::reset(after)]);
        let seen = collect(
            client
                .stream(thinking("anthropic/claude-sonnet-4-5", &id))
                .await
                .unwrap(),
        )
        .await;
        assert!(seen.error.is_none(), "after {after}: {:?}", seen.error);
        assert_eq!(seen.text, clean.text, "after {after}");
        assert_eq!(seen.blocks.len(), 1, "after {after}: {seen:?}");
        assert_eq!(seen.blocks[0].1, clean.reasoning[0], "after {after}");
        assert_eq!(
            seen.pieces,
            vec![(0, clean.reasoning[0].text())],
            "after {after}"
        );
        // Nothing of the block spliced: the second request asked again.
        let log = log_of(&mock, &id);
        assert_eq!(log.len(), 2, "after {after}");
        assert_eq!(
            log[1].body["messages"], log[0].body["messages"],
            "after {after}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_with_thinking_on_leads_with_the_turns_block_or_asks_to_continue() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in [
        "anthropic/claude-3-7-sonnet-latest",
        "anthropic/claude-opus-4-6",
    ] {
        let clean = client.generate(thinking(model, "c")).await.unwrap();
        let id = format!("text-{model}");
        // Thinking frames, the text block's start, then three text deltas.
        let frames = clean.reasoning[0]
            .text()
            .split_inclusive(' ')
            .count()
            .div_ceil(2)
            + 4;
        mock.script_key(&id, [FaultPlan::reset(frames + 3)]);
        let seen = collect(client.stream(thinking(model, &id)).await.unwrap()).await;
        assert!(seen.error.is_none(), "{model}: {:?}", seen.error);
        assert_eq!(seen.text, clean.text, "{model}");
        assert_eq!(seen.seams, 1, "{model}");
        assert_eq!(seen.blocks[0].1, clean.reasoning[0], "{model}");
        let log = log_of(&mock, &id);
        assert_eq!(log.len(), 2, "{model}");
        let last = log[1].body["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        if model.contains("3-7") {
            // A prefill behind the turn's signed block (the mock checks it).
            assert_eq!(last["role"], "assistant", "{model}");
            assert_eq!(last["content"][0], clean.reasoning[0].block, "{model}");
            assert_eq!(last["content"][1]["type"], "text", "{model}");
        } else {
            assert_eq!(last["role"], "user", "{model}: no prefill after 4.6");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_never_carries_a_block_to_another_family() {
    let mock = MockServer::builder().start_background().unwrap();
    let group = steer_llm::Group::new([
        "anthropic/claude-3-7-sonnet-latest",
        "openai-responses/gpt-5-mini",
    ])
    .unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .group("g", group)
        .retry(RetryPolicy::default().max_attempts(1))
        .build()
        .unwrap();
    let clean = client
        .generate(thinking("anthropic/claude-3-7-sonnet-latest", "f0"))
        .await
        .unwrap();
    let frames = clean.reasoning[0]
        .text()
        .split_inclusive(' ')
        .count()
        .div_ceil(2)
        + 4;
    mock.script_key("moved", [FaultPlan::reset(frames + 2)]);
    // A history turn made by the Responses API, its encrypted item with it:
    // Anthropic never sees it, the Responses API gets it back unchanged.
    let earlier = client
        .generate(
            ChatRequest::new("openai-responses/gpt-5-mini")
                .unwrap()
                .system("You are terse.")
                .user("Tell me about rivers.")
                .extra_body("reasoning", json!({"effort": "low"}))
                .extra_body("include", json!(["reasoning.encrypted_content"])),
        )
        .await
        .unwrap();
    let encrypted = earlier.reasoning[0].block["encrypted_content"]
        .as_str()
        .unwrap()
        .to_string();
    let mut req = thinking("group/g", "moved");
    req.messages.push(earlier.message());
    req.messages.push(steer_llm::Message::user("Now lakes."));
    let seen = collect(client.stream(req).await.unwrap()).await;
    assert!(seen.error.is_none(), "{:?}", seen.error);
    let log = log_of(&mock, "moved");
    assert_eq!(
        log.len(),
        2,
        "{:?}",
        log.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let first = log[0].body.to_string();
    assert!(
        !first.contains(&encrypted),
        "the Responses item went to Anthropic"
    );
    assert_eq!(log[1].path, "/v1/responses");
    let second = log[1].body.to_string();
    assert!(
        !second.contains("EqMock"),
        "a signed thinking block went to OpenAI"
    );
    assert!(
        second.contains(&encrypted),
        "its own family's item goes back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_reasoning_comes_back_whole_and_a_changed_item_is_refused() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    let req = ChatRequest::new("openai-responses/gpt-5-mini")
        .unwrap()
        .user("Tell me about rivers.")
        .extra_body("reasoning", json!({"effort": "low", "summary": "auto"}))
        .extra_body("include", json!(["reasoning.encrypted_content"]))
        .store(false);
    let reply = client.generate(req.clone()).await.unwrap();
    assert_eq!(reply.reasoning.len(), 1);
    let item = &reply.reasoning[0];
    // The same reasoning, whatever the id of the response it came in.
    let same = |a: &Reasoning| {
        a.block["encrypted_content"] == item.block["encrypted_content"] && a.text() == item.text()
    };
    assert_eq!(item.family, ReasoningFamily::OpenAiResponses);
    assert!(item.block["encrypted_content"]
        .as_str()
        .unwrap()
        .starts_with("gAAAA"));
    assert_eq!(reply.usage.reasoning_tokens.map(|n| n > 0), Some(true));
    let seen = collect(
        client
            .stream(req.clone().request_id("enc-s"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen.blocks.len(), 1);
    assert!(same(&seen.blocks[0].1), "{seen:?}");
    assert_eq!(seen.pieces, vec![(0, item.text())]);
    assert_eq!(seen.text, reply.text);
    let next = req.clone().message(reply.message()).user("And lakes?");
    assert!(client
        .generate(next.clone().request_id("enc-ok"))
        .await
        .is_ok());
    let sent = &log_of(&mock, "enc-ok")[0].body["input"];
    assert_eq!(
        sent[1], item.block,
        "the item goes back first in its turn, unchanged"
    );
    let mut changed = next.request_id("enc-bad");
    changed.messages[0] = steer_llm::Message::user("Tell me about lakes.");
    let err = client.generate(changed).await.unwrap_err();
    assert!(err.to_string().contains("could not be verified"), "{err}");
    // A stream broken inside the reasoning item reasons again.
    mock.script_key("enc-broken", [FaultPlan::reset(3)]);
    let seen = collect(client.stream(req.request_id("enc-broken")).await.unwrap()).await;
    assert!(seen.error.is_none(), "{:?}", seen.error);
    assert_eq!(seen.discarded, vec![0]);
    assert_eq!(seen.blocks.len(), 1);
    assert!(same(&seen.blocks[0].1), "{seen:?}");
    assert_eq!(
        seen.text,
        expected_text(
            &ChatRequest::new("openai-responses/gpt-5-mini")
                .unwrap()
                .user("Tell me about rivers."),
            None
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_switch_asks_every_family_for_reasoning_in_its_own_words() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for (model, key, want) in [
        (
            "anthropic/claude-sonnet-4-6",
            "thinking",
            json!({"type": "adaptive"}),
        ),
        (
            "anthropic/claude-3-7-sonnet-latest",
            "thinking",
            json!({"type": "enabled", "budget_tokens": 1024}),
        ),
        (
            "openai-responses/gpt-5-mini",
            "reasoning",
            json!({"effort": "low", "summary": "auto"}),
        ),
        ("openai/gpt-4o-mini", "reasoning_effort", json!("low")),
    ] {
        let id = format!("effort-{model}");
        let req = ChatRequest::new(model)
            .unwrap()
            .user("Tell me about rivers.")
            .reasoning(steer_llm::Effort::Low)
            .request_id(id.as_str());
        let reply = client.generate(req).await.unwrap();
        let body = &log_of(&mock, &id)[0].body;
        assert_eq!(body[key], want, "{model}");
        let thinks = !model.starts_with("openai/");
        assert_eq!(!reply.reasoning.is_empty(), thinks, "{model}");
        if model.contains("4-6") {
            assert_eq!(body["output_config"]["effort"], "low");
        }
        if model.contains("3-7") {
            assert_eq!(body["max_tokens"], 1024 + 1024, "room for the reply");
        }
        if model.starts_with("openai-responses") {
            assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
        }
    }
    // A budget model with no room for the least budget: refused before sending.
    let tight = ChatRequest::new("anthropic/claude-3-7-sonnet-latest")
        .unwrap()
        .user("Hi")
        .max_tokens(512)
        .reasoning(steer_llm::Effort::High)
        .request_id("tight");
    let err = client.generate(tight).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
    assert!(log_of(&mock, "tight").is_empty());
}

/// Models that reason, of each family (and one that only says it does).
const REASONING_MODELS: [&str; 4] = [
    "anthropic/claude-3-7-sonnet-latest",
    "anthropic/claude-opus-4-6",
    "openai-responses/gpt-5-mini",
    "openai/gpt-4o-mini",
];

/// The property: a reasoning stream that fails over mid-way, between any
/// ordered pair of families, at any point, under any fault kind, completes; no
/// request to a target carries a block of another family; and the blocks the
/// consumer kept, sent back with its text, are accepted by each target (each
/// server checks its own family's signatures and never sees the other's).
#[test]
fn a_reasoning_stream_failed_over_at_any_point_never_carries_a_block_across_families() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let runtime = common::two_worker_runtime();
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(2))
        .start_background()
        .unwrap();
    let strategy = (
        0usize..REASONING_MODELS.len(),
        1usize..REASONING_MODELS.len(),
        prop_oneof![
            Just(common::StreamFault::Reset),
            Just(common::StreamFault::Truncate),
            Just(common::StreamFault::InBandServerError),
            Just(common::StreamFault::MalformedJson),
        ],
        0usize..30,
    );
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicU64::new(0);
    let result = runner.run(&strategy, |(a, b, fault, after)| {
        let first = REASONING_MODELS[a];
        let second = REASONING_MODELS[(a + b) % REASONING_MODELS.len()];
        let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime
            .block_on(async {
                let group = steer_llm::Group::new([first, second]).unwrap();
                let client = common::quick_builder(mock.providers().unwrap(), 1)
                    .group("pair", group)
                    .stream_timeouts(
                        Some(Duration::from_secs(10)),
                        Some(Duration::from_secs(10)),
                        Some(Duration::from_millis(300)),
                    )
                    .build()
                    .unwrap();
                let id = format!("pair-{n}");
                let ask = |model: &str| {
                    ChatRequest::new(model)
                        .unwrap()
                        .system("You are terse.")
                        .user("Tell me about rivers.")
                        .max_tokens(4096)
                        .reasoning(steer_llm::Effort::Low)
                };
                mock.script_key(&id, [fault.plan(after)]);
                let seen = collect(
                    client
                        .stream(ask("group/pair").request_id(id.as_str()))
                        .await
                        .unwrap(),
                )
                .await;
                if let Some(e) = seen.error {
                    return Err(format!("{first} -> {second}: {e}"));
                }
                if seen.text.is_empty() {
                    return Err(format!("{first} -> {second}: no text"));
                }
                for r in log_of(&mock, &id) {
                    let body = r.body.to_string();
                    let anthropic = r.path.ends_with("/messages");
                    if anthropic && body.contains("gAAAAMock") {
                        return Err(format!("an encrypted item went to Anthropic: {body}"));
                    }
                    if !anthropic && body.contains("EqMock") {
                        return Err(format!("a thinking block went to {}: {body}", r.path));
                    }
                }
                // The consumer's history, sent to each target: accepted.
                let kept: Vec<steer_llm::Part> = seen
                    .blocks
                    .iter()
                    .map(|(_, b)| steer_llm::Part::Reasoning(b.clone()))
                    .chain(std::iter::once(steer_llm::Part::Text(seen.text.clone())))
                    .collect();
                for model in [first, second] {
                    let next = ask(model)
                        .message(steer_llm::Message::new(
                            steer_llm::Role::Assistant,
                            kept.clone(),
                        ))
                        .user("More.");
                    if let Err(e) = client.generate(next).await {
                        return Err(format!(
                            "{first} -> {second}: history refused by {model}: {e}"
                        ));
                    }
                }
                Ok(())
            })
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
