//! Extreme settings over real HTTP against the mock: every duration a user can
//! set at its largest (a deadline, timeouts, breaker windows and open times,
//! backoff caps, the longest server wait) means "no bound", never a panic from
//! adding it to the clock; at zero, a timeout fails its attempt with a typed
//! error. A property draws every duration setting (a client's and a
//! request's) from zero to past the clock, alone or all alike: each call
//! succeeds when every bound has room, else fails typed as out of time.
//! Every wait here is a hang detector, not a speed assertion.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::within;
use futures::StreamExt;
use proptest::prelude::*;
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

/// A duration a user could set, from none to past the clock (the largest
/// drawn more often: a bound is the least of several durations).
fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        1 => Just(Duration::ZERO),
        1 => Just(Duration::from_millis(1)),
        2 => Just(Duration::from_secs(1)),
        1 => Just(Duration::from_secs(3_600)),
        1 => Just(Duration::from_secs(86_400 * 365)),
        2 => Just(Duration::from_secs(u64::MAX / 2)),
        4 => Just(MAX),
    ]
}

/// Every duration setting of one client and its request.
#[derive(Debug, Clone)]
struct Durations {
    attempt_timeout: Duration,
    /// The client's deadline, or none.
    deadline: Option<Duration>,
    stream: [Duration; 3],
    lease: Duration,
    server_wait: Duration,
    total_backoff: Duration,
    max_delay: Duration,
    breaker: [Duration; 5],
    hedge: Duration,
    /// The request's own deadline and stream timeouts, if it sets them.
    per_request: Option<[Duration; 3]>,
}

/// Each setting its own duration, or (a third of the cases) one duration
/// for all of them.
fn durations() -> impl Strategy<Value = Durations> {
    prop_oneof![
        2 => each_its_own(),
        1 => any_duration().prop_map(|d| Durations {
            attempt_timeout: d,
            // The largest bound, or none at all.
            deadline: (d != MAX).then_some(d),
            stream: [d; 3],
            lease: d,
            server_wait: d,
            total_backoff: d,
            max_delay: d,
            breaker: [d; 5],
            hedge: d,
            per_request: Some([d; 3]),
        }),
    ]
}

fn each_its_own() -> impl Strategy<Value = Durations> {
    let d = any_duration;
    (
        (d(), prop::option::of(d()), [d(), d(), d()], d()),
        (d(), d(), d(), [d(), d(), d(), d(), d()], d()),
        prop::option::of([d(), d(), d()]),
    )
        .prop_map(
            |(
                (attempt_timeout, deadline, stream, lease),
                (server_wait, total_backoff, max_delay, breaker, hedge),
                per_request,
            )| Durations {
                attempt_timeout,
                deadline,
                stream,
                lease,
                server_wait,
                total_backoff,
                max_delay,
                breaker,
                hedge,
                per_request,
            },
        )
}

impl Durations {
    /// Whether every bound on a call is long enough for the mock's prompt
    /// reply (a second at least): then every call must succeed.
    fn roomy(&self) -> bool {
        [self.attempt_timeout]
            .iter()
            .chain(&self.deadline)
            .chain(&self.stream)
            .chain(self.per_request.iter().flatten())
            .all(|d| *d >= Duration::from_secs(1))
    }

    fn client(&self, mock: &MockServer) -> Result<Client, Error> {
        let [window, slow, open_for, max_open_for, max_pause] = self.breaker;
        let [first, idle, total] = self.stream;
        Client::builder()
            .providers(mock.providers().unwrap())
            .attempt_timeout(Some(self.attempt_timeout))
            .deadline(self.deadline)
            .stream_timeouts(Some(first), Some(idle), Some(total))
            .budget_lease(self.lease)
            .retry(RetryPolicy {
                max_server_wait: self.server_wait,
                max_total_backoff: Some(self.total_backoff),
                ..RetryPolicy::default().backoff(Backoff {
                    max_attempts: 2,
                    base: Duration::from_millis(1),
                    multiplier: 2.0,
                    max_delay: self.max_delay,
                    jitter: Jitter::Full,
                })
            })
            .breaker(BreakerConfig {
                window,
                slow_call_threshold: slow,
                open_for,
                max_open_for,
                max_pause,
                ..BreakerConfig::default()
            })
            .group(
                "g",
                Group::new(["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"])?
                    .hedge(steer_llm::route::hedge::Hedge::after(self.hedge)),
            )
            .build()
    }

    fn options(&self) -> GenerateOptions {
        match self.per_request {
            None => GenerateOptions::default(),
            Some([deadline, first, idle]) => GenerateOptions::default()
                .deadline(deadline)
                .first_token_timeout(first)
                .idle_timeout(idle),
        }
    }
}

/// Whether `e` says the request ran out of time: itself, or every target of
/// its group.
fn timed_out(e: &Error) -> bool {
    match e {
        Error::GroupExhausted { steps, .. } => {
            !steps.is_empty()
                && steps
                    .iter()
                    .all(|s| TIMED_OUT.contains(&s.outcome.as_str()))
        }
        e => TIMED_OUT.contains(&e.kind()),
    }
}

const TIMED_OUT: [&str; 2] = ["timeout", "deadline_exceeded"];

/// A request, a stream and a group request with `d`'s settings: each
/// succeeds when every bound has room, else succeeds or fails `timeout` (or
/// `deadline_exceeded`);
/// a client the settings cannot make is a configuration error. Never a
/// panic (it would surface as another kind, or fail the test) nor a hang.
async fn check_durations(mock: &MockServer, d: &Durations) -> Result<(), String> {
    let client = match d.client(mock) {
        Ok(c) => c,
        Err(Error::Config(_)) => return Ok(()),
        Err(e) => return Err(format!("building: {e}")),
    };
    for model in ["openai/gpt-4o-mini", "group/g"] {
        let reply = within(client.generate_with(ask(model), d.options())).await;
        let stream = within(client.stream_with(ask(model), d.options())).await;
        let streamed = match stream {
            Ok(mut s) => {
                let mut end = Ok(());
                while let Some(event) = within(s.next()).await {
                    if let Err(e) = event {
                        end = Err(e);
                        break;
                    }
                }
                end
            }
            Err(e) => Err(e),
        };
        let outcomes = [("generate", reply.map(|_| ())), ("stream", streamed)];
        for (what, outcome) in outcomes {
            match outcome {
                Ok(()) => {}
                Err(e) if !d.roomy() && timed_out(&e) => {}
                Err(e) => return Err(format!("{model} {what}: {} ({e})", e.kind())),
            }
        }
    }
    Ok(())
}

#[test]
fn every_duration_from_zero_to_past_the_clock_bounds_or_fails_typed() {
    common::mock_property(durations(), 48, |runtime, mock, d, _| {
        runtime.block_on(check_durations(mock, d))
    });
}
