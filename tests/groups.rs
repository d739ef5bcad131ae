//! Model groups over real HTTP against the mock: a request to `group/<name>` moves
//! from target to target as the group's rules say, never back to one that failed it
//! while another is untried, and waits for the earliest recovery when it may.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::{deployment, within};

use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::group::{Group, Selection};
use steer_llm::runtime::GenerateOptions;
use steer_llm::{BreakerConfig, BreakerState, ChatRequest, Client, Error, Providers, RetryPolicy};

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
    client
        .breakers()
        .force(MINI, BreakerState::ForcedOpen)
        .unwrap();
    // `force` is one-way: a status query, answered after it, says it is done.
    client.breakers().status(MINI).await.unwrap();
    let reply = within(client.generate(ask())).await.unwrap();
    assert_eq!(reply.provider, "anthropic");
    assert_eq!(
        outcomes(&reply.route),
        [
            (MINI.to_string(), "breaker_forced_open".to_string()),
            (HAIKU.to_string(), "answered".to_string())
        ]
    );
    client.breakers().reset(MINI).unwrap();
    client.breakers().status(MINI).await.unwrap();
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
        open_for: Duration::from_millis(800),
        ..BreakerConfig::default()
    };
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::never())
        .breaker(breakers)
        .group("fast", Group::new([MINI, HAIKU]).unwrap())
        .build()
        .unwrap();
    // Both targets fail once: both breakers open. (400 ms: time for two calls on a
    // loaded machine, and under the 800 ms open time, so the route cannot wait.)
    mock.set_default_fault(Some(FaultPlan::error("server_error")));
    let err = within(client.generate_with(
        ask(),
        GenerateOptions::default().deadline(Duration::from_millis(400)),
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
                back_in.is_some_and(|d| d <= Duration::from_millis(800)),
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
    assert!(
        matches!(built, Err(Error::Config(steer_llm::ConfigError::Group { ref group, .. })) if group == "fast"),
        "{built:?}"
    );
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .build()
        .unwrap();
    assert!(matches!(
        client.generate(ask()).await,
        Err(Error::UnknownProvider { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_broken_midway_completes_on_the_next_target_in_its_wire_format() {
    use futures::StreamExt;
    use steer_llm::mock::text::{self, Turn};
    use steer_llm::StreamEvent;
    let models = [
        MINI,
        HAIKU,
        "xai/grok-3-mini",
        "openai-responses/gpt-5-mini",
    ];
    let mock = MockServer::builder().start_background().unwrap();
    let mut case = 0;
    for first in models {
        for second in models.iter().filter(|m| **m != first) {
            case += 1;
            let client = Client::builder()
                .providers(mock.providers().unwrap())
                .retry(RetryPolicy::never())
                .group("pair", Group::new([first, second]).unwrap())
                .build()
                .unwrap();
            let id = format!("failover-{case}");
            let req = ChatRequest::new("group/pair")
                .unwrap()
                .system("You are terse.")
                .user("Tell me about rivers.")
                .request_id(id.as_str());
            let turns = vec![
                Turn::new("system", "You are terse."),
                Turn::new("user", "Tell me about rivers."),
            ];
            let first_model: steer_llm::ModelId = first.parse().unwrap();
            let chunks = text::reply(first_model.model(), &turns, None, &[], None).chunks;
            let cut = chunks.len() * 2 / 5;
            let prefix: String = chunks[..cut].concat();
            mock.script_key(&id, [FaultPlan::reset(cut)]);
            // What the second target continues the prefix with: a prefill for
            // Anthropic before 4.6, else the "continue" message (the mock
            // answers another model's text with a fresh reply).
            let second_model: steer_llm::ModelId = second.parse().unwrap();
            let mut continued = turns.clone();
            continued.push(if second.starts_with("anthropic") {
                Turn::new("assistant", prefix.trim_end())
            } else {
                Turn::new("user", &steer_llm::continue_message::write(&prefix))
            });
            let rest = text::reply(second_model.model(), &continued, None, &[], None).text();

            let mut stream = client.stream(req).await.unwrap();
            let (mut got, mut seams, mut route, mut finished) =
                (String::new(), Vec::new(), None, false);
            while let Some(event) = within(stream.next()).await {
                match event.unwrap_or_else(|e| panic!("{first} -> {second}: {e}")) {
                    StreamEvent::TextDelta { text, offset } => {
                        assert_eq!(offset, got.chars().count());
                        got.push_str(&text);
                    }
                    StreamEvent::FailedOver { offset, target, .. } => seams.push((offset, target)),
                    StreamEvent::Route { steps } => route = Some(steps),
                    StreamEvent::Complete { .. } => finished = true,
                    _ => {}
                }
            }
            let what = format!("{first} -> {second}");
            assert!(finished, "{what}");
            assert_eq!(
                got,
                format!("{prefix}{rest}"),
                "{what}: every character once"
            );
            assert_eq!(
                seams,
                [(prefix.chars().count(), second.to_string())],
                "{what}"
            );
            let steps = route.expect("the route before Complete");
            assert_eq!(steps.len(), 2, "{what}");
            assert_eq!(steps[0].target, first);
            assert_eq!(
                (steps[1].target.as_str(), steps[1].outcome.as_str()),
                (*second, "answered")
            );
        }
    }
}

/// A client whose group `fast` picks by latency between two deployments,
/// each a mock of its own.
fn latency_group(deployments: [(&str, &MockServer); 2]) -> Client {
    let mut providers = Providers::new();
    for (name, mock) in deployments {
        providers = providers.with(deployment(name, mock));
    }
    let targets = deployments.map(|(name, _)| format!("{name}/gpt-4o-mini"));
    Client::builder()
        .providers(providers)
        .group(
            "fast",
            Group::new(targets).unwrap().selection(Selection::Latency),
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latency_selection_settles_on_the_faster_deployment() {
    let slow = MockServer::builder()
        .default_fault(FaultPlan::normal().with_latency(Duration::from_millis(150)))
        .start_background()
        .unwrap();
    let fast = MockServer::builder().start_background().unwrap();
    let client = latency_group([("slow", &slow), ("quick", &fast)]);
    let mut answered = Vec::new();
    for _ in 0..12 {
        answered.push(within(client.generate(ask())).await.unwrap().provider);
    }
    // Each is heard from once (a target with no latency yet goes first), then the
    // quicker one gets the traffic, but for a probe now and then (one pick in
    // fifty, half of them to the slow one).
    assert!(answered[..2].contains(&"slow".to_string()), "{answered:?}");
    let quick = answered[2..].iter().filter(|p| *p == "quick").count();
    assert!(quick >= 7, "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latency_selection_learns_from_streams_that_trickle_after_a_fast_first_token() {
    let trickling = MockServer::builder()
        .default_fault("trickle?after=1&ms=15".parse().unwrap())
        .start_background()
        .unwrap();
    let healthy = MockServer::builder()
        .default_fault(FaultPlan::normal().with_latency(Duration::from_millis(30)))
        .start_background()
        .unwrap();
    let client = latency_group([("trickling", &trickling), ("healthy", &healthy)]);
    let mut went = Vec::new();
    for _ in 0..12 {
        let stream = within(client.stream(ask())).await.unwrap();
        let seen = common::read_stream(stream).await.unwrap();
        went.push(seen.steps.unwrap()[0].target.clone());
    }
    // The trickling target's first token is the faster (no 30 ms latency), but
    // its rate after it is what the selection learned.
    assert!(
        went[..2].contains(&"trickling/gpt-4o-mini".to_string()),
        "{went:?}"
    );
    let healthy = went[2..]
        .iter()
        .filter(|t| t.starts_with("healthy"))
        .count();
    assert!(healthy >= 7, "{went:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_whose_headers_say_its_limit_is_spent_is_skipped_before_it_answers_429() {
    let first = MockServer::builder().start_background().unwrap();
    let second = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(
            Providers::new()
                .with(deployment("one", &first))
                .with(deployment("two", &second)),
        )
        .group(
            "fast",
            Group::new(["one/gpt-4o-mini", "two/gpt-4o-mini"]).unwrap(),
        )
        .build()
        .unwrap();
    // The first answers, and its headers say no tokens are left for 1m30s.
    first.push_faults(["nearly_spent".parse().unwrap()]);
    let reply = within(client.generate(ask())).await.unwrap();
    assert_eq!(reply.provider, "one");
    assert_eq!(reply.rate_limit.tokens_remaining, Some(0));
    // In order, "one" would come first: it is skipped until its limit resets.
    let sent = first.request_count();
    for _ in 0..3 {
        let reply = within(client.generate(ask())).await.unwrap();
        assert_eq!(reply.provider, "two");
        assert_eq!(
            reply.route.len(),
            1,
            "skipped, not tried: {:?}",
            reply.route
        );
    }
    assert_eq!(first.request_count(), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grouped_stream_with_every_target_down_fails_at_once_or_waits_for_the_earliest() {
    use futures::StreamExt;
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::never())
        .breaker(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_millis(800),
            ..BreakerConfig::default()
        })
        .group("fast", Group::new([MINI, HAIKU]).unwrap())
        .build()
        .unwrap();
    async fn last_event(
        client: &Client,
        deadline: Duration,
    ) -> Result<Vec<steer_llm::StreamEvent>, Error> {
        let mut s = client
            .stream_with(ask(), GenerateOptions::default().deadline(deadline))
            .await?;
        let mut events = Vec::new();
        while let Some(e) = within(s.next()).await {
            events.push(e?);
        }
        Ok(events)
    }
    // 400 ms: time for two calls on a loaded machine, under the 800 ms open time.
    mock.set_default_fault(Some(FaultPlan::error("server_error")));
    let err = last_event(&client, Duration::from_millis(400))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GroupExhausted { .. }), "{err:?}");
    // Both open now: a stream that cannot wait fails at once, saying when.
    let err = last_event(&client, Duration::from_millis(50))
        .await
        .unwrap_err();
    match &err {
        Error::GroupExhausted { back_in, steps, .. } => {
            assert!(back_in.is_some(), "{err:?}");
            assert!(
                steps.iter().all(|s| s.outcome == "breaker_open"),
                "{steps:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // One with time waits for the earliest half-open and gets its reply.
    mock.set_default_fault(None);
    let events = last_event(&client, Duration::from_secs(10)).await.unwrap();
    assert!(matches!(
        events.last(),
        Some(steer_llm::StreamEvent::Complete { .. })
    ));
    let route = events.iter().find_map(|e| match e {
        steer_llm::StreamEvent::Route { steps } => Some(steps.clone()),
        _ => None,
    });
    assert_eq!(route.unwrap().last().unwrap().outcome, "answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_goes_to_the_groups_content_fallback() {
    let mock = MockServer::builder().start_background().unwrap();
    let group = Group::new([MINI]).unwrap().content_fallback(HAIKU).unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::never())
        .group("fast", group)
        .build()
        .unwrap();
    mock.push_faults([FaultPlan::error("content_policy")]);
    let reply = within(client.generate(ask())).await;
    match reply {
        Ok(reply) => {
            assert_eq!(reply.provider, "anthropic", "{:?}", reply.route);
            assert_eq!(reply.route[0].outcome, "content_filtered");
        }
        Err(e) => panic!("{e}"),
    }
}

/// Two deployments of one flavour, each its own mock, in a group `fast`.
fn two_deployments() -> (MockServer, MockServer, Client) {
    let first = MockServer::builder().start_background().unwrap();
    let second = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(
            Providers::new()
                .with(deployment("one", &first))
                .with(deployment("two", &second)),
        )
        .retry(RetryPolicy::default().max_attempts(3))
        .group(
            "fast",
            Group::new(["one/gpt-4o-mini", "two/gpt-4o-mini"]).unwrap(),
        )
        .build()
        .unwrap();
    (first, second, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_a_server_asks_for_moves_the_request_to_a_target_that_can_answer_now() {
    let (first, second, client) = two_deployments();
    // A call's own 429 (its headers show capacity left): no pause, but a wait.
    let limited = || {
        FaultPlan::error("rate_limit")
            .retry_after("30")
            .capacity_left()
    };
    first.push_faults([limited()]);
    let reply = within(client.generate(ask())).await.unwrap();
    assert_eq!(reply.provider, "two", "{:?}", reply.route);
    assert_eq!(
        first.request_count(),
        1,
        "not retried at the waiting target"
    );
    assert_eq!(reply.route[0].outcome, "rate_limited");
    assert_eq!(reply.route[0].back_in, Some(Duration::from_secs(30)));
    // The call's 429 paused nothing: the next request goes to "one" again.
    let reply = within(client.generate(ask())).await.unwrap();
    assert_eq!(reply.provider, "one");

    // A stream moves the same way, before its first token.
    first.push_faults([limited()]);
    let stream = within(client.stream(ask())).await.unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    let steps = seen.steps.expect("a grouped stream reports its route");
    assert_eq!(
        outcomes(&steps),
        [
            ("one/gpt-4o-mini".to_string(), "rate_limited".to_string()),
            ("two/gpt-4o-mini".to_string(), "answered".to_string()),
        ]
    );
    assert_eq!((first.request_count(), second.request_count()), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_target_left_waits_out_its_servers_wait_itself() {
    let (first, second, client) = two_deployments();
    let limited = |ms: &str| {
        FaultPlan::error("rate_limit")
            .retry_after_ms(ms)
            .capacity_left()
    };
    first.push_faults([limited("40")]);
    second.push_faults([limited("60")]);
    let reply = within(client.generate(ask())).await.unwrap();
    // "one" asked for a wait while "two" could answer: moved on. "two" had no
    // target left to move to: it waited its 60 ms and answered.
    assert_eq!(
        outcomes(&reply.route),
        [
            ("one/gpt-4o-mini".to_string(), "rate_limited".to_string()),
            ("two/gpt-4o-mini".to_string(), "answered".to_string()),
        ]
    );
    assert_eq!((first.request_count(), second.request_count()), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_too_far_for_the_clock_means_no_bound_for_requests_and_streams() {
    use futures::StreamExt;
    let (_first, _second, client) = two_deployments();
    let far = GenerateOptions::default().deadline(Duration::MAX);
    for model in ["group/fast", "one/gpt-4o-mini"] {
        let req = || ChatRequest::new(model).unwrap().user("hi");
        let reply = within(client.generate_with(req(), far.clone())).await;
        assert!(reply.is_ok(), "{model}: {reply:?}");
        let mut stream = within(client.stream_with(req(), far.clone()))
            .await
            .unwrap();
        let mut complete = false;
        while let Some(event) = within(stream.next()).await {
            complete |= matches!(event, Ok(steer_llm::StreamEvent::Complete { .. }));
        }
        assert!(complete, "{model}: the stream completes");
    }
}
