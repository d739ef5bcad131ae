//! Streams: chunks per second and CPU per chunk through steer against bare
//! reqwest with SSE parsing for 1,000-chunk streams, from every placement (an actix arbiter,
//! a user's actor, an actix-web handler, tasks spawned on plain tokio), one at a
//! time and 64 concurrent; the wall time of a short stream on a kept-alive
//! connection; and memory per open stream with 10,000 streams open, against the
//! same mock in one run. `cargo bench --features mock --bench stream` (the callers pinned to core
//! 0 and the mock to core 1 unless `STEER_BENCH_PIN=0`; the other settings as in
//! the e2e bench).

mod placement;

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use steer_llm::mock::{MockServer, MOCK_API_KEY};
use steer_llm::{ChatRequest, Client, StreamEvent};

const OPEN: usize = 10_000;

fn open_count() -> usize {
    std::env::var("STEER_BENCH_OPEN")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(OPEN)
}

/// Counts live heap bytes, so that memory per stream is measured exactly (RSS also
/// moves with allocator fragmentation).
struct Counting;

static LIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter
// is updated besides.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size() as i64, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(
            new as i64 - layout.size() as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap_bytes() -> i64 {
    LIVE.load(std::sync::atomic::Ordering::Relaxed)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    if let (Ok(phase), Ok(base)) = (
        std::env::var("STEER_BENCH_PHASE"),
        std::env::var("STEER_BENCH_MOCK"),
    ) {
        return measure_phase(&phase, &base);
    }
    let mock = placement::MockProcess::start(1000, None);
    let pinned = placement::pin_caller();
    let settings = placement::Settings::from_env(5, 1000);
    println!(
        "1,000-chunk streams, steer / bare, medians of {} alternating rounds of {:?} (spread):",
        settings.rounds, settings.length
    );
    println!("{}", placement::pinning_line(pinned));
    for p in settings.placements(&placement::Placement::ALL) {
        println!("{}:", p.name());
        for (label, concurrency) in [("one stream at a time", 1), ("64 concurrent streams", 64)] {
            let plan = placement::Plan {
                kind: placement::Kind::Stream,
                concurrency,
                length: settings.length,
                rounds: settings.rounds,
            };
            placement::report(label, "chunk", &placement::run(p, &mock, plan));
        }
    }
    drop(mock);

    // The wall time of a short stream on a kept-alive connection: the mock sets
    // TCP_NODELAY, so this stays well under a millisecond or two; ~40 ms would be
    // Nagle and the client's delayed ACK holding the stream's end.
    let short = MockServer::builder()
        .reply_words(20)
        .record_requests(false)
        .start_background()
        .expect("mock");
    let short_url = format!("{}/chat/completions", short.openai_base_url());
    let short_providers = short.providers().expect("providers");
    let (bare_ms, steer_ms) = actix::System::new().block_on(async move {
        let client = Client::builder()
            .providers(short_providers)
            .arbiters(0)
            .build()
            .expect("client");
        let http = reqwest::Client::new();
        let (mut bare, mut steer) = (Vec::new(), Vec::new());
        for i in 0..60 {
            let t = Instant::now();
            placement::bare(&http, &short_url, placement::Kind::Stream).await;
            let b = t.elapsed();
            let t = Instant::now();
            placement::steer(&client, placement::Kind::Stream).await;
            let s = t.elapsed();
            // The first requests open the connections.
            if i >= 10 {
                bare.push(b.as_secs_f64() * 1e3);
                steer.push(s.as_secs_f64() * 1e3);
            }
        }
        (placement::median(&mut bare), placement::median(&mut steer))
    });
    println!("a 20-chunk stream on a kept-alive loopback connection, wall time (median of 50):");
    println!(
        "  bare {bare_ms:.2} ms; steer {steer_ms:.2} ms (about 40 ms would mean a Nagle stall)"
    );

    // Memory per open stream: 10,000 streams that have delivered their first chunk
    // and then stall, held open at once; bare first, then steer.
    // The mock runs as its own process here: 10,000 connections need 10,000 file
    // descriptors on each side, and its memory must not count.
    let stalling = placement::MockProcess::start(50, Some("stall?after=1"));
    let base = stalling.base.clone();
    let run_phase = |phase: &str| -> (f64, f64) {
        let out = std::process::Command::new(std::env::current_exe().expect("self"))
            .env("STEER_BENCH_PHASE", phase)
            .env("STEER_BENCH_MOCK", &base)
            .output()
            .expect("phase process");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut numbers = text.split_whitespace().map(|n| n.parse::<f64>());
        match (numbers.next(), numbers.next()) {
            (Some(Ok(heap)), Some(Ok(rss))) => (heap, rss),
            _ => panic!("phase {phase} printed {text:?}"),
        }
    };
    let steer_per = run_phase("steer");
    let bare_per = run_phase("bare");
    println!(
        "{} open streams (first chunk delivered, then stalled), per stream:",
        open_count()
    );
    println!(
        "  live heap: bare reqwest + SSE {:.1} KiB; steer {:.1} KiB; steer beyond bare {:.1} KiB",
        bare_per.0 / 1024.0,
        steer_per.0 / 1024.0,
        (steer_per.0 - bare_per.0) / 1024.0
    );
    println!(
        "  RSS growth: bare {:.1} KiB; steer {:.1} KiB; steer beyond bare {:.1} KiB",
        bare_per.1 / 1024.0,
        steer_per.1 / 1024.0,
        (steer_per.1 - bare_per.1) / 1024.0
    );
    drop(stalling);
}

