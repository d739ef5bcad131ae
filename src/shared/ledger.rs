//! The budget ledger the replicas share in Redis: the same rules as
//! [`steer_actors::budget::Ledger`], as atomic scripts. An account is a hash
//! (`spent`, `reserved`, `warned`) at `{prefix}:budget:{measure}:{window}:{scope}`
//! (a period's account expires two months after its last reservation); a hold
//! is a hash of its accounts' amounts at `{prefix}:holds:{id}`, its lease the
//! score of its id in the sorted set `{prefix}:holds`, by Redis's own clock.
//! Every script first releases up to 32 holds whose lease ended (a replica
//! that died mid-stream holds its budget no longer than a lease), then
//! reserves all lines or none, grows by what has room, or settles.
//!
//! Redis slow or down (each call has a timeout): the budgets fail open, on
//! this process's ledger ([`BudgetFail::Open`](super::BudgetFail::Open)), or
//! refuse every attempt ([`BudgetFail::Closed`](super::BudgetFail::Closed)).
//! The scripts name keys they were not given (a hold's accounts): a single
//! Redis (or one shard), not Redis Cluster.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::Addr;
use redis::aio::ConnectionManager;
use steer_actors::budget::actor::{BudgetLedger, Settle};
use steer_actors::budget::{Account, Ask, Grown, Held, HoldId, Refusal};

use super::SharedConfig;
use crate::error::Error;

/// How long one ledger call may take before the attempt goes on without it.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a period's account lives after its last reservation.
const ACCOUNT_TTL_MS: u64 = 62 * 24 * 3_600 * 1_000;

/// Redis's time in ms, and the release of holds whose lease ended (KEYS[1]
/// is the holds' set; a hold's key is the set's name, `:`, its id).
const PRELUDE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 32)
for _, id in ipairs(gone) do
  local hk = KEYS[1] .. ':' .. id
  local lines = redis.call('HGETALL', hk)
  for j = 1, #lines, 2 do
    redis.call('HINCRBY', lines[j], 'reserved', -tonumber(lines[j + 1]))
  end
  redis.call('DEL', hk)
  redis.call('ZREM', KEYS[1], id)
end
local function balance(a)
  local v = redis.call('HMGET', a, 'spent', 'reserved')
  return tonumber(v[1] or '0'), tonumber(v[2] or '0')
end
"#;

/// KEYS: holds, the hold, its accounts. ARGV: id, lease ms, account TTL ms
/// (0: none), then per line limit, amount, warn_at. Answers `{1, warned
/// line...}` or `{0, line, spent, reserved}`.
const RESERVE: &str = r#"
local n = #KEYS - 2
for i = 1, n do
  local spent, held = balance(KEYS[i + 2])
  local at = 3 + 3 * (i - 1)
  if spent + held + tonumber(ARGV[at + 2]) > tonumber(ARGV[at + 1]) then
    return {0, i, spent, held}
  end
end
local answer = {1}
for i = 1, n do
  local a = KEYS[i + 2]
  local at = 3 + 3 * (i - 1)
  local amount = tonumber(ARGV[at + 2])
  redis.call('HINCRBY', a, 'reserved', amount)
  redis.call('HSET', KEYS[2], a, amount)
  if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', a, ARGV[3]) end
  local spent, held = balance(a)
  if redis.call('HGET', a, 'warned') ~= '1' and spent + held >= tonumber(ARGV[at + 3]) then
    redis.call('HSET', a, 'warned', '1')
    table.insert(answer, i)
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return answer
"#;

/// KEYS: holds, the hold, its accounts. ARGV: id, lease ms, then per line
/// limit, wanted, need. Answers `{1, share ppm, granted...}` or `{0, line,
/// spent, reserved}` (line 0: the hold is gone).
const GROW: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 0 then return {0, 0, 0, 0} end
local n = #KEYS - 2
local share = 1000000
for i = 1, n do
  local spent, held = balance(KEYS[i + 2])
  local at = 2 + 3 * (i - 1)
  local limit, want, need = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  local room = limit - spent - held
  if room < 0 then room = 0 end
  if spent + held > limit or room < need then return {0, i, spent, held} end
  if want > room then
    local part = math.floor(room * 1000000 / want)
    if part < share then share = part end
  end
