//! Health and pauses are kept per model, over real HTTP against the mock: one
//! model's 429 pauses that model, and its siblings on the same provider run on.
#![cfg(feature = "mock")]

use std::time::Duration;

use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::{GenerateOptions, Rejection};
use steer_llm::{BreakerState, Category, ChatRequest, Client, Error, RetryPolicy};

fn ask(model: &str, id: &str) -> ChatRequest {
    ChatRequest::new(model).unwrap().user("hi").request_id(id)
}

/// A mock and a client of its three providers, without retries.
fn mock_and_client() -> (MockServer, Client) {
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    (mock, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_one_model_leaves_its_siblings_running() {
    let (mock, client) = mock_and_client();
    mock.script_key("big-1", [FaultPlan::error("rate_limit").retry_after("30")]);
    let err = client
        .generate(ask("openai/gpt-4o", "big-1"))
        .await
        .unwrap_err();
    assert_eq!(
        err.failure().map(|f| f.category),
        Some(Category::RateLimited)
    );

    let big = client.status("openai/gpt-4o").await.unwrap();
    assert!(
        big.paused_for.is_some_and(|d| d > Duration::from_secs(25)),
        "{big:?}"
    );
    let small = client.status("openai/gpt-4o-mini").await.unwrap();
    assert_eq!(small.paused_for, None);
    assert_eq!(
        client.status("openai").await.unwrap().state,
        BreakerState::Closed
    );

    // The sibling answers at once; the paused model is refused at once by a
    // request that will not wait that long.
    assert!(client
        .generate(ask("openai/gpt-4o-mini", "small-1"))
        .await
        .is_ok());
    let impatient = GenerateOptions::default()
        .retry(RetryPolicy::never().max_server_wait(Duration::from_secs(1)));
    let refused = client
        .generate_with(ask("openai/gpt-4o", "big-2"), impatient)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Rejected {
                rejection: Rejection::Paused { .. },
                ..
            }
        ),
        "{refused:?}"
    );
    // Per-model state is visible to operators.
    let status = client.status("openai").await.unwrap();
    let names: Vec<_> = status
        .models
        .iter()
        .filter_map(|m| m.model.clone())
        .collect();
    assert_eq!(names, ["gpt-4o", "gpt-4o-mini"]);
    let text = client.prometheus_text();
    assert!(
        text.contains(r#"steer_pauses_total{provider="openai",model="gpt-4o"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"steer_pauses_total{provider="openai",model="gpt-4o-mini"}"#));
    // Resetting the model ends its pause; the sibling was never touched.
    client.reset("openai/gpt-4o").unwrap();
    assert!(client.generate(ask("openai/gpt-4o", "big-3")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forcing_a_model_open_stops_only_that_model_and_forcing_the_provider_stops_all() {
    let (_mock, client) = mock_and_client(); // the mock lives as long as the client
    client
        .force("anthropic/claude-opus-4-6", BreakerState::ForcedOpen)
        .unwrap();
    client.status("anthropic/claude-opus-4-6").await.unwrap();
    let opus = client
        .generate(ask("anthropic/claude-opus-4-6", "o-1"))
        .await;
    assert!(
        matches!(
            opus,
            Err(Error::Rejected {
                rejection: Rejection::ForcedOpen,
                ..
            })
        ),
        "{opus:?}"
    );
    assert!(client
        .generate(ask("anthropic/claude-3-5-haiku-latest", "h-1"))
        .await
        .is_ok());
    client.force("anthropic", BreakerState::ForcedOpen).unwrap();
    // `force` is one-way: a status query, answered after it, says it is done.
    client.status("anthropic").await.unwrap();
    let haiku = client
        .generate(ask("anthropic/claude-3-5-haiku-latest", "h-2"))
        .await;
    assert!(matches!(haiku, Err(Error::Rejected { .. })), "{haiku:?}");
    // Other providers are untouched.
    assert!(client
        .generate(ask("openai/gpt-4o-mini", "g-1"))
        .await
        .is_ok());
}
