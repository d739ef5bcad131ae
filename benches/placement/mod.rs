//! The placements a caller of steer has, for the `e2e` and `stream` benches: the
//! same work (bare reqwest, then steer, alternating) run from an actix arbiter
//! with `arbiters(0)`, from a user's actor beside a default client, from an
//! actix-web handler and from a task spawned on a multi-thread tokio runtime.
//!
//! The mock runs as a process of its own (`steer mock`), so that the CPU this
//! process spends (getrusage, every thread) is the callers' and steer's alone:
//! noise from other processes moves the wall time, not the CPU per unit.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::StreamExt;
use steer_llm::mock::MOCK_API_KEY;
use steer_llm::{ChatRequest, Client, StreamEvent};

/// What one call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A non-streaming request: one unit.
    Generate,
    /// A streamed request: one unit per text chunk.
    Stream,
}

/// Who makes the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Bare,
    Steer,
}

/// A `steer mock` process on a free port, killed on drop.
pub struct MockProcess {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl MockProcess {
    pub fn start(words: usize, faults: Option<&str>) -> MockProcess {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_steer"));
        cmd.args(["mock", "--words", &words.to_string()]);
        if pinned() {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec only sched_setaffinity runs, which is
            // async-signal-safe and touches a set on this stack.
            unsafe {
                cmd.pre_exec(move || {
                    pin_current_to(MOCK_CORE);
                    Ok(())
                });
            }
        }
        if let Some(f) = faults {
            cmd.args(["--faults", f]);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start steer mock");
        let mut line = String::new();
        {
            use std::io::BufRead;
            let stdout = child.stdout.take().expect("stdout");
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .expect("mock banner");
        }
        let base = line
            .split_whitespace()
            .last()
            .expect("base url")
            .to_string();
        MockProcess { child, base }
    }

    pub fn providers(&self) -> steer_llm::Providers {
        steer_llm::Providers::new().with(
            steer_llm::OpenAiCompatible::openai()
                .base_url(format!("{}/v1", self.base))
                .api_key(MOCK_API_KEY)
                .build()
                .expect("provider"),
        )
    }

    pub fn url(&self) -> String {
        format!("{}/v1/chat/completions", self.base)
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The callers' core in a pinned run.
pub const CALLER_CORE: usize = 0;
/// The mock's core in a pinned run.
pub const MOCK_CORE: usize = 1;

/// Whether runs are pinned: unless `STEER_BENCH_PIN=0`, on a machine with at least
/// two cores online, the callers on [`CALLER_CORE`] and the mock on [`MOCK_CORE`]
/// (as the figures of issue 13 were taken), so that neither process's work lands in
/// the other's caches or run queue. Counted from the cores online, not this
/// thread's affinity: a mock started after [`pin_caller`] is pinned too.
pub fn pinned() -> bool {
    let on = std::env::var("STEER_BENCH_PIN").map_or(true, |v| v != "0");
    // SAFETY: sysconf reads a system value.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    on && online >= 2
}

fn pin_current_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET writes a bit of it; the call
    // reads it and sets this thread's (or, before exec, this process's) affinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Pins this thread (and every thread it starts after) to the caller's core, when
/// the run is pinned. Call it before any runtime starts. Returns whether it did.
pub fn pin_caller() -> bool {
    let pinned = pinned();
    if pinned {
        pin_current_to(CALLER_CORE);
    }
    pinned
}

/// What a report says of the run's pinning.
pub fn pinning_line(pinned: bool) -> &'static str {
    if pinned {
        "callers pinned to core 0, the mock to core 1 (STEER_BENCH_PIN=0 for neither)"
    } else {
        "not pinned: callers and mock share every core"
    }
}

/// This process's CPU time so far (user and system, every thread), the system
/// part of it, and its context switches (voluntary and involuntary).
pub fn usage_now() -> (Duration, Duration, u64) {
    // SAFETY: getrusage writes one plain struct we own.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let switches = (usage.ru_nvcsw as u64).saturating_add(usage.ru_nivcsw as u64);
    (
        tv(usage.ru_utime) + tv(usage.ru_stime),
        tv(usage.ru_stime),
        switches,
    )
}

/// Everything one call needs, made in the runtime that calls.
#[derive(Clone)]
pub struct Callers {
    pub http: reqwest::Client,
    pub url: Arc<str>,
    pub client: Client,
}

impl Callers {
    /// steer's `client` and a bare reqwest client made here, both for `url`.
    fn new(client: Client, url: Arc<str>) -> Callers {
        Callers {
            http: reqwest::Client::new(),
            url,
            client,
        }
    }
}

/// The bare client's request body (the same request steer sends).
pub fn body(kind: Kind) -> serde_json::Value {
    let mut v = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me about rivers."}],
    });
    if kind == Kind::Stream {
        v["stream"] = true.into();
        v["stream_options"] = serde_json::json!({"include_usage": true});
    }
    v
}

fn request() -> ChatRequest {
    ChatRequest::new("openai/gpt-4o-mini")
        .expect("model")
        .user("Tell me about rivers.")
}

/// A bare client's call: reqwest, JSON parsed with serde_json (per chunk for a
/// stream, after eventsource-stream's framing).
pub async fn bare(http: &reqwest::Client, url: &str, kind: Kind) -> u64 {
    use eventsource_stream::Eventsource;
    let resp = http
        .post(url)
        .bearer_auth(MOCK_API_KEY)
        .json(&body(kind))
        .send()
        .await
        .expect("bare request");
    match kind {
        Kind::Generate => {
            let bytes = resp.bytes().await.expect("bare body");
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("bare json");
            assert!(v["choices"][0]["message"]["content"].is_string());
            1
        }
        Kind::Stream => {
            let mut events = resp.bytes_stream().eventsource();
            let mut chunks = 0;
            while let Some(e) = events.next().await {
                let e = e.expect("event");
                if e.data == "[DONE]" {
                    break;
                }
                let v: serde_json::Value = serde_json::from_str(&e.data).expect("json");
                if v["choices"][0]["delta"]["content"].is_string() {
                    chunks += 1;
                }
            }
            chunks
        }
    }
}

/// steer's call of the same request.
pub async fn steer(client: &Client, kind: Kind) -> u64 {
    match kind {
        Kind::Generate => {
            client.generate(request()).await.expect("steer request");
            1
        }
        Kind::Stream => {
            let mut s = client.stream(request()).await.expect("steer stream");
            let mut chunks = 0;
            while let Some(e) = s.next().await {
                if let StreamEvent::TextDelta { .. } = e.expect("event") {
                    chunks += 1;
                }
            }
            chunks
        }
    }
}

async fn call(c: &Callers, kind: Kind, variant: Variant) -> u64 {
    match variant {
        Variant::Bare => bare(&c.http, &c.url, kind).await,
        Variant::Steer => steer(&c.client, kind).await,
    }
}

/// One slice's work: units done, in how long, for how much CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct Slice {
    pub units: u64,
    pub wall: Duration,
    pub cpu: Duration,
    /// The part of `cpu` spent in the kernel.
    pub sys: Duration,
    /// Context switches of this process's threads.
    pub switches: u64,
}

