//! The promise of a resumed stream, as a property over the request's parameters
//! and the fault points, through the real HTTP path against the mock: whatever
//! `max_tokens`, stop sequence, reply length, fault kind and fault point (one
//! fault, or a second one in the continuation), for all three wire formats and a
//! model that rejects prefill, the spliced text equals the fault-free reply for the
//! same request; with a `max_tokens`, it is that reply or its start (a
//! continuation's budget is counted on the high side), never holds more tokens
//! than the limit as the server counts them, and ends short only with `length`.
//! The mock streams several tokens a chunk and answers an OpenAI or xAI prefill
//! afresh, as the real servers do.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use steer_llm::mock::text::{self, Finish, Turn};
use steer_llm::mock::{Behaviour, MockServer, BEHAVIOUR_HEADER};
use steer_llm::runtime::continuation::Continuation;
use steer_llm::{ChatRequest, Client, FinishReason, GenerateOptions};

use common::{StreamFault, STREAM_MODELS as MODELS};

fn kind() -> impl Strategy<Value = StreamFault> {
    prop_oneof![
        3 => Just(StreamFault::Reset),
        3 => Just(StreamFault::Truncate),
        3 => Just(StreamFault::InBandServerError),
        2 => Just(StreamFault::InBandOverloaded),
        2 => Just(StreamFault::MalformedJson),
        1 => Just(StreamFault::Stall),
        1 => Just(StreamFault::Pings),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    model: &'static str,
    topic: u16,
    max_tokens: Option<u32>,
    /// A word of the fault-free reply used as a stop sequence, by index; with
    /// `true`, its inside too (the word without its first and last letters),
    /// a second stop that is whole before the word is, though the word
    /// begins first.
    stop_word: Option<(usize, bool)>,
    first: (StreamFault, usize),
    second: Option<(StreamFault, usize)>,
    /// Two tools, named by the prompt: the reply calls both.
    tools: bool,
    /// The continuation asked for: `Prefill` on OpenAI or xAI meets a server
    /// that answers a prefill afresh (the seam drops the repeated start).
    continuation: Continuation,
    /// How the server answers (FakeAI's split tool calls, mockllm's one
    /// character a chunk, a gateway's rewrites).
    behaviour: Behaviour,
    /// Background mode (the Responses API resumes such a stream on the server;
    /// the other APIs ignore it).
    background: bool,
    /// Reasoning on: Anthropic's adaptive thinking (on a model that thinks:
    /// Claude 3.7 for the one that takes a prefill), the Responses API's
    /// encrypted reasoning.
    reasoning: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(&MODELS[..]),
        0u16..500,
        prop_oneof![1 => Just(None), 3 => (1u32..60).prop_map(Some)],
        prop_oneof![
            3 => Just(None),
            1 => (0usize..50, prop::bool::weighted(0.4)).prop_map(Some),
        ],
        (kind(), 0usize..60),
        prop_oneof![2 => Just(None), 1 => (kind(), 0usize..40).prop_map(Some)],
        prop::bool::weighted(0.35),
        (
            prop_oneof![
                3 => Just(Continuation::Auto),
                1 => Just(Continuation::Prefill),
                1 => Just(Continuation::Instruct),
            ],
            prop::sample::select(&Behaviour::ALL[..]),
            prop::bool::weighted(0.5),
            prop::bool::weighted(0.4),
        ),
    )
        .prop_map(
            |(
                model,
                topic,
                max_tokens,
                stop_word,
                first,
                second,
                tools,
                (continuation, behaviour, background, reasoning),
            )| {
                Case {
                    model,
                    topic,
                    max_tokens,
                    stop_word,
                    first,
                    second,
                    tools,
                    continuation,
                    behaviour,
                    background,
                    reasoning,
                }
            },
        )
}

fn turns(req: &ChatRequest) -> Vec<Turn> {
    req.messages
        .iter()
        .map(|m| Turn::new(m.role.as_str(), &m.text()))
        .collect()
}

/// The request of a case, and the mock's fault-free reply to it.
fn request(case: &Case, id: &str) -> (ChatRequest, text::Reply) {
    let ask = if case.tools {
        common::TWO_TOOLS_ASK
    } else {
        ""
    };
    let model = match case.model {
        "anthropic/claude-3-5-haiku-latest" if case.reasoning => {
            "anthropic/claude-3-7-sonnet-latest"
        }
        other => other,
    };
    let mut req = ChatRequest::new(model)
        .unwrap()
        .system("You are terse.")
        .user(format!("Tell me about rivers, number {}.{ask}", case.topic))
        .extra_header(BEHAVIOUR_HEADER, case.behaviour.as_str())
        .request_id(id)
        .in_background(case.background);
    if case.tools {
        req = common::with_two_tools(req);
    }
    if case.reasoning && model.starts_with("anthropic") {
        req = req.extra_body("thinking", serde_json::json!({"type": "adaptive"}));
    }
    if case.reasoning && model.starts_with("openai-responses") {
        req = req
            .extra_body(
                "reasoning",
                serde_json::json!({"effort": "low", "summary": "auto"}),
            )
            .extra_body(
                "include",
                serde_json::json!(["reasoning.encrypted_content"]),
            );
    }
    if let Some(max) = case.max_tokens {
        req = req.max_tokens(max);
    }
    if let Some((i, inside)) = case.stop_word {
        let whole = text::reply(req.model.model(), &turns(&req), None, &[], None);
        let word = whole.chunks[i % whole.chunks.len()].trim().to_string();
        let letters: Vec<char> = word.chars().collect();
        if inside && letters.len() >= 4 {
            req = req.stop(letters[1..letters.len() - 1].iter().collect::<String>());
        }
        if !word.is_empty() {
            req = req.stop(word);
        }
    }
    let reply = text::reply(
        req.model.model(),
        &turns(&req),
        req.max_tokens,
        &req.stop,
        None,
    );
    (req, reply)
}

