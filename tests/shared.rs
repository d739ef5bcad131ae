//! Pauses shared across replicas through a real `redis-server` (installed by
//! `.ci/run`; `STEER_REDIS_SERVER` names the binary, default `redis-server`),
//! which each test starts on a free port of 127.0.0.1 and stops at its end.
//! Three clients, each with its own actix System, share one Redis and one mock.
#![cfg(all(feature = "mock", feature = "shared-redis"))]

#[path = "shared/redis_server.rs"]
mod redis_server;

mod common;

use common::eventually;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::Rejection;
use steer_llm::shared::SharedConfig;
use steer_llm::{ChatRequest, Client, Error, GenerateOptions, RetryPolicy};

/// A redis-server of the test's own; killed when dropped.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let mut redis = Redis {
            port: redis_server::free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    fn restart(&mut self) {
        let mut cmd = redis_server::command();
        cmd.args(["--port", &self.port.to_string()])
            .args(["--enable-debug-command", "local"]);
        self.child = Some(redis_server::spawn_ready(cmd));
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A replica: a client of its own (its own actix System on its own thread),
/// sharing through `redis` under `prefix`; one attempt, so that a 429 ends the
/// request at once (its pause stays).
fn replica(mock: &MockServer, redis: &Redis, prefix: &str) -> Client {
    Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::default().max_attempts(1))
        .shared(
            SharedConfig::redis(&redis.url())
                .prefix(prefix)
                .backstop(Duration::from_millis(100)),
        )
        .build()
        .unwrap()
}

fn ask(model: &str) -> ChatRequest {
    ChatRequest::new(model)
        .unwrap()
        .user("Tell me about rivers.")
}

async fn paused(client: &Client, target: &str) -> bool {
    client
        .breakers()
        .status(target)
        .await
        .map(|s| s.paused_for.is_some_and(|d| !d.is_zero()))
        .unwrap_or(false)
}

