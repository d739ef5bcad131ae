//! The chaos soak: thousands of requests at 256 in flight, half of them
//! streams, over the four wire formats and a model that rejects prefill,
//! every mock behaviour, a seeded mix of every fault kind struck on a
//! request's first attempt, with millisecond backoffs and timeouts (3,000
//! requests); then a second wave over a group whose first target has an
//! outage mid-run, twice on one client (2,000 requests each). Each of the
//! promises is asserted over all of it:
//!
//! - every request ends exactly once (a reply, or one error after which the
//!   stream yields nothing);
//! - every reply equals the fault-free one (a `Restarted` stream's text is
//!   what came after it; a continuation that stopped at `max_tokens` is a
//!   prefix of it), and every failed stream's partial is a prefix of it;
//! - no reply has more output tokens than its `max_tokens`;
//! - the attempts the metrics count equal the requests the mocks received;
//! - at the end nothing is in flight, no stream open, no budget reserved, no
//!   bulkhead slot held or waited for, no breaker probe out;
//! - the heap after the group's second round is within a small bound of
//!   after its first (a leak a request would show as growth).
#![cfg(feature = "mock")]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use steer_llm::budget::{Budget, Scope};
use steer_llm::mock::{Behaviour, FaultPlan, MockServer, BEHAVIOUR_HEADER};
use steer_llm::{
    BreakerConfig, BudgetConfig, ChatRequest, Client, FinishReason, Group, Providers, StreamEvent,
};

const WAVE_ONE: u64 = 3_000;
const WAVE_TWO: u64 = 2_000;
const IN_FLIGHT: usize = 256;

/// The faults a first attempt may meet (the rest of a request's attempts
/// are clean), by name; `None` is a clean first attempt.
fn fault(rng: &mut fastrand::Rng) -> Option<FaultPlan> {
    let after = rng.usize(0..6);
    let spec = match rng.u8(..28) {
        0 => format!("reset?after={after}"),
        1 => format!("truncate?after={after}"),
        2 => format!("stream_error?name=server_error&after={after}"),
        3 => format!("stream_error?name=overloaded&after={after}"),
        4 => format!("malformed_json?after={after}"),
        5 => format!("malformed_sse?after={after}"),
        6 => format!("stall?after={after}"),
        7 => format!("pings?after={after}&ms=20"),
        8 => "server_error".to_string(),
        9 => "overloaded".to_string(),
        10 => "rate_limit?retry_after_ms=5&capacity_left=true".to_string(),
        11 => "status?code=502".to_string(),
        12 => "latency?ms=30".to_string(),
        13 => "chunk_delay?ms=2".to_string(),
        // A stream answered with the whole reply as JSON (LiteLLM's proxy).
        14 => "whole_reply".to_string(),
        // A trickle too quick for any floor (none is set): only slower.
        15 => format!("trickle?after={after}&ms=3"),
        // A gateway's rewritten errors.
        16 => "gateway_overloaded".to_string(),
        17 => format!("stream_error?name=gateway_stream_error&after={after}"),
        _ => return None,
    };
    Some(spec.parse().expect("a fault plan"))
}

/// The `i`-th request of a wave: its conversation, limit, behaviour, and
/// whether it streams; its first attempt's fault is scripted by its id.
fn request(mock: &MockServer, model: &str, i: u64, seed: u64) -> (ChatRequest, bool, String) {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(0x9e37_79b9).wrapping_add(i));
    let behaviour = Behaviour::ALL[rng.usize(..Behaviour::ALL.len())];
    let id = format!("soak-{seed}-{i}");
    let mut req = ChatRequest::new(model)
        .expect("a model id")
        .system("You are terse.")
        .user(format!("Soak question {}.", rng.u32(..400)))
        .extra_header(BEHAVIOUR_HEADER, behaviour.as_str())
        .request_id(id.as_str());
    if rng.u8(..4) == 0 {
        req = req.max_tokens(rng.u32(6..48));
    }
    let plan = fault(&mut rng);
    let stream = rng.bool();
    if let Some(plan) = &plan {
        mock.script_key(&id, [plan.clone()]);
    }
    // What the request was, for a failure's message.
    let said = format!(
        "{model} {} stream={stream} fault={}",
        behaviour.as_str(),
        plan.map_or("none".to_string(), |p| p.to_string())
    );
    (req, stream, said)
}

