//! The actor that mirrors breaker state between this replica and Redis
//! ([`SharedState`]).
//!
//! - A pause a breaker obeys ([`FleetReport::Paused`]) is written with an
//!   extend-only script: `SET key PX ms` only when the key's remaining TTL is
//!   shorter, then `PUBLISH`. A write never shortens a pause.
//! - An own open ([`FleetReport::Opened`]) is a vote: the replica's id in the
//!   target's sorted set, scored by the vote's expiry in Redis's `TIME`; the
//!   script answers and announces the live votes, and every replica opens the
//!   target when they reach the quorum ([`FleetOpen`]).
//! - A probe lease ([`ClaimProbe`]) is a counter with a TTL: the first
//!   `probes` claims win, the rest wait out the TTL.
//! - A recovery ([`FleetReport::Recovered`]) clears the votes and leases and
//!   half-opens the target everywhere ([`FleetRecovered`]).
//! - Announcements from other replicas arrive by pub/sub. Every `backstop`
//!   period, and after every (re)connection, every pause and vote key is read
//!   again: pub/sub drops messages while disconnected, and the TTLs are Redis's
//!   own clock, not this replica's.
//! - Redis slow or down: every operation has a timeout, failures are logged once
//!   and shown in [`SharedStatus`] and the `steer_shared_up` gauge; the breakers
//!   keep their local state; the actor reconnects and resyncs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use redis::aio::ConnectionManager;
use steer_actors::breaker::{
    BreakerRef, ClaimProbe, FleetOpen, FleetRecovered, FleetReport, Pause, ProbeClaim,
};
use steer_actors::telemetry::meters::Meters;

use super::{
    announcement, events_channel, opens_key, parse_announcement, parse_pause_key, parse_target,
    pause_key, probe_key, target, wait_ms, Announcement, SharedConfig,
};
use crate::error::Error;

/// How long one Redis operation may take before the replica goes on without it.
const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest wait between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// Sets the pause unless a longer one is there; announces what it set.
/// KEYS[1] the pause key, KEYS[2] the channel; ARGV[1] ms, ARGV[2] the announcement.
const EXTEND_ONLY: &str = r#"
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
  redis.call('PUBLISH', KEYS[2], ARGV[2])
  return 1
end
return 0
"#;

/// The current time in ms by Redis's clock, in a script.
const NOW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"#;

/// Votes for an open: KEYS[1] the votes, KEYS[2] the channel; ARGV[1] the
/// replica, ARGV[2] the open time in ms, ARGV[3] the target. Answers the live votes.
const VOTE: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local expires = now + tonumber(ARGV[2])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not old) or tonumber(old) < expires then
  redis.call('ZADD', KEYS[1], expires, ARGV[1])
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(last[2])))
local votes = redis.call('ZCARD', KEYS[1])
redis.call('PUBLISH', KEYS[2], 'open\n' .. ARGV[3] .. '\n' .. votes)
return votes
"#;

/// Counts the live votes of KEYS[1].
const COUNT: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"#;

/// Claims a probe lease: KEYS[1] the leases; ARGV[1] how many, ARGV[2] the lease
/// in ms. Answers -1 when granted, else the ms until the leases expire.
const CLAIM: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n <= tonumber(ARGV[1]) then return -1 end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  left = tonumber(ARGV[2])
end
return left
"#;

/// A probe found the target well: KEYS[1] votes, KEYS[2] leases, KEYS[3] the
/// channel; ARGV[1] the target.
const RECOVERED: &str = r#"
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', KEYS[3], 'recovered\n' .. ARGV[1])
return 1
"#;

/// The scripts, compiled once (redis-rs sends `EVALSHA`, and `EVAL` the first time).
struct Scripts {
    extend: redis::Script,
    vote: redis::Script,
    count: redis::Script,
    claim: redis::Script,
    recovered: redis::Script,
}

impl Scripts {
    fn new() -> Self {
        let timed = |body: &str| redis::Script::new(&format!("{NOW}{body}"));
        Scripts {
            extend: redis::Script::new(EXTEND_ONLY),
            vote: timed(VOTE),
            count: timed(COUNT),
            claim: redis::Script::new(CLAIM),
            recovered: redis::Script::new(RECOVERED),
        }
    }
}