impl Slice {
    /// The slice that began at `start` (an instant and [`usage_now`]) and did
    /// `units`.
    fn since(start: (Instant, (Duration, Duration, u64)), units: u64) -> Slice {
        let (t, (cpu, sys, switches)) = start;
        let (cpu_now, sys_now, switches_now) = usage_now();
        Slice {
            units,
            wall: t.elapsed(),
            cpu: cpu_now.saturating_sub(cpu),
            sys: sys_now.saturating_sub(sys),
            switches: switches_now.saturating_sub(switches),
        }
    }

    pub fn rate(&self) -> f64 {
        self.units as f64 / self.wall.as_secs_f64()
    }
    /// System (kernel) CPU per unit, in µs.
    pub fn sys_per_unit(&self) -> f64 {
        self.sys.as_secs_f64() * 1e6 / self.units.max(1) as f64
    }
    /// CPU per unit, in µs.
    pub fn cpu_per_unit(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.units.max(1) as f64
    }
    /// Context switches per unit.
    pub fn switches_per_unit(&self) -> f64 {
        self.switches as f64 / self.units.max(1) as f64
    }
}

/// A fixed number of calls per caller instead of a time
/// (`STEER_BENCH_CALLS`), for a cache simulator (cachegrind) to compare equal
/// work.
fn fixed_calls() -> Option<u64> {
    std::env::var("STEER_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
}

/// One caller: calls until `deadline`, or `calls` times when set; the units
/// done.
async fn caller(
    c: &Callers,
    kind: Kind,
    variant: Variant,
    deadline: Instant,
    calls: Option<u64>,
) -> u64 {
    let (mut n, mut made) = (0, 0u64);
    while calls.map_or(Instant::now() < deadline, |calls| made < calls) {
        n += call(c, kind, variant).await;
        made += 1;
    }
    n
}

/// `concurrency` callers calling for `length` in the current task (sequential
/// when 1), measured.
pub async fn slice(
    c: &Callers,
    kind: Kind,
    variant: Variant,
    concurrency: usize,
    length: Duration,
) -> Slice {
    let start = (Instant::now(), usage_now());
    let deadline = start.0 + length;
    let calls = fixed_calls();
    let units = futures::future::join_all(
        (0..concurrency).map(|_| caller(c, kind, variant, deadline, calls)),
    )
    .await
    .into_iter()
    .sum();
    Slice::since(start, units)
}

/// The same, each caller a task spawned on the current (multi-thread) runtime.
pub async fn spawned_slice(
    c: &Callers,
    kind: Kind,
    variant: Variant,
    concurrency: usize,
    length: Duration,
) -> Slice {
    #[cfg(tokio_unstable)]
    let polls_before = poll_counts();
    let start = (Instant::now(), usage_now());
    let deadline = start.0 + length;
    let calls = fixed_calls();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { caller(&c, kind, variant, deadline, calls).await })
        })
        .collect();
    let mut units = 0;
    for task in tasks {
        units += task.await.expect("caller task");
    }
    #[cfg(tokio_unstable)]
    polls_per_unit(&polls_before, units, variant);
    Slice::since(start, units)
}

