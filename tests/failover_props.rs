//! The promise of a stream that fails over mid-way, as a property over the
//! request's parameters and the fault points, through the real HTTP path against
//! the mock: a stream to a group of two targets (any two of the three wire formats
//! and a model that rejects prefill) whose first target breaks at any point, for
//! any `max_tokens` and stop sequence, completes on the second target with every
//! character once: the text before the seam is the first target's own, the text
//! after it is the second target's continuation of it (less only what repeats the
//! delivered text), and no more deltas than `max_tokens` reach the consumer.
#![cfg(feature = "mock")]

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use steer_actors::stream::{MAX_OVERLAP, MIN_OVERLAP};
use steer_llm::continue_message::{self, rejects_prefill};
use steer_llm::mock::text::{self, Turn};
use steer_llm::mock::MockServer;
use steer_llm::runtime::group::Group;
use steer_llm::{BreakerConfig, ChatRequest, Client, RetryPolicy};

use common::{StreamFault, STREAM_MODELS as MODELS};

const SYSTEM: &str = "You are terse.";

#[derive(Debug, Clone)]
struct Case {
    first: usize,
    /// The second target, as an offset from the first among the other models.
    second: usize,
    topic: u16,
    max_tokens: Option<u32>,
    /// A word of the first target's fault-free reply used as a stop sequence.
    stop_word: Option<usize>,
    fault: (StreamFault, usize),
}

impl Case {
    fn models(&self) -> (&'static str, &'static str) {
        let first = self.first % MODELS.len();
        let second = (first + 1 + self.second % (MODELS.len() - 1)) % MODELS.len();
        (MODELS[first], MODELS[second])
    }
}

fn case() -> impl Strategy<Value = Case> {
    let kind = prop_oneof![
        3 => Just(StreamFault::Reset),
        3 => Just(StreamFault::Truncate),
        3 => Just(StreamFault::InBandServerError),
        2 => Just(StreamFault::InBandOverloaded),
        2 => Just(StreamFault::MalformedJson),
    ];
    (
        0usize..MODELS.len(),
        0usize..MODELS.len() - 1,
        0u16..500,
        prop_oneof![1 => Just(None), 2 => (1u32..60).prop_map(Some)],
        prop_oneof![3 => Just(None), 1 => (0usize..50).prop_map(Some)],
        (kind, 0usize..60),
    )
        .prop_map(
            |(first, second, topic, max_tokens, stop_word, fault)| Case {
                first,
                second,
                topic,
                max_tokens,
                stop_word,
                fault,
            },
        )
}

fn user(case: &Case) -> String {
    format!("Tell me about rivers, number {}.", case.topic)
}

fn model_name(id: &str) -> String {
    id.parse::<steer_llm::ModelId>()
        .expect("a model id")
        .model()
        .to_string()
}

/// What the mock answers `model` with to the case's conversation plus `extra`
/// (a prefill or a continue message), under the case's limits.
fn answer(model: &str, case: &Case, stop: &[String], extra: Option<Turn>, limit: bool) -> String {
    let mut turns = vec![Turn::new("system", SYSTEM), Turn::new("user", &user(case))];
    turns.extend(extra);
    let max = if limit { case.max_tokens } else { None };
    text::reply(&model_name(model), &turns, max, stop, None).text()
}

/// The stop sequences of a case: a word of the first target's reply.
fn stops(case: &Case) -> Vec<String> {
    let (first, _) = case.models();
    let Some(i) = case.stop_word else {
        return Vec::new();
    };
    let turns = vec![Turn::new("system", SYSTEM), Turn::new("user", &user(case))];
    let whole = text::reply(&model_name(first), &turns, None, &[], None);
    let word = whole.chunks[i % whole.chunks.len()].trim().to_string();
    if word.is_empty() {
        Vec::new()
    } else {
        vec![word]
    }
}

/// What the consumer gets from the second target after `delivered`, with no
/// token limit: the continuation steer's rules ask it for, less what the seam
/// drops. A model asked to continue by prefill repeats nothing but, for
/// Anthropic, the whitespace a prefill may not end in; one asked by the
/// "continue" message may repeat the end of the quote (at least
/// [`MIN_OVERLAP`] bytes of it, else it is new text).
fn expected_rest(second: &str, case: &Case, stop: &[String], delivered: &str) -> String {
    let anthropic = second.starts_with("anthropic/");
    if anthropic && rejects_prefill(&model_name(second)) {
        let quote = continue_message::write(delivered);
        let continued = answer(second, case, stop, Some(Turn::new("user", &quote)), false);
        let repeated = (MIN_OVERLAP..=continued.len().min(delivered.len()).min(MAX_OVERLAP))
            .rev()
            .filter(|&p| continued.is_char_boundary(p))
            .find(|&p| delivered.ends_with(&continued[..p]))
            .unwrap_or(0);
        return continued[repeated..].to_string();
    }
    let prefill = if anthropic {
        delivered.trim_end()
    } else {
        delivered
    };
    let (continued, dropped) = if prefill.is_empty() {
        (answer(second, case, stop, None, false), delivered)
    } else {
        let prefill_turn = Turn::new("assistant", prefill);
        let continued = answer(second, case, stop, Some(prefill_turn), false);
        (continued, &delivered[prefill.len()..])
    };
    match continued.strip_prefix(dropped) {
        Some(rest) => rest.to_string(),
        None => continued,
    }
}