/// What the replica knows of its shared state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SharedStatus {
    /// Whether Redis answered the last operation.
    pub connected: bool,
    /// The last error, when not connected.
    pub last_error: Option<String>,
    /// Pauses this replica wrote (or found a longer one already there).
    pub pauses_shared: u64,
    /// Pauses of other replicas applied here (announcements and backstop reads).
    pub pauses_received: u64,
    /// Own opens voted for the fleet's quorum.
    pub opens_voted: u64,
    /// Targets the fleet opened here (a quorum of votes).
    pub fleet_opens: u64,
    /// Probe leases claimed: granted and denied.
    pub probes_granted: u64,
    /// Probe leases denied (another replica probes).
    pub probes_denied: u64,
}

/// Asks for the [`SharedStatus`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "SharedStatus")]
pub struct GetSharedStatus;

/// The mirror of one client's breaker state (pauses, open votes, probe leases).
pub struct SharedState {
    config: SharedConfig,
    client: redis::Client,
    conn: Option<ConnectionManager>,
    breakers: HashMap<String, BreakerRef>,
    scripts: Arc<Scripts>,
    /// This replica's id in votes.
    replica: String,
    meters: Meters,
    status: SharedStatus,
    reconnect_delay: Duration,
    connecting: bool,
    /// Reports that could not be written, to write when Redis is back (bounded).
    unsent: Vec<Unsent>,
}

/// A report not written yet, and until when it matters.
struct Unsent {
    report: FleetReport,
    until: std::time::Instant,
}

/// Reports kept while Redis is away, at most (the oldest go first).
const MAX_UNSENT: usize = 4096;

impl Unsent {
    fn of(report: &FleetReport) -> Unsent {
        let now = std::time::Instant::now();
        let lasts = match report {
            FleetReport::Paused { wait, .. } => *wait,
            FleetReport::Opened { open_for, .. } => *open_for,
            // A recovery matters while others may still be open.
            FleetReport::Recovered { .. } => Duration::from_secs(60),
        };
        Unsent {
            report: report.clone(),
            until: steer_actors::exec::clock::later(now, lasts),
        }
    }
}

