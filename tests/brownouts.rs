//! A provider that is slow or half-failing rather than down, over real HTTP
//! against the mock: retries throttled while failures outrun successes.
#![cfg(feature = "mock")]

mod common;

use common::{quick_builder, within};
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::{ChatRequest, Error, GiveUp, ThrottleConfig};

fn ask() -> ChatRequest {
    ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_stops_retries_while_failures_outrun_successes_and_lets_them_back_after() {
    let mock = MockServer::builder()
        .default_fault(FaultPlan::error("server_error"))
        .start_background()
        .unwrap();
    let client = quick_builder(mock.providers().unwrap(), 3)
        .retry_throttle(ThrottleConfig {
            max_tokens: 10,
            token_ratio: 0.5,
        })
        .build()
        .unwrap();
    let mut throttled = 0;
    for _ in 0..20 {
        match within(client.generate(ask())).await {
            Err(Error::Failed(f)) if f.reason == GiveUp::Throttled => throttled += 1,
            Err(Error::Failed(f)) => assert_eq!(f.reason, GiveUp::AttemptsExhausted),
            other => panic!("{other:?}"),
        }
    }
    // 10 tokens, retries while more than 5 are left: the first request's two
    // (9 and 8 left), its third attempt its last (7); the second's one retry
    // (6), its next failure throttled (5); then every request one attempt.
    assert_eq!(mock.request_count(), 23, "instead of 60 without a throttle");
    assert_eq!(throttled, 19);
    let m = client.metrics().await.unwrap();
    let m = &m.provider("openai").unwrap().metrics;
    assert_eq!((m.throttled, m.retries), (19, 3));

    // Clean requests refill it from empty (0.5 each): 14 bring it to 7, and a
    // failure leaves 6, above half.
    mock.set_default_fault(None);
    for _ in 0..14 {
        within(client.generate(ask())).await.unwrap();
    }
    client.metrics().await.unwrap();
    mock.push_faults([FaultPlan::error("server_error")]);
    let reply = within(client.generate(ask())).await.unwrap();
    let m = client.metrics().await.unwrap();
    let m = &m.provider("openai").unwrap().metrics;
    assert_eq!(m.retries, 4, "retried again");
    assert!(!reply.text.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_out_of_range_is_a_configuration_error() {
    let mock = MockServer::builder().start_background().unwrap();
    for (max_tokens, token_ratio) in [(0, 0.1), (2000, 0.1), (10, 0.0), (10, f64::NAN)] {
        let built = quick_builder(mock.providers().unwrap(), 3)
            .retry_throttle(ThrottleConfig {
                max_tokens,
                token_ratio,
            })
            .build();
        assert!(
            matches!(&built, Err(Error::Config(_))),
            "{max_tokens} {token_ratio}: {:?}",
            built.err()
        );
    }
}
