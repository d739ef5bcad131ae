//! steer's `generate` against a bare reqwest call of the same request, from every
//! placement a caller has (an actix arbiter with `arbiters(0)`, a user's actor, an
//! actix-web handler, tasks spawned on plain tokio), one request at a time and 64
//! concurrent, against one mock process: steer / bare ratios of throughput and of
//! CPU per request (this process's CPU, every thread; the kernel's part of it
//! beside). `cargo bench --features mock --bench e2e`
//!
//! `STEER_BENCH_PLACEMENTS=tokio,actix-web` picks placements; `STEER_BENCH_ROUNDS`
//! and `STEER_BENCH_SLICE_MS` the rounds and their length; `STEER_BENCH_ARBITERS`
//! the plain tokio client's arbiters; `STEER_BENCH_FLAVOR=current` runs the plain
//! tokio placement on a current-thread runtime instead of a multi-thread one; `STEER_BENCH_ONLY=steer` (or `bare`) runs one
//! variant alone, for a profiler (its ratios are then of that variant to itself);
//! `STEER_BENCH_CALLS=N` has each caller make N calls a slice instead of calling
//! for a time (in every placement but actix-web), for a cache simulator to compare
//! equal work (`valgrind --tool=cachegrind --cache-sim=yes`, BENCHMARKS.md);
//! `STEER_BENCH_CONCURRENCY=64` (or `1`) runs one of the two phases, any other
//! number one phase at that concurrency; `STEER_BENCH_PIN=0` leaves the callers
//! and the mock unpinned (by default the callers run on core 0 and the mock on
//! core 1). Built with `RUSTFLAGS="--cfg tokio_unstable"` (a target directory of
//! its own), the plain tokio placement prints each slice's task polls, local
//! schedules, parks and steals per request, and `STEER_BENCH_LIFO=0` turns its
//! runtime's LIFO slot off.

mod placement;

use placement::{Kind, MockProcess, Placement, Plan};

fn main() {
    let mock = MockProcess::start(30, None);
    let pinned = placement::pin_caller();
    let settings = placement::Settings::from_env(9, 1000);
    println!(
        "non-streaming requests, steer / bare, medians of {} alternating rounds of {:?} (spread):",
        settings.rounds, settings.length
    );
    println!("{}", placement::pinning_line(pinned));
    for p in settings.placements(&Placement::ALL) {
        println!("{}:", p.name());
        for (label, concurrency) in placement::concurrencies() {
            let plan = Plan {
                kind: Kind::Generate,
                concurrency,
                length: settings.length,
                rounds: settings.rounds,
            };
            placement::report(label, "req", &placement::run(p, &mock, plan));
        }
    }
}