/// Whether a case's request has no stop sequence and no token limit (a
/// client-side stop ends with no usage; a break after the last token the limit
/// allows completes without asking the server again).
fn req_has_no_stop(case: &Case) -> bool {
    case.stop_word.is_none() && case.max_tokens.is_none()
}

fn client(mock: &MockServer) -> Client {
    common::fault_tolerant_client(mock)
}

async fn check(client: &Client, mock: &MockServer, case: &Case, n: u64) -> Result<(), String> {
    let id = format!("prop-{n}");
    let (req, reply) = request(case, &id);
    // The mock is deterministic: a fault-free call is the oracle for the calls.
    let whole = client
        .generate(req.clone().request_id(format!("oracle-{n}")))
        .await
        .map_err(|e| e.to_string())?;
    let plain_cut = reply.finish == Finish::Length;
    // (Reasoning takes its tokens from the limit: the text module alone
    // does not know them.)
    let thinks = !whole.reasoning.is_empty();
    if !case.tools
        && !thinks
        && (whole.text != reply.text()
            || plain_cut != (whole.finish_reason == FinishReason::Length))
    {
        return Err("the oracle disagrees with the mock's text module".into());
    }
    let mut plans = vec![case.first.0.plan(case.first.1)];
    if let Some((kind, after)) = case.second {
        plans.push(kind.plan(after));
    }
    mock.script_key(&id, plans);
    let stops = req.stop.clone();
    let options = GenerateOptions::default().continuation(case.continuation);
    let stream = client
        .stream_with(req, options)
        .await
        .map_err(|e| e.to_string())?;
    let common::SeenStream {
        text,
        deltas,
        finish,
        calls,
        usage,
        resumed_by,
        reasoning,
        ..
    } = common::read_stream(stream).await?;
    // The reasoning the consumer keeps is the turn's, whole, as the server
    // made it for this conversation: the fault-free reply's.
    if reasoning.len() != whole.reasoning.len()
        || reasoning.iter().zip(&whole.reasoning).any(|(a, b)| {
            a.family != b.family
                || a.text() != b.text()
                || ["signature", "encrypted_content"]
                    .iter()
                    .any(|k| a.block.get(*k) != b.block.get(*k))
        })
    {
        return Err(format!(
            "reasoning {reasoning:?}\n  fault-free {:?}",
            whole.reasoning
        ));
    }
    // A background response resumed on the server generated nothing again:
    // its usage is the fault-free one (line breaks only: a response that
    // failed in band cannot be resumed; a client-side stop has no usage).
    let server_side = case.background && case.model.starts_with("openai-responses");
    let breaks_only = [Some(case.first), case.second]
        .into_iter()
        .flatten()
        .all(|(kind, _)| kind.breaks_the_line());
    // A resume that stalls before it sends anything looks like a response
    // stuck in `queued`: it falls back to a continuation.
    let resume_stalls = matches!(
        case.second,
        Some((common::StreamFault::Stall | common::StreamFault::Pings, 0))
    );
    if server_side && breaks_only && req_has_no_stop(case) && !resume_stalls {
        if resumed_by
            .iter()
            .any(|by| *by != steer_llm::ResumedBy::Server)
        {
            return Err(format!(
                "a continuation where the server resumes: {resumed_by:?}"
            ));
        }
        if usage.map(|u| u.completion_tokens) != Some(whole.usage.completion_tokens) {
            return Err(format!("usage {usage:?}, fault-free {:?}", whole.usage));
        }
    }
    let expected = whole.text.clone();
    // A continuation cut short at the limit may end before the calls.
    let cut_short = case.max_tokens.is_some()
        && finish == Some(FinishReason::Length)
        && whole.finish_reason != FinishReason::Length;
    let same_calls = (calls.len() == whole.tool_calls.len()
        || (cut_short && calls.len() < whole.tool_calls.len()))
        && common::calls_begin(&calls, &whole.tool_calls);
    if !same_calls {
        return Err(format!(
            "calls {calls:?}\n  fault-free {:?}",
            whole.tool_calls
        ));
    }
    let _ = deltas;
    // Where the limit cut the fault-free reply inside a stop sequence ("qu" of
    // "quiver"), a continuation meets the whole sequence and ends there, with
    // the reply a server gives with room to finish it.
    let cut_in_stop = finish == Some(FinishReason::Stop)
        && expected.starts_with(&text)
        && expected
            .get(text.len()..)
            .is_some_and(|rest| !rest.is_empty() && stops.iter().any(|s| s.starts_with(rest)));
    match case.max_tokens {
        None if text != expected => {
            return Err(format!("spliced {text:?}\n  fault-free {expected:?}"));
        }
        None => {}
        Some(max) => {
            // The fault-free reply is what the server made within the limit:
            // a spliced text that is its start never holds more (counting the
            // start alone could say more where it ends inside a token: "pepp"
            // is two tokens, "pepper" one).
            // The other way round: the fault-free reply had room to meet a
            // stop sequence, and a continuation's share of the limit (counted
            // on the text so far, which can end inside a token) ended inside
            // it ("ladd" of "ladder"), as a server cut by its limit there does.
            let limit_in_stop = finish == Some(FinishReason::Length)
                && whole.finish_reason == FinishReason::Stop
                && text.get(expected.len()..).is_some_and(|extra| {
                    text.starts_with(&expected)
                        && !extra.is_empty()
                        && stops
                            .iter()
                            .any(|s| s.len() > extra.len() && s.starts_with(extra))
                });
            if !expected.starts_with(&text) && !limit_in_stop {
                return Err(format!(
                    "spliced {text:?} for max_tokens {max}\n  is not the start of the \
                     fault-free {expected:?}"
                ));
            }
            if text.len() < expected.len() && finish != Some(FinishReason::Length) && !cut_in_stop {
                return Err(format!(
                    "cut short with finish {finish:?}: {text:?}\n  fault-free {expected:?} \
                     ({:?}), calls {calls:?}",
                    whole.finish_reason
                ));
            }
        }
    }
    if whole.finish_reason == FinishReason::Length
        && finish != Some(FinishReason::Length)
        && !cut_in_stop
    {
        return Err(format!(
            "finish {finish:?}, fault-free was cut by max_tokens"
        ));
    }
    Ok(())
}