/// The runtime's task polls, local schedules and parks so far, summed over its
/// workers (a build with `RUSTFLAGS="--cfg tokio_unstable"` only).
#[cfg(tokio_unstable)]
fn poll_counts() -> [u64; 4] {
    let m = tokio::runtime::Handle::current().metrics();
    (0..m.num_workers()).fold([0; 4], |mut a, w| {
        a[0] += m.worker_poll_count(w);
        a[1] += m.worker_local_schedule_count(w);
        a[2] += m.worker_park_count(w);
        a[3] += m.worker_steal_count(w);
        a
    })
}

/// Prints the slice's polls, local schedules, parks and steals per unit.
#[cfg(tokio_unstable)]
fn polls_per_unit(before: &[u64; 4], units: u64, variant: Variant) {
    let after = poll_counts();
    let per = |i: usize| after[i].saturating_sub(before[i]) as f64 / units.max(1) as f64;
    eprintln!(
        "{variant:?}: polls {:.2}, local schedules {:.2}, parks {:.3}, steals {:.3} per unit",
        per(0),
        per(1),
        per(2),
        per(3)
    );
}

/// The phases of a run, `(label, concurrency)`: one at a time and 64
/// concurrent, or the one `STEER_BENCH_CONCURRENCY` names.
pub fn concurrencies() -> Vec<(&'static str, usize)> {
    let all = [("one at a time", 1), ("64 concurrent", 64)];
    match std::env::var("STEER_BENCH_CONCURRENCY")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
    {
        Some(1) => vec![all[0]],
        Some(64) => vec![all[1]],
        // Any other number: one phase at that concurrency (its label made
        // once a run).
        Some(n) => vec![(&*format!("{n} concurrent").leak(), n)],
        None => all.to_vec(),
    }
}

