//! Health and pauses are kept per model, over real HTTP against the mock: one
//! model's 429 pauses that model, and its siblings on the same provider run on.
#![cfg(feature = "mock")]

use std::time::Duration;

use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::{GenerateOptions, Rejection};
use steer_llm::{BreakerConfig, BreakerState, Category, ChatRequest, Client, Error, RetryPolicy};

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

    let big = client.breakers().status("openai/gpt-4o").await.unwrap();
    assert!(
        big.paused_for.is_some_and(|d| d > Duration::from_secs(25)),
        "{big:?}"
    );
    let small = client
        .breakers()
        .status("openai/gpt-4o-mini")
        .await
        .unwrap();
    assert_eq!(small.paused_for, None);
    assert_eq!(
        client.breakers().status("openai").await.unwrap().state,
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
    let status = client.breakers().status("openai").await.unwrap();
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
    client.breakers().reset("openai/gpt-4o").unwrap();
    assert!(client.generate(ask("openai/gpt-4o", "big-3")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forcing_a_model_open_stops_only_that_model_and_forcing_the_provider_stops_all() {
    let (_mock, client) = mock_and_client(); // the mock lives as long as the client
    client
        .breakers()
        .force("anthropic/claude-opus-4-6", BreakerState::ForcedOpen)
        .unwrap();
    client
        .breakers()
        .status("anthropic/claude-opus-4-6")
        .await
        .unwrap();
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
    client
        .breakers()
        .force("anthropic", BreakerState::ForcedOpen)
        .unwrap();
    // `force` is one-way: a status query, answered after it, says it is done.
    client.breakers().status("anthropic").await.unwrap();
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

/// A client of the mock's providers without retries, with `breaker`.
fn client_with(mock: &MockServer, breaker: BreakerConfig) -> Client {
    Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::never())
        .breaker(breaker)
        .build()
        .unwrap()
}

/// `n` requests to `model`, each answered with a retryable 500.
async fn fail(mock: &MockServer, client: &Client, model: &str, n: usize, tag: &str) {
    for i in 0..n {
        let id = format!("{tag}-{i}");
        mock.script_key(&id, [FaultPlan::error("server_error")]);
        let err = client.generate(ask(model, &id)).await.unwrap_err();
        assert_eq!(
            err.failure().map(|f| f.category),
            Some(Category::ServerError),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_models_5xx_storm_leaves_its_siblings_and_the_provider_closed() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client_with(&mock, BreakerConfig::default());
    // The sibling is in use and well.
    assert!(client
        .generate(ask("openai/gpt-4o-mini", "s-0"))
        .await
        .is_ok());
    fail(&mock, &client, "openai/gpt-4o", 5, "storm").await;
    let status = |t: &'static str| {
        let client = client.clone();
        async move { client.breakers().status(t).await.unwrap() }
    };
    assert_eq!(status("openai/gpt-4o").await.state, BreakerState::Open);
    assert_eq!(
        status("openai/gpt-4o-mini").await.state,
        BreakerState::Closed
    );
    let provider = status("openai").await;
    assert_eq!(provider.state, BreakerState::Closed);
    assert_eq!(provider.stats.failures_in_window, 0, "{provider:?}");
    assert!(client
        .generate(ask("openai/gpt-4o-mini", "s-1"))
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_storm_across_models_opens_the_provider() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client_with(&mock, BreakerConfig::default());
    for (i, model) in ["openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1"]
        .into_iter()
        .cycle()
        .take(5)
        .enumerate()
    {
        fail(&mock, &client, model, 1, &format!("across-{i}")).await;
    }
    let provider = client.breakers().status("openai").await.unwrap();
    assert_eq!(provider.state, BreakerState::Open, "{provider:?}");
    assert_eq!(provider.stats.failures, 5);
    assert_eq!(provider.stats.failure_rate(), Some(1.0));
    // No model reached its own threshold, yet none is called.
    for m in &provider.models {
        assert_eq!(m.state, BreakerState::Closed, "{m:?}");
    }
    let refused = client.generate(ask("openai/gpt-4o-mini", "after")).await;
    assert!(
        matches!(refused, Err(Error::Rejected { .. })),
        "{refused:?}"
    );
    // Other providers run on.
    assert!(client
        .generate(ask("anthropic/claude-3-5-haiku-latest", "other"))
        .await
        .is_ok());
}

/// The reference SDK's breaker scenario, through the public API over HTTP:
/// one model, five retryable 500s, the provider opens; after its open time it
/// is half-open; probes that succeed close it, one that fails reopens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_scenario_opens_the_provider_at_the_fifth_failure() {
    let mock = MockServer::builder().start_background().unwrap();
    let open_for = Duration::from_millis(300);
    let client = client_with(
        &mock,
        BreakerConfig {
            open_for,
            ..BreakerConfig::default()
        },
    );
    let state = || async { client.breakers().status("openai").await.unwrap().state };
    fail(&mock, &client, "openai/gpt-4o", 4, "ref-a").await;
    assert_eq!(state().await, BreakerState::Closed, "four are not enough");
    fail(&mock, &client, "openai/gpt-4o", 1, "ref-b").await;
    let provider = client.breakers().status("openai").await.unwrap();
    assert_eq!(provider.state, BreakerState::Open);
    assert_eq!(
        (
            provider.stats.successes,
            provider.stats.failures,
            provider.stats.failures_in_window
        ),
        (0, 5, 5)
    );
    // Open: refused at once, without a call.
    let before = mock.request_count();
    let refused = client.generate(ask("openai/gpt-4o", "ref-refused")).await;
    assert!(
        matches!(refused, Err(Error::Rejected { .. })),
        "{refused:?}"
    );
    assert_eq!(mock.request_count(), before);
    // After the open time: half-open (reopened twice longer on a failed probe).
    tokio::time::sleep(open_for + Duration::from_millis(100)).await;
    assert_eq!(state().await, BreakerState::HalfOpen);
    for i in 0..2 {
        assert!(client
            .generate(ask("openai/gpt-4o", &format!("probe-{i}")))
            .await
            .is_ok());
    }
    assert_eq!(state().await, BreakerState::Closed);
    fail(&mock, &client, "openai/gpt-4o", 5, "ref-c").await;
    assert_eq!(state().await, BreakerState::Open);
    tokio::time::sleep(2 * open_for + Duration::from_millis(100)).await;
    assert_eq!(state().await, BreakerState::HalfOpen);
    fail(&mock, &client, "openai/gpt-4o", 1, "ref-d").await;
    assert_eq!(
        state().await,
        BreakerState::Open,
        "a failed probe reopens it"
    );
}
