//! The reliability runtime under tokio's paused clock, with a scripted in-process
//! provider: every rule of the breaker, the retry coordinator and supervision.
#![cfg(feature = "mock")]

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use parking_lot::Mutex;
use steer_llm::runtime::{GenerateOptions, Overload, Rejection, TransitionEvent};
use steer_llm::{
    async_trait, Backoff, BreakerConfig, BreakerState, BudgetConfig, Category, ChatRequest,
    ChatResponse, Client, Error, EventStream, FailureKind, GiveUp, Jitter, Provider, ProviderError,
    Providers, RetryPolicy,
};
use tokio::time::Instant;

/// What the scripted provider does on one call.
#[derive(Clone)]
enum Step {
    Ok,
    Status(u16, Vec<(&'static str, String)>),
    Invalid,
    Sleep(Duration),
    Panic,
}

#[derive(Default)]
struct Script {
    steps: Mutex<VecDeque<Step>>,
    calls: AtomicUsize,
    call_times: Mutex<Vec<Instant>>,
    dropped: AtomicUsize,
    completed: AtomicUsize,
}

struct Scripted(Arc<Script>);

struct DropFlag(Arc<Script>, bool);
impl Drop for DropFlag {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn ok(req: &ChatRequest) -> ChatResponse {
    common::ok_reply(req, "fake")
}

fn status_error(
    req: &ChatRequest,
    status: u16,
    headers: &[(&'static str, String)],
) -> ProviderError {
    let body = match status {
        400 => {
            r#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#
        }
        429 => {
            r#"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
        }
        _ => r#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#,
    };
    let mut e = ProviderError::new(
        "fake",
        req.request_id.clone(),
        FailureKind::Status {
            status,
            body: Bytes::from_static(body.as_bytes()),
        },
    );
    for (k, v) in headers {
        e.headers.insert(*k, v.parse().unwrap());
    }
    e
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &str {
        "fake"
    }

    async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let script = self.0.clone();
        script.calls.fetch_add(1, Ordering::SeqCst);
        script.call_times.lock().push(Instant::now());
        let step = script.steps.lock().pop_front().unwrap_or(Step::Ok);
        let mut flag = DropFlag(script.clone(), false);
        let result = match step {
            Step::Ok => Ok(ok(req)),
            Step::Status(s, h) => Err(status_error(req, s, &h)),
            Step::Invalid => Err(status_error(req, 400, &[])),
            Step::Sleep(d) => {
                tokio::time::sleep(d).await;
                Ok(ok(req))
            }
            Step::Panic => panic!("provider bug"),
        };
        flag.1 = true;
        script.completed.fetch_add(1, Ordering::SeqCst);
        result
    }

    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        Ok(steer_llm::provider::stream_from_response(
            self.generate(req).await?,
        ))
    }
}

fn request() -> ChatRequest {
    ChatRequest::new("fake/model").unwrap().user("hi")
}

fn no_jitter(attempts: u32) -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff {
        max_attempts: attempts,
        base: Duration::from_millis(500),
        multiplier: 2.0,
        max_delay: Duration::from_secs(8),
        jitter: Jitter::None,
    })
}

fn breaker(threshold: u32, permits: u32) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: threshold,
        open_for: Duration::from_secs(30),
        half_open_permits: permits,
        success_threshold: 2,
        ..BreakerConfig::default()
    }
}

fn client(script: &Arc<Script>, b: ClientTweak) -> Client {
    let builder = Client::builder()
        .providers(Providers::new().with(Scripted(script.clone())))
        .arbiters(0)
        .retry(RetryPolicy::never())
        .breaker(breaker(3, 2));
    b(builder).build().unwrap()
}

type ClientTweak = fn(steer_llm::ClientBuilder) -> steer_llm::ClientBuilder;

fn push(script: &Script, steps: impl IntoIterator<Item = Step>) {
    script.steps.lock().extend(steps);
}

fn five_hundred() -> Step {
    Step::Status(500, vec![])
}

async fn state(client: &Client) -> BreakerState {
    client.breakers().status("fake/model").await.unwrap().state
}

/// Asserts a measured virtual-time gap: exact up to the timer wheel's 1 ms rounding.
#[track_caller]
fn assert_about(measured: Duration, expected: Duration) {
    assert!(
        measured >= expected && measured <= expected + Duration::from_millis(3),
        "measured {measured:?}, expected {expected:?}"
    );
}

