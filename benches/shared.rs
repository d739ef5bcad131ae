//! Shared state across replicas, against a real `redis-server` on 127.0.0.1
//! (`STEER_REDIS_SERVER` names the binary, default `redis-server`):
//! - propagation: the time from one replica's 429 (its request has returned) to
//!   another replica's breaker being paused, over 1,000 pauses (p50, p99, max);
//! - the request path with sharing on and off: per-request time of sequential
//!   requests against the mock, alternating blocks so that noise hits both alike.
//!
//! `cargo bench --features shared-redis --bench shared`

#[path = "../tests/shared/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::shared::SharedConfig;
use steer_llm::{ChatRequest, Client, RetryPolicy};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn main() {
    let port = redis_server::free_port();
    let mut cmd = redis_server::command();
    cmd.args(["--port", &port.to_string()]);
    let mut redis = redis_server::spawn_ready(cmd);
    let url = format!("redis://127.0.0.1:{port}/");
    let mock = MockServer::builder()
        .record_requests(false)
        .reply_words(20)
        .start_background()
        .expect("mock");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let replica = |shared: bool, prefix: &str| {
            let b = Client::builder()
                .providers(mock.providers().expect("providers"))
                .retry(RetryPolicy::default().max_attempts(1));
            let b = if shared {
                // A long backstop: what is measured is pub/sub.
                b.shared(SharedConfig::redis(&url).prefix(prefix).backstop(Duration::from_secs(60)))
            } else {
                b
            };
            b.build().expect("client")
        };
        let (a, b, plain) = (
            replica(true, "bench"),
            replica(true, "bench"),
            replica(false, "bench"),
        );
        for c in [&a, &b] {
            while !matches!(c.shared_status().await, Ok(Some(s)) if s.connected) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Propagation of 1,000 pauses, each of its own model.
        let mut delays = Vec::with_capacity(1000);
        for i in 0..1000 {
            let model = format!("openai/m-{i}");
            mock.push_faults([FaultPlan::error("rate_limit").retry_after("30")]);
            let req = ChatRequest::new(&model).expect("model").user("hi");
            assert!(a.generate(req).await.is_err());
            let seen = Instant::now();
            loop {
                let s = b.breakers().status(&model).await.expect("status");
                if s.paused_for.is_some_and(|d| !d.is_zero()) {
                    break;
                }
                tokio::task::yield_now().await;
            }
            delays.push(seen.elapsed().as_secs_f64() * 1e3);
        }
        delays.sort_by(f64::total_cmp);
        println!("pause propagation, one replica's 429 to another's paused breaker (1,000 pauses):");
        println!(
            "  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&delays, 0.5),
            percentile(&delays, 0.99),
            percentile(&delays, 1.0)
        );

        // The request path, sharing on and off: a fresh client under a prefix of
        // its own (the ones above hold 1,000 paused models now).
        // STEER_BENCH_CONTROL=1 makes both plain: the ratio of two identical
        // clients, to see what the machine's noise alone gives.
        let shared = std::env::var("STEER_BENCH_CONTROL").is_err();
        let (a, plain) = (replica(shared, "bench-fresh"), plain);
        while matches!(a.shared_status().await, Ok(Some(s)) if !s.connected) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // And one that resynced the 1,000 paused models from Redis (its breaker
        // keeps 1,000 pauses while it serves another model).
        let loaded = replica(true, "bench");
        while matches!(loaded.shared_status().await, Ok(Some(s)) if !s.connected || s.pauses_received < 1000) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ask = || ChatRequest::new("openai/gpt-4o-mini").expect("model").user("hi");
        let mut busy = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            for _ in 0..100 {
                loaded.generate(ask()).await.expect("reply");
            }
            busy.push(t.elapsed().as_secs_f64() * 1e6 / 100.0);
        }
        busy.sort_by(f64::total_cmp);
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for block in 0..40 {
            // Alternate which goes first, so that neither always follows the other.
            let order = if block % 2 == 0 { [true, false] } else { [false, true] };
            for shared in order {
                let (client, out) = if shared { (&a, &mut on) } else { (&plain, &mut off) };
                let t = Instant::now();
                for _ in 0..100 {
                    client.generate(ask()).await.expect("reply");
                }
                out.push(t.elapsed().as_secs_f64() * 1e6 / 100.0);
            }
        }
        on.sort_by(f64::total_cmp);
        off.sort_by(f64::total_cmp);
        println!("sequential requests, per request (median of 40 blocks of 100, alternating; spread p10-p90):");
        println!(
            "  sharing off {:.1} µs ({:.1}-{:.1}); sharing on {:.1} µs ({:.1}-{:.1}); ratio {:.3}",
            percentile(&off, 0.5),
            percentile(&off, 0.1),
            percentile(&off, 0.9),
            percentile(&on, 0.5),
            percentile(&on, 0.1),
            percentile(&on, 0.9),
            percentile(&on, 0.5) / percentile(&off, 0.5)
        );
        println!(
            "  a client holding 1,000 paused models: {:.1} µs ({:.1}-{:.1}); ratio to off {:.3}",
            percentile(&busy, 0.5),
            percentile(&busy, 0.1),
            percentile(&busy, 0.9),
            percentile(&busy, 0.5) / percentile(&off, 0.5)
        );
    });
    let _ = redis.kill();
    let _ = redis.wait();
}