impl SharedState {
    /// A mirror for `breakers` (by provider name); checks the URL now, connects
    /// once started.
    pub fn new(
        config: SharedConfig,
        breakers: HashMap<String, BreakerRef>,
        meters: Meters,
    ) -> Result<Self, Error> {
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            crate::error::ConfigError::setting("shared.url", format!("bad Redis URL: {e}"))
        })?;
        Ok(SharedState {
            config,
            client,
            conn: None,
            breakers,
            scripts: Arc::new(Scripts::new()),
            replica: uuid::Uuid::new_v4().to_string(),
            meters,
            status: SharedStatus::default(),
            reconnect_delay: Duration::from_millis(50),
            connecting: false,
            unsent: Vec::new(),
        })
    }

    /// Redis failed: go on with local state, say so once, reconnect later.
    fn down(&mut self, what: &str, e: impl std::fmt::Display, ctx: &mut Context<Self>) {
        if self.status.connected || self.status.last_error.is_none() {
            tracing::warn!(error = %e, "shared state: Redis {what} failed; going on with local state only");
        }
        self.status.connected = false;
        self.status.last_error = Some(format!("{what}: {e}"));
        self.meters.shared_up(false);
        self.conn = None;
        self.reconnect(ctx);
    }

    fn up(&mut self) {
        if !self.status.connected && self.status.last_error.is_some() {
            tracing::info!("shared state: Redis is back; resynced");
        }
        self.status.connected = true;
        self.status.last_error = None;
        self.meters.shared_up(true);
        self.reconnect_delay = Duration::from_millis(50);
    }

    fn reconnect(&mut self, ctx: &mut Context<Self>) {
        if self.connecting {
            return;
        }
        self.connecting = true;
        let delay = self.reconnect_delay;
        self.reconnect_delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        ctx.run_later(delay, |act, ctx| {
            act.connecting = false;
            act.connect(ctx);
        });
    }

    /// Opens the command connection and the subscription, then resyncs.
    fn connect(&mut self, ctx: &mut Context<Self>) {
        let client = self.client.clone();
        let channel = events_channel(&self.config.prefix);
        let open = async move {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(OPERATION_TIMEOUT))
                .set_response_timeout(Some(OPERATION_TIMEOUT))
                .set_number_of_retries(1);
            let conn = client.get_connection_manager_with_config(config).await?;
            let mut pubsub = tokio::time::timeout(OPERATION_TIMEOUT, client.get_async_pubsub())
                .await
                .map_err(timeout_error)??;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>((conn, pubsub))
        };
        ctx.spawn(
            actix::fut::wrap_future(open).map(|opened, act: &mut Self, ctx| match opened {
                Ok((conn, pubsub)) => {
                    act.conn = Some(conn);
                    ctx.add_stream(pubsub.into_on_message());
                    act.replay_unsent(ctx);
                    act.resync(ctx);
                }
                Err(e) => act.down("connection", e, ctx),
            }),
        );
    }

    /// Reads every pause key with its remaining TTL and every target's live
    /// votes, and applies them locally.
    fn resync(&mut self, ctx: &mut Context<Self>) {
        let Some(mut conn) = self.conn.clone() else {
            return;
        };
        let prefix = glob_escape(&self.config.prefix);
        let scripts = self.scripts.clone();
        let read = async move {
            let pauses = scan(&mut conn, &format!("{prefix}:pause:*")).await?;
            let mut found = Vec::new();
            if !pauses.is_empty() {
                let mut pipe = redis::pipe();
                for k in &pauses {
                    pipe.cmd("PTTL").arg(k);
                }
                let ttls: Vec<i64> = pipe.query_async(&mut conn).await?;
                found.extend(pauses.into_iter().zip(ttls));
            }
            let mut votes = Vec::new();
            for key in scan(&mut conn, &format!("{prefix}:opens:*")).await? {
                match scripts.count.key(&key).invoke_async::<u64>(&mut conn).await {
                    Ok(n) => votes.push((key, n)),
                    // Another writer's key of the wrong shape: skipped, not fatal.
                    Err(e) if refused_by_server(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, redis::RedisError>((found, votes))
        };
        let read = async move {
            tokio::time::timeout(OPERATION_TIMEOUT.saturating_mul(4), read)
                .await
                .map_err(timeout_error)?
        };
        ctx.spawn(
            actix::fut::wrap_future(read).map(|read, act: &mut Self, ctx| match read {
                Ok((pauses, votes)) => {
                    act.up();
                    let prefix = act.config.prefix.clone();
                    for (key, ttl) in pauses {
                        let Ok(ms) = u64::try_from(ttl) else {
                            continue; // -2 gone, -1 no expiry (not ours)
                        };
                        if let Some((provider, model)) = parse_pause_key(&prefix, &key) {
                            act.apply(provider, model, Duration::from_millis(ms));
                        }
                    }
                    let opens = format!("{prefix}:opens:");
                    for (key, n) in votes {
                        if let Some(target) = key.strip_prefix(&opens) {
                            act.on_votes(target, n);
                        }
                    }
                }
                Err(e) => act.down("backstop read", e, ctx),
            }),
        );
    }

    /// A target has `votes` live open votes: at the quorum, open it here.
    fn on_votes(&mut self, target: &str, votes: u64) {
        if votes < u64::from(self.config.quorum) {
            return;
        }
        if let Some((breaker, model)) = self.breaker_of(target) {
            breaker.addr().do_send(FleetOpen { model });
            self.status.fleet_opens = self.status.fleet_opens.saturating_add(1);
        }
    }

    /// A probe found `target` well: half-open it here.
    fn on_recovered(&mut self, target: &str) {
        if let Some((breaker, model)) = self.breaker_of(target) {
            breaker.addr().do_send(FleetRecovered { model });
        }
    }

    /// The local breaker of a shared target, and the target's model (`None`:
    /// the endpoint); `None` for a provider this replica does not have.
    fn breaker_of(&self, target: &str) -> Option<(&BreakerRef, Option<Arc<str>>)> {
        let (provider, model) = parse_target(target)?;
        Some((self.breakers.get(provider)?, model.map(Arc::from)))
    }

    /// Runs `write` against Redis (with the operation timeout); counts it with
    /// `done` once Redis has answered.
    fn write<F>(
        &mut self,
        what: &'static str,
        done: fn(&mut SharedStatus),
        report: Unsent,
        write: F,
        ctx: &mut Context<Self>,
    ) where
        F: std::future::Future<Output = redis::RedisResult<i64>> + 'static,
    {
        let timed = async move {
            tokio::time::timeout(OPERATION_TIMEOUT, write)
                .await
                .map_err(timeout_error)?
        };
        ctx.spawn(actix::fut::wrap_future(timed).map(
            move |answer, act: &mut Self, ctx| match answer {
                Ok(_) => {
                    act.up();
                    done(&mut act.status);
                }
                // Redis answered, and refused (a key of the wrong shape, written
                // by someone else): said, not retried; the connection is fine.
                Err(e) if refused_by_server(&e) => {
                    tracing::warn!(error = %e, "shared state: Redis refused a {what}");
                }
                Err(e) => {
                    act.keep_unsent(report);
                    act.down(what, e, ctx);
                }
            },
        ));
    }

    /// Keeps a report to write when Redis is back, dropping the oldest past the bound.
    fn keep_unsent(&mut self, report: Unsent) {
        if self.unsent.len() >= MAX_UNSENT {
            self.unsent.remove(0);
        }
        self.unsent.push(report);
    }

    /// What could not be written while Redis was away, written now (what is
    /// still in effect, with the time it has left).
    fn replay_unsent(&mut self, ctx: &mut Context<Self>) {
        let now = std::time::Instant::now();
        for Unsent { report, until } in std::mem::take(&mut self.unsent) {
            let Some(left) = until.checked_duration_since(now).filter(|d| !d.is_zero()) else {
                continue;
            };
            let report = match report {
                FleetReport::Paused {
                    provider, model, ..
                } => FleetReport::Paused {
                    provider,
                    model,
                    wait: left,
                },
                FleetReport::Opened {
                    provider, model, ..
                } => FleetReport::Opened {
                    provider,
                    model,
                    open_for: left,
                },
                other => other,
            };
            ctx.notify(report);
        }
    }

    /// Pauses the local breaker of `provider` for `model`, as the fleet says.
    fn apply(&mut self, provider: &str, model: &str, wait: Duration) {
        if wait.is_zero() {
            return;
        }
        if let Some(breaker) = self.breakers.get(provider) {
            breaker.addr().do_send(Pause {
                model: Arc::from(model),
                wait,
                from_fleet: true,
            });
            self.status.pauses_received = self.status.pauses_received.saturating_add(1);
        }
    }
}

/// Whether Redis answered with an error (a key of the wrong type, a script
/// error) rather than failing to answer: the connection is well.
fn refused_by_server(e: &redis::RedisError) -> bool {
    !(e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal())
}

/// The claim script's answer: -1 (or any negative) granted, else the ms until
/// the leases expire.
fn claim_answer(answer: i64) -> ProbeClaim {
    match u64::try_from(answer) {
        Ok(ms) => ProbeClaim::Denied {
            retry_in: Duration::from_millis(ms.max(1)),
        },
        Err(_) => ProbeClaim::Granted,
    }
}

/// Every key matching `pattern`.
async fn scan(conn: &mut ConnectionManager, pattern: &str) -> redis::RedisResult<Vec<String>> {
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            return Ok(keys);
        }
    }
}