/// Lets actor messages (one-way reports) be handled.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn rejected(result: Result<ChatResponse, Error>) -> Rejection {
    match result {
        Err(Error::Rejected { rejection, .. }) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn failed(result: Result<ChatResponse, Error>) -> Box<steer_llm::FailedRequest> {
    match result {
        Err(Error::Failed(f)) => f,
        other => panic!("expected a failed request, got {other:?}"),
    }
}

async fn open_then_half_open(client: &Client, script: &Script) {
    push(script, [five_hundred(), five_hundred(), five_hundred()]);
    for _ in 0..3 {
        let _ = client.generate(request()).await;
    }
    settle().await;
    assert_eq!(state(client).await, BreakerState::Open);
    // The timer wheel rounds deadlines up to the next millisecond.
    tokio::time::advance(Duration::from_millis(30_002)).await;
    settle().await;
    assert_eq!(state(client).await, BreakerState::HalfOpen);
}

#[actix_rt::test]
async fn opens_on_the_third_failure_with_threshold_three_and_not_before() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b);
    push(&script, [five_hundred(), five_hundred(), five_hundred()]);
    for expected in [
        BreakerState::Closed,
        BreakerState::Closed,
        BreakerState::Open,
    ] {
        assert!(client.generate(request()).await.is_err());
        settle().await;
        assert_eq!(state(&client).await, expected);
    }
    assert!(matches!(
        rejected(client.generate(request()).await),
        Rejection::Open { .. }
    ));
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
}

#[actix_rt::test]
async fn failures_older_than_the_window_are_forgotten() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b);
    push(&script, [five_hundred(), five_hundred()]);
    let _ = client.generate(request()).await;
    let _ = client.generate(request()).await;
    tokio::time::advance(Duration::from_secs(61)).await;
    push(&script, [five_hundred(), five_hundred()]);
    let _ = client.generate(request()).await;
    let _ = client.generate(request()).await;
    settle().await;
    assert_eq!(state(&client).await, BreakerState::Closed);
    push(&script, [five_hundred()]);
    let _ = client.generate(request()).await;
    settle().await;
    assert_eq!(state(&client).await, BreakerState::Open);
}

#[actix_rt::test]
async fn validation_errors_never_trip_the_breaker() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b);
    push(&script, std::iter::repeat_n(Step::Invalid, 20));
    for _ in 0..20 {
        let f = failed(client.generate(request()).await);
        assert_eq!(f.failure.category, Category::InvalidRequest);
        assert_eq!(f.reason, GiveUp::NotRetryable);
    }
    settle().await;
    assert_eq!(state(&client).await, BreakerState::Closed);
}

#[actix_rt::test]
async fn half_open_with_two_permits_lets_exactly_two_of_ten_through() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b);
    open_then_half_open(&client, &script).await;
    let before = script.calls.load(Ordering::SeqCst);
    push(
        &script,
        std::iter::repeat_n(Step::Sleep(Duration::from_secs(1)), 10),
    );
    let results = futures::future::join_all((0..10).map(|_| client.generate(request()))).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let busy = results
        .into_iter()
        .filter(|r| {
            matches!(
                r,
                Err(Error::Rejected {
                    rejection: Rejection::ProbesBusy,
                    ..
                })
            )
        })
        .count();
    assert_eq!((admitted, busy), (2, 8));
    assert_eq!(script.calls.load(Ordering::SeqCst) - before, 2);
}

#[actix_rt::test]
async fn the_success_threshold_closes_it_and_one_failure_reopens_it() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b);
    let events = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder(events.clone()).start();
    client
        .breakers()
        .subscribe("fake", recorder.recipient())
        .unwrap();

    open_then_half_open(&client, &script).await;
    assert!(client.generate(request()).await.is_ok());
    settle().await;
    assert_eq!(state(&client).await, BreakerState::HalfOpen);
    assert!(client.generate(request()).await.is_ok());
    settle().await;
    assert_eq!(state(&client).await, BreakerState::Closed);

    open_then_half_open(&client, &script).await;
    push(&script, [five_hundred()]);
    assert!(client.generate(request()).await.is_err());
    settle().await;
    assert_eq!(state(&client).await, BreakerState::Open);

    // The provider's one model fails alone: its failures span the provider,
    // so the provider's breaker moves with the model's, step for step.
    use BreakerState::*;
    for model in [None, Some("model".to_string())] {
        let seen: Vec<(BreakerState, BreakerState)> = events
            .lock()
            .iter()
            .filter(|e| e.model == model)
            .map(|e| (e.from, e.to))
            .collect();
        assert_eq!(
            seen,
            vec![
                (Closed, Open),
                (Open, HalfOpen),
                (HalfOpen, Closed),
                (Closed, Open),
                (Open, HalfOpen),
                (HalfOpen, Open)
            ],
            "{model:?}"
        );
    }
    assert!(events.lock().iter().all(|e| e.provider == "fake"));
}

