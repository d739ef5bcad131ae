//! A model group surviving an outage of one provider: requests move to the next
//! target while OpenAI is down (the mock injects the outage), and come back when it
//! recovers; a stream cut in the middle of the outage completes on Anthropic,
//! every character once.
//!
//! `cargo run --features mock --example failover` — against the embedded mock provider (with keys
//! set, the same group runs against the real providers, without the outage).

use futures::StreamExt;
use std::time::Duration;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::group::Group;

use steer_llm::{
    Anthropic, BreakerConfig, ChatRequest, Client, OpenAiCompatible, Providers, StreamEvent,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let real =
        std::env::var("OPENAI_API_KEY").is_ok() && std::env::var("ANTHROPIC_API_KEY").is_ok();
    // Two mock servers, so that the outage strikes one provider only.
    let mocks = if real {
        None
    } else {
        Some((
            MockServer::builder().start_background()?,
            MockServer::builder().start_background()?,
        ))
    };
    let outage = |plan: Option<FaultPlan>| {
        if let Some((openai, _)) = &mocks {
            openai.set_default_fault(plan);
        }
    };
    let providers = match &mocks {
        None => Providers::from_env()?,
        Some((openai_mock, anthropic_mock)) => {
            println!(
                "(no keys: OpenAI at {}, Anthropic at {})",
                openai_mock.base_url(),
                anthropic_mock.base_url()
            );
            Providers::new()
                .with(
                    OpenAiCompatible::openai()
                        .base_url(openai_mock.openai_base_url())
                        .api_key("sk-mock")
                        .build()?,
                )
                .with(
                    Anthropic::builder()
                        .base_url(anthropic_mock.base_url())
                        .api_key("sk-ant-mock")
                        .build()?,
                )
        }
    };
    let fast = Group::new(["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"])?;
    // A short open time, so that the demo sees OpenAI come back.
    let breaker = BreakerConfig {
        open_for: Duration::from_millis(200),
        open_multiplier: 1.0,
        ..BreakerConfig::default()
    };
    let client = Client::builder()
        .providers(providers)
        .breaker(breaker)
        .group("fast", fast)
        .build()?;
    let ask = |i: usize| {
        ChatRequest::new("group/fast").map(|r| r.user(format!("Question {i}: name a river.")))
    };

    for i in 1..=9 {
        if !real && i == 4 {
            println!("-- OpenAI goes down");
            outage(Some(FaultPlan::error("overloaded")));
        }
        if !real && i == 7 {
            println!("-- OpenAI is back");
            outage(None);
            // Its breaker half-opens after its open time.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let reply = client.generate(ask(i)?).await?;
        let path: Vec<String> = reply
            .route
            .iter()
            .map(|s| format!("{} ({})", s.target, s.outcome))
            .collect();
        println!(
            "request {i}: answered by {} via {}",
            reply.provider,
            path.join(" -> ")
        );
    }

    // A stream that OpenAI drops halfway: Anthropic continues it.
    outage(Some(FaultPlan::reset(6)));
    let mut stream = client.stream(ask(10)?).await?;
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::TextDelta { text: t, .. } => text.push_str(&t),
            StreamEvent::FailedOver { offset, target, .. } => {
                println!("stream: failed over to {target} at character {offset}")
            }
            StreamEvent::Route { steps } => {
                let last = steps.last().map(|s| s.target.clone()).unwrap_or_default();
                println!("stream: answered by {last}");
            }
            _ => {}
        }
    }
    println!("stream text: {text}");
    Ok(())
}
