//! The promise of a budget, as a property over the request's parameters, the
//! budget's size and the fault points, through the real HTTP path against the
//! mock (every wire format, every server behaviour the mock models): a stream
//! or a reply either is whole, or stops at the cap (`FinishReason::Budget`, a
//! prefix of the whole reply), or is refused (`budget_exceeded`, whatever it
//! delivered before a prefix); nothing is held once it ended; what the ledger
//! settled is exactly what the request says it spent, and never more than the
//! budget but for the one chunk that met the cap.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use futures::StreamExt;
use proptest::prelude::*;
use steer_llm::budget::{Budget, Scope};
use steer_llm::cost::Spend;
use steer_llm::mock::{Behaviour, FaultPlan, MockServer, BEHAVIOUR_HEADER};
use steer_llm::{ChatRequest, Client, FinishReason, StreamEvent};

#[derive(Debug, Clone)]
struct Case {
    model: &'static str,
    topic: u16,
    max_tokens: Option<u32>,
    limit: u64,
    /// A cut mid-reply after this many chunks, or a refusal first.
    fault: Option<Option<usize>>,
    behaviour: Behaviour,
    stream: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(&common::STREAM_MODELS[..]),
        0u16..500,
        prop_oneof![1 => Just(None), 2 => (1u32..120).prop_map(Some)],
        20u64..400,
        prop_oneof![2 => Just(None), 2 => (0usize..30).prop_map(|n| Some(Some(n))), 1 => Just(Some(None))],
        prop::sample::select(&Behaviour::ALL[..]),
        prop::bool::weighted(0.7),
    )
        .prop_map(
            |(model, topic, max_tokens, limit, fault, behaviour, stream)| Case {
                model,
                topic,
                max_tokens,
                limit,
                fault,
                behaviour,
                stream,
            },
        )
}

fn request(case: &Case, id: &str) -> ChatRequest {
    let mut req = ChatRequest::new(case.model)
        .unwrap()
        .user(format!("Tell me about rivers, number {}.", case.topic))
        .extra_header(BEHAVIOUR_HEADER, case.behaviour.as_str())
        .request_id(id);
    if let Some(max) = case.max_tokens {
        req = req.max_tokens(max);
    }
    req
}

/// How the budgeted request ended: its text, whether it was cut at the cap,
/// refused, and what it says it spent.
struct Ended {
    text: String,
    finish: Option<FinishReason>,
    refused: bool,
    spend: Spend,
}

async fn run(client: &Client, req: ChatRequest, stream: bool) -> Result<Ended, String> {
    if !stream {
        return Ok(match client.generate(req).await {
            Ok(r) => Ended {
                text: r.text,
                finish: Some(r.finish_reason),
                refused: false,
                spend: r.spend,
            },
            Err(e) if e.kind() == "budget_exceeded" => Ended {
                text: String::new(),
                finish: None,
                refused: true,
                spend: e.spend().cloned().unwrap_or_default(),
            },
            Err(e) => return Err(e.to_string()),
        });
    }
    let mut s = match client.stream(req).await {
        Ok(s) => s,
        Err(e) => return Err(e.to_string()),
    };
    let (mut text, mut finish, mut refused, mut spend) = (String::new(), None, false, None);
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), s.next())
        .await
        .map_err(|_| "the stream hung")?
    {
        match item {
            Ok(StreamEvent::TextDelta { text: t, .. }) => text.push_str(&t),
            Ok(StreamEvent::Restarted { .. }) => text.clear(),
            Ok(StreamEvent::Spend(sp)) => spend = Some(*sp),
            Ok(StreamEvent::Complete { finish_reason, .. }) => finish = Some(finish_reason),
            Ok(_) => {}
            Err(e) if e.kind() == "budget_exceeded" => {
                refused = true;
                spend = e.spend().cloned();
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let spend = spend.unwrap_or_else(|| s.spend());
    Ok(Ended {
        text,
        finish,
        refused,
        spend,
    })
}

async fn check(mock: &MockServer, case: &Case, n: u64) -> Result<(), String> {
    let free = common::fault_tolerant_client(mock);
    let whole = free
        .generate(request(case, &format!("oracle-{n}")))
        .await
        .map_err(|e| e.to_string())?
        .text;
    let client = common::quick_builder(mock.providers().unwrap(), 4)
        .stream_timeouts(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(10)),
            Some(Duration::from_millis(200)),
        )
        .spend_budget(Scope::Client, Budget::tokens(case.limit))
        .build()
        .unwrap();
    let id = format!("budget-{n}");
    match case.fault {
        Some(Some(after)) => mock.script_key(&id, [FaultPlan::reset(after)]),
        Some(None) => mock.script_key(&id, [FaultPlan::error("overloaded")]),
        None => {}
    }
    let ended = run(&client, request(case, &id), case.stream).await?;
    let capped = ended.finish == Some(FinishReason::Budget);
    // A continuation's `max_tokens` is counted on the high side: with a limit
    // and a break, the reply may end short at `length` (the stream property).
    let short = case.max_tokens.is_some() && ended.finish == Some(FinishReason::Length);
    if !ended.refused && !capped && !short && ended.text != whole {
        return Err(format!("not whole: {:?} vs {whole:?}", ended.text));
    }
    if !whole.starts_with(&ended.text) {
        return Err(format!("not a prefix: {:?} of {whole:?}", ended.text));
    }
    // Every hold settles (one-way messages: soon).
    let mut balance = client.budget_balance(&Scope::Client, None).await;
    for _ in 0..200 {
        if balance[0].reserved == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        balance = client.budget_balance(&Scope::Client, None).await;
    }
    let (spent, reserved) = (balance[0].spent, balance[0].reserved);
    if reserved != 0 {
        return Err(format!("{reserved} still held"));
    }
    let said = {
        let u = ended.spend.usage();
        if ended.spend.count == 0 {
            0
        } else {
            u.input_tokens() + u.completion_tokens
        }
    };
    if spent != said {
        return Err(format!(
            "the ledger settled {spent}, the request says {said}"
        ));
    }
    // Past the budget: only the chunk that met the cap (a few tokens), or an
    // attempt that ran before its server said it spent more than estimated.
    if spent > case.limit + 16 {
        return Err(format!("settled {spent} of {}", case.limit));
    }
    Ok(())
}

#[test]
fn a_budget_holds_whatever_the_request_the_faults_and_the_server() {
    common::mock_property(case(), 48, |runtime, mock, case, n| {
        runtime.block_on(check(mock, case, n))
    });
}