struct Recorder(Arc<Mutex<Vec<TransitionEvent>>>);
impl Actor for Recorder {
    type Context = Context<Self>;
}
impl Handler<TransitionEvent> for Recorder {
    type Result = ();
    fn handle(&mut self, msg: TransitionEvent, _: &mut Context<Self>) {
        self.0.lock().push(msg);
    }
}

#[actix_rt::test]
async fn a_cancelled_probe_frees_its_permit() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b.breaker(breaker(3, 1)));
    open_then_half_open(&client, &script).await;
    push(&script, [Step::Sleep(Duration::from_secs(3600))]);
    let probe = tokio::time::timeout(Duration::from_secs(1), client.generate(request())).await;
    assert!(probe.is_err(), "the hanging probe was cut by the caller");
    settle().await;
    assert_eq!(
        script.dropped.load(Ordering::SeqCst),
        1,
        "its HTTP call was aborted"
    );
    // The permit came back: the next probe is admitted.
    assert!(client.generate(request()).await.is_ok());
    let metrics = client.metrics().await.unwrap();
    assert_eq!(metrics.provider("fake").unwrap().metrics.cancelled, 1);
}

#[actix_rt::test]
async fn retry_on_server_error_false_stops_retries_of_a_500() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| {
        b.retry(no_jitter(3).retry_on(Category::ServerError, false))
    });
    push(&script, [five_hundred(), five_hundred()]);
    let f = failed(client.generate(request()).await);
    assert_eq!(f.reason, GiveUp::CategoryDisabled);
    assert_eq!(f.attempts, 1);
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
}

#[actix_rt::test]
async fn max_attempts_three_means_three_calls_on_the_exact_schedule() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b.retry(no_jitter(3)).breaker(breaker(100, 1)));
    push(&script, [five_hundred(), five_hundred(), five_hundred()]);
    let f = failed(client.generate(request()).await);
    assert_eq!((f.attempts, f.reason), (3, GiveUp::AttemptsExhausted));
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
    let times = script.call_times.lock().clone();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps.len(), 2);
    assert_about(gaps[0], Duration::from_millis(500));
    assert_about(gaps[1], Duration::from_millis(1000));
    // The scheduled delays themselves are exact.
    let m = client.metrics().await.unwrap();
    assert_eq!(m.provider("fake").unwrap().metrics.backoff_seconds, 1.5);
    // Four attempts: base, base*2, base*4.
    let client4 = client_with_policy(&script, no_jitter(4));
    script.call_times.lock().clear();
    push(&script, std::iter::repeat_n(five_hundred(), 4));
    let _ = client4.generate(request()).await;
    let times = script.call_times.lock().clone();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps.len(), 3);
    for (gap, ms) in gaps.iter().zip([500, 1000, 2000]) {
        assert_about(*gap, Duration::from_millis(ms));
    }
    let m = client4.metrics().await.unwrap();
    assert_eq!(m.provider("fake").unwrap().metrics.backoff_seconds, 3.5);
}

fn client_with_policy(script: &Arc<Script>, policy: RetryPolicy) -> Client {
    Client::builder()
        .providers(Providers::new().with(Scripted(script.clone())))
        .arbiters(0)
        .retry(policy)
        .breaker(breaker(100, 1))
        .build()
        .unwrap()
}

#[actix_rt::test]
async fn a_429_with_retry_after_2_waits_2_seconds_without_jitter() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let policy = RetryPolicy::default(); // jittered backoff: the server's wait is used as is
    let client = client_with_policy(&script, policy);
    push(
        &script,
        [
            Step::Status(429, vec![("retry-after", "2".into())]),
            Step::Ok,
        ],
    );
    let started = Instant::now();
    assert!(client.generate(request()).await.is_ok());
    let times = script.call_times.lock().clone();
    assert_about(times[1] - times[0], Duration::from_secs(2));
    assert_about(started.elapsed(), Duration::from_secs(2));
}

