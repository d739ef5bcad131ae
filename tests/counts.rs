//! One source of truth for counts: after a soak of requests and streams under
//! every fault kind (errors, resets, truncations, stalls, malformed events,
//! in-band errors, breaks after the last allowed token), with cancellations,
//! the client's snapshot, its Prometheus text and the mock's log agree: every
//! call the mock saw is one attempt and one breaker admission, and every
//! request is counted once, by how it ended.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use futures::StreamExt;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::{
    Backoff, BreakerConfig, BudgetConfig, ChatRequest, Client, Jitter, RetryPolicy, StreamEvent,
};

/// The sum of a Prometheus counter family's samples.
fn prometheus_sum(text: &str, family: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_prometheus_and_the_mock_agree_after_a_soak_with_every_fault_kind() {
    let mock = MockServer::builder()
        .stall_limit(Duration::from_millis(400))
        .record_requests(false)
        .start_background()
        .unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::default().backoff(Backoff {
            max_attempts: 4,
            base: Duration::from_millis(1),
            multiplier: 2.0,
            max_delay: Duration::from_millis(4),
            jitter: Jitter::Full,
        }))
        .retry_budget(BudgetConfig {
            ratio: 1.0,
            ..BudgetConfig::default()
        })
        .breaker(BreakerConfig {
            failure_threshold: 1_000_000,
            ..BreakerConfig::default()
        })
        .stream_timeouts(
            Some(Duration::from_secs(5)),
            Some(Duration::from_secs(5)),
            Some(Duration::from_millis(100)),
        )
        .build()
        .unwrap();
    const N: usize = 480;
    // Each request's first attempt meets one fault, at a point of its own.
    let fault = |i: usize| -> Option<FaultPlan> {
        let at = (i / 11) % 9;
        Some(match i % 11 {
            0 => FaultPlan::error("server_error"),
            1 => FaultPlan::error("overloaded"),
            2 => FaultPlan::reset(at),
            3 => FaultPlan::truncate(at),
            4 => FaultPlan::stall(at),
            5 => FaultPlan::malformed_json(at),
            6 => FaultPlan::stream_error("server_error", at),
            7 => FaultPlan::error("gateway_overloaded"),
            8 => FaultPlan::whole_reply(),
            9 => FaultPlan::reset(10_000),
            _ => return None,
        })
    };
    let jobs = (0..N).map(|i| {
        let client = client.clone();
        let mock = &mock;
        async move {
            let model = common::STREAM_MODELS[i % common::STREAM_MODELS.len()];
            let id = format!("soak-{i}");
            if let Some(plan) = fault(i) {
                mock.script_key(&id, [plan]);
            }
            let mut req = ChatRequest::new(model)
                .unwrap()
                .user(format!("Tell me about rivers, number {i}."))
                .request_id(id.as_str());
            // Small limits make breaks after the last allowed token common.
            if i % 3 == 0 {
                req = req.max_tokens(4 + (i % 7) as u32);
            }
            if i % 2 == 0 {
                return client.generate(req).await.is_ok();
            }
            let Ok(mut stream) = client.stream(req).await else {
                return false;
            };
            // Every eighth stream is dropped after its first events.
            let keep = if i % 16 == 1 { 2 } else { usize::MAX };
            let mut seen = 0;
            while let Some(event) = stream.next().await {
                match event {
                    Ok(StreamEvent::Complete { .. }) => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
                seen += 1;
                if seen >= keep {
                    return false;
                }
            }
            false
        }
    });
    let done = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(jobs))
        .await
        .expect("the soak ends");
    let ok = done.iter().filter(|ok| **ok).count() as u64;
    assert!(ok > N as u64 / 2, "only {ok} of {N} succeeded");

    // One-way reports may still be on their way: wait until the counts settle.
    let calls = || mock.request_count();
    let mut last = None;
    for _ in 0..300 {
        let snapshot = client.metrics().await.unwrap();
        let sum = |f: &dyn Fn(&steer_actors::ProviderReport) -> u64| {
            snapshot.providers.iter().map(f).sum::<u64>()
        };
        let attempts = sum(&|p| p.metrics.total_attempts());
        let admitted = sum(&|p| p.breaker.stats.admitted);
        let requests = sum(&|p| p.metrics.requests);
        let ended = sum(&|p| {
            p.metrics.successes
                + p.metrics.cancelled
                + p.metrics.final_failures.values().sum::<u64>()
        });
        let successes = sum(&|p| p.metrics.successes);
        let text = client.prometheus_text();
        let prom_attempts = prometheus_sum(&text, "steer_attempts_total");
        let prom_requests = prometheus_sum(&text, "steer_requests_total");
        let now = (
            attempts,
            admitted,
            prom_attempts,
            requests,
            ended,
            prom_requests,
        );
        if now == (calls(), calls(), calls(), N as u64, N as u64, N as u64) {
            assert!(successes >= ok, "{successes} successes for {ok} replies");
            return;
        }
        last = Some((now, successes));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "(attempts, admitted, prometheus attempts, requests, ended, prometheus requests, \
         successes) = {last:?}; the mock saw {} calls for {N} requests",
        calls()
    );
}