/// Where the callers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Code on an actix arbiter; the client on that arbiter (`arbiters(0)`).
    Arbiter,
    /// A user's actor; the client with its own arbiters (the default).
    Actor,
    /// An actix-web handler; the client built before the server, default arbiters.
    ActixWeb,
    /// Tasks spawned on a multi-thread tokio runtime; default client.
    Tokio,
}

impl Placement {
    pub const ALL: [Placement; 4] = [
        Placement::Arbiter,
        Placement::Actor,
        Placement::ActixWeb,
        Placement::Tokio,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placement::Arbiter => "actix arbiter, arbiters(0)",
            Placement::Actor => "user's actor, default client",
            Placement::ActixWeb => "actix-web handler",
            Placement::Tokio => "plain tokio, spawned tasks",
        }
    }
}

/// A run: `rounds` of (bare slice, steer slice) in one placement.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub kind: Kind,
    pub concurrency: usize,
    pub length: Duration,
    pub rounds: usize,
}

/// The slices of `plan` in `placement`, bare and steer alternating: `(bare, steer)`
/// per round.
pub fn run(placement: Placement, mock: &MockProcess, plan: Plan) -> Vec<(Slice, Slice)> {
    let providers = mock.providers();
    let url: Arc<str> = Arc::from(mock.url());
    match placement {
        Placement::Arbiter => actix::System::new().block_on(async move {
            let client = Client::builder()
                .providers(providers)
                .arbiters(0)
                .build()
                .expect("client");
            let c = Callers::new(client, url);
            rounds(plan, |variant, length| {
                let c = c.clone();
                async move { slice(&c, plan.kind, variant, plan.concurrency, length).await }
            })
            .await
        }),
        Placement::Actor => actix::System::new().block_on(async move {
            let client = Client::builder()
                .providers(providers)
                .build()
                .expect("client");
            let caller = Caller {
                c: Callers::new(client, url),
            }
            .start();
            rounds(plan, |variant, length| {
                let caller = caller.clone();
                async move {
                    caller
                        .send(RunSlice {
                            kind: plan.kind,
                            variant,
                            concurrency: plan.concurrency,
                            length,
                        })
                        .await
                        .expect("caller actor")
                }
            })
            .await
        }),
        Placement::ActixWeb => actix_web_rounds(providers, url, plan),
        Placement::Tokio => {
            let rt = if std::env::var("STEER_BENCH_FLAVOR").is_ok_and(|f| f == "current") {
                tokio::runtime::Builder::new_current_thread()
            } else {
                #[allow(unused_mut)]
                let mut b = tokio::runtime::Builder::new_multi_thread();
                // tokio's LIFO slot off (`STEER_BENCH_LIFO=0`, in a build
                // with `RUSTFLAGS="--cfg tokio_unstable"`).
                #[cfg(tokio_unstable)]
                if std::env::var("STEER_BENCH_LIFO").is_ok_and(|v| v == "0") {
                    b.disable_lifo_slot();
                }
                b
            }
            .enable_all()
            .build()
            .expect("runtime");
            rt.block_on(async move {
                let mut builder = Client::builder().providers(providers);
                if let Some(n) = std::env::var("STEER_BENCH_ARBITERS").ok().and_then(|n| n.parse().ok()) {
                    builder = builder.arbiters(n);
                }
                let client = builder.build().expect("client");
                let c = Callers::new(client, url);
                rounds(plan, |variant, length| {
                    let c = c.clone();
                    async move { spawned_slice(&c, plan.kind, variant, plan.concurrency, length).await }
                })
                .await
            })
        }
    }
}

/// A warm-up of each variant, then `plan.rounds` alternating rounds.
async fn rounds<F, Fut>(plan: Plan, mut slice: F) -> Vec<(Slice, Slice)>
where
    F: FnMut(Variant, Duration) -> Fut,
    Fut: std::future::Future<Output = Slice>,
{
    let warm = plan.length / 4;
    // One variant only (both halves of each round), for a profiler to see it alone.
    if let Ok(only) = std::env::var("STEER_BENCH_ONLY") {
        let v = if only == "steer" {
            Variant::Steer
        } else {
            Variant::Bare
        };
        let mut out = Vec::with_capacity(plan.rounds);
        for _ in 0..plan.rounds {
            let a = slice(v, plan.length).await;
            let b = slice(v, plan.length).await;
            out.push((a, b));
        }
        return out;
    }
    slice(Variant::Bare, warm).await;
    slice(Variant::Steer, warm).await;
    let mut out = Vec::with_capacity(plan.rounds);
    for _ in 0..plan.rounds {
        let b = slice(Variant::Bare, plan.length).await;
        let s = slice(Variant::Steer, plan.length).await;
        out.push((b, s));
    }
    out
}

