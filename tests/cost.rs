//! What requests cost, over real HTTP against the mock: every attempt at the
//! table's prices, delivered and wasted apart, estimated where the server
//! counted nothing, unpriced never free.
#![cfg(feature = "mock")]

mod common;

use common::{quick_builder, within};
use steer_llm::cost::{estimate, Fate, PerMillion, Price, PriceTable, Rates};
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::ChatRequest;

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