#[actix_rt::test]
async fn a_retry_after_above_the_cap_fails_at_once_and_reports_the_wait() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client_with_policy(&script, RetryPolicy::default());
    push(
        &script,
        [Step::Status(429, vec![("retry-after", "3600".into())])],
    );
    let started = Instant::now();
    let f = failed(client.generate(request()).await);
    assert_eq!(started.elapsed(), Duration::ZERO, "no sleep");
    assert_eq!(
        f.reason,
        GiveUp::ServerWaitTooLong {
            wait: Duration::from_secs(3600)
        }
    );
    assert_eq!(f.failure.retry_after, Some(Duration::from_secs(3600)));
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
}

/// Two requests, the second starting 1 s after the first, whose first call
/// is answered 429 asking for 5 s with `x-ratelimit-remaining-requests:
/// remaining`: both succeed; returns the client and when each call was made,
/// from the start.
async fn two_requests_after_a_429(remaining: &str) -> (Client, Vec<Duration>) {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client_with_policy(&script, RetryPolicy::default());
    push(
        &script,
        [Step::Status(
            429,
            vec![
                ("retry-after", "5".into()),
                ("x-ratelimit-remaining-requests", remaining.into()),
            ],
        )],
    );
    let first = client.generate(request());
    let second = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        client.generate(request()).await
    };
    let started = Instant::now();
    let (a, b) = futures::join!(first, second);
    assert!(a.is_ok() && b.is_ok());
    let times = script
        .call_times
        .lock()
        .iter()
        .map(|t| *t - started)
        .collect();
    (client, times)
}

#[actix_rt::test]
async fn a_rate_limit_that_spends_the_key_pauses_every_request_to_the_provider() {
    let (client, times) = two_requests_after_a_429("0").await;
    assert_eq!(times.len(), 3);
    // The second request made its only call when the pause ended, at 5 s.
    assert!(
        times[1..].iter().all(|t| *t >= Duration::from_secs(5)),
        "{times:?}"
    );
    settle().await;
    assert_eq!(
        state(&client).await,
        BreakerState::Closed,
        "a rate limit is not a failure"
    );
}

#[actix_rt::test]
async fn a_rate_limit_while_capacity_is_left_is_that_calls_alone() {
    let (_, times) = two_requests_after_a_429("12").await;
    assert_eq!(times.len(), 3);
    // The second request went at 1 s, unpaused; the first waited its own 5 s.
    assert!(times[1] < Duration::from_secs(2), "{times:?}");
    assert!(times[2] >= Duration::from_secs(5), "{times:?}");
}

#[actix_rt::test]
async fn the_retry_budget_stops_a_retry_storm() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = Client::builder()
        .providers(Providers::new().with(Scripted(script.clone())))
        .arbiters(0)
        .retry(no_jitter(5))
        .breaker(breaker(100_000, 1))
        .retry_budget(BudgetConfig {
            ratio: 0.1,
            min_retries_per_sec: 0,
            window: Duration::from_secs(60),
        })
        .build()
        .unwrap();
    push(&script, std::iter::repeat_n(five_hundred(), 1000));
    let results = futures::future::join_all((0..100).map(|_| client.generate(request()))).await;
    let exhausted = results
        .into_iter()
        .filter(|r| matches!(r, Err(Error::Failed(f)) if f.reason == GiveUp::BudgetExhausted))
        .count();
    let calls = script.calls.load(Ordering::SeqCst);
    // 100 requests may add at most 10 retries, instead of 400.
    assert!(calls <= 110, "{calls} calls");
    assert!(exhausted >= 90, "{exhausted}");
    let m = client.metrics().await.unwrap();
    let m = &m.provider("fake").unwrap().metrics;
    assert!(m.budget_rejections >= 90);
    assert_eq!(m.total_attempts() as usize, calls);
}

