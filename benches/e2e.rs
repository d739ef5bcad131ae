//! steer's `generate` against a bare reqwest call of the same request, against the
//! same mock in one run: added latency (median, p99) at concurrency 1, and
//! throughput at 64 concurrent. `cargo bench --bench e2e`
//!
//! Two placements are measured:
//! - "in actix": the caller is code on an actix arbiter and the client uses that
//!   arbiter (`arbiters(0)`), as a user's actor would; the bare client runs there too.
//! - "from tokio": the caller is plain tokio code and the client runs its actors on
//!   its own arbiters (the default); the bare client runs on the caller's runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{FutureExt, LocalBoxFuture};
use steer_llm::mock::{MockServer, MOCK_API_KEY};
use steer_llm::{ChatRequest, Client, Provider};

const SEQUENTIAL: usize = 3000;
/// Throughput is measured in `SLICES` slices of `SLICE` per call: 3 s each.
const SLICE: Duration = Duration::from_millis(250);
const SLICES: u32 = 12;
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

fn request() -> ChatRequest {
    ChatRequest::new("openai/gpt-4o-mini")
        .expect("model")
        .user("Tell me about rivers.")
}

async fn provider_once(provider: &Arc<dyn Provider>) {
    provider
        .generate(&request())
        .await
        .expect("provider request");
}

async fn steer_once(client: &Client) {
    client.generate(request()).await.expect("steer request");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

type Call<'a> = Box<dyn Fn() -> LocalBoxFuture<'a, ()> + 'a>;

/// One variant's latency at concurrency 1: p50, p99 and the median of its paired
/// differences to the first variant (the bare client).
struct Latency {
    p50: Duration,
    p99: Duration,
    added: f64,
}

/// Latency of each call at concurrency 1, interleaved (a, b, c, a, b, c, ...) so
/// that the machine's noise hits all alike.
async fn latencies(calls: &[Call<'_>]) -> Vec<Latency> {
    for _ in 0..200 {
        for call in calls {
            call().await;
        }
    }
    let mut samples = vec![Vec::with_capacity(SEQUENTIAL); calls.len()];
    for _ in 0..SEQUENTIAL {
        for (call, s) in calls.iter().zip(samples.iter_mut()) {
            let t = Instant::now();
            call().await;
            s.push(t.elapsed());
        }
    }
    let base = samples[0].clone();
    samples
        .into_iter()
        .map(|s| {
            let mut diffs: Vec<f64> = s
                .iter()
                .zip(&base)
                .map(|(x, b)| x.as_secs_f64() - b.as_secs_f64())
                .collect();
            diffs.sort_by(f64::total_cmp);
            let mut sorted = s;
            sorted.sort();
            Latency {
                p50: percentile(&sorted, 0.5),
                p99: percentile(&sorted, 0.99),
                added: diffs[diffs.len() / 2],
            }
        })
        .collect()
}

/// Throughput of each call at `CONCURRENCY` callers, in interleaved slices
/// (a, b, c, a, b, c, ...) so that the machine's drift hits all alike.
async fn throughputs(calls: &[Call<'_>]) -> Vec<f64> {
    let mut done = vec![0u64; calls.len()];
    let mut spent = vec![Duration::ZERO; calls.len()];
    for _ in 0..SLICES {
        for (i, call) in calls.iter().enumerate() {
            let started = Instant::now();
            let deadline = started + SLICE;
            let counts = futures::future::join_all((0..CONCURRENCY).map(|_| async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    call().await;
                    n += 1;
                }
                n
            }))
            .await;
            done[i] += counts.iter().sum::<u64>();
            spent[i] += started.elapsed();
        }
    }
    done.iter()
        .zip(&spent)
        .map(|(n, t)| *n as f64 / t.as_secs_f64())
        .collect()
}

const NAMES: [&str; 3] = ["bare reqwest", "steer provider alone", "steer generate"];

fn report(placement: &str, lat: &[Latency], rps: &[f64]) {
    println!("{placement}:");
    println!("  concurrency 1, {SEQUENTIAL} interleaved rounds; {CONCURRENCY} concurrent for {SLICES} interleaved slices of {SLICE:?} each");
    for ((name, l), r) in NAMES.iter().zip(lat).zip(rps) {
        println!(
            "  {name:<22} p50 {:>7.1} µs  p99 {:>7.1} µs  added (median of pairs) {:>+6.1} µs  {r:>7.0} req/s  ratio {:.2}",
            l.p50.as_secs_f64() * 1e6,
            l.p99.as_secs_f64() * 1e6,
            l.added * 1e6,
            r / rps[0]
        );
    }
}

/// Latencies of interleaved rounds, then each variant's throughput, in this runtime.
async fn compare(
    client: Client,
    provider: Arc<dyn Provider>,
    url: String,
) -> (Vec<Latency>, Vec<f64>) {
    let http = reqwest::Client::new();
    let (http, url, provider, client) = (&http, &url, &provider, &client);
    let calls: Vec<Call<'_>> = vec![
        Box::new(move || bare_once(http, url).boxed_local()),
        Box::new(move || provider_once(provider).boxed_local()),
        Box::new(move || steer_once(client).boxed_local()),
    ];
    let lat = latencies(&calls).await;
    let rps = throughputs(&calls).await;
    (lat, rps)
}

/// The mock's OpenAI provider, with an HTTP client of its own.
fn own_provider(mock: &MockServer) -> Arc<dyn Provider> {
    mock.providers()
        .and_then(|p| p.get("openai"))
        .expect("openai provider")
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
    // The "provider alone" variant gets its own HTTP client, as the bare one does:
    // a reqwest client shared between two runtimes hands connections across them.
    let provider = own_provider(&mock);
    let (lat, rps) = system.block_on(async move {
        let client = Client::builder()
            .providers(providers)
            .arbiters(0)
            .build()
            .expect("client");
        compare(client, provider, url_a).await
    });
    report("in actix (one arbiter)", &lat, &rps);

    // From tokio: the client on its own arbiters.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let providers = mock.providers().expect("providers");
    let provider = own_provider(&mock);
    let client = Client::builder()
        .providers(providers)
        .build()
        .expect("client");
    let (lat, rps) = rt.block_on(compare(client, provider, url));
    report("from tokio (client on its own arbiters)", &lat, &rps);
}
