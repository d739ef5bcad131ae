//! steer's `generate` against a bare reqwest call of the same request, against the
//! same mock in one run: added latency (median, p99) at concurrency 1, and
//! throughput at 64 concurrent. `cargo bench --bench e2e`
//!
//! Two placements are measured:
//! - "in actix": the caller is code on an actix arbiter and the client uses that
//!   arbiter (`arbiters(0)`), as a user's actor would; the bare client runs there too.
//! - "from tokio": the caller is plain tokio code and the client runs its actors on
//!   its own arbiters (the default); the bare client runs on the caller's runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use steer_llm::mock::{MockServer, MOCK_API_KEY};
use steer_llm::{ChatRequest, Client};

const SEQUENTIAL: usize = 3000;
const RUN: Duration = Duration::from_secs(3);
const CONCURRENCY: usize = 64;

fn body() -> serde_json::Value {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me about rivers."}],
    })
}

async fn bare_once(http: &reqwest::Client, url: &str) {
    let resp = http
        .post(url)
        .bearer_auth(MOCK_API_KEY)
        .json(&body())
        .send()
        .await
        .expect("bare request");
    let bytes = resp.bytes().await.expect("bare body");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("bare json");
    assert!(v["choices"][0]["message"]["content"].is_string());
}

async fn steer_once(client: &Client) {
    let req = ChatRequest::new("openai/gpt-4o-mini")
        .expect("model")
        .user("Tell me about rivers.");
    client.generate(req).await.expect("steer request");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Latency of `a` and `b` at concurrency 1, interleaved (a, b, a, b, ...) so that
/// the machine's noise hits both alike: (a p50, a p99, b p50, b p99, median of b - a).
async fn latencies<A, FA, B, FB>(mut a: A, mut b: B) -> [Duration; 5]
where
    A: FnMut() -> FA,
    FA: std::future::Future<Output = ()>,
    B: FnMut() -> FB,
    FB: std::future::Future<Output = ()>,
{
    for _ in 0..200 {
        a().await;
        b().await;
    }
    let (mut sa, mut sb) = (
        Vec::with_capacity(SEQUENTIAL),
        Vec::with_capacity(SEQUENTIAL),
    );
    let mut diffs = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        a().await;
        let da = t.elapsed();
        let t = Instant::now();
        b().await;
        let db = t.elapsed();
        sa.push(da);
        sb.push(db);
        diffs.push(db.as_secs_f64() - da.as_secs_f64());
    }
    sa.sort();
    sb.sort();
    diffs.sort_by(f64::total_cmp);
    let median_diff = diffs[diffs.len() / 2];
    [
        percentile(&sa, 0.5),
        percentile(&sa, 0.99),
        percentile(&sb, 0.5),
        percentile(&sb, 0.99),
        Duration::from_secs_f64(median_diff.max(0.0)),
    ]
}

async fn throughput<F, Fut>(f: F) -> f64
where
    F: Fn() -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + RUN;
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (f, done) = (f.clone(), done.clone());
            async move {
                while Instant::now() < deadline {
                    f().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .collect();
    futures::future::join_all(tasks).await;
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn report(placement: &str, lat: [Duration; 5], bare_rps: f64, steer_rps: f64) {
    println!("{placement}:");
    println!(
        "  concurrency 1, {SEQUENTIAL} interleaved pairs: bare p50 {:?} p99 {:?}; steer p50 {:?} p99 {:?}",
        lat[0], lat[1], lat[2], lat[3]
    );
    println!(
        "  added by steer: median of paired differences {:.1} µs; p50 {:+.1} µs; p99 {:+.1} µs",
        lat[4].as_secs_f64() * 1e6,
        (lat[2].as_secs_f64() - lat[0].as_secs_f64()) * 1e6,
        (lat[3].as_secs_f64() - lat[1].as_secs_f64()) * 1e6
    );
    println!(
        "  {CONCURRENCY} concurrent, {RUN:?} each: bare {bare_rps:.0} req/s, steer {steer_rps:.0} req/s, ratio {:.2}",
        steer_rps / bare_rps
    );
}

/// Latencies of interleaved pairs, then bare and steer throughput, in this runtime.
async fn compare(client: Client, url: String) -> ([Duration; 5], f64, f64) {
    let http = reqwest::Client::new();
    let lat = latencies(|| bare_once(&http, &url), || steer_once(&client)).await;
    let bare = throughput(move || {
        let (http, url) = (http.clone(), url.clone());
        async move { bare_once(&http, &url).await }
    })
    .await;
    let steer = throughput(move || {
        let client = client.clone();
        async move { steer_once(&client).await }
    })
    .await;
    (lat, bare, steer)
}

fn main() {
    let mock = MockServer::builder()
        .record_requests(false)
        .start_background()
        .expect("mock");
    let url = format!("{}/chat/completions", mock.openai_base_url());

    // In actix: caller, client actors and bare client on one arbiter.
    let system = actix::System::new();
    let providers = mock.providers().expect("providers");
    let url_a = url.clone();
    let (lat, bare, steer) = system.block_on(async move {
        let client = Client::builder()
            .providers(providers)
            .arbiters(0)
            .build()
            .expect("client");
        compare(client, url_a).await
    });
    report("in actix (one arbiter)", lat, bare, steer);

    // From tokio: the client on its own arbiters.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = Client::builder()
        .providers(mock.providers().expect("providers"))
        .build()
        .expect("client");
    let (lat, bare, steer) = rt.block_on(compare(client, url));
    report("from tokio (client on its own arbiters)", lat, bare, steer);
}
