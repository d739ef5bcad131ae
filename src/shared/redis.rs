//! The actor that mirrors pauses between this replica's breakers and Redis.
//!
//! - A pause a breaker obeys ([`PauseSeen`]) is written with an extend-only
//!   script: `SET key PX ms` only when the key's remaining TTL is shorter, then
//!   `PUBLISH` on the events channel. A write never shortens a pause.
//! - Announcements from other replicas arrive by pub/sub and become
//!   [`Pause`]s of the local breaker, marked as from the fleet (not shared again).
//! - Every `backstop` period, and after every (re)connection, every pause key is
//!   read with its remaining TTL (`SCAN` + `PTTL`): pub/sub drops messages while
//!   disconnected, and the TTL is Redis's own clock, not this replica's.
//! - Redis slow or down: every operation has a timeout, failures are logged once
//!   and shown in [`SharedStatus`] and the `steer_shared_up` gauge; the breakers
//!   keep their local state; the actor reconnects and resyncs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use redis::aio::ConnectionManager;
use steer_actors::breaker::{BreakerRef, Pause, PauseSeen};
use steer_actors::meters::Meters;

use super::{
    announcement, events_channel, parse_announcement, parse_pause_key, pause_key, wait_ms,
    SharedConfig,
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
}

/// Asks for the [`SharedStatus`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "SharedStatus")]
pub struct GetSharedStatus;

/// The mirror of one client's pauses.
pub struct SharedPauses {
    config: SharedConfig,
    client: redis::Client,
    conn: Option<ConnectionManager>,
    breakers: HashMap<String, BreakerRef>,
    script: Arc<redis::Script>,
    meters: Meters,
    status: SharedStatus,
    reconnect_delay: Duration,
    connecting: bool,
}

impl SharedPauses {
    /// A mirror for `breakers` (by provider name); checks the URL now, connects
    /// once started.
    pub fn new(
        config: SharedConfig,
        breakers: HashMap<String, BreakerRef>,
        meters: Meters,
    ) -> Result<Self, Error> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| Error::Config(format!("shared state: bad Redis URL: {e}")))?;
        Ok(SharedPauses {
            config,
            client,
            conn: None,
            breakers,
            script: Arc::new(redis::Script::new(EXTEND_ONLY)),
            meters,
            status: SharedStatus::default(),
            reconnect_delay: Duration::from_millis(50),
            connecting: false,
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
                    act.resync(ctx);
                }
                Err(e) => act.down("connection", e, ctx),
            }),
        );
    }

    /// Reads every pause key with its remaining TTL and applies it locally.
    fn resync(&mut self, ctx: &mut Context<Self>) {
        let Some(mut conn) = self.conn.clone() else {
            return;
        };
        let pattern = format!("{}:pause:*", glob_escape(&self.config.prefix));
        let read = async move {
            let mut cursor: u64 = 0;
            let mut found = Vec::new();
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    let mut pipe = redis::pipe();
                    for k in &keys {
                        pipe.cmd("PTTL").arg(k);
                    }
                    let ttls: Vec<i64> = pipe.query_async(&mut conn).await?;
                    found.extend(keys.into_iter().zip(ttls));
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            Ok::<_, redis::RedisError>(found)
        };
        ctx.spawn(
            actix::fut::wrap_future(read).map(|read, act: &mut Self, ctx| match read {
                Ok(found) => {
                    act.up();
                    for (key, ttl) in found {
                        let Ok(ms) = u64::try_from(ttl) else {
                            continue; // -2 gone, -1 no expiry (not ours)
                        };
                        let prefix = act.config.prefix.clone();
                        if let Some((provider, model)) = parse_pause_key(&prefix, &key) {
                            act.apply(provider, model, Duration::from_millis(ms));
                        }
                    }
                }
                Err(e) => act.down("backstop read", e, ctx),
            }),
        );
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

impl Actor for SharedPauses {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.meters.shared_up(false);
        self.connect(ctx);
        ctx.run_interval(self.config.backstop, |act, ctx| {
            if act.conn.is_some() {
                act.resync(ctx);
            }
        });
    }
}

impl Handler<PauseSeen> for SharedPauses {
    type Result = ();

    fn handle(&mut self, msg: PauseSeen, ctx: &mut Context<Self>) {
        let Some(mut conn) = self.conn.clone() else {
            return; // down: the local breaker has the pause; the backstop catches up
        };
        let key = pause_key(&self.config.prefix, &msg.provider, &msg.model);
        let ms = wait_ms(msg.wait);
        let channel = events_channel(&self.config.prefix);
        let script = self.script.clone();
        let write = async move {
            let mut call = script.key(&key);
            call.key(channel).arg(ms).arg(announcement(&key, ms));
            tokio::time::timeout(OPERATION_TIMEOUT, call.invoke_async::<i64>(&mut conn))
                .await
                .map_err(timeout_error)?
        };
        ctx.spawn(
            actix::fut::wrap_future(write).map(|done, act: &mut Self, ctx| match done {
                Ok(_) => {
                    act.up();
                    act.status.pauses_shared = act.status.pauses_shared.saturating_add(1);
                }
                Err(e) => act.down("pause write", e, ctx),
            }),
        );
    }
}

impl StreamHandler<redis::Msg> for SharedPauses {
    fn handle(&mut self, msg: redis::Msg, _: &mut Context<Self>) {
        let Ok(payload) = msg.get_payload::<String>() else {
            return;
        };
        let prefix = self.config.prefix.clone();
        if let Some((provider, model, wait)) = parse_announcement(&prefix, &payload) {
            self.apply(provider, model, wait);
        }
    }

    /// The subscription ended (Redis went away): reconnect, then resync.
    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.down("subscription", "connection closed", ctx);
    }
}

impl Handler<GetSharedStatus> for SharedPauses {
    type Result = MessageResult<GetSharedStatus>;

    fn handle(&mut self, _: GetSharedStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("svc"), "svc");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