fn client(mock: &MockServer, first: &str, second: &str) -> Client {
    Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::never())
        // Each case's fault is its own: the first target stays available.
        .breaker(BreakerConfig {
            failure_threshold: 1_000_000,
            ..BreakerConfig::default()
        })
        .stream_timeouts(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(10)),
            Some(Duration::from_millis(150)),
        )
        .group("pair", Group::new([first, second]).unwrap())
        .build()
        .unwrap()
}

async fn check(client: &Client, mock: &MockServer, case: &Case, n: u64) -> Result<(), String> {
    let (first, second) = case.models();
    let id = format!("failover-prop-{n}");
    let stop = stops(case);
    let mut req = ChatRequest::new("group/pair")
        .unwrap()
        .system(SYSTEM)
        .user(user(case))
        .request_id(id.as_str());
    if let Some(max) = case.max_tokens {
        req = req.max_tokens(max);
    }
    for s in &stop {
        req = req.stop(s.clone());
    }
    mock.script_key(&id, [case.fault.0.plan(case.fault.1)]);
    let stream = client.stream(req).await.map_err(|e| e.to_string())?;
    let seen = common::read_stream(stream).await?;
    if seen.finish.is_none() {
        return Err("no Complete".into());
    }
    if let Some(max) = case.max_tokens {
        if seen.deltas > max {
            return Err(format!("{} deltas for max_tokens {max}", seen.deltas));
        }
    }
    let steps = seen.steps.ok_or("no Route before Complete")?;
    let own = answer(first, case, &stop, None, true);
    match (steps.len(), seen.seams.as_slice()) {
        // The fault point lay past the first target's reply: it answered whole.
        (1, []) => {
            if seen.text != own {
                return Err(format!("whole {:?}\n  own {own:?}", seen.text));
            }
        }
        // The first target broke before any text: the second answers afresh.
        (2, []) => {
            let fresh = answer(second, case, &stop, None, true);
            if seen.text != fresh {
                return Err(format!("fresh {:?}\n  second's {fresh:?}", seen.text));
            }
        }
        (2, [(offset, target)]) => {
            if target != second {
                return Err(format!("failed over to {target}, not {second}"));
            }
            let at = seen
                .text
                .char_indices()
                .nth(*offset)
                .map_or(seen.text.len(), |(i, _)| i);
            let (delivered, rest) = seen.text.split_at(at);
            if delivered.is_empty() || !own.starts_with(delivered) {
                return Err(format!(
                    "before the seam {delivered:?}\n  first's own {own:?}"
                ));
            }
            let expected = expected_rest(second, case, &stop, delivered);
            // Under a token limit the continuation may be cut short; short of
            // the limit it must be there whole.
            let whole = case.max_tokens.is_none_or(|max| seen.deltas < max);
            let same = if whole {
                rest == expected
            } else {
                expected.starts_with(rest)
            };
            if !same {
                return Err(format!(
                    "after the seam {rest:?}\n  expected {expected:?}\n  after {delivered:?}"
                ));
            }
        }
        (n, seams) => return Err(format!("{n} steps with seams {seams:?}")),
    }
    if steps.last().map(|s| s.outcome.as_str()) != Some("answered") {
        return Err(format!("route {steps:?}"));
    }
    Ok(())
}

#[test]
fn a_stream_failed_over_midway_holds_every_character_once_for_every_parameter_and_fault() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mock = MockServer::builder()
        .record_requests(false)
        .start_background()
        .unwrap();
    let clients: RefCell<HashMap<(&str, &str), Client>> = RefCell::default();
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicU64::new(0);
    let result = runner.run(&case(), |case| {
        let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pair = case.models();
        let client = clients
            .borrow_mut()
            .entry(pair)
            .or_insert_with(|| runtime.block_on(async { client(&mock, pair.0, pair.1) }))
            .clone();
        runtime
            .block_on(check(&client, &mock, &case, n))
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
