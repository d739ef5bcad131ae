//! Brownouts: two mock deployments of one group, one healthy and one half
//! failing, and what each selection gives with steer's brownout features off
//! and on, in one run: p50 and p99 latency (and p99 as a ratio of the same
//! selection's healthy p99), the share that succeeded within the deadline, and
//! the extra load sent to the providers (attempts over requests, minus one).
//! `cargo bench --features mock --bench brownout`
//!
//! The heavy tail (issue 28's plan): the browned-out target answers 5% of
//! calls 20 times slower (1 s against 50 ms) and 20% with a call's own 429
//! asking for a 1 s wait; `STEER_BENCH_REQUESTS` (default 2,000, the issue's
//! baseline) requests, then as many streams (their first content 1 s late
//! instead), at 32 concurrent, a 5 s deadline. A trickling target: its streams
//! send a chunk every 200 ms after a fast first token, `STEER_BENCH_STREAMS`
//! (default 500, the baseline). Last, beyond the aim: the streams'
//! slow tail without the 429s. `STEER_BENCH_TAILS=1` adds, under each line,
//! how the slowest 2% went (their routes, counted, with when they started),
//! the calls each target got and where each deployment's adaptive limit
//! ended; `STEER_BENCH_ONLY=heavy` (any of `requests`, `trickle`, `heavy`,
//! `slow`, comma-separated) runs those sections alone.

use std::time::{Duration, Instant};

use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::route::hedge::Hedge;
use steer_llm::route::outliers::OutlierConfig;
use steer_llm::runtime::group::{Group, Selection};
use steer_llm::runtime::{GenerateOptions, RateFloor};
use steer_llm::{ChatRequest, Client, OpenAiCompatible, Providers, RetryPolicy};

