//! A provider that is slow or half-failing rather than down, over real HTTP
//! against the mock: retries throttled while failures outrun successes, a
//! group's failing target ejected from its rotation, and concurrency that
//! adapts per deployment.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::{quick_builder, within};
use steer_llm::cost::Fate;
use steer_llm::limit::{LimitConfig, LimitRejection};
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::route::hedge::Hedge;
use steer_llm::route::outliers::{EjectReason, OutlierConfig};
use steer_llm::runtime::group::Group;
use steer_llm::runtime::EjectionEvent;
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

/// Collects the ejection events it is sent.
struct Recorder(std::sync::Arc<parking_lot::Mutex<Vec<EjectionEvent>>>);

impl actix::Actor for Recorder {
    type Context = actix::Context<Self>;
}

impl actix::Handler<EjectionEvent> for Recorder {
    type Result = ();
    fn handle(&mut self, e: EjectionEvent, _: &mut actix::Context<Self>) {
        self.0.lock().push(e);
    }
}

#[actix_rt::test]
async fn a_group_ejects_its_failing_target_never_more_than_its_share_and_takes_it_back() {
    use actix::Actor;
    let mocks: Vec<MockServer> = (0..5)
        .map(|_| MockServer::builder().start_background().unwrap())
        .collect();
    let names = ["bad1", "bad2", "g1", "g2", "g3"];
    let mut providers = steer_llm::Providers::new();
    for (name, mock) in names.iter().zip(&mocks) {
        providers = providers.with(common::deployment(name, mock));
    }
    for bad in &mocks[..2] {
        bad.set_default_fault(Some(FaultPlan::error("server_error")));
    }
    let targets: Vec<String> = names.iter().map(|n| format!("{n}/gpt-4o-mini")).collect();
    let outliers = OutlierConfig {
        consecutive_failures: 3,
        max_ejected_percent: 20,
        interval: Duration::from_millis(20),
        base_ejection: Duration::from_millis(500),
        ..OutlierConfig::default()
    };
    let client = quick_builder(providers, 1)
        .group(
            "fast",
            Group::new(&targets).unwrap().eject_outliers(outliers),
        )
        .build()
        .unwrap();
    let events = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    client.subscribe_ejections(Recorder(events.clone()).start().recipient());
    let ask = || ChatRequest::new("group/fast").unwrap().user("hi");
    // Three requests: each fails at bad1 and bad2, and g1 answers.
    for _ in 0..3 {
        let reply = within(client.generate(ask())).await.unwrap();
        assert_eq!(reply.provider, "g1");
    }
    let bad1: steer_llm::model::ModelId = targets[0].parse().unwrap();
    assert!(
        common::eventually(|| async { !client.ejected("fast").is_empty() }).await,
        "bad1 ejected"
    );
    let out = client.ejected("fast");
    // One of five is the 20% share: bad2 failed as often, and stays in.
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, bad1);
    assert!(out[0].1 <= Duration::from_millis(500));
    // The status (`/reliability`) shows it too.
    let status = client.metrics().await.unwrap();
    let ejected: Vec<&str> = status.groups[0]
        .ejected
        .iter()
        .map(|e| e.target.as_str())
        .collect();
    assert_eq!(
        (status.groups[0].group.as_str(), ejected),
        ("fast", vec![targets[0].as_str()])
    );
    let reply = within(client.generate(ask())).await.unwrap();
    let tried: Vec<&str> = reply.route.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(tried, [&targets[1], &targets[2]], "bad1 skipped");
    assert_eq!((mocks[0].request_count(), mocks[1].request_count()), (3, 4));
    assert!(client
        .prometheus_text()
        .contains(r#"steer_ejections_total{group="fast",target="bad1/gpt-4o-mini",reason="consecutive_failures"} 1"#));
    // Back after its 500 ms, at an interval's end; the subscriber saw both.
    assert!(
        common::eventually(|| async {
            events
                .lock()
                .iter()
                .any(|e| matches!(e, EjectionEvent::Back { target, .. } if *target == bad1))
        })
        .await,
        "{:?}",
        events.lock()
    );
    assert!(client.ejected("fast").is_empty());
    let seen = events.lock().clone();
    assert!(
        matches!(&seen[0], EjectionEvent::Ejected { group, ejection } if group == "fast"
            && ejection.target == bad1
            && ejection.reason == EjectReason::ConsecutiveFailures(3)),
        "{seen:?}"
    );
    let reply = within(client.generate(ask())).await.unwrap();
    assert_eq!(reply.route[0].target, targets[0], "bad1 tried again");
}

/// Waits (bounded) until `provider`'s bulkhead shows `running` calls and
/// `waiting` in its queue; `false` if it never does.
async fn bulkhead_at(
    client: &steer_llm::Client,
    provider: &str,
    running: u32,
    waiting: usize,
) -> bool {
    common::eventually(|| async {
        let s = client.limit_status(provider).await.unwrap().unwrap();
        (s.in_flight, s.queued) == (running, waiting)
    })
    .await
}

/// Two deployments named `names`, each a mock of its own, in a group `fast`
/// (in order, adjusted by `group`), the client's builder adjusted by `adjust`
/// (one attempt a target, breakers that never open).
fn pair(
    names: [&str; 2],
    group: impl FnOnce(Group) -> Group,
    adjust: impl FnOnce(steer_llm::ClientBuilder) -> steer_llm::ClientBuilder,
) -> (MockServer, MockServer, steer_llm::Client) {
    let mocks = [(); 2].map(|_| MockServer::builder().start_background().unwrap());
    let mut providers = steer_llm::Providers::new();
    for (name, mock) in names.iter().zip(&mocks) {
        providers = providers.with(common::deployment(name, mock));
    }
    let targets = names.map(|n| format!("{n}/gpt-4o-mini"));
    let builder = quick_builder(providers, 1).group("fast", group(Group::new(targets).unwrap()));
    let client = adjust(builder).build().unwrap();
    let [first, second] = mocks;
    (first, second, client)
}

/// A limit of `n` slots that stays `n` (min = max), `queue` waiting, 150 ms.
fn fixed(n: u32, queue: u32) -> LimitConfig {
    LimitConfig {
        initial: n,
        min: n,
        max: n,
        max_queue: queue,
        queue_timeout: Duration::from_millis(150),
        ..LimitConfig::default()
    }
}

fn concurrency_rejection(r: &Result<steer_llm::ChatResponse, Error>) -> Option<LimitRejection> {
    match r {
        Err(Error::Rejected {
            rejection: steer_llm::runtime::Rejection::ConcurrencyLimit(why),
            ..
        }) => Some(*why),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_falls_on_429s_grows_back_on_clean_completions_and_a_spent_header_caps_it() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = quick_builder(mock.providers().unwrap(), 1)
        .adaptive_limit(LimitConfig {
            initial: 10,
            ..LimitConfig::default()
        })
        .build()
        .unwrap();
    let limit = || async { client.limit_status("openai").await.unwrap().unwrap() };
    assert_eq!(limit().await.limit, 10);
    // A call's 429 (capacity left in its headers), one after another: each
    // call started after the last cut, so each cuts (the first, ending slow
    // start, × 0.5, the others × 0.9).
    for expected in [5, 4, 3] {
        mock.push_faults([FaultPlan::error("rate_limit")
            .retry_after("0")
            .capacity_left()]);
        let _ = within(client.generate(ask())).await;
        assert!(
            common::eventually(|| async { limit().await.limit == expected }).await,
            "{:?}",
            limit().await
        );
    }
    // A server error says nothing about capacity.
    mock.push_faults([FaultPlan::error("server_error")]);
    let _ = within(client.generate(ask())).await;
    let status = limit().await;
    assert_eq!((status.limit, status.in_flight), (3, 0));
    // Clean completions grow it back, each by one over the limit, only while
    // at least half of it is in use: batches of calls that overlap (the
    // first of a batch of n ends with n running, the last with one).
    let mut seen = Vec::new();
    for n in [2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4] {
        let slow = FaultPlan::normal().with_latency(Duration::from_millis(100));
        mock.push_faults(vec![slow; n]);
        let calls = (0..n).map(|_| client.generate(ask()));
        let ends = within(futures::future::join_all(calls)).await;
        assert!(ends.iter().all(Result::is_ok));
        let drained = common::eventually(|| async { limit().await.in_flight == 0 }).await;
        assert!(drained, "{:?}", limit().await);
        seen.push(limit().await.limit);
    }
    // Pairs: 3 -> 3.33 -> 3.63 -> 3.91 -> 4.16, then none (2 running is
    // under half of 4.16); fours: two ends of each grow it.
    assert_eq!(seen, [3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6]);
    // A 429 whose headers say nothing is left (tokens until 1m30s): capped
    // at the one call running, at once.
    mock.push_faults([FaultPlan::error("rate_limit").retry_after("0")]);
    let _ = within(client.generate(ask())).await;
    assert!(common::eventually(|| async { limit().await.limit == 1 }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_calls_wait_by_priority_a_full_queue_refuses_and_a_wait_times_out() {
    let mock = MockServer::builder()
        .record_requests(true)
        .start_background()
        .unwrap();
    let client = quick_builder(mock.providers().unwrap(), 1)
        .adaptive_limit(LimitConfig {
            queue_timeout: Duration::from_secs(10),
            ..fixed(1, 2)
        })
        .build()
        .unwrap();
    let slow = FaultPlan::normal().with_latency(Duration::from_millis(100));
    let said = |text: &str| ChatRequest::new("openai/gpt-4o-mini").unwrap().user(text);
    let with = |p: i32| steer_llm::runtime::GenerateOptions::default().priority(p);
    mock.set_default_fault(Some(slow));
    let running = client.generate(said("first"));
    let low = client.generate_with(said("low"), with(0));
    let high = client.generate_with(said("high"), with(5));
    let refused = client.generate(said("refused"));
    let (running, low, high, refused) = within(async {
        let running = tokio::spawn(running);
        // The first holds the one slot; the others queue behind it in turn.
        assert!(bulkhead_at(&client, "openai", 1, 0).await);
        let low = tokio::spawn(low);
        assert!(bulkhead_at(&client, "openai", 1, 1).await);
        let high = tokio::spawn(high);
        assert!(bulkhead_at(&client, "openai", 1, 2).await);
        let refused = refused.await;
        (
            running.await.unwrap(),
            low.await.unwrap(),
            high.await.unwrap(),
            refused,
        )
    })
    .await;
    assert_eq!(
        concurrency_rejection(&refused),
        Some(LimitRejection::QueueFull { limit: 1, queue: 2 }),
        "a full queue refuses at once: {refused:?}"
    );
    let refused = refused.unwrap_err();
    assert_eq!(refused.kind(), "overloaded", "not a breaker's: {refused}");
    assert!(refused.to_string().contains("overloaded"), "{refused}");
    assert!(
        running.is_ok() && high.is_ok() && low.is_ok(),
        "{high:?} {low:?}"
    );
    // "high" went before "low", which came first; "refused" was never sent.
    let order: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| {
            r.body["messages"][0]["content"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(order, ["first", "high", "low"], "{order:?}");

    // A wait that runs out: one slot held 2 s, a 150 ms wait.
    let client = quick_builder(mock.providers().unwrap(), 1)
        .adaptive_limit(fixed(1, 2))
        .build()
        .unwrap();
    mock.set_default_fault(Some(
        FaultPlan::normal().with_latency(Duration::from_secs(2)),
    ));
    let holder = tokio::spawn(client.generate(said("holder")));
    assert!(bulkhead_at(&client, "openai", 1, 0).await);
    let waited = within(client.generate(said("waiter"))).await;
    assert_eq!(
        concurrency_rejection(&waited),
        Some(LimitRejection::TimedOut { limit: 1 }),
        "{waited:?}"
    );
    assert!(!holder.is_finished(), "refused before the slot freed");
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_group_a_target_at_its_limit_passes_the_request_on_at_once() {
    let (first, _second, client) = pair(
        ["one", "two"],
        |g| g,
        |b| b.adaptive_limit_for("one", fixed(1, 10)),
    );
    first.set_default_fault(Some(
        FaultPlan::normal().with_latency(Duration::from_millis(300)),
    ));
    let ask = || ChatRequest::new("group/fast").unwrap().user("hi");
    let holder = tokio::spawn(client.generate(ask()));
    assert!(bulkhead_at(&client, "one", 1, 0).await);
    let reply = within(client.generate(ask())).await.unwrap();
    assert_eq!(reply.provider, "two");
    assert_eq!(reply.route[0].outcome, "concurrency_limit");
    assert_eq!(first.request_count(), 1, "not queued at one");
    assert_eq!(holder.await.unwrap().unwrap().provider, "one");
    assert_eq!(client.limit_status("two").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_group_the_last_target_left_queues_the_request_rather_than_fail_it() {
    let (first, second, client) = pair(
        ["one", "two"],
        |g| g,
        |b| {
            b.adaptive_limit(LimitConfig {
                queue_timeout: Duration::from_secs(10),
                ..fixed(1, 10)
            })
        },
    );
    let slow = FaultPlan::normal().with_latency(Duration::from_millis(200));
    first.set_default_fault(Some(slow.clone()));
    second.set_default_fault(Some(slow));
    let ask = || ChatRequest::new("group/fast").unwrap().user("hi");
    let a = tokio::spawn(client.generate(ask()));
    assert!(bulkhead_at(&client, "one", 1, 0).await);
    let b = tokio::spawn(client.generate(ask()));
    assert!(bulkhead_at(&client, "two", 1, 0).await);
    // Both at their limit: "one" passes it on, "two" (the last) queues it.
    let reply = within(client.generate(ask())).await.unwrap();
    let outcomes: Vec<&str> = reply.route.iter().map(|s| s.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        ["concurrency_limit", "answered"],
        "{:?}",
        reply.route
    );
    assert_eq!(reply.provider, "two");
    assert!(a.await.unwrap().is_ok() && b.await.unwrap().is_ok());
}

/// A group `fast` of `slow` (its replies `latency` late) and `quick`, in order,
/// hedged as `hedge` says; `slow` has an adaptive limit (to see its slot back).
fn hedged_pair(latency: Duration, hedge: Hedge) -> (MockServer, MockServer, steer_llm::Client) {
    hedged_pair_with(latency, hedge, |b| b)
}

/// [`hedged_pair`], its client's builder adjusted by `adjust`.
fn hedged_pair_with(
    latency: Duration,
    hedge: Hedge,
    adjust: impl FnOnce(steer_llm::ClientBuilder) -> steer_llm::ClientBuilder,
) -> (MockServer, MockServer, steer_llm::Client) {
    let (slow, quick, client) = pair(
        ["slow", "quick"],
        |g| g.hedge(hedge),
        |b| adjust(b.adaptive_limit_for("slow", LimitConfig::default())),
    );
    slow.set_default_fault(Some(FaultPlan::normal().with_latency(latency)));
    (slow, quick, client)
}

/// Each attempt of `spend`: its target, fate, and whether it was estimated.
fn spent(spend: &steer_llm::cost::Spend) -> Vec<(&str, Fate, bool)> {
    spend
        .attempts
        .iter()
        .map(|a| (a.target.as_str(), a.fate, a.estimated))
        .collect()
}

fn group_ask() -> ChatRequest {
    ChatRequest::new("group/fast").unwrap().user("hi")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedge_after_its_delay_wins_and_the_loser_is_cancelled_its_slot_given_back() {
    let hedge = Hedge {
        max_share_percent: 100,
        ..Hedge::after(Duration::from_millis(50))
    };
    let (slow, quick, client) = hedged_pair(Duration::from_secs(5), hedge);
    let reply = within(client.generate(group_ask())).await.unwrap();
    assert_eq!(reply.provider, "quick");
    let steps: Vec<(&str, &str)> = reply
        .route
        .iter()
        .map(|s| (s.target.as_str(), s.outcome.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("quick/gpt-4o-mini", "answered"),
            ("slow/gpt-4o-mini", "hedge_lost")
        ]
    );
    assert_eq!((slow.request_count(), quick.request_count()), (1, 1));
    // The loser's tokens count as spent: its prompt (estimated), wasted.
    assert_eq!(
        spent(&reply.spend),
        [
            ("quick/gpt-4o-mini", Fate::Delivered, false),
            ("slow/gpt-4o-mini", Fate::Cancelled, true)
        ]
    );
    assert!(reply.spend.wasted().nanos() > 0);
    // The loser's connection closed while the slow target still waited.
    assert!(common::eventually(|| async { slow.abandoned() == 1 }).await);
    // Its slot back, nothing learned from it.
    let status = client.limit_status("slow").await.unwrap().unwrap();
    assert_eq!((status.in_flight, status.limit), (0, 20), "{status:?}");
    let text = client.prometheus_text();
    for outcome in ["sent", "won", "cancelled"] {
        assert!(
            text.contains(&format!(
                r#"steer_hedges_total{{group="fast",outcome="{outcome}"}} 1"#
            )),
            "{outcome}: {text}"
        );
    }
}

/// [`hedged_pair`] hedged at p95 with a 60 s fallback (far beyond a test's
/// bound), `slow` refusing every call with a call's own 429 (no sample of its
/// latency): a target the group barely tried.
fn barely_tried_pair() -> (MockServer, MockServer, steer_llm::Client) {
    let hedge = Hedge {
        max_share_percent: 100,
        ..Hedge::at_percentile(95, Duration::from_secs(60))
    };
    let (slow, quick, client) = hedged_pair(Duration::ZERO, hedge);
    slow.set_default_fault(Some(FaultPlan::error("rate_limit").capacity_left()));
    (slow, quick, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_the_group_barely_tried_hedges_after_its_peers_latency_not_the_fallback() {
    let (slow, quick, client) = barely_tried_pair();
    // Twenty requests `slow` refuses and `quick` answers: the group's
    // samples are quick's.
    for _ in 0..20 {
        let reply = within(client.generate(group_ask())).await.unwrap();
        assert_eq!(reply.provider, "quick");
    }
    // Now `slow` takes two minutes: its hedge goes after the group's p95
    // (quick's few milliseconds), not after the 60 s fallback its own
    // empty samples would give.
    slow.set_default_fault(Some(
        FaultPlan::normal().with_latency(Duration::from_secs(120)),
    ));
    let reply = within(client.generate(group_ask())).await.unwrap();
    assert_eq!(
        outcomes(&reply.route),
        [
            ("quick/gpt-4o-mini", "answered"),
            ("slow/gpt-4o-mini", "hedge_lost")
        ]
    );
    assert_eq!(quick.request_count(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_never_wins_the_race() {
    let hedge = Hedge {
        max_share_percent: 100,
        ..Hedge::after(Duration::from_millis(20))
    };
    let (slow, quick, client) = hedged_pair(Duration::from_millis(300), hedge);
    quick.set_default_fault(Some(FaultPlan::error("server_error")));
    let reply = within(client.generate(group_ask())).await.unwrap();
    assert_eq!(reply.provider, "slow", "{:?}", reply.route);
    let steps: Vec<(&str, &str)> = reply
        .route
        .iter()
        .map(|s| (s.target.as_str(), s.outcome.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("quick/gpt-4o-mini", "server_error"),
            ("slow/gpt-4o-mini", "answered")
        ]
    );
    assert_eq!((slow.request_count(), quick.request_count()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hedges_stop_at_their_share_and_never_go_for_a_request_with_side_effects() {
    let hedge = Hedge::after(Duration::from_millis(30));
    let (slow, quick, client) = hedged_pair(Duration::from_millis(200), hedge);
    // 20 at once: 10% of them may be hedged.
    let replies = within(futures::future::join_all(
        (0..20).map(|_| client.generate(group_ask())),
    ))
    .await;
    assert!(replies.iter().all(|r| r.is_ok()));
    assert_eq!(quick.request_count(), 2, "two hedges of twenty");
    assert_eq!(slow.request_count(), 20);
    // With room for every hedge, a tool with side effects, or a request
    // marked so, is never hedged; a plain one is.
    let all = Hedge {
        max_share_percent: 100,
        ..Hedge::after(Duration::from_millis(30))
    };
    let (_slow, quick, client) = hedged_pair(Duration::from_millis(200), all);
    let acts =
        steer_llm::Tool::new("send_mail", serde_json::json!({"type": "object"})).side_effects(true);
    let reply = within(client.generate(group_ask().tool(acts)))
        .await
        .unwrap();
    assert_eq!(reply.provider, "slow");
    let marked = steer_llm::runtime::GenerateOptions::default().side_effects(true);
    let reply = within(client.generate_with(group_ask(), marked))
        .await
        .unwrap();
    assert_eq!(reply.provider, "slow");
    assert_eq!(quick.request_count(), 0);
    let reply = within(client.generate(group_ask())).await.unwrap();
    assert_eq!(reply.provider, "quick");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_failed_over_to_the_last_target_at_its_limit_waits_for_a_slot() {
    let floor = steer_llm::runtime::RateFloor::new(100, Duration::from_millis(100));
    let queue = LimitConfig {
        queue_timeout: Duration::from_secs(10),
        ..fixed(1, 10)
    };
    let (trickling, healthy, client) = pair(
        ["trickling", "healthy"],
        |g| g.min_rate(floor),
        |b| b.adaptive_limit_for("healthy", queue),
    );
    trickling.set_default_fault(Some("trickle?after=1&ms=300".parse().unwrap()));
    // "healthy" busy for 400 ms with a call of its own.
    healthy.push_faults([FaultPlan::normal().with_latency(Duration::from_millis(400))]);
    let direct = ChatRequest::new("healthy/gpt-4o-mini").unwrap().user("hi");
    let busy = tokio::spawn(client.generate(direct));
    assert!(bulkhead_at(&client, "healthy", 1, 0).await);
    let stream = within(client.stream(ChatRequest::new("group/fast").unwrap().user("hi")))
        .await
        .unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    let steps = seen.steps.unwrap();
    let outcomes: Vec<&str> = steps.iter().map(|s| s.outcome.as_str()).collect();
    assert_eq!(outcomes, ["slow_stream", "answered"], "{steps:?}");
    assert!(busy.await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hedge_goes_to_a_target_whose_breaker_holds_calls_back() {
    let hedge = Hedge {
        max_share_percent: 100,
        ..Hedge::after(Duration::from_millis(20))
    };
    let (slow, quick, client) = hedged_pair(Duration::from_millis(200), hedge);
    // Seen once (its gate published), then forced open.
    let direct = ChatRequest::new("quick/gpt-4o-mini").unwrap().user("hi");
    within(client.generate(direct)).await.unwrap();
    client
        .breakers()
        .force("quick/gpt-4o-mini", steer_llm::BreakerState::ForcedOpen)
        .unwrap();
    client.breakers().status("quick/gpt-4o-mini").await.unwrap();
    let reply = within(client.generate(group_ask())).await.unwrap();
    assert_eq!(reply.provider, "slow");
    assert_eq!(reply.route.len(), 1, "{:?}", reply.route);
    assert_eq!((slow.request_count(), quick.request_count()), (1, 1));
    assert!(!client.prometheus_text().contains("steer_hedges_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedge_spends_its_targets_retry_budget_and_none_goes_when_it_is_spent() {
    let hedge = Hedge {
        max_share_percent: 100,
        ..Hedge::after(Duration::from_millis(20))
    };
    let no_budget = steer_llm::BudgetConfig {
        ratio: 0.0,
        min_retries_per_sec: 0,
        window: Duration::from_secs(10),
    };
    let (slow, quick, client) = hedged_pair_with(Duration::from_millis(150), hedge, |b| {
        b.retry_budget(no_budget)
    });
    let reply = within(client.generate(group_ask())).await.unwrap();
    assert_eq!(reply.provider, "slow");
    assert_eq!((slow.request_count(), quick.request_count()), (1, 0));
    assert!(client
        .prometheus_text()
        .contains(r#"steer_hedges_total{group="fast",outcome="refused"} 1"#));
}

/// The steps of a route, as (target, outcome).
fn outcomes(steps: &[steer_llm::model::RouteStep]) -> Vec<(&str, &str)> {
    steps
        .iter()
        .map(|s| (s.target.as_str(), s.outcome.as_str()))
        .collect()
}

/// A hedge with room for every request to send one, after `ms`.
fn hedge_after(ms: u64) -> Hedge {
    Hedge {
        max_share_percent: 100,
        ..Hedge::after(Duration::from_millis(ms))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_hedge_wins_with_its_first_content_and_the_leader_is_cut() {
    let (slow, quick, client) = hedged_pair(Duration::ZERO, hedge_after(50));
    // Headers and the role chunk at once, the first text 3 s later.
    slow.set_default_fault(Some("first_token?ms=3000".parse().unwrap()));
    let stream = within(client.stream(group_ask())).await.unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    let at_quick = ChatRequest::new("quick/gpt-4o-mini").unwrap().user("hi");
    assert_eq!(seen.text, common::expected_text(&at_quick, None));
    assert_eq!(seen.starts, ["quick"], "one start: the winner's");
    assert_eq!(
        outcomes(&seen.steps.unwrap()),
        [
            ("slow/gpt-4o-mini", "hedge_lost"),
            ("quick/gpt-4o-mini", "answered")
        ]
    );
    assert_eq!((slow.request_count(), quick.request_count()), (1, 1));
    // The leader's tokens are spent: its prompt, estimated, wasted.
    let spend = seen.spend.expect("a complete stream says what it spent");
    assert_eq!(
        spent(&spend),
        [
            ("slow/gpt-4o-mini", Fate::Cancelled, true),
            ("quick/gpt-4o-mini", Fate::Delivered, false)
        ]
    );
    assert!(spend.wasted().nanos() > 0);
    // The leader's connection closed at once, its slot back unused.
    assert!(common::eventually(|| async { slow.streams_cut() == 1 }).await);
    assert!(bulkhead_at(&client, "slow", 0, 0).await);
    let status = client.limit_status("slow").await.unwrap().unwrap();
    assert_eq!(status.limit, 20, "nothing learned from a cancelled leg");
    for outcome in ["sent", "won", "cancelled"] {
        let line = format!(r#"steer_hedges_total{{group="fast",outcome="{outcome}"}} 1"#);
        assert!(common::metrics_show(&client, &line).await, "{outcome}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_hedge_at_a_target_the_group_barely_tried_goes_after_its_peers_first_tokens() {
    let (slow, quick, client) = barely_tried_pair();
    // Twenty streams `slow` refuses and `quick` answers: the group's
    // first-token samples are quick's alone.
    for _ in 0..20 {
        let stream = within(client.stream(group_ask())).await.unwrap();
        let seen = common::read_stream(stream).await.unwrap();
        assert_eq!(seen.starts.last().map(String::as_str), Some("quick"));
    }
    // Then `slow` sends its first text two minutes late: the hedge goes
    // after quick's first tokens, not after the 60 s fallback.
    slow.set_default_fault(Some("first_token?ms=120000".parse().unwrap()));
    let stream = within(client.stream(group_ask())).await.unwrap();
    let seen = within(common::read_stream(stream)).await.unwrap();
    assert_eq!(
        outcomes(&seen.steps.unwrap()),
        [
            ("slow/gpt-4o-mini", "hedge_lost"),
            ("quick/gpt-4o-mini", "answered")
        ]
    );
    assert_eq!(quick.request_count(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_chunk_or_an_error_never_wins_a_streams_race() {
    // The hedge has its headers and role chunk first, its text late: the
    // leader's text, later than the hedge's start, wins.
    let (slow, quick, client) = hedged_pair(Duration::ZERO, hedge_after(20));
    slow.set_default_fault(Some("first_token?ms=300".parse().unwrap()));
    quick.set_default_fault(Some("first_token?ms=5000".parse().unwrap()));
    let stream = within(client.stream(group_ask())).await.unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    let at_slow = ChatRequest::new("slow/gpt-4o-mini").unwrap().user("hi");
    assert_eq!(seen.text, common::expected_text(&at_slow, None));
    assert_eq!(seen.starts, ["slow"]);
    assert_eq!(
        outcomes(&seen.steps.unwrap()),
        [
            ("quick/gpt-4o-mini", "hedge_lost"),
            ("slow/gpt-4o-mini", "answered")
        ]
    );
    assert!(common::eventually(|| async { quick.streams_cut() == 1 }).await);
    assert!(
        common::metrics_show(
            &client,
            r#"steer_hedges_total{group="fast",outcome="primary_won"} 1"#
        )
        .await
    );
    // A hedge whose stream opens with an error event loses; the leader's
    // text comes.
    quick.set_default_fault(Some(FaultPlan::stream_error("server_error", 0)));
    let stream = within(client.stream(group_ask())).await.unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    assert_eq!(seen.text, common::expected_text(&at_slow, None));
    assert_eq!(
        outcomes(&seen.steps.unwrap()),
        [
            ("quick/gpt-4o-mini", "server_error"),
            ("slow/gpt-4o-mini", "answered")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_fails_before_its_content_hands_the_stream_to_its_hedge() {
    let (slow, quick, client) = hedged_pair(Duration::ZERO, hedge_after(20));
    // The leader fails at 150 ms; the hedge, sent at 20 ms, has its text at 300.
    slow.set_default_fault(Some(
        FaultPlan::error("server_error").with_latency(Duration::from_millis(150)),
    ));
    quick.set_default_fault(Some("first_token?ms=300".parse().unwrap()));
    let stream = within(client.stream(group_ask())).await.unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    let at_quick = ChatRequest::new("quick/gpt-4o-mini").unwrap().user("hi");
    assert_eq!(seen.text, common::expected_text(&at_quick, None));
    assert_eq!(seen.starts, ["quick"]);
    assert_eq!(
        outcomes(&seen.steps.unwrap()),
        [
            ("slow/gpt-4o-mini", "server_error"),
            ("quick/gpt-4o-mini", "answered")
        ]
    );
    assert_eq!((slow.request_count(), quick.request_count()), (1, 1));
    // The leader's failure reached its own breaker.
    let status = client.breakers().status("slow/gpt-4o-mini").await.unwrap();
    assert_eq!(status.stats.failures, 1, "{status:?}");
    // The hedge took over, already running: no failover sent a new call.
    let text = client.prometheus_text();
    assert!(
        text.contains(r#"steer_hedges_total{group="fast",outcome="sent"} 1"#),
        "{text}"
    );
    assert!(!text.contains("steer_failovers_total{"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_not_hedged_with_side_effects_nor_past_its_share() {
    let (slow, quick, client) =
        hedged_pair(Duration::ZERO, Hedge::after(Duration::from_millis(20)));
    slow.set_default_fault(Some("first_token?ms=200".parse().unwrap()));
    // 20 streams at once: 10% of them may be hedged.
    let streams = (0..20).map(|_| async {
        let stream = client.stream(group_ask()).await.unwrap();
        common::read_stream(stream).await.unwrap()
    });
    let seen = within(futures::future::join_all(streams)).await;
    let hedged = seen.iter().filter(|s| s.starts == ["quick"]).count();
    assert_eq!((hedged, quick.request_count()), (2, 2));
    let acts =
        steer_llm::Tool::new("send_mail", serde_json::json!({"type": "object"})).side_effects(true);
    let (_slow, quick, client) = hedged_pair(Duration::ZERO, hedge_after(20));
    _slow.set_default_fault(Some("first_token?ms=200".parse().unwrap()));
    let stream = within(client.stream(group_ask().tool(acts))).await.unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    assert_eq!(
        (seen.starts.as_slice(), quick.request_count()),
        (&["slow".to_string()][..], 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_every_leg_fails_before_content_fails_with_the_groups_error() {
    // The hedge goes at 15 ms, takes over when the leader fails at 100 ms,
    // and fails at 150 ms itself (found by the hedged stream property: the
    // attempt taken over was not counted running, and the stream hung).
    let (slow, quick, client) = hedged_pair(Duration::ZERO, hedge_after(15));
    let failing = |ms| FaultPlan::error("server_error").with_latency(Duration::from_millis(ms));
    slow.set_default_fault(Some(failing(100)));
    quick.set_default_fault(Some(failing(150)));
    let stream = within(client.stream(group_ask())).await.unwrap();
    let error = common::read_stream(stream).await.unwrap_err();
    assert!(
        error.contains("slow/gpt-4o-mini: server_error")
            && error.contains("quick/gpt-4o-mini: server_error"),
        "{error}"
    );
    assert_eq!((slow.request_count(), quick.request_count()), (1, 1));
}

/// A deployment `solo` of its own mock, its calls hedged as `hedge` says
/// (one attempt a call).
fn hedged_solo(hedge: Hedge) -> (MockServer, steer_llm::Client) {
    let mock = MockServer::builder().start_background().unwrap();
    let providers = steer_llm::Providers::new().with(common::deployment("solo", &mock));
    let client = quick_builder(providers, 1)
        .hedge_for("solo", hedge)
        .build()
        .unwrap();
    (mock, client)
}

fn solo_ask() -> ChatRequest {
    ChatRequest::new("solo/gpt-4o-mini").unwrap().user("hi")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_hedges_its_calls_at_itself_and_a_failure_is_the_calls_own() {
    let (mock, client) = hedged_solo(hedge_after(30));
    // The first call waits 5 s for its headers; its hedge answers at once.
    mock.push_faults([
        FaultPlan::normal().with_latency(Duration::from_secs(5)),
        FaultPlan::normal(),
    ]);
    let reply = within(client.generate(solo_ask())).await.unwrap();
    assert_eq!(reply.text, common::expected_text(&solo_ask(), None));
    assert_eq!(mock.request_count(), 2);
    assert!(common::eventually(|| async { mock.abandoned() == 1 }).await);
    assert!(
        common::metrics_show(
            &client,
            r#"steer_hedges_total{group="solo",outcome="won"} 1"#
        )
        .await
    );
    // A stream the same way: its first text 5 s late, its hedge's at once.
    mock.push_faults([
        FaultPlan::normal().with_first_token(Duration::from_secs(5)),
        FaultPlan::normal(),
    ]);
    let stream = within(client.stream(solo_ask())).await.unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    assert_eq!(seen.text, common::expected_text(&solo_ask(), None));
    assert_eq!(
        (seen.starts.len(), seen.steps),
        (1, None),
        "one attempt, no route"
    );
    assert_eq!(mock.request_count(), 4);
    assert!(common::eventually(|| async { mock.streams_cut() == 1 }).await);
    // A call whose legs both fail fails as it would alone: its own error,
    // no group's.
    let late = FaultPlan::error("invalid_request").with_latency(Duration::from_millis(500));
    mock.push_faults([late, FaultPlan::error("invalid_request")]);
    let error = within(client.generate(solo_ask())).await.unwrap_err();
    assert!(matches!(error, Error::Failed(_)), "{error:?}");
    assert_eq!(mock.request_count(), 6);
    // A call with side effects is never hedged.
    mock.push_faults([FaultPlan::normal().with_latency(Duration::from_millis(200))]);
    let marked = steer_llm::runtime::GenerateOptions::default().side_effects(true);
    within(client.generate_with(solo_ask(), marked))
        .await
        .unwrap();
    assert_eq!(mock.request_count(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployments_rate_floor_fails_its_trickling_stream_over() {
    let floor = steer_llm::runtime::RateFloor::new(100, Duration::from_millis(100));
    let (trickling, healthy, client) = pair(
        ["trickling", "healthy"],
        |g| g,
        |b| b.stream_min_rate_for("trickling", floor),
    );
    trickling.set_default_fault(Some("trickle?after=1&ms=300".parse().unwrap()));
    let stream = within(client.stream(group_ask())).await.unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    let outcomes: Vec<(&str, &str)> = outcomes(seen.steps.as_deref().unwrap());
    assert_eq!(
        outcomes,
        [
            ("trickling/gpt-4o-mini", "slow_stream"),
            ("healthy/gpt-4o-mini", "answered")
        ]
    );
    assert_eq!(healthy.request_count(), 1);
    // A deployment that names no deployment is refused when the client is built.
    let err = steer_llm::Client::builder()
        .providers(healthy.providers().unwrap())
        .stream_min_rate_for("nowhere", floor)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_throttling_sheds_calls_while_the_server_rejects_them_and_lets_them_back_after() {
    let mock = MockServer::builder()
        .default_fault(FaultPlan::error("overloaded"))
        .start_background()
        .unwrap();
    let window = Duration::from_millis(300);
    let client = quick_builder(mock.providers().unwrap(), 1)
        .adaptive_throttle(steer_llm::limit::AdaptiveThrottleConfig { k: 2.0, window })
        .build()
        .unwrap();
    let mut shed = 0;
    for _ in 0..100 {
        match client.generate(ask()).await {
            Err(Error::Rejected {
                rejection: steer_llm::runtime::Rejection::Throttled,
                ..
            }) => shed += 1,
            Err(Error::Failed(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    // With nothing accepted, the n-th call goes with probability 1/n: about
    // five of a hundred reach the server.
    assert_eq!(shed + mock.request_count(), 100);
    assert!(mock.request_count() < 40, "{} sent", mock.request_count());
    let line = format!(
        r#"steer_breaker_rejections_total{{provider="openai",model="gpt-4o-mini",outcome="throttled"}} {shed}"#
    );
    assert!(common::metrics_show(&client, &line).await, "{line}");
    // The server answers again: once the window has moved on, calls go.
    mock.set_default_fault(None);
    let recovered = common::eventually(|| async { client.generate(ask()).await.is_ok() }).await;
    assert!(recovered);
    // A window out of range is refused when the client is built.
    let wrong = quick_builder(mock.providers().unwrap(), 1)
        .adaptive_throttle(steer_llm::limit::AdaptiveThrottleConfig {
            k: 2.0,
            window: Duration::ZERO,
        })
        .build()
        .unwrap_err();
    assert!(wrong.to_string().contains("adaptive_throttle"), "{wrong}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_per_model_falls_for_the_model_that_is_refused_alone() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = quick_builder(mock.providers().unwrap(), 1)
        .adaptive_limit(LimitConfig {
            per_model: true,
            ..LimitConfig::default()
        })
        .build()
        .unwrap();
    let to = |model: &str| {
        ChatRequest::new(&format!("openai/{model}"))
            .unwrap()
            .user("hi")
    };
    // One model's calls get 429s (with capacity left: the call's own), the
    // other's answer.
    for _ in 0..3 {
        mock.push_faults([FaultPlan::error("rate_limit").capacity_left()]);
        assert!(client.generate(to("gpt-4o-mini")).await.is_err());
        client.generate(to("gpt-4o")).await.unwrap();
    }
    let limit = |name: &'static str| {
        let client = client.clone();
        async move { client.limit_status(name).await.unwrap().unwrap().limit }
    };
    assert!(
        limit("openai/gpt-4o-mini").await < 20,
        "the refused model's limit fell"
    );
    assert_eq!(limit("openai/gpt-4o").await, 20, "the other's did not");
}
