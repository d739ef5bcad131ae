//! How fast the mock provider serves, so that it is never the bottleneck of a
//! benchmark: non-streaming requests per second at 64 concurrent, and streamed
//! chunks per second for 1,000-chunk streams.
//!
//! `cargo bench --features mock --bench mock_throughput`. The mock runs on its own thread; the
//! load comes from reqwest on a tokio runtime in the same process, so client and
//! server share the machine's cores: the figures are lower bounds for the mock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use steer_llm::mock::MockServer;

const RUN: Duration = Duration::from_secs(4);

fn body(stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me about rivers."}],
        "stream": stream,
    })
}

async fn requests_per_second(url: String, concurrency: usize) -> f64 {
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + RUN;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, done) = (client.clone(), url.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let resp = client
                        .post(&url)
                        .bearer_auth("k")
                        .json(&body(false))
                        .send()
                        .await
                        .expect("request");
                    assert!(resp.status().is_success());
                    resp.bytes().await.expect("body");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn chunks_per_second(url: String, concurrency: usize) -> f64 {
    let client = reqwest::Client::new();
    let chunks = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + RUN;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, chunks) = (client.clone(), url.clone(), chunks.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let resp = client
                        .post(&url)
                        .bearer_auth("k")
                        .json(&body(true))
                        .send()
                        .await
                        .expect("request");
                    let mut events = resp.bytes_stream().eventsource();
                    let mut n = 0;
                    while let Some(e) = events.next().await {
                        e.expect("event");
                        n += 1;
                    }
                    chunks.fetch_add(n, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    chunks.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mock = MockServer::builder()
        .record_requests(false)
        .start_background()
        .expect("start mock");
    let stream_mock = MockServer::builder()
        .record_requests(false)
        .reply_words(1000)
        .start_background()
        .expect("start mock");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!("{}/chat/completions", mock.openai_base_url());
    let stream_url = format!("{}/chat/completions", stream_mock.openai_base_url());
    rt.block_on(async {
        // Warm up connections and caches.
        requests_per_second(url.clone(), 8).await;
        let rps = requests_per_second(url, 64).await;
        println!("mock non-streaming: {rps:.0} req/s (64 concurrent, {RUN:?})");
        let cps = chunks_per_second(stream_url, 8).await;
        println!(
            "mock streaming: {cps:.0} SSE events/s (1,000-chunk streams, 8 concurrent, {RUN:?})"
        );
    });
}