/// A user's actor that runs slices in its handler.
struct Caller {
    c: Callers,
}

impl Actor for Caller {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "Slice")]
struct RunSlice {
    kind: Kind,
    variant: Variant,
    concurrency: usize,
    length: Duration,
}

impl Handler<RunSlice> for Caller {
    type Result = ResponseFuture<Slice>;

    fn handle(&mut self, m: RunSlice, _: &mut Context<Self>) -> Self::Result {
        let c = self.c.clone();
        Box::pin(async move { slice(&c, m.kind, m.variant, m.concurrency, m.length).await })
    }
}

/// The rounds run by an actix-web handler: one worker, asked by one HTTP request
/// per slice (so that the load generator costs nothing beside the slice).
fn actix_web_rounds(
    providers: steer_llm::Providers,
    url: Arc<str>,
    plan: Plan,
) -> Vec<(Slice, Slice)> {
    use actix_web::{web, App, HttpResponse, HttpServer};

    #[derive(Clone)]
    struct Shared {
        client: Client,
        url: Arc<str>,
    }

    #[derive(serde::Deserialize)]
    struct Ask {
        steer: bool,
        stream: bool,
        concurrency: usize,
        ms: u64,
    }
    async fn run_slice(
        shared: web::Data<Shared>,
        http: web::Data<reqwest::Client>,
        ask: web::Query<Ask>,
    ) -> HttpResponse {
        let c = Callers {
            http: http.get_ref().clone(),
            url: shared.url.clone(),
            client: shared.client.clone(),
        };
        let kind = if ask.stream {
            Kind::Stream
        } else {
            Kind::Generate
        };
        let variant = if ask.steer {
            Variant::Steer
        } else {
            Variant::Bare
        };
        let s = slice(
            &c,
            kind,
            variant,
            ask.concurrency,
            Duration::from_millis(ask.ms),
        )
        .await;
        HttpResponse::Ok().body(format!(
            "{} {} {} {} {}",
            s.units,
            s.wall.as_nanos(),
            s.cpu.as_nanos(),
            s.switches,
            s.sys.as_nanos()
        ))
    }

    let (tx, rx) = std::sync::mpsc::channel();
    let server_thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let client = Client::builder()
                .providers(providers)
                .build()
                .expect("client");
            let shared = web::Data::new(Shared { client, url });
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(shared.clone())
                    // The bare client is made on the worker, as a handler's would be.
                    .app_data(web::Data::new(reqwest::Client::new()))
                    .route("/slice", web::get().to(run_slice))
            })
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("bind");
            let addr = server.addrs()[0];
            let server = server.run();
            tx.send((addr, server.handle())).expect("send addr");
            server.await.expect("server");
        })
    });
    let (addr, handle) = rx.recv().expect("server address");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let out = rt.block_on(async move {
        let http = reqwest::Client::new();
        let ask = |steer: bool, length: Duration| {
            let http = http.clone();
            async move {
                let url = format!(
                    "http://{addr}/slice?steer={steer}&stream={}&concurrency={}&ms={}",
                    plan.kind == Kind::Stream,
                    plan.concurrency,
                    length.as_millis()
                );
                let text = http
                    .get(url)
                    .send()
                    .await
                    .expect("ask the handler")
                    .text()
                    .await
                    .expect("slice");
                let mut n = text
                    .split_whitespace()
                    .map(|x| x.parse::<u64>().expect("number"));
                let (units, wall, cpu, switches, sys) = (
                    n.next().expect("units"),
                    n.next().expect("wall"),
                    n.next().expect("cpu"),
                    n.next().expect("switches"),
                    n.next().expect("sys"),
                );
                Slice {
                    units,
                    wall: Duration::from_nanos(wall),
                    cpu: Duration::from_nanos(cpu),
                    sys: Duration::from_nanos(sys),
                    switches,
                }
            }
        };
        let out = rounds(plan, |variant, length| {
            ask(variant == Variant::Steer, length)
        })
        .await;
        handle.stop(true).await;
        out
    });
    let _ = server_thread.join();
    out
}

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Prints one line of a placement's figures: steer / bare ratios of throughput and
/// of CPU per unit, medians over the rounds with their spread.
pub fn report(label: &str, unit: &str, rounds: &[(Slice, Slice)]) {
    let mut rate: Vec<f64> = rounds.iter().map(|(b, s)| s.rate() / b.rate()).collect();
    let mut cpu: Vec<f64> = rounds
        .iter()
        .map(|(b, s)| s.cpu_per_unit() / b.cpu_per_unit())
        .collect();
    let mut bare_rate: Vec<f64> = rounds.iter().map(|(b, _)| b.rate()).collect();
    let mut steer_rate: Vec<f64> = rounds.iter().map(|(_, s)| s.rate()).collect();
    let mut bare_cpu: Vec<f64> = rounds.iter().map(|(b, _)| b.cpu_per_unit()).collect();
    let mut steer_cpu: Vec<f64> = rounds.iter().map(|(_, s)| s.cpu_per_unit()).collect();
    let spread = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{lo:.2}-{hi:.2}")
    };
    let mut bare_sys: Vec<f64> = rounds.iter().map(|(b, _)| b.sys_per_unit()).collect();
    let mut steer_sys: Vec<f64> = rounds.iter().map(|(_, s)| s.sys_per_unit()).collect();
    let mut bare_switches: Vec<f64> = rounds.iter().map(|(b, _)| b.switches_per_unit()).collect();
    let mut steer_switches: Vec<f64> = rounds.iter().map(|(_, s)| s.switches_per_unit()).collect();
    let (rate_spread, cpu_spread) = (spread(&rate), spread(&cpu));
    let (rate, cpu) = (median(&mut rate), median(&mut cpu));
    println!(
        "  {label:<34} throughput {:>9.0} / {:>9.0} {unit}/s  ratio {rate:.2} ({rate_spread})   CPU {:>6.2} / {:>6.2} µs/{unit}  ratio {cpu:.2} ({cpu_spread}) of which system {:.2} / {:.2}   switches {:.3} / {:.3} per {unit}",
        median(&mut steer_rate),
        median(&mut bare_rate),
        median(&mut steer_cpu),
        median(&mut bare_cpu),
        median(&mut steer_sys),
        median(&mut bare_sys),
        median(&mut steer_switches),
        median(&mut bare_switches),
    );
}

/// A bench's rounds, slice length and placements, from the environment.
pub struct Settings {
    pub rounds: usize,
    pub length: Duration,
    only: Option<String>,
}

impl Settings {
    pub fn from_env(rounds: usize, slice_ms: u64) -> Settings {
        let num = |var: &str, default: u64| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Settings {
            rounds: num("STEER_BENCH_ROUNDS", rounds as u64) as usize,
            length: Duration::from_millis(num("STEER_BENCH_SLICE_MS", slice_ms)),
            only: std::env::var("STEER_BENCH_PLACEMENTS").ok(),
        }
    }

    /// The placements asked for (all by default).
    pub fn placements(&self, all: &[Placement]) -> Vec<Placement> {
        all.iter()
            .copied()
            .filter(|p| {
                self.only
                    .as_deref()
                    .is_none_or(|only| only.split(',').any(|o| o.trim() == p.key()))
            })
            .collect()
    }
}

impl Placement {
    /// Its name in `STEER_BENCH_PLACEMENTS`.
    pub fn key(self) -> &'static str {
        match self {
            Placement::Arbiter => "arbiter",
            Placement::Actor => "actor",
            Placement::ActixWeb => "actix-web",
            Placement::Tokio => "tokio",
        }
    }
}
