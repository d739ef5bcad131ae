//! Supervising a provider: subscribe to its breaker's transitions while the mock
//! injects an outage and then recovers: closed, open, half-open, closed.
//!
//! `cargo run --features mock --example supervise`

use std::time::Duration;

use actix::prelude::*;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::TransitionEvent;
use steer_llm::{BreakerConfig, BreakerState, ChatRequest, Client, RetryPolicy};

/// Prints every transition it is told about (the provider's and its models'),
/// and keeps the provider's own.
struct Watcher {
    seen: Vec<BreakerState>,
}

impl Actor for Watcher {
    type Context = Context<Self>;
}

impl Handler<TransitionEvent> for Watcher {
    type Result = ();

    fn handle(&mut self, e: TransitionEvent, _: &mut Context<Self>) {
        let target = match &e.model {
            Some(model) => format!("{}/{model}", e.provider),
            None => e.provider.clone(),
        };
        println!("{target}: {:?} -> {:?} ({:?})", e.from, e.to, e.reason);
        // Only one model is in use: its failures span the provider, whose
        // breaker moves with the model's.
        if e.model.is_none() {
            self.seen.push(e.to);
        }
    }
}

#[derive(Message)]
#[rtype(result = "Vec<BreakerState>")]
struct Seen;

impl Handler<Seen> for Watcher {
    type Result = MessageResult<Seen>;
    fn handle(&mut self, _: Seen, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.seen.clone())
    }
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = MockServer::builder().start_background()?;
    let client = Client::builder()
        .providers(mock.providers()?)
        .arbiters(1)
        .retry(RetryPolicy::never())
        .breaker(BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_millis(200),
            half_open_permits: 1,
            success_threshold: 2,
            ..BreakerConfig::default()
        })
        .build()?;
    let watcher = Watcher { seen: Vec::new() }.start();
    client
        .breakers()
        .subscribe("openai", watcher.clone().recipient())?;
    let ask = || ChatRequest::new("openai/gpt-4o-mini").map(|r| r.user("ping"));

    println!("-- outage: every request gets a 503");
    mock.set_default_fault(Some(FaultPlan::error("overloaded")));
    for _ in 0..4 {
        if let Err(e) = client.generate(ask()?).await {
            println!("request failed: {e}");
        }
    }
    println!("-- recovery: the provider answers again");
    mock.set_default_fault(None);
    tokio::time::sleep(Duration::from_millis(300)).await; // open -> half-open (actor timer)
    for _ in 0..2 {
        let reply = client.generate(ask()?).await?;
        println!(
            "probe answered: {}…",
            reply.text.chars().take(24).collect::<String>()
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = watcher.send(Seen).await?;
    use BreakerState::*;
    assert_eq!(
        seen,
        vec![Open, HalfOpen, Closed],
        "transitions seen: {seen:?}"
    );
    println!(
        "status: {:?}",
        client.breakers().status("openai").await?.state
    );
    Ok(())
}