#[actix_rt::test]
async fn a_panic_in_the_provider_is_that_requests_error() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b);
    push(&script, [Step::Panic]);
    match client.generate(request()).await {
        Err(Error::Panicked {
            message, attempts, ..
        }) => {
            assert_eq!(message, "provider bug");
            assert_eq!(attempts, 1);
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    // The system goes on.
    assert!(client.generate(request()).await.is_ok());
}

#[actix_rt::test]
async fn in_flight_requests_are_bounded() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b.max_in_flight(2, Overload::Reject));
    push(
        &script,
        std::iter::repeat_n(Step::Sleep(Duration::from_secs(1)), 3),
    );
    let results = futures::future::join_all((0..3).map(|_| client.generate(request()))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    assert!(results
        .iter()
        .any(|r| matches!(r, Err(Error::Overloaded { max_in_flight: 2 }))));

    let waiting = client_wait(&script);
    push(
        &script,
        std::iter::repeat_n(Step::Sleep(Duration::from_secs(1)), 3),
    );
    let started = Instant::now();
    let results = futures::future::join_all((0..3).map(|_| waiting.generate(request()))).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_about(started.elapsed(), Duration::from_secs(2)); // the third waited for a slot
}

fn client_wait(script: &Arc<Script>) -> Client {
    Client::builder()
        .providers(Providers::new().with(Scripted(script.clone())))
        .arbiters(0)
        .retry(RetryPolicy::never())
        .max_in_flight(2, Overload::Wait)
        .build()
        .unwrap()
}

#[actix_rt::test]
async fn deadlines_and_attempt_timeouts() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client_with_policy(&script, no_jitter(3));
    push(&script, [Step::Sleep(Duration::from_secs(60))]);
    let started = Instant::now();
    let result = client
        .generate_with(
            request(),
            GenerateOptions::default().deadline(Duration::from_secs(2)),
        )
        .await;
    assert!(
        matches!(result, Err(Error::DeadlineExceeded { attempts: 1, .. })),
        "{result:?}"
    );
    assert_about(started.elapsed(), Duration::from_secs(2));

    // An attempt timeout is a retryable timeout.
    push(&script, [Step::Sleep(Duration::from_secs(60)), Step::Ok]);
    let started = Instant::now();
    let result = client
        .generate_with(
            request(),
            GenerateOptions::default().attempt_timeout(Duration::from_secs(1)),
        )
        .await;
    assert!(result.is_ok(), "{result:?}");
    assert_about(started.elapsed(), Duration::from_millis(1500));

    // No retry is scheduled that would end after the deadline.
    push(&script, [five_hundred(), five_hundred()]);
    let result = client
        .generate_with(
            request(),
            GenerateOptions::default().deadline(Duration::from_millis(300)),
        )
        .await;
    let f = failed(result);
    assert_eq!(f.reason, GiveUp::Deadline);
}

#[actix_rt::test]
async fn per_request_overrides_apply() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b);
    client
        .breakers()
        .force("fake", BreakerState::ForcedOpen)
        .unwrap();
    settle().await;
    assert!(matches!(
        rejected(client.generate(request()).await),
        Rejection::ForcedOpen
    ));
    // Breaker off for this request: it goes through.
    let opts = GenerateOptions::default().breaker(false);
    assert!(client.generate_with(request(), opts).await.is_ok());
    // A request's own retry policy.
    client.breakers().reset("fake").unwrap();
    push(&script, [five_hundred(), Step::Ok]);
    let opts = GenerateOptions::default().retry(no_jitter(2));
    assert!(client.generate_with(request(), opts).await.is_ok());
}

#[actix_rt::test]
async fn generate_is_a_message_a_users_actor_can_send() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b);
    let router = client.router();
    let reply = router
        .send(steer_llm::Generate::new(request()))
        .await
        .unwrap();
    assert_eq!(reply.unwrap().text, "ok");
    let reply = router
        .send(steer_llm::Generate::new(
            ChatRequest::new("nope/x").unwrap().user("hi"),
        ))
        .await
        .unwrap();
    assert!(matches!(reply, Err(Error::UnknownProvider { .. })));
}