end
local answer = {1, share}
for i = 1, n do
  local a = KEYS[i + 2]
  local at = 2 + 3 * (i - 1)
  local g = math.floor(tonumber(ARGV[at + 2]) * share / 1000000)
  if g < tonumber(ARGV[at + 3]) then g = tonumber(ARGV[at + 3]) end
  redis.call('HINCRBY', a, 'reserved', g)
  redis.call('HINCRBY', KEYS[2], a, g)
  table.insert(answer, g)
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return answer
"#;

/// KEYS: holds, the hold, its accounts. ARGV: id, then per line what was
/// spent (none: released). A hold gone (its lease ended) still has its
/// spend counted.
const SETTLE: &str = r#"
local live = redis.call('EXISTS', KEYS[2]) == 1
for i = 1, #KEYS - 2 do
  local a = KEYS[i + 2]
  if live then
    local held = tonumber(redis.call('HGET', KEYS[2], a) or '0')
    redis.call('HINCRBY', a, 'reserved', -held)
  end
  local spent = tonumber(ARGV[i + 1] or '0')
  if spent > 0 then redis.call('HINCRBY', a, 'spent', spent) end
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"#;

/// KEYS: holds, an account. Answers its spent and reserved amounts.
const BALANCE: &str = r#"
local spent, held = balance(KEYS[2])
return {spent, held}
"#;

struct Scripts {
    reserve: redis::Script,
    grow: redis::Script,
    settle: redis::Script,
    balance: redis::Script,
}

/// The shared ledger (see the module).
pub(crate) struct RedisLedger {
    client: redis::Client,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    prefix: String,
    /// This replica's share of hold ids (their high 32 bits).
    replica: u64,
    next: AtomicU64,
    /// This process's ledger, when the budgets fail open.
    fallback: Option<Addr<BudgetLedger>>,
    scripts: Scripts,
}

