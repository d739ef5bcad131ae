//! What requests cost, over real HTTP against the mock: every attempt at the
//! table's prices, delivered and wasted apart, estimated where the server
//! counted nothing, unpriced never free.
#![cfg(feature = "mock")]

mod common;

use common::{quick_builder, within};
use steer_llm::cost::{estimate, Fate, PerMillion, Price, PriceTable, Rates};
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::{ChatRequest, StreamEvent};

fn prices() -> PriceTable {
    PriceTable::defaults()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_requests_cost_is_its_attempts_usage_at_the_tables_prices() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = quick_builder(mock.providers().unwrap(), 3).build().unwrap();
    let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .user("tell me about rivers")
        .request_id("costed");
    // An overload refused (never billed), then a reply cut mid-body (the
    // model ran: billed, its prompt estimated), then the reply.
    mock.script_key(
        "costed",
        [FaultPlan::error("overloaded"), FaultPlan::reset(0)],
    );
    let reply = within(client.generate(req.clone())).await.unwrap();
    let spend = &reply.spend;
    let fates: Vec<Fate> = spend.attempts.iter().map(|a| a.fate).collect();
    assert_eq!(fates, [Fate::Failed, Fate::Failed, Fate::Delivered]);
    let [refused, cut, answered] = &spend.attempts[..] else {
        panic!("{spend:?}")
    };
    assert_eq!((refused.usage.total_tokens, refused.estimated), (0, false));
    assert!(cut.estimated);
    assert_eq!(cut.usage.prompt_tokens, estimate::prompt_tokens(&req));
    assert!(!answered.estimated);
    assert_eq!(answered.usage, reply.usage);
    let table = prices();
    let price = table.price("anthropic", &reply.model).unwrap();
    assert_eq!(answered.cost, Some(price.cost(&reply.usage).unwrap()));
    assert_eq!(spend.delivered(), answered.cost.unwrap());
    assert_eq!(spend.wasted(), cut.cost.unwrap());
    assert!(spend.wasted() > steer_llm::cost::Usd::ZERO);
    assert_eq!(spend.total(), spend.delivered().plus(spend.wasted()));
    assert!(spend.estimated() && !spend.unpriced());
    // The metrics count the same.
    let text = client.prometheus_text();
    let delivered = format!(
        r#"steer_spend_usd_total{{provider="anthropic",model="{}",outcome="delivered"}} {}"#,
        reply.model,
        spend.delivered().dollars()
    );
    assert!(text.contains(&delivered), "{delivered}\n{text}");
    assert!(
        text.contains(r#"outcome="wasted",estimated="true"}"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpriced_model_is_reported_so_and_a_row_set_in_code_prices_it() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = quick_builder(mock.providers().unwrap(), 1)
        .prices(PriceTable::empty())
        .build()
        .unwrap();
    let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
    let reply = within(client.generate(req.clone())).await.unwrap();
    assert!(reply.spend.unpriced());
    assert_eq!(reply.spend.attempts[0].cost, None, "unpriced, not free");
    assert!(client
        .prometheus_text()
        .contains(r#"steer_unpriced_attempts_total{provider="openai",model="gpt-4o-mini"} 1"#));

    let d = |x| PerMillion::dollars(x).unwrap();
    let own = Price::new(Rates::new(d(1_000.0), d(2_000.0)), "2026-12-07", "test");
    let client = quick_builder(mock.providers().unwrap(), 1)
        .price("openai/gpt-4o-mini", own.clone())
        .build()
        .unwrap();
    let reply = within(client.generate(req)).await.unwrap();
    assert_eq!(
        reply.spend.total(),
        own.cost(&reply.usage).unwrap(),
        "the deployment's row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_retried_twice_and_resumed_once_costs_its_attempts_usage_and_says_so_at_its_end() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = common::fault_tolerant_client(&mock);
    let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .user("tell me about rivers")
        .request_id("costed-stream");
    // Refused (never billed), then cut after content (resumed), then whole.
    mock.script_key(
        "costed-stream",
        [FaultPlan::error("overloaded"), FaultPlan::reset(3)],
    );
    let stream = within(client.stream(req.clone())).await.unwrap();
    let (events, error) = common::all_events(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert!(events
        .iter()
        .any(|e| matches!(e, StreamEvent::Resumed { .. })));
    // One Spend, just before Complete.
    let n = events.len();
    let StreamEvent::Spend(spend) = &events[n - 2] else {
        panic!("{:?}", &events[n - 2..])
    };
    let StreamEvent::Complete { usage, .. } = &events[n - 1] else {
        panic!("{:?}", events[n - 1])
    };
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Spend(_)))
            .count(),
        1
    );
    let fates: Vec<Fate> = spend.attempts.iter().map(|a| a.fate).collect();
    assert_eq!(fates, [Fate::Failed, Fate::Delivered, Fate::Delivered]);
    let [refused, cut, resumed] = &spend.attempts[..] else {
        panic!("{spend:?}")
    };
    assert_eq!(
        (refused.usage.total_tokens, refused.cost.map(|c| c.nanos())),
        (0, Some(0))
    );
    // The cut attempt reported nothing: its prompt and the text it delivered
    // are estimated (Anthropic's tokenizer is not public).
    assert!(cut.estimated);
    assert_eq!(cut.usage.prompt_tokens, estimate::prompt_tokens(&req));
    assert!(cut.usage.completion_tokens > 0);
    // The continuation's own count, at the table's price.
    assert!(!resumed.estimated);
    let table = prices();
    let price = table.price("anthropic", "claude-3-5-haiku-latest").unwrap();
    for a in [cut, resumed] {
        assert_eq!(a.cost, Some(price.cost(&a.usage).unwrap()));
    }
    assert_eq!(
        spend.delivered(),
        cut.cost.unwrap().plus(resumed.cost.unwrap())
    );
    assert_eq!(spend.wasted(), steer_llm::cost::Usd::ZERO);
    // The stream's usage counts the last attempt as its server did.
    let usage = usage.expect("the server counted the last attempt");
    assert_eq!(usage.prompt_tokens, resumed.usage.prompt_tokens);
    assert!(usage.completion_tokens > resumed.usage.completion_tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_reply_wastes_what_it_repeats_and_a_dropped_stream_what_it_read() {
    use futures::StreamExt;
    use steer_llm::runtime::GenerateOptions;
    use steer_llm::Continuation;
    let mock = MockServer::builder().start_background().unwrap();
    let client = common::fault_tolerant_client(&mock);
    let req = ChatRequest::new("xai/grok-3-mini")
        .unwrap()
        .user("tell me about rivers")
        .request_id("restarted");
    mock.script_key("restarted", [FaultPlan::reset(3)]);
    let opts = GenerateOptions::default().continuation(Continuation::Restart);
    let stream = within(client.stream_with(req, opts)).await.unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    assert_eq!(seen.restarts, 1);
    let spend = seen.spend.unwrap();
    let fates: Vec<Fate> = spend.attempts.iter().map(|a| a.fate).collect();
    assert_eq!(fates, [Fate::Repeated, Fate::Delivered]);
    let repeated = &spend.attempts[0];
    assert!(repeated.estimated && repeated.usage.completion_tokens > 0);
    assert_eq!(spend.wasted(), repeated.cost.unwrap());
    assert_eq!(spend.delivered(), spend.attempts[1].cost.unwrap());

    // A consumer that drops its stream after one delta: that attempt's
    // prompt and what it read are spent, wasted, estimated.
    let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .user("tell me about rivers");
    mock.set_default_fault(Some(
        FaultPlan::normal().with_chunk_delay(std::time::Duration::from_millis(50)),
    ));
    let mut stream = within(client.stream(req)).await.unwrap();
    while let Some(event) = within(stream.next()).await {
        if let Ok(StreamEvent::TextDelta { .. }) = event {
            break;
        }
    }
    drop(stream);
    let line = r#"steer_spend_tokens_total{provider="anthropic",model="claude-3-5-haiku-latest",outcome="wasted",estimated="true"}"#;
    assert!(
        common::eventually(|| async { client.prometheus_text().contains(line) }).await,
        "{}",
        client.prometheus_text()
    );
}