async fn connected(client: &Client) -> bool {
    matches!(client.shared_status().await, Ok(Some(s)) if s.connected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_seen_by_one_replica_is_obeyed_by_the_others() {
    let mut redis = Redis::start();
    let mock = MockServer::builder().start_background().unwrap();
    let replicas: Vec<Client> = (0..3).map(|_| replica(&mock, &redis, "t1")).collect();
    for r in &replicas {
        assert!(eventually(|| connected(r)).await, "every replica connects");
    }
    let model = "openai/gpt-4o-mini";
    // Replica 0 meets a 429 that asks for 30 s.
    mock.push_faults([FaultPlan::error("rate_limit").retry_after("30")]);
    let err = replicas[0].generate(ask(model)).await.unwrap_err();
    assert_eq!(
        err.failure().map(|f| f.category.as_str()),
        Some("rate_limited")
    );
    assert!(paused(&replicas[0], model).await);
    // The others obey it without sending anything.
    for r in &replicas[1..] {
        assert!(
            eventually(|| paused(r, model)).await,
            "the pause reaches every replica"
        );
    }
    let sent = mock.requests().len();
    let impatient = GenerateOptions::default()
        .retry(RetryPolicy::never().max_server_wait(Duration::from_secs(1)));
    for r in &replicas[1..] {
        let refused = r.generate_with(ask(model), impatient.clone()).await;
        assert!(
            matches!(
                refused,
                Err(Error::Rejected {
                    rejection: Rejection::Paused { .. },
                    ..
                })
            ),
            "{refused:?}"
        );
    }
    assert_eq!(
        mock.requests().len(),
        sent,
        "no paused replica called the provider"
    );
    // Another model of the same provider is not paused anywhere.
    for r in &replicas {
        assert!(r.generate(ask("openai/gpt-4o")).await.is_ok());
    }
    let status = replicas[1].shared_status().await.unwrap().unwrap();
    assert!(status.pauses_received >= 1, "{status:?}");
    let status = replicas[0].shared_status().await.unwrap().unwrap();
    assert!(status.pauses_shared >= 1, "{status:?}");
    assert!(replicas[1].prometheus_text().contains("steer_shared_up 1"));
    // Nothing but pause keys went to Redis: no API key, prompt or reply.
    let mut audit = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut audit)
        .await
        .unwrap();
    assert_eq!(keys, ["t1:pause:openai/gpt-4o-mini"], "{keys:?}");
    let value: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut audit)
        .await
        .unwrap();
    assert_eq!(value, "1");

    // Redis goes away: nothing is lost, local protection stays, status says so.
    redis.kill();
    for r in &replicas {
        assert!(eventually(|| async { !connected(r).await }).await);
    }
    for r in &replicas {
        assert!(
            r.generate(ask("openai/gpt-4o")).await.is_ok(),
            "requests go on"
        );
        assert!(paused(r, model).await, "the local pause stays");
    }
    assert!(replicas[2].prometheus_text().contains("steer_shared_up 0"));

    // Redis is back (empty): the replicas reconnect and resync. A pause written
    // while they were away from pub/sub reaches them by the backstop read.
    redis.restart();
    for r in &replicas {
        assert!(
            eventually(|| connected(r)).await,
            "every replica reconnects"
        );
    }
    let key = steer_llm::shared::pause_key("t1", "anthropic", "claude-3-5-haiku-latest");
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("1")
        .arg("PX")
        .arg(30_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    for r in &replicas {
        assert!(eventually(|| paused(r, "anthropic/claude-3-5-haiku-latest")).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_extends_a_pause_but_never_shortens_it_and_other_prefixes_are_apart() {
    let redis = Redis::start();
    let mock = MockServer::builder().start_background().unwrap();
    // No backstop read during the test: this replica learns only by pub/sub, so
    // the keys written below behind its back stay unknown to it.
    let a = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::default().max_attempts(1))
        .shared(
            SharedConfig::redis(&redis.url())
                .prefix("t2")
                .backstop(Duration::from_secs(3600)),
        )
        .build()
        .unwrap();
    let apart = replica(&mock, &redis, "other-service");
    assert!(eventually(|| connected(&a)).await);
    assert!(eventually(|| connected(&apart)).await);
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let long = steer_llm::shared::pause_key("t2", "xai", "grok-3-mini");
    let short = steer_llm::shared::pause_key("t2", "xai", "grok-3");
    for (key, ms) in [(&long, 60_000), (&short, 1_000)] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("1")
            .arg("PX")
            .arg(ms)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let shared = |n: u64| {
        let a = a.clone();
        async move { matches!(a.shared_status().await, Ok(Some(s)) if s.pauses_shared >= n) }
    };
    // A 2 s pause seen here leaves the fleet's 60 s one as it is...
    mock.push_faults([FaultPlan::error("rate_limit").retry_after("2")]);
    assert!(a.generate(ask("xai/grok-3-mini")).await.is_err());
    assert!(eventually(|| shared(1)).await, "the write ran");
    let ttl = |key: String| {
        let mut c = conn.clone();
        async move {
            redis::cmd("PTTL")
                .arg(&key)
                .query_async::<i64>(&mut c)
                .await
                .unwrap()
        }
    };
    assert!(
        ttl(long.clone()).await > 50_000,
        "a write never shortens a pause"
    );
    // ...and a 40 s one extends the fleet's 1 s one.
    mock.push_faults([FaultPlan::error("rate_limit").retry_after("40")]);
    assert!(a.generate(ask("xai/grok-3")).await.is_err());
    assert!(eventually(|| shared(2)).await);
    assert!(
        ttl(short.clone()).await > 30_000,
        "a longer pause extends it"
    );
    // Another service's prefix never saw any of it.
    assert!(!paused(&apart, "xai/grok-3").await);
    assert!(apart.generate(ask("xai/grok-3")).await.is_ok());
}

/// A replica whose model breaker opens after two server errors for 1 s, and
/// half-opens for one probe; the fleet opens at two votes and allows one probe.
fn breaker_replica(mock: &MockServer, redis: &Redis, prefix: &str) -> Client {
    Client::builder()
        .providers(mock.providers().unwrap())
        .retry(RetryPolicy::default().max_attempts(1))
        .breaker(steer_llm::BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_millis(1000),
            half_open_permits: 1,
            success_threshold: 1,
            ..steer_llm::BreakerConfig::default()
        })
        .shared(
            SharedConfig::redis(&redis.url())
                .prefix(prefix)
                .backstop(Duration::from_millis(100))
                .quorum(2)
                .probes(1, Duration::from_secs(3)),
        )
        .build()
        .unwrap()
}

async fn state(client: &Client, target: &str) -> steer_llm::BreakerState {
    client.breakers().status(target).await.unwrap().state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_opens_the_fleet_one_replica_does_not_and_one_probe_ends_the_outage() {
    use steer_llm::BreakerState::{Closed, HalfOpen, Open};
    let redis = Redis::start();
    let mock = MockServer::builder().start_background().unwrap();
    let replicas: Vec<Client> = (0..3)
        .map(|_| breaker_replica(&mock, &redis, "t3"))
        .collect();
    for r in &replicas {
        assert!(eventually(|| connected(r)).await);
    }
    let model = "openai/gpt-4o-mini";
    let votes = || {
        let url = redis.url();
        async move {
            let mut c = redis::Client::open(url)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            redis::cmd("ZCARD")
                .arg("t3:opens:openai/gpt-4o-mini")
                .query_async::<u64>(&mut c)
                .await
                .unwrap()
        }
    };
    let fail_twice = |r: &Client| {
        let (r, mock) = (r.clone(), &mock);
        async move {
            for _ in 0..2 {
                mock.push_faults([FaultPlan::error("server_error")]);
                assert!(r.generate(ask(model)).await.is_err());
            }
        }
    };
    // One replica's own failures open it alone: one vote is no quorum.
    fail_twice(&replicas[0]).await;
    assert_eq!(state(&replicas[0], model).await, Open);
    assert!(
        eventually(|| async { votes().await == 1 }).await,
        "replica 0 voted"
    );
    for r in &replicas[1..] {
        assert_eq!(
            state(r, model).await,
            Closed,
            "one sick replica stops only itself"
        );
    }
    // A second replica opens: the quorum opens the third, which saw no failure.
    fail_twice(&replicas[1]).await;
    assert!(
        eventually(|| async { state(&replicas[2], model).await == Open }).await,
        "the quorum opens every replica"
    );
    let sent = mock.requests().len();
    assert!(matches!(
        replicas[2].generate(ask(model)).await,
        Err(Error::Rejected { .. })
    ));
    assert_eq!(
        mock.requests().len(),
        sent,
        "the fleet-opened replica sent nothing"
    );

    // The opens end: one replica holds the fleet's probe lease; the others stay open.
    assert!(
        eventually(|| async {
            for r in &replicas {
                if state(r, model).await == HalfOpen {
                    return true;
                }
            }
            false
        })
        .await,
        "a replica half-opens"
    );
    let mut states = Vec::new();
    for r in &replicas {
        states.push(state(r, model).await);
    }
    assert_eq!(
        states.iter().filter(|s| **s == HalfOpen).count(),
        1,
        "one probe fleet-wide: {states:?}"
    );
    assert!(
        states.iter().all(|s| matches!(s, HalfOpen | Open)),
        "{states:?}"
    );
    // The others try first: refused, nothing reaches the provider; then the lease
    // holder's probe does.
    let holder = states.iter().position(|s| *s == HalfOpen).unwrap_or(0);
    let sent = mock.requests().len();
    for (i, r) in replicas.iter().enumerate() {
        if i != holder {
            let refused = r.generate(ask(model)).await;
            assert!(
                matches!(refused, Err(Error::Rejected { .. })),
                "{refused:?}"
            );
        }
    }
    assert_eq!(
        mock.requests().len(),
        sent,
        "no probe but the lease holder's"
    );
    assert!(replicas[holder].generate(ask(model)).await.is_ok());
    assert_eq!(
        mock.requests().len(),
        sent + 1,
        "one probe reached the provider"
    );
    // The probe found it well: the others half-open at once, not after the lease.
    for r in &replicas {
        assert!(
            eventually(|| async { state(r, model).await != Open }).await,
            "the recovery reaches every replica"
        );
    }
    let s = replicas[0].shared_status().await.unwrap().unwrap();
    assert!(s.opens_voted >= 1, "{s:?}");
}

/// A replica process (`examples/replica.rs`), driven by lines on its stdin.
struct Process {
    child: Child,
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl Process {
    fn start(mock: &MockServer, redis: &Redis, prefix: &str) -> Process {
        // Examples are built next to the test binaries: target/<profile>/examples.
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(|d| d.parent()).unwrap();
        let binary = dir.join("examples").join("replica");
        // `cargo test --test shared` builds no examples: build this one, in the
        // profile of this test (its directory's name: `debug` is the `dev`
        // profile's), so that `--release` finds it where it looks. Always: a
        // binary left from an older tree would test old code.
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let built = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--profile", profile])
            .args(["--features", "mock shared-redis", "--example", "replica"])
            .status()
            .unwrap();
        assert!(built.success(), "building examples/replica.rs failed");
        let mut child = Command::new(&binary)
            .env("STEER_REDIS_URL", redis.url())
            .env("STEER_MOCK_BASE", mock.openai_base_url())
            .env("STEER_PREFIX", prefix)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let input = child.stdin.take().unwrap();
        let output = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut p = Process {
            child,
            input,
            output,
        };
        assert_eq!(p.line(), "ready");
        p
    }

    fn line(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    fn ask(&mut self, command: &str) -> String {
        use std::io::Write;
        writeln!(self.input, "{command}").unwrap();
        self.line()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn three_replica_processes_obey_one_pause() {
    let redis = Redis::start();
    let mock = MockServer::builder().start_background().unwrap();
    let mut replicas: Vec<Process> = (0..3)
        .map(|_| Process::start(&mock, &redis, "t4"))
        .collect();
    let model = "openai/gpt-4o-mini";
    assert_eq!(replicas[1].ask(&format!("ask {model}")), "ok");
    mock.push_faults([FaultPlan::error("rate_limit").retry_after("30")]);
    assert_eq!(replicas[0].ask(&format!("ask {model}")), "err rate_limited");
    assert_eq!(replicas[0].ask(&format!("paused {model}")), "yes");
    // Each question is a round trip through the process: asked again until the
    // pause has arrived (bounded), with no sleep between.
    for r in &mut replicas[1..] {
        let paused = (0..20_000).any(|_| r.ask(&format!("paused {model}")) == "yes");
        assert!(paused, "the pause reaches every process");
    }
    let sent = mock.requests().len();
    for r in &mut replicas[1..] {
        assert_eq!(r.ask(&format!("ask {model}")), "err breaker_rejected");
    }
    assert_eq!(
        mock.requests().len(),
        sent,
        "no paused process called the provider"
    );
    assert_eq!(
        replicas[2].ask("ask openai/gpt-4o"),
        "ok",
        "other models run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_makes_no_request_wait() {
    let redis = Redis::start();
    let mock = MockServer::builder().start_background().unwrap();
    let replicas: Vec<Client> = (0..2).map(|_| replica(&mock, &redis, "t5")).collect();
    for r in &replicas {
        assert!(eventually(|| connected(r)).await);
    }
    // The probe's connection first: its set-up would time out in the sleep.
    // Asleep once a PING with a short timeout goes unanswered (bounded).
    let probe_config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_millis(20)));
    let mut probe = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&probe_config)
        .await
        .unwrap();
    // Redis stops answering for 3 s (DEBUG SLEEP blocks the whole server).
    let url = redis.url();
    let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
    let asleep = tokio::spawn(async move {
        // No response timeout on this connection: it waits the whole sleep out.
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        let mut c = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap();
        let _ = connected_tx.send(());
        // 3 s: room for the requests below on a loaded machine.
        let _: () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(3)
            .query_async(&mut c)
            .await
            .unwrap();
    });
    // The sleeping connection is open (on a loaded machine that can take longer
    // than many PINGs); its command follows at once.
    connected_rx.await.unwrap();
    // Until a PING goes unanswered, or the sleep is over (then it was missed).
    let mut asleep_now = false;
    for _ in 0..100_000 {
        if asleep.is_finished() {
            break;
        }
        if redis::cmd("PING")
            .query_async::<String>(&mut probe)
            .await
            .is_err()
        {
            asleep_now = true;
            break;
        }
    }
    assert!(asleep_now, "DEBUG SLEEP took hold");
    // Meanwhile requests go on, a 429 among them (whose pause write must wait on
    // Redis): every one is answered while Redis still sleeps.
    mock.push_faults([FaultPlan::error("rate_limit").retry_after("30")]);
    assert!(replicas[0]
        .generate(ask("openai/gpt-4o-mini"))
        .await
        .is_err());
    assert!(
        paused(&replicas[0], "openai/gpt-4o-mini").await,
        "the local pause holds"
    );
    for r in &replicas {
        for _ in 0..5 {
            assert!(r.generate(ask("openai/gpt-4o")).await.is_ok());
        }
    }
    assert!(
        !asleep.is_finished(),
        "every request was answered while Redis slept"
    );
    asleep.await.unwrap();
    // Redis is back: the pause reaches the other replica (by its write, or the
    // backstop after the reconnection).
    assert!(eventually(|| paused(&replicas[1], "openai/gpt-4o-mini")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_shared_state_never_pauses_past_the_cap_nor_stops_the_mirror() {
    let redis = Redis::start();
    let mock = MockServer::builder().start_background().unwrap();
    let r = replica(&mock, &redis, "t6");
    assert!(eventually(|| connected(&r)).await);
    let mut c = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Another writer: a pause a year long, a key without expiry, keys and
    // announcements of the wrong shape, extreme numbers.
    let year = 365 * 24 * 3_600_000_u64;
    let _: () = redis::cmd("SET")
        .arg("t6:pause:openai/gpt-4o-mini")
        .arg("1")
        .arg("PX")
        .arg(year)
        .query_async(&mut c)
        .await
        .unwrap();
    for (key, value) in [
        ("t6:pause:openai/gpt-4o", "x"),
        ("t6:pause:nomodel", "1"),
        ("t6:opens:openai/gpt-4o", "not a sorted set"),
    ] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    for payload in [
        "pause\nt6:pause:openai/gpt-4o-mini\n18446744073709551615",
        "pause\nt6:pause:openai/gpt-4o\n99999999999999999999999",
        "open\nopenai/gpt-4o\n18446744073709551615x",
        "recovered\n/\n",
        &"x".repeat(1 << 20),
        "",
    ] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("t6:events")
            .arg(payload)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    // A valid announcement after the garbage still arrives: the mirror runs on.
    let _: i64 = redis::cmd("PUBLISH")
        .arg("t6:events")
        .arg("pause\nt6:pause:anthropic/claude-3-5-haiku-latest\n20000")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(eventually(|| paused(&r, "anthropic/claude-3-5-haiku-latest")).await);
    // Waits above the breaker's cap (60 s) are refused, not obeyed: those models
    // still answer, however often the backstop reads them.
    // Two backstop reads have applied what they found (each applies both live pauses).
    let received = |n: u64| {
        let r = r.clone();
        async move { matches!(r.shared_status().await, Ok(Some(s)) if s.pauses_received >= n) }
    };
    assert!(eventually(|| received(6)).await);
    assert!(
        !paused(&r, "openai/gpt-4o-mini").await,
        "a year-long pause is refused"
    );
    assert!(r.generate(ask("openai/gpt-4o-mini")).await.is_ok());
    assert!(r.generate(ask("openai/gpt-4o")).await.is_ok());
    let status = r.breakers().status("openai").await.unwrap();
    assert!(status
        .models
        .iter()
        .all(|m| m.state == steer_llm::BreakerState::Closed));
    assert!(connected(&r).await, "{:?}", r.shared_status().await);
}