#[actix_rt::test]
async fn metrics_count_attempts_successes_and_retries() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client_with_policy(&script, no_jitter(3));
    push(&script, [five_hundred(), Step::Ok, Step::Invalid]);
    assert!(client.generate(request()).await.is_ok());
    assert!(client.generate(request()).await.is_err());
    settle().await;
    let snapshot = client.metrics().await.unwrap();
    let m = &snapshot.provider("fake").unwrap().metrics;
    assert_eq!(m.requests, 2);
    assert_eq!(m.attempts.get("success"), Some(&1));
    assert_eq!(m.attempts.get("server_error"), Some(&1));
    assert_eq!(m.attempts.get("invalid_request"), Some(&1));
    assert_eq!(m.successes_after_retry, 1);
    assert_eq!(m.final_failures.get("invalid_request"), Some(&1));
    assert_eq!(m.retries, 1);
    assert!((m.backoff_seconds - 0.5).abs() < 1e-9);
    // The Prometheus families say the same, by model, with latency histograms.
    let text = client.prometheus_text();
    for line in [
        r#"steer_attempts_total{provider="fake",model="model",outcome="server_error"} 1"#,
        r#"steer_attempts_total{provider="fake",model="model",outcome="success"} 1"#,
        r#"steer_attempt_duration_seconds_count{provider="fake",model="model",outcome="invalid_request"} 1"#,
        r#"steer_requests_total{provider="fake",model="model",outcome="success"} 1"#,
        r#"steer_requests_total{provider="fake",model="model",outcome="invalid_request"} 1"#,
        r#"steer_retries_total{provider="fake",model="model",outcome="server_error"} 1"#,
        r#"steer_backoff_seconds_total{provider="fake"} 0.5"#,
        r#"steer_breaker_state{provider="fake",model=""} 0"#,
        r#"steer_in_flight_requests{provider="fake"} 0"#,
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    let json = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(json["providers"][0]["metrics"]["successes"], 1);
}

/// A provider whose stream panics after its first text.
struct PanicsMidStream;

#[async_trait]
impl Provider for PanicsMidStream {
    fn name(&self) -> &str {
        "fake"
    }
    async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        Ok(ok(req))
    }
    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let start = steer_llm::ProviderEvent::Start {
            request_id: req.request_id.clone(),
            provider: "fake".into(),
            model: "m".into(),
            provider_request_id: None,
        };
        let delta = steer_llm::ProviderEvent::TextDelta {
            text: "Hello".into(),
            offset: 0,
        };
        let first: Vec<Result<steer_llm::ProviderEvent, ProviderError>> =
            vec![Ok(start), Ok(delta)];
        let events = futures::StreamExt::chain(
            futures::stream::iter(first),
            futures::stream::poll_fn(
                |_| -> std::task::Poll<Option<Result<steer_llm::ProviderEvent, ProviderError>>> {
                    panic!("decoder bug")
                },
            ),
        );
        Ok(Box::pin(events))
    }
}

#[actix_rt::test]
async fn a_panic_inside_a_stream_is_that_streams_error_with_its_partial_text() {
    use futures::StreamExt;
    let client = Client::builder()
        .providers(Providers::new().with(PanicsMidStream))
        .arbiters(0)
        .build()
        .unwrap();
    let mut stream = client.stream(request()).await.unwrap();
    let mut text = String::new();
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(steer_llm::StreamEvent::TextDelta { text: t, .. }) => text.push_str(&t),
            Ok(_) => {}
            Err(e) => error = Some(e),
        }
    }
    assert_eq!(text, "Hello");
    let error = error.expect("the stream ends with an error, not silently");
    assert_eq!(error.partial_text(), Some("Hello"));
    assert!(error.to_string().contains("panicked"), "{error}");
    // The system goes on.
    assert!(client.generate(request()).await.is_ok());
}

/// While the breaker admits every call, a request takes its permit from the
/// breaker's gate without a message; a pause or an open breaker shuts the gate (the
/// actor decides again), the pause's end opens it, and every pass is counted.
#[actix_rt::test]
async fn the_breakers_gate_admits_without_asking_only_while_closed_and_unpaused() {
    use steer_actors::breaker::{BreakerRef, CallOutcome, CircuitBreaker, GetStatus, Pause};
    tokio::time::pause();
    let breaker = BreakerRef::start(CircuitBreaker::new("p", breaker(1, 1)), &Arbiter::current());
    let m: Arc<str> = Arc::from("m");
    let pause = |secs| Pause {
        model: m.clone(),
        wait: Duration::from_secs(secs),
        from_fleet: false,
    };
    // The first call to a model asks (the actor starts keeping its state); then
    // its gate answers.
    assert!(breaker.pass(&m).is_none(), "a model not seen yet: ask");
    drop(breaker.acquire(&m).await.unwrap().unwrap());
    let before_the_pause = breaker.pass(&m).expect("a closed breaker's gate is open");
    breaker.addr().do_send(pause(2));
    settle().await;
    assert!(breaker.pass(&m).is_none(), "paused: ask");
    let asked = breaker.acquire(&m).await.unwrap();
    assert!(matches!(asked, Err(Rejection::Paused { .. })), "{asked:?}");
    // A later end moves the pause; an earlier one changes nothing.
    breaker.addr().do_send(pause(3));
    breaker.addr().do_send(pause(1));
    settle().await;
    tokio::time::advance(Duration::from_millis(2_002)).await;
    settle().await;
    assert!(breaker.pass(&m).is_none(), "paused until 3 s");
    tokio::time::advance(Duration::from_millis(1_000)).await;
    settle().await;
    let lease = breaker
        .pass(&m)
        .expect("the gate opens when the pause ends");
    lease.report(CallOutcome::HealthFailure);
    settle().await;
    assert!(breaker.pass(&m).is_none(), "open: ask");
    // A pass from before the change cannot move the new state.
    before_the_pause.report(CallOutcome::Success {
        elapsed: Duration::from_millis(1),
    });
    settle().await;
    let status = breaker
        .addr()
        .send(GetStatus {
            model: Some("m".into()),
        })
        .await
        .unwrap();
    assert_eq!(status.state, BreakerState::Open);
    assert_eq!(status.stats.admitted, 3, "passes count when they report");
    assert_eq!(status.stats.rejected, 1);
    assert_eq!((status.stats.failures, status.stats.successes), (1, 1));
}