const CONCURRENCY: usize = 32;
const DEADLINE: Duration = Duration::from_secs(5);
const SELECTIONS: [(Selection, &str); 3] = [
    (Selection::InOrder, "in_order"),
    (Selection::LeastInFlight, "least_in_flight"),
    (Selection::Latency, "latency"),
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn deployment(name: &str, mock: &MockServer) -> OpenAiCompatible {
    OpenAiCompatible::openai()
        .name(name)
        .base_url(mock.openai_base_url())
        .api_key("sk-bench")
        .build()
        .expect("a deployment")
}

/// `n` streams' plans, seeded: 5% with their first content 1 s late (after
/// their headers and role chunk), the rest 50 ms a reply; with `refusals`,
/// 20% of them a call's own 429 asking for a 1 s wait (the requests' plan).
fn slow_first_tokens(n: usize, refusals: bool) -> Vec<FaultPlan> {
    let mut rng = fastrand::Rng::with_seed(29);
    (0..n)
        .map(|_| {
            let plan = FaultPlan::normal().with_latency(Duration::from_millis(50));
            match rng.u32(0..100) {
                0..5 => plan.with_first_token(Duration::from_millis(1000)),
                5..25 if refusals => FaultPlan::error("rate_limit")
                    .retry_after("1")
                    .capacity_left(),
                _ => plan,
            }
        })
        .collect()
}

/// The brownout's plan for `n` calls, seeded: 5% slow, 20% a call's 429.
fn brownout(n: usize) -> Vec<FaultPlan> {
    let mut rng = fastrand::Rng::with_seed(28);
    (0..n)
        .map(|_| match rng.u32(0..100) {
            0..5 => FaultPlan::normal().with_latency(Duration::from_millis(1000)),
            5..25 => FaultPlan::error("rate_limit")
                .retry_after("1")
                .capacity_left(),
            _ => FaultPlan::normal().with_latency(Duration::from_millis(50)),
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Features {
    Off,
    On,
}

struct Outcome {
    p50: Duration,
    p99: Duration,
    ok_share: f64,
    extra_load: f64,
    /// The slowest 2%'s routes (with `STEER_BENCH_TAILS`).
    tail: Vec<Tail>,
    /// Each deployment's adaptive limit at the end (with `STEER_BENCH_TAILS`).
    limits: Vec<String>,
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

/// Runs `requests` (streams when `streams`) through group `g` of a fresh
/// client over the two mocks; returns what it measured.
async fn run(
    brown: &MockServer,
    healthy: &MockServer,
    group: Group,
    features: Features,
    requests: usize,
    streams: bool,
) -> Outcome {
    let mut builder = Client::builder()
        .providers(
            Providers::new()
                .with(deployment("brown", brown))
                .with(deployment("healthy", healthy)),
        )
        .retry(RetryPolicy::default().max_attempts(3))
        .deadline(Some(DEADLINE));
    let mut group = group;
    if let Features::On = features {
        group = group
            .hedge(Hedge::at_percentile(95, Duration::from_millis(250)))
            .eject_outliers(OutlierConfig::default())
            .min_rate(RateFloor::new(100, Duration::from_millis(500)));
        builder = builder
            .retry_throttle(steer_llm::ThrottleConfig::default())
            .adaptive_limit(steer_llm::limit::LimitConfig::default());
    }
    let client = builder.group("g", group).build().expect("a client");
    let brown_before = brown.request_count();
    let before = brown_before + healthy.request_count();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let began = Instant::now();
    let tasks: Vec<_> = (0..requests)
        .map(|_| {
            let (client, semaphore) = (client.clone(), semaphore.clone());
            tokio::spawn(async move {
                let _slot = semaphore.acquire_owned().await;
                let req = ChatRequest::new("group/g").expect("a request").user("hi");
                let started = Instant::now();
                let into = started - began;
                let (ok, route) = if streams {
                    stream_one(&client, req).await
                } else {
                    match client.generate(req).await {
                        Ok(reply) => (true, steps(&reply.route)),
                        Err(_) => (false, String::new()),
                    }
                };
                (started.elapsed(), ok, route, into)
            })
        })
        .collect();
    let mut times = Vec::new();
    let mut ok = 0usize;
    for t in tasks {
        let (elapsed, success, route, into) = t.await.expect("a task");
        times.push((elapsed, route, into));
        ok += usize::from(success && elapsed <= DEADLINE);
    }
    times.sort();
    let tail = tail(&times);
    let times: Vec<Duration> = times.into_iter().map(|(t, _, _)| t).collect();
    // With the tails: where each deployment's adaptive limit ended.
    let mut limits = Vec::new();
    if std::env::var_os("STEER_BENCH_TAILS").is_some() {
        limits.push(format!(
            "{} calls sent to brown",
            brown.request_count() - brown_before
        ));
        for d in ["brown", "healthy"] {
            if let Ok(Some(st)) = client.limit_status(d).await {
                limits.push(format!("{d} {} (in flight {})", st.limit, st.in_flight));
            }
        }
    }
    let sent = brown.request_count() + healthy.request_count() - before;
    Outcome {
        p50: percentile(&times, 50),
        p99: percentile(&times, 99),
        ok_share: ok as f64 / requests as f64,
        extra_load: sent as f64 / requests as f64 - 1.0,
        tail,
        limits,
    }
}

/// A grouped stream, read to its end: whether it completed, and its route.
async fn stream_one(client: &Client, req: ChatRequest) -> (bool, String) {
    use futures::StreamExt;
    let mut s = match client.stream_with(req, GenerateOptions::default()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("start error: {e}");
            return (false, String::new());
        }
    };
    let mut route = String::new();
    while let Some(e) = s.next().await {
        match e {
            Ok(steer_llm::StreamEvent::Route { steps: taken }) => route = steps(&taken),
            Ok(steer_llm::StreamEvent::Complete { .. }) => return (true, route),
            Err(e) => {
                eprintln!("stream error: {e}");
                return (false, route);
            }
            Ok(_) => {}
        }
    }
    (false, route)
}

/// A route as `target:outcome` steps.
fn steps(route: &[steer_llm::model::RouteStep]) -> String {
    let steps: Vec<String> = route
        .iter()
        .map(|s| format!("{}:{}", s.target, s.outcome))
        .collect();
    steps.join(" ")
}

/// One route among the slowest 2%: how many took it, their fastest and
/// slowest times, and when the first and last of them started (into the run).
struct Tail {
    count: usize,
    times: (Duration, Duration),
    started: (Duration, Duration),
    route: String,
}

/// With `STEER_BENCH_TAILS` set: how the slowest 2% went (routes counted),
/// to see what makes a p99.
fn tail(sorted: &[(Duration, String, Duration)]) -> Vec<Tail> {
    if std::env::var_os("STEER_BENCH_TAILS").is_none() {
        return Vec::new();
    }
    let from = sorted.len() - sorted.len().div_ceil(50);
    let mut counted: Vec<Tail> = Vec::new();
    for (t, route, into) in &sorted[from..] {
        match counted.iter_mut().find(|c| c.route == *route) {
            Some(c) => {
                c.count += 1;
                c.times = (c.times.0.min(*t), c.times.1.max(*t));
                c.started = (c.started.0.min(*into), c.started.1.max(*into));
            }
            None => counted.push(Tail {
                count: 1,
                times: (*t, *t),
                started: (*into, *into),
                route: route.clone(),
            }),
        }
    }
    counted.sort_by_key(|c| std::cmp::Reverse(c.count));
    counted
}

/// A selection's run with both targets healthy, printed; its p99 (what the
/// brownout lines are ratios of).
async fn baseline(
    brown: &MockServer,
    healthy: &MockServer,
    normal: &FaultPlan,
    group: Group,
    name: &str,
    n: usize,
    streams: bool,
) -> Duration {
    brown.set_default_fault(Some(normal.clone()));
    let o = run(brown, healthy, group, Features::Off, n, streams).await;
    line("healthy", name, &o, o.p99);
    o.p99
}

fn line(label: &str, selection: &str, o: &Outcome, healthy_p99: Duration) {
    println!(
        "  {label:<28} {selection:<16} p50 {:>6.0} ms  p99 {:>6.0} ms  ({:>5.1}x healthy)  ok {:>6.1}%  extra load {:>+6.1}%",
        o.p50.as_secs_f64() * 1e3,
        o.p99.as_secs_f64() * 1e3,
        o.p99.as_secs_f64() / healthy_p99.as_secs_f64().max(1e-9),
        o.ok_share * 100.0,
        o.extra_load * 100.0,
    );
    if !o.limits.is_empty() {
        println!("      limits at the end: {}", o.limits.join(", "));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for t in &o.tail {
        println!(
            "      {:>4} {:>5.0}-{:<5.0} ms  started {:>5.0}-{:<5.0} ms in  {}",
            t.count,
            ms(t.times.0),
            ms(t.times.1),
            ms(t.started.0),
            ms(t.started.1),
            t.route
        );
    }
}

fn main() {
    // The sizes of issue 28's baseline (2,000 requests, 500 streams).
    let requests = env("STEER_BENCH_REQUESTS", 2000);
    // `STEER_BENCH_ONLY`: the sections to run (any of `requests`, `trickle`,
    // `heavy`, `slow`, comma-separated); all by default.
    let only = std::env::var("STEER_BENCH_ONLY").unwrap_or_default();
    let wanted = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    let streams = env("STEER_BENCH_STREAMS", 500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let normal = FaultPlan::normal().with_latency(Duration::from_millis(50));
    let start = || {
        MockServer::builder()
            .default_fault(normal.clone())
            .start_background()
            .expect("a mock")
    };
    let (brown, healthy) = (start(), start());
    let group = |s| {
        Group::new(["brown/gpt-4o-mini", "healthy/gpt-4o-mini"])
            .expect("a group")
            .selection(s)
    };
    if wanted("requests") {
        println!(
        "requests: {requests} at {CONCURRENCY} concurrent, deadline {DEADLINE:?}; one target: 5% 1 s, 20% a 429 asking 1 s"
    );
        runtime.block_on(async {
            for (s, name) in SELECTIONS {
                let healthy_p99 =
                    baseline(&brown, &healthy, &normal, group(s), name, requests, false).await;
                for (features, label) in [
                    (Features::Off, "brownout, features off"),
                    (Features::On, "brownout, features on"),
                ] {
                    brown.push_faults(brownout(requests * 4));
                    let o = run(&brown, &healthy, group(s), features, requests, false).await;
                    brown.clear_faults();
                    line(label, name, &o, healthy_p99);
                }
            }
        });
    }
    if wanted("trickle") {
        println!(
        "streams: {streams} at {CONCURRENCY} concurrent, deadline {DEADLINE:?}; one target trickles (a chunk every 200 ms after the first)"
    );
        runtime.block_on(async {
            for (s, name) in SELECTIONS {
                let healthy_p99 =
                    baseline(&brown, &healthy, &normal, group(s), name, streams, true).await;
                brown.set_default_fault(Some("trickle?after=1&ms=200".parse().expect("a plan")));
                for (features, label) in [
                    (Features::Off, "trickling, features off"),
                    (Features::On, "trickling, features on"),
                ] {
                    let o = run(&brown, &healthy, group(s), features, streams, true).await;
                    line(label, name, &o, healthy_p99);
                }
            }
        });
    }
    for (section, refusals, about, off, on) in [
        (
            "heavy",
            true,
            "5% of streams' first content 1 s late, 20% a 429 asking 1 s (the requests' plan)",
            "heavy tail, 429s, off",
            "heavy tail, 429s, on",
        ),
        (
            "slow",
            false,
            "5% of streams' first content 1 s late, no 429 (beyond the aim: nothing but the tail tells it apart)",
            "slow first token, off",
            "slow first token, on",
        ),
    ] {
        if !wanted(section) {
            continue;
        }
        // The heavy tail's size is the requests': issue 28 measured both at 2,000.
        let streams = requests;
        println!("streams: {streams} at {CONCURRENCY} concurrent, deadline {DEADLINE:?}; one target: {about}");
        runtime.block_on(async {
            for (s, name) in SELECTIONS {
                let healthy_p99 = baseline(&brown, &healthy, &normal, group(s), name, streams, true).await;
                for (features, label) in [(Features::Off, off), (Features::On, on)] {
                    brown.push_faults(slow_first_tokens(streams * 4, refusals));
                    let o = run(&brown, &healthy, group(s), features, streams, true).await;
                    brown.clear_faults();
                    line(label, name, &o, healthy_p99);
                }
            }
        });
    }
}
