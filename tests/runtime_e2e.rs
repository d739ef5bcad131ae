//! The runtime end to end over real HTTP against the mock (real time, millisecond
//! settings): every request gets exactly one reply, and the metrics' attempt
//! counts match the mock's request log.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::MODELS;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::{
    Backoff, BreakerConfig, BudgetConfig, ChatRequest, Client, Error, Jitter, RetryPolicy,
};

fn fast_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff {
        max_attempts: attempts,
        base: Duration::from_millis(1),
        multiplier: 2.0,
        max_delay: Duration::from_millis(5),
        jitter: Jitter::Full,
    })
}

async fn total_attempts(client: &Client) -> u64 {
    client
        .metrics()
        .await
        .unwrap()
        .providers
        .iter()
        .map(|p| p.metrics.total_attempts())
        .sum()
}

async fn total_admitted(client: &Client) -> u64 {
    let snapshot = client.metrics().await.unwrap();
    snapshot
        .providers
        .iter()
        .map(|p| p.breaker.stats.admitted)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_with_30_percent_faults_each_get_one_reply() {
    let mock = MockServer::builder()
        .default_fault(
            "mix?seed=9&server_error=15&overloaded=10&reset=5"
                .parse()
                .unwrap(),
        )
        .record_requests(false)
        .start_background()
        .unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(fast_retries(6))
        .breaker(BreakerConfig {
            failure_threshold: 1_000_000,
            ..BreakerConfig::default()
        })
        .retry_budget(BudgetConfig {
            ratio: 1.0,
            ..BudgetConfig::default()
        })
        .build()
        .unwrap();
    let requests = (0..1000).map(|i| {
        let model = MODELS[i % 3];
        let client = client.clone();
        async move {
            let req = ChatRequest::new(model)
                .unwrap()
                .user(format!("question {i}"));
            tokio::time::timeout(Duration::from_secs(60), client.generate(req)).await
        }
    });
    let replies = futures::future::join_all(requests).await;
    assert_eq!(replies.len(), 1000);
    let mut ok = 0;
    for r in &replies {
        match r {
            Err(_) => panic!("a request got no reply in time"),
            Ok(Ok(_)) => ok += 1,
            Ok(Err(Error::Failed(f))) => assert!(f.failure.retryable, "{f}"),
            Ok(Err(e)) => panic!("unexpected error: {e}"),
        }
    }
    assert!(ok >= 990, "only {ok} of 1000 succeeded");
    // One-way reports may still be in flight: wait until the counts settle. Every
    // call went through a breaker (from its gate, which counts a pass when its
    // outcome arrives), so the breakers' admissions add up to the calls too.
    let calls = mock.request_count();
    common::eventually(|| async {
        (total_attempts(&client).await, total_admitted(&client).await) == (calls, calls)
    })
    .await;
    assert_eq!(total_attempts(&client).await, calls);
    assert_eq!(total_admitted(&client).await, calls);
    assert!(calls > 1000, "faults must have caused retries");
    let snapshot = client.metrics().await.unwrap();
    let successes: u64 = snapshot.providers.iter().map(|p| p.metrics.successes).sum();
    assert_eq!(successes, ok);
    let counted: u64 = snapshot.providers.iter().map(|p| p.metrics.requests).sum();
    assert_eq!(
        counted, 1000,
        "each request is counted once, at its first report"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_callers_future_aborts_the_http_call() {
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(30))
        .start_background()
        .unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .build()
        .unwrap();
    mock.push_faults([FaultPlan::normal().with_latency(Duration::from_secs(30))]);
    let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
    let cut = tokio::time::timeout(Duration::from_millis(200), client.generate(req)).await;
    assert!(cut.is_err());
    let cancelled = || async {
        let snapshot = client.metrics().await.unwrap();
        snapshot.provider("openai").unwrap().metrics.cancelled
    };
    common::eventually(|| async { cancelled().await == 1 }).await;
    assert_eq!(cancelled().await, 1);
    // The next request is served normally.
    let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
    assert!(client.generate(req).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_go_over_the_wire_and_a_non_retryable_error_is_not_retried() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(fast_retries(3))
        .build()
        .unwrap();
    let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .user("hi")
        .request_id("retry-me");
    mock.script_key(
        "retry-me",
        [FaultPlan::error("overloaded"), FaultPlan::reset(0)],
    );
    let resp = client.generate(req).await.unwrap();
    assert_eq!(resp.request_id.as_str(), "retry-me");
    let log = mock.requests();
    assert_eq!(log.len(), 3);
    assert!(log
        .iter()
        .all(|r| r.header("x-client-request-id") == Some("retry-me")));

    let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
    mock.push_faults([FaultPlan::error("insufficient_quota")]);
    match client.generate(req).await {
        Err(Error::Failed(f)) => {
            assert_eq!(f.failure.category, steer_llm::Category::QuotaExceeded);
            assert_eq!(f.attempts, 1);
            let raw = f.last.as_ref().expect("the raw error is kept");
            assert_eq!(raw.status(), Some(429));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.requests().len(), 4);
}

#[cfg(feature = "http-endpoint")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_endpoint_serves_prometheus_text_and_json() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .build()
        .unwrap();
    let req = ChatRequest::new("xai/grok-3-mini").unwrap().user("hi");
    client.generate(req).await.unwrap();
    mock.push_faults([FaultPlan::error("invalid_request")]);
    let req = ChatRequest::new("xai/grok-3-mini")
        .unwrap()
        .user("hi")
        .request_id("visible-id");
    let err = client.generate(req).await.unwrap_err();
    assert!(err.to_string().contains("visible-id"), "{err}");
    let (addr, task) =
        steer_llm::runtime::http::serve(client.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let text = common::get_text(addr, "/metrics").await;
    for line in [
        r#"steer_attempts_total{provider="xai",model="grok-3-mini",outcome="success"} 1"#,
        r#"steer_requests_total{provider="xai",model="grok-3-mini",outcome="invalid_request"} 1"#,
        r#"steer_attempt_duration_seconds_count{provider="xai",model="grok-3-mini",outcome="success"} 1"#,
        r#"steer_tokens_total{provider="xai",model="grok-3-mini",token_type="input"}"#,
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    let json = common::get_json(addr, "/reliability").await;
    let xai = json["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "xai")
        .unwrap();
    assert_eq!(xai["breaker"]["state"], "closed");
    assert_eq!(xai["metrics"]["requests"], 2);
    task.abort();
}

/// `generate` and `stream` return `'static + Send` futures: they can be
/// spawned as a bare client's call can, and give the same reply there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generate_and_stream_futures_can_be_spawned() {
    use futures::StreamExt;
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .build()
        .unwrap();
    let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
    let reply = tokio::spawn(client.generate(req.clone()))
        .await
        .unwrap()
        .unwrap();
    let mut stream = tokio::spawn(client.stream(req)).await.unwrap().unwrap();
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        if let steer_llm::StreamEvent::TextDelta { text: t, .. } = event.unwrap() {
            text.push_str(&t);
        }
    }
    assert!(!reply.text.is_empty());
    assert_eq!(text, reply.text);
}