/// A client on the caller's arbiter (`arbiters(0)`) may be called from any task on
/// that thread, including a plain `tokio::spawn`ed one outside actix's task set.
#[actix_rt::test]
async fn a_client_on_this_arbiter_serves_a_plain_tokio_task_too() {
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b);
    let from_tokio = tokio::spawn({
        let client = client.clone();
        async move {
            let reply = client.generate(request()).await;
            let mut stream = client.stream(request()).await?;
            let mut streamed = String::new();
            while let Some(event) = futures::StreamExt::next(&mut stream).await {
                if let steer_llm::StreamEvent::TextDelta { text, .. } = event? {
                    streamed.push_str(&text);
                }
            }
            Ok::<_, Error>((reply?.text, streamed))
        }
    });
    let (generated, streamed) = from_tokio.await.unwrap().unwrap();
    assert_eq!((generated.as_str(), streamed.as_str()), ("ok", "ok"));
    assert_eq!(client.generate(request()).await.unwrap().text, "ok");
}

#[actix_rt::test]
async fn a_deadline_that_cuts_an_attempt_is_a_deadline_on_a_real_clock_and_is_counted() {
    // A real clock: the deadline and the attempt timeout are read once, so the
    // cut is always named as the deadline (two readings used to disagree).
    let script = Arc::new(Script::default());
    let client = client_with_policy(&script, no_jitter(3));
    let runs = 10;
    push(
        &script,
        std::iter::repeat_n(Step::Sleep(Duration::from_secs(60)), runs),
    );
    for run in 0..runs {
        let result = client
            .generate_with(
                request(),
                GenerateOptions::default()
                    .deadline(Duration::from_millis(20))
                    .attempt_timeout(Duration::from_secs(30)),
            )
            .await;
        assert!(
            matches!(result, Err(Error::DeadlineExceeded { attempts: 1, .. })),
            "run {run}: {result:?}"
        );
    }
    settle().await;
    let m = client.metrics().await.unwrap();
    let metrics = &m.provider("fake").unwrap().metrics;
    assert_eq!(
        metrics.attempts.get("deadline_exceeded"),
        Some(&(runs as u64))
    );
    assert_eq!(
        metrics.total_attempts(),
        runs as u64,
        "every call is counted"
    );
    // The caller's deadline says nothing about the provider's health.
    assert_eq!(state(&client).await, BreakerState::Closed);
}

#[actix_rt::test]
async fn reset_closes_the_breaker_and_empties_its_counters() {
    tokio::time::pause();
    let script = Arc::new(Script::default());
    let client = client(&script, |b| b);
    push(&script, std::iter::repeat_n(five_hundred(), 3));
    for _ in 0..3 {
        let _ = client.generate(request()).await;
    }
    settle().await;
    let before = client.breakers().status("fake/model").await.unwrap();
    assert_eq!(before.state, BreakerState::Open);
    assert!(before.stats.failures == 3 && before.stats.opened == 1);
    client.breakers().reset("fake").unwrap();
    let after = client.breakers().status("fake/model").await.unwrap();
    assert_eq!(after.state, BreakerState::Closed);
    assert_eq!(after.stats, steer_llm::runtime::BreakerStats::default());
}
