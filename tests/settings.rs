//! Extreme settings over real HTTP against the mock: every duration a user can
//! set at its largest (a deadline, timeouts, breaker windows and open times,
//! backoff caps, the longest server wait) means "no bound", never a panic from
//! adding it to the clock; at zero, a timeout fails its attempt with a typed
//! error. Every wait here is a hang detector, not a speed assertion.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::within;
use futures::StreamExt;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::group::Group;
use steer_llm::runtime::GenerateOptions;
use steer_llm::{
    Backoff, BreakerConfig, ChatRequest, Client, Error, Jitter, RetryPolicy, StreamEvent,
};

const MAX: Duration = Duration::MAX;

fn ask(model: &str) -> ChatRequest {
    ChatRequest::new(model).unwrap().user("hi")
}

/// A client over `mock` (as `openai`, and a group of it) whose every duration
/// is at its largest, but the first backoff (1 ms: a retry must happen).
fn client_at_the_limits(mock: &MockServer, breaker: BreakerConfig) -> Client {
    Client::builder()
        .providers(mock.providers().unwrap())
        .attempt_timeout(Some(MAX))
        .deadline(Some(MAX))
        .stream_timeouts(Some(MAX), Some(MAX), Some(MAX))
        .budget_lease(MAX)
        .retry(RetryPolicy {
            max_server_wait: MAX,
            max_total_backoff: Some(MAX),
            ..RetryPolicy::default().backoff(Backoff {
                max_attempts: 3,
                base: Duration::from_millis(1),
                multiplier: 1e300,
                max_delay: MAX,
                jitter: Jitter::Full,
            })
        })
        .breaker(breaker)
        .group("g", Group::new(["openai/gpt-4o-mini"]).unwrap())
        .build()
        .unwrap()
}

fn longest_breaker() -> BreakerConfig {
    BreakerConfig {
        window: MAX,
        slow_call_threshold: MAX,
        open_for: MAX,
        max_open_for: MAX,
        max_pause: MAX,
        ..BreakerConfig::default()
    }
}

async fn streamed(client: &Client, model: &str) -> Result<String, Error> {
    let mut stream = client.stream(ask(model)).await?;
    let mut text = String::new();
    while let Some(event) = within(stream.next()).await {
        match event? {
            StreamEvent::TextDelta { text: t, .. } => text.push_str(&t),
            StreamEvent::Complete { .. } => return Ok(text),
            _ => {}
        }
    }
    panic!("{model}: the stream ended without completing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_at_their_largest_mean_no_bound_for_requests_streams_and_groups() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client_at_the_limits(&mock, longest_breaker());
    for model in ["openai/gpt-4o-mini", "group/g"] {
        // A failure first: retried after the first backoff (1 ms).
        mock.push_faults([FaultPlan::error("server_error")]);
        let reply = within(client.generate(ask(model))).await;
        assert!(reply.is_ok(), "{model}: {reply:?}");
        // A server's wait of none, within a longest server wait at its largest.
        mock.push_faults([FaultPlan::error("rate_limit").retry_after("0")]);
        let reply = within(client.generate(ask(model))).await;
        assert!(reply.is_ok(), "{model}: {reply:?}");
        mock.push_faults([FaultPlan::reset(2)]);
        let text = within(streamed(&client, model)).await;
        assert!(text.is_ok_and(|t| !t.is_empty()), "{model}");
        let far = GenerateOptions::default().deadline(MAX);
        let reply = within(client.generate_with(ask(model), far)).await;
        assert!(reply.is_ok(), "{model}: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_open_for_ever_rejects_with_a_typed_error_and_reports_its_state() {
    let mock = MockServer::builder().start_background().unwrap();
    let breaker = BreakerConfig {
        failure_threshold: 1,
        ..longest_breaker()
    };
    let client = client_at_the_limits(&mock, breaker);
    mock.set_default_fault(Some(FaultPlan::error("server_error")));
    let failed = within(client.generate(ask("openai/gpt-4o-mini"))).await;
    assert!(failed.is_err());
    let rejected = within(client.generate(ask("openai/gpt-4o-mini"))).await;
    assert!(
        matches!(&rejected, Err(Error::Rejected { .. })),
        "{rejected:?}"
    );
    // Its message and status print a half-open time past any clock.
    let said = rejected.unwrap_err().to_string();
    assert!(said.contains("open, half-opens in"), "{said}");
    let status = within(client.breakers().status("openai")).await.unwrap();
    assert_eq!(status.state, steer_llm::BreakerState::Open);
    // A group with its only target open for ever fails at once, typed,
    // rather than wait for it (no deadline; at most 10 minutes without one).
    let grouped = within(client.generate(ask("group/g"))).await;
    assert!(
        matches!(
            &grouped,
            Err(Error::GroupExhausted {
                back_in: Some(_),
                ..
            })
        ),
        "{grouped:?}"
    );
    let grouped = within(streamed(&client, "group/g")).await;
    assert!(
        matches!(&grouped, Err(Error::GroupExhausted { .. })),
        "{grouped:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_of_zero_fail_each_attempt_with_a_typed_error() {
    // A server that takes its time (a zero timeout still gives bytes already
    // arriving a last look of a few milliseconds).
    let slow = FaultPlan::normal().with_latency(Duration::from_millis(300));
    let mock = MockServer::builder()
        .default_fault(slow)
        .start_background()
        .unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .attempt_timeout(Some(Duration::ZERO))
        .stream_timeouts(
            Some(Duration::ZERO),
            Some(Duration::ZERO),
            Some(Duration::ZERO),
        )
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let reply = within(client.generate(ask("openai/gpt-4o-mini"))).await;
    let kind = reply.as_ref().map_err(Error::kind);
    assert_eq!(kind.err(), Some("timeout"), "{reply:?}");
    let streamed = within(streamed(&client, "openai/gpt-4o-mini")).await;
    let kind = streamed.as_ref().map_err(Error::kind);
    assert_eq!(kind.err(), Some("timeout"), "{streamed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacities_at_their_largest_build_or_say_why_not() {
    let mock = MockServer::builder().start_background().unwrap();
    // As many requests in flight as a number holds: as good as no bound.
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .max_in_flight(usize::MAX, steer_llm::Overload::Reject)
        .build()
        .unwrap();
    let reply = within(client.generate(ask("openai/gpt-4o-mini"))).await;
    assert!(reply.is_ok(), "{reply:?}");
    // As many threads as a number holds: refused, not started.
    let built = Client::builder()
        .providers(mock.providers().unwrap())
        .arbiters(usize::MAX)
        .build();
    let said = built.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(said.contains("arbiters"), "{said}");
    let most = Client::builder()
        .providers(mock.providers().unwrap())
        .arbiters(steer_llm::runtime::MAX_ARBITERS + 1)
        .build();
    assert!(matches!(most, Err(Error::Config(_))));
}