impl RedisLedger {
    /// The ledger in the Redis of `config`; `fallback` when failing open.
    pub(crate) fn new(
        config: &SharedConfig,
        fallback: Option<Addr<BudgetLedger>>,
    ) -> Result<Self, Error> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| crate::error::ConfigError::setting("shared.redis", e.to_string()))?;
        let script = |body: &str| redis::Script::new(&format!("{PRELUDE}{body}"));
        Ok(RedisLedger {
            client,
            conn: tokio::sync::OnceCell::new(),
            prefix: config.prefix.clone(),
            replica: u64::from(fastrand::u32(..)) << 32,
            next: AtomicU64::new(0),
            fallback,
            scripts: Scripts {
                reserve: script(RESERVE),
                grow: script(GROW),
                settle: script(SETTLE),
                balance: script(BALANCE),
            },
        })
    }

    /// This process's ledger, when the budgets fail open.
    pub(crate) fn fallback(&self) -> Option<&Addr<BudgetLedger>> {
        self.fallback.as_ref()
    }

    fn holds_key(&self) -> String {
        format!("{}:holds", self.prefix)
    }

    /// The Redis key of `account`.
    pub(crate) fn account_key(&self, account: &Account) -> String {
        format!(
            "{}:budget:{}:{}:{}",
            self.prefix,
            account.measure.as_str(),
            account.window,
            account.scope
        )
    }

    async fn conn(&self) -> Result<ConnectionManager, Refusal> {
        let connect = || async {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CALL_TIMEOUT))
                .set_response_timeout(Some(CALL_TIMEOUT))
                .set_number_of_retries(1);
            self.client.get_connection_manager_with_config(config).await
        };
        match tokio::time::timeout(CALL_TIMEOUT, self.conn.get_or_try_init(connect)).await {
            Ok(Ok(conn)) => Ok(conn.clone()),
            Ok(Err(e)) => Err(down(&e)),
            Err(_) => Err(Refusal::unavailable()),
        }
    }

    /// Runs `call` with a timeout.
    async fn run<T: redis::FromRedisValue>(
        &self,
        call: redis::ScriptInvocation<'_>,
    ) -> Result<T, Refusal> {
        let mut conn = self.conn().await?;
        match tokio::time::timeout(CALL_TIMEOUT, call.invoke_async::<T>(&mut conn)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(down(&e)),
            Err(_) => Err(Refusal::unavailable()),
        }
    }

    /// Reserves `asks` for `lease`. The outer `Err`: Redis did not answer.
    pub(crate) async fn reserve(
        &self,
        asks: &[Ask],
        lease: Duration,
    ) -> Result<Result<Held, Refusal>, Refusal> {
        let id = self.replica | (self.next.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF);
        let holds = self.holds_key();
        let mut call = self.scripts.reserve.prepare_invoke();
        call.key(&holds).key(format!("{holds}:{id}"));
        let ttl = if asks.iter().any(|a| a.account.window > 0) {
            ACCOUNT_TTL_MS
        } else {
            0
        };
        call.arg(id).arg(ms(lease)).arg(ttl);
        for ask in asks {
            call.key(self.account_key(&ask.account))
                .arg(ask.limit)
                .arg(ask.amount)
                .arg(ask.warn_at);
        }
        let answer: Vec<i64> = self.run(call).await?;
        Ok(match answer.first() {
            Some(1) => Ok(Held {
                id,
                warnings: answer
                    .iter()
                    .skip(1)
                    .filter_map(|i| line(asks, *i).map(|a| a.account.clone()))
                    .collect(),
            }),
            _ => Err(refused(asks, &answer)),
        })
    }

    /// Grows hold `id` of `lines` by up to `wanted`, at least `need`.
    pub(crate) async fn grow(
        &self,
        id: HoldId,
        lines: &[Ask],
        wanted: &[u64],
        need: &[u64],
        lease: Duration,
    ) -> Result<Grown, Refusal> {
        let holds = self.holds_key();
        let mut call = self.scripts.grow.prepare_invoke();
        call.key(&holds).key(format!("{holds}:{id}"));
        call.arg(id).arg(ms(lease));
        for (i, l) in lines.iter().enumerate() {
            call.key(self.account_key(&l.account))
                .arg(l.limit)
                .arg(wanted.get(i).copied().unwrap_or(0))
                .arg(need.get(i).copied().unwrap_or(0));
        }
        let answer: Vec<i64> = self.run(call).await?;
        match answer.first() {
            Some(1) => Ok(Grown {
                share_ppm: answer.get(1).map_or(0, |s| u64::try_from(*s).unwrap_or(0)),
                granted: answer
                    .iter()
                    .skip(2)
                    .map(|g| u64::try_from(*g).unwrap_or(0))
                    .collect(),
                warnings: Vec::new(),
            }),
            _ => Err(refused(lines, &answer)),
        }
    }

    /// Settles a hold (one way: on the caller's runtime, if it has one).
    pub(crate) fn settle(self: &std::sync::Arc<Self>, settle: Settle) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("steer.budget: a hold settled outside a runtime is left to its lease");
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let holds = this.holds_key();
            let mut call = this.scripts.settle.prepare_invoke();
            call.key(&holds).key(format!("{holds}:{}", settle.id));
            call.arg(settle.id);
            for line in &settle.lines {
                call.key(this.account_key(&line.account)).arg(line.spent);
            }
            if let Err(e) = this.run::<i64>(call).await {
                tracing::warn!(%e, "steer.budget: a settlement did not reach Redis (its hold ends with its lease)");
            }
        });
    }

    /// An account's spent and reserved amounts.
    pub(crate) async fn balance(&self, account: &Account) -> Result<(u64, u64), Refusal> {
        let mut call = self.scripts.balance.prepare_invoke();
        call.key(self.holds_key()).key(self.account_key(account));
        let answer: Vec<i64> = self.run(call).await?;
        let at = |i: usize| answer.get(i).map_or(0, |v| u64::try_from(*v).unwrap_or(0));
        Ok((at(0), at(1)))
    }
}

/// A duration in ms, at least 1.
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Line `i` (counted from 1) of `asks`.
fn line(asks: &[Ask], i: i64) -> Option<&Ask> {
    usize::try_from(i)
        .ok()?
        .checked_sub(1)
        .and_then(|i| asks.get(i))
}

/// The refusal a script answered `{0, line, spent, reserved}` with.
fn refused(asks: &[Ask], answer: &[i64]) -> Refusal {
    let n = |i: usize| answer.get(i).map_or(0, |v| u64::try_from(*v).unwrap_or(0));
    match answer.get(1).and_then(|i| line(asks, *i)) {
        Some(ask) => Refusal {
            account: ask.account.clone(),
            limit: ask.limit,
            spent: n(2),
            reserved: n(3),
            asked: ask.amount,
        },
        None => Refusal {
            account: Account::tokens("expired hold", 0),
            limit: 0,
            spent: 0,
            reserved: 0,
            asked: 0,
        },
    }
}

/// Redis failed: refused as the ledger unavailable, the cause logged.
fn down(e: &redis::RedisError) -> Refusal {
    tracing::warn!(%e, "steer.budget: the shared ledger did not answer");
    Refusal::unavailable()
}
