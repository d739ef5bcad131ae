//! Model groups over real HTTP against the mock: a request to `group/<name>` moves
//! from target to target as the group's rules say, never back to one that failed it
//! while another is untried, and waits for the earliest recovery when it may.
#![cfg(feature = "mock")]

use std::time::Duration;

use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::group::{Group, Selection};
use steer_llm::runtime::GenerateOptions;
use steer_llm::{
    BreakerConfig, BreakerState, ChatRequest, Client, Error, OpenAiCompatible, Providers,
    RetryPolicy,
};

const MINI: &str = "openai/gpt-4o-mini";
const HAIKU: &str = "anthropic/claude-3-5-haiku-latest";

fn ask() -> ChatRequest {
    ChatRequest::new("group/fast").unwrap().user("hi")
}

fn outcomes(steps: &[steer_llm::model::RouteStep]) -> Vec<(String, String)> {
    steps
        .iter()
        .map(|s| (s.target.clone(), s.outcome.clone()))
        .collect()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("a route must not hang")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_or_failing_target_sends_the_request_to_the_next() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::never())
        .group("fast", Group::new([MINI, HAIKU]).unwrap())
        .build()
        .unwrap();
    // An open breaker: moved on without a call.
    client.force(MINI, BreakerState::ForcedOpen).unwrap();
    let reply = within(client.generate(ask())).await.unwrap();
    assert_eq!(reply.provider, "anthropic");
    assert_eq!(
        outcomes(&reply.route),
        [
            (MINI.to_string(), "breaker_forced_open".to_string()),
            (HAIKU.to_string(), "answered".to_string())
        ]
    );
    client.reset(MINI).unwrap();
    // A wait above the cap: moved on at once, not slept.
    mock.push_faults([FaultPlan::error("rate_limit").retry_after("3600")]);
    let reply = within(client.generate(ask())).await.unwrap();
    assert_eq!(reply.route[0].outcome, "rate_limited");
    assert_eq!(reply.provider, "anthropic");
    // An overload after its retries: moved on.
    mock.push_faults([FaultPlan::error("overloaded")]);
    let reply = within(client.generate(ask())).await.unwrap();
    assert_eq!(outcomes(&reply.route)[0].1, "overloaded");
    // An error the request caused fails the same everywhere: no failover.
    let sent = mock.request_count();
    mock.push_faults([FaultPlan::error("invalid_request")]);
    let err = within(client.generate(ask())).await.unwrap_err();
    assert_eq!(
        err.failure().map(|f| f.category),
        Some(steer_llm::Category::InvalidRequest)
    );
    assert_eq!(mock.request_count(), sent + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_too_long_goes_to_the_groups_larger_context_target() {
    let mock = MockServer::builder().start_background().unwrap();
    let group = Group::new([MINI, "xai/grok-3-mini"])
        .unwrap()
        .context_fallback(HAIKU)
        .unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::never())
        .group("fast", group)
        .build()
        .unwrap();
    mock.push_faults([FaultPlan::error("context_length_exceeded")]);
    let reply = within(client.generate(ask())).await.unwrap();
    assert_eq!(reply.provider, "anthropic", "{:?}", reply.route);
    assert_eq!(reply.route[0].outcome, "context_length_exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_over_two_deployments_one_always_failing_all_succeed() {
    let sick = MockServer::builder()
        .default_fault(FaultPlan::error("server_error"))
        .record_requests(false)
        .start_background()
        .unwrap();
    let healthy = MockServer::builder()
        .record_requests(false)
        .start_background()
        .unwrap();
    let deployment = |name: &str, mock: &MockServer| {
        OpenAiCompatible::openai()
            .name(name)
            .base_url(mock.openai_base_url())
            .api_key("sk-test")
            .build()
            .unwrap()
    };
    let providers = Providers::new()
        .with(deployment("org-a", &sick))
        .with(deployment("org-b", &healthy));
    let group = Group::new(["org-a/gpt-4o-mini", "org-b/gpt-4o-mini"])
        .unwrap()
        .selection(Selection::Weighted);
    let client = Client::builder()
        .providers(providers)
        .retry(RetryPolicy::never())
        .group("fast", group)
        .build()
        .unwrap();
    let mut failures = 0;
    let mut sick_first = 0;
    for _ in 0..1000 {
        match within(client.generate(ask())).await {
            Ok(reply) => {
                assert_eq!(reply.provider, "org-b");
                if reply.route.len() == 2 {
                    sick_first += 1;
                    assert_ne!(reply.route[0].target, reply.route[1].target);
                }
            }
            Err(_) => failures += 1,
        }
    }
    assert_eq!(failures, 0);
    // The sick deployment was tried (until its breaker opened) and never twice.
    assert!(sick_first > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_target_down_a_route_fails_at_once_or_waits_for_the_earliest() {
    let mock = MockServer::builder().start_background().unwrap();
    let breakers = BreakerConfig {
        failure_threshold: 1,
        open_for: Duration::from_millis(300),
        ..BreakerConfig::default()
    };
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::never())
        .breaker(breakers)
        .group("fast", Group::new([MINI, HAIKU]).unwrap())
        .build()
        .unwrap();
    // Both targets fail once: both breakers open.
    mock.set_default_fault(Some(FaultPlan::error("server_error")));
    let err = within(client.generate_with(
        ask(),
        GenerateOptions::default().deadline(Duration::from_millis(50)),
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, Error::GroupExhausted { .. }), "{err:?}");
    // Now both are open: a request that cannot wait fails at once, saying when
    // the first is back.
    let err = within(client.generate_with(
        ask(),
        GenerateOptions::default().deadline(Duration::from_millis(50)),
    ))
    .await
    .unwrap_err();
    match &err {
        Error::GroupExhausted { steps, back_in, .. } => {
            assert!(
                steps.iter().all(|s| s.outcome == "breaker_open"),
                "{steps:?}"
            );
            assert!(
                back_in.is_some_and(|d| d <= Duration::from_millis(300)),
                "{back_in:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("the first is back in"), "{err}");
    // A request with time to wait waits for the earliest half-open, and gets in.
    mock.set_default_fault(None);
    let reply = within(client.generate_with(
        ask(),
        GenerateOptions::default().deadline(Duration::from_secs(10)),
    ))
    .await
    .unwrap();
    assert!(reply.route.iter().any(|s| s.outcome == "breaker_open"));
    assert_eq!(reply.route.last().unwrap().outcome, "answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_naming_an_unknown_provider_is_a_configuration_error() {
    let mock = MockServer::builder().start_background().unwrap();
    let built = Client::builder()
        .providers(mock.providers().unwrap())
        .group("fast", Group::new(["nope/model"]).unwrap())
        .build();
    assert!(matches!(built, Err(Error::Config(_))));
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .build()
        .unwrap();
    assert!(matches!(
        client.generate(ask()).await,
        Err(Error::UnknownProvider { .. })
    ));
    // Streams through a group are refused clearly (not yet supported).
    assert!(matches!(
        client.stream(ask()).await,
        Err(Error::InvalidRequest { .. })
    ));
}