fn timeout_error(_: tokio::time::error::Elapsed) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer in time",
    ))
}

/// Escapes the glob characters of a `SCAN MATCH` pattern.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Actor for SharedState {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.meters.shared_up(false);
        self.connect(ctx);
        ctx.run_interval(self.config.backstop_period(), |act, ctx| {
            if act.conn.is_some() {
                act.resync(ctx);
            }
        });
    }
}

impl Handler<FleetReport> for SharedState {
    type Result = ();

    fn handle(&mut self, msg: FleetReport, ctx: &mut Context<Self>) {
        let unsent = Unsent::of(&msg);
        let Some(mut conn) = self.conn.clone() else {
            // Down: the local breaker has it; written when Redis is back.
            self.keep_unsent(unsent);
            return;
        };
        let prefix = self.config.prefix.clone();
        let channel = events_channel(&prefix);
        let scripts = self.scripts.clone();
        match msg {
            FleetReport::Paused {
                provider,
                model,
                wait,
            } => {
                let key = pause_key(&prefix, &provider, &model);
                let ms = wait_ms(wait);
                self.write(
                    "pause write",
                    |s| s.pauses_shared = s.pauses_shared.saturating_add(1),
                    unsent,
                    async move {
                        let mut call = scripts.extend.key(&key);
                        call.key(channel).arg(ms).arg(announcement(&key, ms));
                        call.invoke_async::<i64>(&mut conn).await
                    },
                    ctx,
                );
            }
            FleetReport::Opened {
                provider,
                model,
                open_for,
            } => {
                let target = target(&provider, model.as_deref());
                let key = opens_key(&prefix, &target);
                let replica = self.replica.clone();
                self.write(
                    "open vote",
                    |s| s.opens_voted = s.opens_voted.saturating_add(1),
                    unsent,
                    async move {
                        let mut call = scripts.vote.key(&key);
                        call.key(channel)
                            .arg(replica)
                            .arg(wait_ms(open_for))
                            .arg(&target);
                        call.invoke_async::<i64>(&mut conn).await
                    },
                    ctx,
                );
            }
            FleetReport::Recovered { provider, model } => {
                let target = target(&provider, model.as_deref());
                let (votes, leases) = (opens_key(&prefix, &target), probe_key(&prefix, &target));
                self.write(
                    "recovery",
                    |_| {},
                    unsent,
                    async move {
                        let mut call = scripts.recovered.key(&votes);
                        call.key(leases).key(channel).arg(&target);
                        call.invoke_async::<i64>(&mut conn).await
                    },
                    ctx,
                );
            }
        }
    }
}