/// Polls each held stream once with a waker of its own: the body then no longer
/// holds the waker of the `join_all` that opened it, which would keep that
/// `join_all`'s task (the size of its opening future) alive, an artefact of the
/// harness, not a cost of the client.
fn forget_openers<S: futures::Stream + Unpin>(held: &mut [S]) {
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    for s in held {
        let _ = s.poll_next_unpin(&mut cx);
    }
}

/// Measures one kind of client holding `OPEN` streams, in a process of its own
/// (memory freed by one measurement would otherwise be reused by the next).
fn measure_phase(phase: &str, base: &str) {
    let stall_url = format!("{base}/v1/chat/completions");
    let providers = steer_llm::Providers::new().with(
        steer_llm::OpenAiCompatible::openai()
            .base_url(format!("{base}/v1"))
            .api_key(MOCK_API_KEY)
            .build()
            .expect("provider"),
    );
    let open = open_count();
    let system = actix::System::new();
    let per_stream = system.block_on(async move {
        if phase == "steer" {
            let client = Client::builder()
                .providers(providers)
                .arbiters(0)
                .max_in_flight(open * 2, steer_llm::runtime::Overload::Reject)
                .stream_timeouts(None, None, None)
                .build()
                .expect("client");
            let (before, heap_before) = (rss_bytes(), heap_bytes());
            let mut held = Vec::with_capacity(open);
            for chunk in (0..open).collect::<Vec<_>>().chunks(500) {
                let opened = futures::future::join_all(chunk.iter().map(|_| async {
                    let req = ChatRequest::new("openai/gpt-4o-mini")
                        .expect("model")
                        .user("Tell me about rivers.");
                    let mut s = client.stream(req).await.expect("open");
                    loop {
                        if let Some(Ok(StreamEvent::TextDelta { .. })) = s.next().await {
                            break;
                        }
                    }
                    s
                }))
                .await;
                held.extend(opened);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            forget_openers(&mut held);
            let heap = (heap_bytes() - heap_before) as f64 / open as f64;
            let rss = (rss_bytes().saturating_sub(before)) as f64 / open as f64;
            (heap, rss)
        } else {
            let _ = (&providers, &stall_url);
            // STEER_BENCH_BARE_AS_STEER=1: the bare client built as steer builds its
            // own (no redirects, no reqwest retries, a connect timeout), to tell
            // reqwest's settings from steer's own cost.
            let http = if std::env::var("STEER_BENCH_BARE_AS_STEER").is_ok() {
                steer_llm::provider::http::default_http_client(Duration::from_secs(10))
                    .expect("http")
            } else {
                // What a bare caller writes (and what the throughput rounds use):
                // the default pool. (A pool of no idle connections, which this
                // bench used before, holds 0.4 KiB less per open connection.)
                reqwest::Client::new()
            };
            let (before, heap_before) = (rss_bytes(), heap_bytes());
            let mut held = Vec::with_capacity(open);
            for chunk in (0..open).collect::<Vec<_>>().chunks(500) {
                let opened = futures::future::join_all(chunk.iter().map(|_| async {
                    let resp = http
                        .post(&stall_url)
                        .bearer_auth(MOCK_API_KEY)
                        .json(&placement::body(placement::Kind::Stream))
                        .send()
                        .await
                        .expect("open");
                    let mut events = resp.bytes_stream().eventsource();
                    let first = events.next().await;
                    assert!(first.is_some());
                    events
                }))
                .await;
                held.extend(opened);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            forget_openers(&mut held);
            let heap = (heap_bytes() - heap_before) as f64 / open as f64;
            let rss = (rss_bytes().saturating_sub(before)) as f64 / open as f64;
            drop(held);
            (heap, rss)
        }
    });
    println!("{} {}", per_stream.0, per_stream.1);
}