/// What one request ended as.
struct Ended {
    ok: bool,
    text: String,
    finish: Option<FinishReason>,
    kind: &'static str,
}

async fn run(client: &Client, req: ChatRequest, stream: bool) -> Result<Ended, String> {
    if !stream {
        return Ok(match client.generate(req).await {
            Ok(r) => Ended {
                ok: true,
                text: r.text,
                finish: Some(r.finish_reason),
                kind: "ok",
            },
            Err(e) => Ended {
                ok: false,
                text: e.partial_text().unwrap_or_default().to_string(),
                finish: None,
                kind: e.kind(),
            },
        });
    }
    let mut s = match client.stream(req).await {
        Ok(s) => s,
        Err(e) => {
            return Ok(Ended {
                ok: false,
                text: String::new(),
                finish: None,
                kind: e.kind(),
            })
        }
    };
    let mut ended = Ended {
        ok: false,
        text: String::new(),
        finish: None,
        kind: "no_terminal_event",
    };
    let mut terminal = 0;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(30), s.next())
        .await
        .map_err(|_| "a stream hung".to_string())?
    {
        if terminal > 0 {
            return Err(format!("an event after the terminal one: {item:?}"));
        }
        match item {
            Ok(StreamEvent::TextDelta { text, offset }) => {
                if offset != ended.text.chars().count() {
                    return Err(format!("offset {offset} after {:?}", ended.text));
                }
                ended.text.push_str(&text);
            }
            Ok(StreamEvent::Restarted { .. }) => ended.text.clear(),
            Ok(StreamEvent::Complete { finish_reason, .. }) => {
                terminal += 1;
                ended.ok = true;
                ended.kind = "ok";
                ended.finish = Some(finish_reason);
            }
            Ok(_) => {}
            Err(e) => {
                terminal += 1;
                ended.kind = e.kind();
            }
        }
    }
    if terminal != 1 {
        return Err(format!("{terminal} terminal events"));
    }
    Ok(ended)
}

/// Checks one request's end against the fault-free reply.
fn check(req: &ChatRequest, model_of_reply: &str, ended: &Ended) -> Result<(), String> {
    let mut fault_free_req = req.clone();
    fault_free_req.model = model_of_reply.parse().map_err(|e| format!("{e}"))?;
    let want = common::expected_text(&fault_free_req, None);
    if ended.ok {
        let stopped_at_limit =
            ended.finish == Some(FinishReason::Length) && req.max_tokens.is_some();
        let exact = ended.text == want;
        let prefix = stopped_at_limit && want.starts_with(&ended.text);
        if !exact && !prefix {
            return Err(format!(
                "{}: got {:?}, fault-free {want:?}",
                req.request_id, ended.text
            ));
        }
        // The output as the server counts it (a broken stream's reported
        // usage may hold a high-side estimate of the part delivered before
        // the break, where the model's tokenizer is not public).
        if let Some(max) = req.max_tokens {
            let model = fault_free_req.model.model();
            let out = steer_llm::mock::text::count_tokens(model, &ended.text);
            if out > u64::from(max) {
                return Err(format!("{}: {out} output tokens > {max}", req.request_id));
            }
        }
    } else if !want.starts_with(&ended.text) {
        return Err(format!(
            "{}: a failed stream's partial {:?} is not a prefix of {want:?}",
            req.request_id, ended.text
        ));
    }
    Ok(())
}