impl Handler<ClaimProbe> for SharedState {
    type Result = ResponseActFuture<Self, ProbeClaim>;

    fn handle(&mut self, msg: ClaimProbe, _: &mut Context<Self>) -> Self::Result {
        let Some(mut conn) = self.conn.clone() else {
            // Down: every replica probes on its own, as without sharing.
            return Box::pin(actix::fut::ready(ProbeClaim::Granted));
        };
        let key = probe_key(
            &self.config.prefix,
            &target(&msg.provider, msg.model.as_deref()),
        );
        let (probes, lease) = (self.config.probes, self.config.probe_lease_ms());
        let scripts = self.scripts.clone();
        let claim = async move {
            let mut call = scripts.claim.key(&key);
            call.arg(probes).arg(lease);
            tokio::time::timeout(OPERATION_TIMEOUT, call.invoke_async::<i64>(&mut conn))
                .await
                .map_err(timeout_error)?
        };
        Box::pin(
            actix::fut::wrap_future(claim).map(|answer, act: &mut Self, ctx| match answer {
                Ok(answer) => {
                    act.up();
                    let claim = claim_answer(answer);
                    let counter = match claim {
                        ProbeClaim::Granted => &mut act.status.probes_granted,
                        ProbeClaim::Denied { .. } => &mut act.status.probes_denied,
                    };
                    *counter = counter.saturating_add(1);
                    claim
                }
                // Refused (a lease key of the wrong shape): probe, as alone.
                Err(e) if refused_by_server(&e) => ProbeClaim::Granted,
                Err(e) => {
                    act.down("probe claim", e, ctx);
                    ProbeClaim::Granted
                }
            }),
        )
    }
}

impl StreamHandler<redis::Msg> for SharedState {
    fn handle(&mut self, msg: redis::Msg, _: &mut Context<Self>) {
        let Ok(payload) = msg.get_payload::<String>() else {
            return;
        };
        let prefix = self.config.prefix.clone();
        match parse_announcement(&prefix, &payload) {
            Some(Announcement::Pause {
                provider,
                model,
                wait,
            }) => self.apply(provider, model, wait),
            Some(Announcement::Open { target, votes }) => self.on_votes(target, votes),
            Some(Announcement::Recovered { target }) => self.on_recovered(target),
            None => {}
        }
    }

    /// The subscription ended (Redis went away): reconnect, then resync.
    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.down("subscription", "connection closed", ctx);
    }
}

impl Handler<GetSharedStatus> for SharedState {
    type Result = MessageResult<GetSharedStatus>;

    fn handle(&mut self, _: GetSharedStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn a_claim_is_granted_on_a_negative_answer_and_denied_for_the_lease_left() {
        use super::{claim_answer, Duration, ProbeClaim};
        assert_eq!(claim_answer(-1), ProbeClaim::Granted);
        assert_eq!(
            claim_answer(2500),
            ProbeClaim::Denied {
                retry_in: Duration::from_millis(2500)
            }
        );
        assert_eq!(
            claim_answer(0),
            ProbeClaim::Denied {
                retry_in: Duration::from_millis(1)
            },
            "never a zero wait"
        );
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("svc"), "svc");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
