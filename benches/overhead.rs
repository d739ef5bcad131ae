//! What steer's runtime costs per request, without HTTP: `client.generate` against a
//! provider that answers at once, minus a direct call of the same provider.
//! `cargo bench --bench overhead` (`steer_budget`: the same with a client-wide
//! budget, every attempt reserved and settled).
//!
//! The loopback benchmark (`e2e`) tells what a user sees; this one isolates the
//! actor path (admission, request actor, permit, attempt, reports, reply) so that a
//! change to it can be measured above the machine's noise.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use steer_llm::provider::EventStream;
use steer_llm::{ChatRequest, ChatResponse, Client, Provider, ProviderError, Providers, Usage};

/// The system allocator, counting allocations: the bench prints how many a
/// request makes (each one is CPU, and a line of cache written).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (and reallocations) a call of `call` makes, over `n` calls
/// made 64 at a time, after as many to warm up.
fn allocations_per_call<F, Fut>(system: &actix::SystemRunner, n: u64, call: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    system.block_on(run(n, 64, &call));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    system.block_on(run(n, 64, &call));
    let made = ALLOCATIONS.load(Ordering::Relaxed).saturating_sub(before);
    made as f64 / n as f64
}

/// A provider that answers every request at once.
struct Immediate;

#[steer_llm::async_trait]
impl Provider for Immediate {
    fn name(&self) -> &str {
        "null"
    }

    async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        Ok(ChatResponse::new(req, "null", "").with_usage(Usage::new(1, 1)))
    }

    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let resp = self.generate(req).await?;
        Ok(steer_llm::provider::stream_from_response(resp))
    }
}

fn request() -> ChatRequest {
    ChatRequest::new("null/model")
        .unwrap_or_else(|_| unreachable!())
        .user("hi")
}

/// Runs `iters` requests, `concurrency` at a time, through `call`.
async fn run<F, Fut>(iters: u64, concurrency: u64, call: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(concurrency);
        futures::future::join_all((0..n).map(|_| call())).await;
        left -= n;
    }
    started.elapsed()
}

fn overhead(c: &mut Criterion) {
    let system = actix::System::new();
    let client = system.block_on(async {
        Client::builder()
            .providers(Providers::new().with(Immediate))
            .arbiters(0)
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"))
    });
    // The same with a client-wide token budget that never runs out: every
    // attempt reserved and settled in the ledger actor.
    let budgeted = system.block_on(async {
        Client::builder()
            .providers(Providers::new().with(Immediate))
            .arbiters(0)
            .spend_budget(
                steer_llm::budget::Scope::Client,
                steer_llm::budget::Budget::tokens(u64::MAX / 2),
            )
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"))
    });
    let direct = Immediate;
    let n = 20_000;
    let direct_allocs = allocations_per_call(&system, n, || async {
        let _ = direct.generate(&request()).await;
    });
    let steer_allocs = allocations_per_call(&system, n, || async {
        let _ = client.generate(request()).await;
    });
    println!(
        "allocations a request, 64 at a time: direct {direct_allocs:.1}, steer {steer_allocs:.1}"
    );
    let mut group = c.benchmark_group("overhead");
    for concurrency in [1u64, 64, 1024] {
        group.bench_function(format!("direct/{concurrency}"), |b| {
            b.iter_custom(|iters| {
                system.block_on(run(iters, concurrency, || async {
                    let _ = direct.generate(&request()).await;
                }))
            })
        });
        group.bench_function(format!("steer/{concurrency}"), |b| {
            b.iter_custom(|iters| {
                system.block_on(run(iters, concurrency, || async {
                    let _ = client.generate(request()).await;
                }))
            })
        });
        group.bench_function(format!("steer_budget/{concurrency}"), |b| {
            b.iter_custom(|iters| {
                system.block_on(run(iters, concurrency, || async {
                    let _ = budgeted.generate(request()).await;
                }))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