/// A client of `providers` for the soak, `attempts` attempts a request:
/// millisecond backoffs, a breaker that never opens (a wave may set its
/// own), a 250 ms idle timeout, a 2 s attempt timeout, and a retry budget
/// with room for the soak's faults (two requests in five meet one: the
/// default, 20% more load, is the protection a real outage needs, and would
/// turn the soak's retries into failures).
fn soak_builder(providers: Providers, attempts: u32) -> steer_llm::ClientBuilder {
    common::quick_builder(providers, attempts)
        .stream_timeouts(
            Some(Duration::from_secs(5)),
            Some(Duration::from_secs(5)),
            Some(Duration::from_millis(250)),
        )
        .attempt_timeout(Some(Duration::from_secs(2)))
        .retry_budget(BudgetConfig {
            ratio: 3.0,
            ..BudgetConfig::default()
        })
}

/// The sum of a metric family's samples whose line contains `filter`.
fn metric_sum(text: &str, family: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(family) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Counts the bytes the process holds on its heap (allocations not yet
/// freed): a leak shows as growth here, where the resident size also moves
/// with the allocator's own arenas and fragments.
struct CountingAllocator;

static HEAP: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only
// the byte count beside it is ours.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        std::alloc::System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        std::alloc::System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        HEAP.fetch_add(size as isize - layout.size() as isize, Ordering::Relaxed);
        std::alloc::System.realloc(ptr, layout, size)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Bytes held on the heap now.
fn heap_bytes() -> u64 {
    u64::try_from(HEAP.load(Ordering::Relaxed)).unwrap_or(0)
}

/// Runs `n` requests at [`IN_FLIGHT`] through `client`; `pick` builds the
/// `i`-th, `before` runs as it leaves. Returns the failures by kind.
async fn wave(
    client: &Client,
    n: u64,
    pick: impl Fn(u64) -> (ChatRequest, bool, String, String),
    before: impl Fn(u64),
) -> std::collections::BTreeMap<&'static str, u64> {
    let ended = Arc::new(AtomicU64::new(0));
    let results: Vec<Result<&'static str, String>> = futures::stream::iter(0..n)
        .map(|i| {
            before(i);
            let (req, stream, model, said) = pick(i);
            let ended = ended.clone();
            async move {
                let end = run(client, req.clone(), stream)
                    .await
                    .map_err(|e| format!("{e} ({said})"))?;
                ended.fetch_add(1, Ordering::Relaxed);
                check(&req, &model, &end).map_err(|e| format!("{e} ({said})"))?;
                Ok(end.kind)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    assert_eq!(ended.load(Ordering::Relaxed), n, "every request ended once");
    let mut kinds = std::collections::BTreeMap::new();
    for r in results {
        match r {
            Ok(kind) => *kinds.entry(kind).or_insert(0) += 1,
            Err(e) => panic!("{e}"),
        }
    }
    kinds
}

/// Once the last actors stop: nothing in flight, no stream open, and as
/// many attempts counted as the mocks received (`received`). The metrics.
async fn assert_nothing_left(client: &Client, received: u64) -> String {
    let text = settle_to_zero(client).await;
    let in_flight = metric_sum(&text, "steer_in_flight_requests", "");
    assert_eq!(in_flight, 0.0, "{text}");
    assert_eq!(metric_sum(&text, "steer_open_streams", ""), 0.0, "{text}");
    assert_eq!(
        metric_sum(&text, "steer_attempts_total", "") as u64,
        received,
        "the metrics count every attempt the mocks received"
    );
    text
}

async fn settle_to_zero(client: &Client) -> String {
    // The gauges come down as the last actors stop: a bounded wait.
    let mut text = client.prometheus_text();
    for _ in 0..200 {
        let busy = metric_sum(&text, "steer_in_flight_requests", "")
            + metric_sum(&text, "steer_open_streams", "");
        if busy == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        text = client.prometheus_text();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaos_soak_loses_nothing_and_leaves_nothing_behind() {
    let mock = common::quiet_mock();
    let client = soak_builder(mock.providers().unwrap(), 5)
        .spend_budget(Scope::Client, Budget::tokens(u64::MAX / 4))
        .build()
        .unwrap();
    let models = common::STREAM_MODELS;

    // Wave one: every model, behaviour and fault.
    let kinds = wave(
        &client,
        WAVE_ONE,
        |i| {
            let model = models[(i % models.len() as u64) as usize];
            let (req, stream, said) = request(&mock, model, i, 1);
            (req, stream, model.to_string(), said)
        },
        |_| {},
    )
    .await;
    assert_eq!(
        kinds.get("ok").copied(),
        Some(WAVE_ONE),
        "one faulted attempt and four clean ones: every request succeeds ({kinds:?})"
    );
    assert_nothing_left(&client, mock.request_count()).await;
    let balance = client.budget_balance(&Scope::Client, None).await;
    assert!(
        balance.iter().all(|b| b.reserved == 0),
        "no reservation outstanding: {balance:?}"
    );

    // Wave two: a group whose first target has an outage mid-run.
    let first = common::quiet_mock();
    let second = common::quiet_mock();
    let mut providers = Providers::new();
    providers.register(first.providers().unwrap().get("openai").unwrap());
    providers.register(second.providers().unwrap().get("xai").unwrap());
    let group = Group::new(["openai/gpt-4o-mini", "xai/gpt-4o-mini"]).unwrap();
    let grouped = soak_builder(providers, 3)
        .breaker(BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_millis(100),
            ..BreakerConfig::default()
        })
        // A bulkhead per deployment, roomy enough that nothing is refused:
        // its slots must all come back.
        .adaptive_limit(steer_llm::limit::LimitConfig {
            initial: 128,
            max: 512,
            max_queue: 4_096,
            queue_timeout: Duration::from_secs(10),
            ..steer_llm::limit::LimitConfig::default()
        })
        .group("pair", group)
        .build()
        .unwrap();
    // The group's wave twice over the same client: what the first round
    // left (its breakers, limits, windows, buffers) is what the second
    // must not grow.
    let mut heap = Vec::new();
    for round in 0..2u64 {
        let kinds = wave(
            &grouped,
            WAVE_TWO,
            |i| {
                let (req, stream, said) = request(&first, "group/pair", i, 2 + round);
                (req, stream, "openai/gpt-4o-mini".to_string(), said)
            },
            |i| {
                if i == WAVE_TWO * 3 / 10 {
                    first.set_default_fault(Some(FaultPlan::status(503)));
                } else if i == WAVE_TWO * 6 / 10 {
                    first.set_default_fault(None);
                }
            },
        )
        .await;
        assert_eq!(
            kinds.get("ok").copied(),
            Some(WAVE_TWO),
            "the outage is failed over: every request succeeds ({kinds:?})"
        );
        let received = first.request_count() + second.request_count();
        let text = assert_nothing_left(&grouped, received).await;
        assert!(
            metric_sum(&text, "steer_failovers_total", "") > 0.0,
            "the outage moved requests to the second target"
        );
        // No slot of a bulkhead held, no call waiting for one, no probe out.
        for deployment in ["openai", "xai"] {
            let limit = grouped.limit_status(deployment).await.unwrap().unwrap();
            assert_eq!(
                (limit.in_flight, limit.queued),
                (0, 0),
                "{deployment}: {limit:?}"
            );
            let breaker = grouped.breakers().status(deployment).await.unwrap();
            assert_eq!(
                breaker.stats.probes_in_flight, 0,
                "{deployment}: {breaker:?}"
            );
        }
        // Plans scripted for first attempts the group sent to the second
        // target never ran: the harness's, not steer's.
        first.clear_keyed();
        heap.push(heap_bytes());
    }
    let (first_round, second_round) = (heap[0], heap[1]);
    eprintln!("soak: heap {first_round} bytes after the group's first round, {second_round} after its second");
    let bound = 16 * 1024 * 1024;
    assert!(
        second_round <= first_round + bound,
        "memory grew by {} bytes from the group's first round to its second",
        second_round.saturating_sub(first_round)
    );
}