#[test]
fn a_resumed_stream_equals_the_fault_free_reply_for_every_parameter_and_fault() {
    let runtime = common::two_worker_runtime();
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(2))
        .record_requests(false)
        .start_background()
        .unwrap();
    let client = runtime.block_on(async { client(&mock) });
    let mut runner = TestRunner::new(Config {
        cases: 160,
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicU64::new(0);
    let result = runner.run(&case(), |case| {
        let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime
            .block_on(check(&client, &mock, &case, n))
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Checks one case, as the property does, on a mock of its own.
fn check_alone(case: Case) {
    let runtime = common::two_worker_runtime();
    let mock = MockServer::builder().start_background().unwrap();
    let client = runtime.block_on(async { client(&mock) });
    runtime.block_on(check(&client, &mock, &case, 0)).unwrap();
}

/// Found by the property above: a reply the limit cut inside a stop sequence,
/// continued after a reset (the continuation meets the whole sequence).
#[test]
fn a_continuation_that_meets_a_stop_sequence_the_limit_had_cut_ends_there() {
    check_alone(Case {
        model: "openai/gpt-4o-mini",
        topic: 121,
        max_tokens: Some(6),
        stop_word: Some((21, false)),
        first: (StreamFault::Reset, 3),
        second: None,
        tools: true,
        continuation: Continuation::Auto,
        behaviour: Behaviour::Gateway,
        background: false,
        reasoning: false,
    });
}

/// Found by the property above: an attempt that broke before its first
/// content (its reasoning thought again) after one that had discarded a whole
/// reasoning block: the discard must still reach the consumer.
#[test]
fn a_discard_pending_when_the_next_attempt_breaks_at_once_still_reaches_the_consumer() {
    check_alone(Case {
        model: "openai-responses/gpt-5-mini",
        topic: 0,
        max_tokens: None,
        stop_word: None,
        first: (StreamFault::Reset, 11),
        second: Some((StreamFault::Reset, 0)),
        tools: false,
        continuation: Continuation::Auto,
        behaviour: Behaviour::Standard,
        background: false,
        reasoning: true,
    });
}

/// Found by the property above (CI, 2026-12-07): a reply the limit ended
/// (its text every token `max_tokens` allows), broken before its end, with
/// tools offered: the continuation asked for adds nothing and says `stop`;
/// the reply still ends as the limit cut it (`Length`).
#[test]
fn a_continuation_that_adds_nothing_past_a_spent_limit_keeps_the_limits_finish() {
    check_alone(Case {
        model: "openai/gpt-4o-mini",
        topic: 124,
        max_tokens: Some(6),
        stop_word: Some((22, false)),
        first: (StreamFault::Reset, 2),
        second: None,
        tools: true,
        continuation: Continuation::Auto,
        behaviour: Behaviour::Standard,
        background: false,
        reasoning: false,
    });
}
