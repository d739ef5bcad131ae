//! Budgets shared by replicas through a real `redis-server` (installed by
//! `.ci/run`, started here on a free port): three replicas, each a client with
//! its own actix System, stream against one token budget at once, with
//! faults that force retries and continuations; and a replica that dies
//! mid-stream holds its reservation no longer than its lease.
#![cfg(all(feature = "mock", feature = "shared-redis"))]

#[path = "shared/redis_server.rs"]
mod redis_server;

mod common;

use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use steer_llm::budget::{Budget, Scope};
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::shared::{BudgetFail, SharedConfig};
use steer_llm::{ChatRequest, Client, Error, GenerateOptions, StreamEvent};

struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start() -> Redis {
        let port = redis_server::free_port();
        let mut cmd = redis_server::command();
        cmd.args(["--port", &port.to_string()]);
        Redis {
            port,
            child: redis_server::spawn_ready(cmd),
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LIMIT: u64 = 20_000;

fn replica(mock: &MockServer, redis_url: &str, prefix: &str, lease: Duration) -> Client {
    common::quick_builder(mock.providers().unwrap(), 4)
        .stream_timeouts(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(10)),
            Some(Duration::from_millis(300)),
        )
        .shared(
            SharedConfig::redis(redis_url)
                .prefix(prefix)
                .budget_fail(BudgetFail::Closed),
        )
        .spend_budget(Scope::Client, Budget::tokens(LIMIT))
        .budget_lease(lease)
        .build()
        .unwrap()
}

/// What one stream ended as.
enum End {
    Done,
    /// Refused: the budget had no room for it (its refusal's figures).
    Refused(u64, u64),
    Failed(String),
}

async fn one_stream(client: &Client, mock: &MockServer, n: u64) -> End {
    let id = format!("s{n}");
    // A seeded mix: a fifth cut mid-reply (continued), a tenth refused
    // first (retried).
    match n % 10 {
        0 | 5 => mock.script_key(&id, [FaultPlan::reset(2 + (n % 7) as usize)]),
        3 => mock.script_key(&id, [FaultPlan::error("overloaded")]),
        _ => {}
    }
    let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .user(format!("question {n} about rivers"))
        .max_tokens(1_024)
        .request_id(id);
    let stream = match client.stream_with(req, GenerateOptions::default()).await {
        Ok(s) => s,
        Err(e) => return ended(e),
    };
    let (_, error) = common::all_events(stream).await;
    match error {
        None => End::Done,
        Some(e) => ended(e),
    }
}

fn ended(e: Error) -> End {
    match e.budget_refusal() {
        Some(r) => End::Refused(r.spent, r.reserved),
        None => End::Failed(e.to_string()),
    }
}

#[test]
fn three_replicas_stream_against_one_budget_without_passing_it() {
    let redis = Redis::start();
    let mock = MockServer::builder().start_background().unwrap();
    let mock = Arc::new(mock);
    let mut threads = Vec::new();
    for r in 0..3u64 {
        let (mock, url) = (mock.clone(), redis.url());
        threads.push(std::thread::spawn(move || {
            let system = actix::System::new();
            system.block_on(async move {
                let client = replica(&mock, &url, "p1", Duration::from_secs(30));
                // 128 streams at once, each worker going on until a refusal
                // says the budget cannot hold another (nothing held, not
                // room for one).
                let workers = (0..128u64).map(|w| {
                    let (client, mock) = (client.clone(), mock.clone());
                    async move {
                        let (mut done, mut refused) = (0u32, 0u32);
                        for i in 0.. {
                            let n = r * 1_000_000 + w * 1_000 + i;
                            match one_stream(&client, &mock, n).await {
                                End::Done => done += 1,
                                End::Refused(spent, reserved) => {
                                    refused += 1;
                                    if reserved == 0 && spent + 200 > LIMIT || refused > 400 {
                                        break;
                                    }
                                    tokio::time::sleep(Duration::from_millis(5)).await;
                                }
                                End::Failed(e) => panic!("stream {n}: {e}"),
                            }
                        }
                        (done, refused)
                    }
                });
                let results = futures::future::join_all(workers).await;
                results.iter().map(|r| r.0).sum::<u32>()
            })
        }));
    }
    let done: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(done > 100, "{done} streams finished");
    // The fleet's ledger: what was settled, nothing left held.
    let system = actix::System::new();
    let (spent, reserved) = system.block_on(async {
        let client = replica(&mock, &redis.url(), "p1", Duration::from_secs(30));
        let b = client.budget_balance(&Scope::Client, None).await;
        (b[0].spent, b[0].reserved)
    });
    eprintln!(
        "shared budget: {done} streams, settled {spent} of {LIMIT} ({:+.3}%)",
        (spent as f64 - LIMIT as f64) / LIMIT as f64 * 100.0
    );
    assert_eq!(reserved, 0, "every hold settled");
    // At most one chunk (a word: a couple of tokens) per open stream past it.
    let open = 3 * 128;
    assert!(spent <= LIMIT + 2 * open, "settled {spent} of {LIMIT}");
    assert!(spent >= LIMIT * 95 / 100, "only {spent} of {LIMIT} usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_dies_mid_stream_holds_its_reservation_no_longer_than_its_lease() {
    let redis = Redis::start();
    let mock = MockServer::builder()
        .reply_words(400)
        .default_fault(FaultPlan::normal().with_chunk_delay(Duration::from_millis(20)))
        .start_background()
        .unwrap();
    let lease = Duration::from_millis(600);
    let dying = replica(&mock, &redis.url(), "p2", lease);
    let other = replica(&mock, &redis.url(), "p2", lease);
    let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .user("tell me about rivers")
        .max_tokens(2_000);
    let mut stream = common::within(dying.stream(req)).await.unwrap();
    while let Some(e) = common::within(stream.next()).await {
        if let Ok(StreamEvent::TextDelta { .. }) = e {
            break;
        }
    }
    let held = other.budget_balance(&Scope::Client, None).await[0].reserved;
    assert!(held > 2_000, "its hold is the fleet's: {held}");
    // It dies: nothing of it runs again, nothing settles.
    std::mem::forget(stream);
    std::mem::forget(dying);
    let released = common::eventually(|| async {
        other.budget_balance(&Scope::Client, None).await[0].reserved == 0
    })
    .await;
    assert!(released, "its hold ended with its lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_gone_budgets_fail_closed_or_open_as_configured() {
    let mut redis = Redis::start();
    let mock = MockServer::builder().start_background().unwrap();
    let build = |fail| {
        common::quick_builder(mock.providers().unwrap(), 1)
            .shared(
                SharedConfig::redis(&redis.url())
                    .prefix("p3")
                    .budget_fail(fail),
            )
            .spend_budget(Scope::Client, Budget::tokens(LIMIT))
            .build()
            .unwrap()
    };
    let (closed, open) = (build(BudgetFail::Closed), build(BudgetFail::Open));
    let req = || ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
    common::within(closed.generate(req())).await.unwrap();
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let e = common::within(closed.generate(req())).await.unwrap_err();
    let r = e
        .budget_refusal()
        .expect("refused: the ledger cannot be read");
    assert!(r.account.scope.contains("unavailable"), "{r:?}");
    // Failing open, the replica counts on its own meanwhile.
    let reply = common::within(open.generate(req())).await.unwrap();
    assert!(reply.spend.count == 1 && !reply.text.is_empty());
}

/// `steer drill`'s `redis_gone` with budgets that fail closed refuses every
/// attempt while Redis cannot be reached, and with budgets that fail open
/// answers them all (counted on the replica's own ledger).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drills_redis_gone_shows_what_a_budget_does_without_redis() {
    use steer_llm::drill::{Drill, Scenario};
    for (fail, all_refused) in [("closed", true), ("open", false)] {
        let config = steer_llm::config::Config::from_toml(&format!(
            r#"
[deployments.direct]
kind = "anthropic"

[groups.main]
targets = ["direct/claude-3-5-haiku-latest"]

[shared]
redis = "redis://127.0.0.1:6379/"
budget_fail = "{fail}"

[[budgets]]
scope = "client"
tokens = 1000000
"#
        ))
        .unwrap();
        let report = Drill::of(config, "test")
            .unwrap()
            .requests(24)
            .spread(Duration::from_millis(300))
            .run(&[Scenario::RedisGone])
            .await
            .unwrap();
        let s = &report.scenarios[0];
        assert!(s.skipped.is_none(), "{s}");
        if all_refused {
            assert_eq!(s.with_steer.succeeded, 0, "{s}");
            assert_eq!(s.with_steer.failed.get("budget_exceeded"), Some(&24), "{s}");
        } else {
            assert_eq!(s.with_steer.succeeded, 24, "{s}");
        }
    }
}
