//! Where an attempt meets its budgets: before it is sent, what it may cost is
//! reserved against every budget it counts against (its prompt estimated,
//! its output the high percentile of the model's recent replies, capped by
//! `max_tokens`); while a stream delivers past that, the hold grows; when the
//! attempt ends, the hold settles on what it really spent (its ticket's
//! spend). A hold dropped unsettled is released.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::Addr;
use steer_actors::budget::actor::{BudgetLedger, Grow, Reserve, Settle};
use steer_actors::budget::{Account, Ask, ChargeLine, Held, HoldId, Measure, Refusal};

use super::{Budget, OutputSizes, Scope};
use crate::cost::{estimate, PriceTable};
use crate::error::{FailureKind, ProviderError};
use crate::model::{ChatRequest, Usage, Usd};

/// The longest budget key a request may carry, in bytes.
pub const MAX_KEY: usize = 256;

/// How long a hold lasts without news (a growth): a replica or request that
/// dies mid-stream holds its budget no longer than this.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Where a client's budgets are kept: in this process (its ledger actor), or
/// in Redis, shared by the replicas (with this process's ledger to fall back
/// on when Redis cannot be reached, if failing open).
#[derive(Clone)]
pub(crate) enum Ledgers {
    /// This process's ledger.
    Local(Addr<BudgetLedger>),
    /// The replicas' ledger in Redis.
    #[cfg(feature = "shared-redis")]
    Shared(Arc<crate::shared::ledger::RedisLedger>),
}

/// Which ledger a hold was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    Local,
    #[cfg(feature = "shared-redis")]
    Shared,
}

/// The budgets of a client and the ledger they are kept in.
pub(crate) struct BudgetGate {
    budgets: Vec<(Scope, Budget)>,
    ledger: Option<Ledgers>,
    prices: Arc<PriceTable>,
    pub(crate) outputs: OutputSizes,
    lease: Duration,
}

/// Where an attempt runs, as budgets count it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    /// Its deployment.
    pub deployment: &'a str,
    /// Its request's group, if it names one.
    pub group: Option<&'a str>,
    /// Its request's budget key, if it carries one.
    pub key: Option<&'a str>,
}

/// What an attempt reserved: settled when it ends, released if dropped
/// before.
pub(crate) struct Hold {
    gate: Arc<BudgetGate>,
    id: HoldId,
    /// Its lines, in order (their amounts as reserved at first).
    lines: Vec<Ask>,
    /// Which ledger holds it.
    kept: Kept,
    /// The model's price, to grow a cost line by tokens.
    deployment: String,
    model: String,
    /// Outputs held so far.
    pub(crate) output: u64,
    settled: bool,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl BudgetGate {
    /// `budgets` kept in `ledger` (none: only per-request budgets apply).
    pub(crate) fn new(
        budgets: Vec<(Scope, Budget)>,
        ledger: Option<Ledgers>,
        prices: Arc<PriceTable>,
    ) -> Self {
        BudgetGate {
            budgets,
            ledger,
            prices,
            outputs: OutputSizes::default(),
            lease: DEFAULT_LEASE,
        }
    }

    /// Holds last `lease` without news.
    pub(crate) fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Whether any budget of the client's could count an attempt.
    pub(crate) fn any(&self) -> bool {
        !self.budgets.is_empty()
    }

    /// What `req` may cost at `place`: its prompt estimated, and the outputs
    /// to hold; tokens, and dollars (`None`: unpriced).
    pub(crate) fn estimate(&self, req: &ChatRequest, deployment: &str) -> (u64, u64, Option<Usd>) {
        let model = req.model.model();
        let prompt = estimate::prompt_tokens(req);
        let output = self.outputs.expected(model, req.token_limit());
        let cost = self
            .prices
            .get(deployment, model)
            .and_then(|p| p.cost(&Usage::new(prompt, output)).ok());
        (prompt, output, cost)
    }

    /// The lines an attempt of `req` at `place` reserves, `now`.
    fn asks(
        &self,
        req: &ChatRequest,
        place: Place<'_>,
        now: SystemTime,
    ) -> Result<(Vec<Ask>, u64), Refusal> {
        let (prompt, output, cost) = self.estimate(req, place.deployment);
        let tokens = prompt.saturating_add(output);
        let mut asks = Vec::new();
        for (scope, budget) in &self.budgets {
            let applies = match scope {
                Scope::Client | Scope::Key(_) | Scope::EveryKey => true,
                Scope::Group(g) => place.group == Some(g.as_str()),
                Scope::Deployment(d) => d == place.deployment,
            };
            if matches!(scope, Scope::Key(k) if Some(k.as_str()) != place.key) || !applies {
                continue;
            }
            let Some(name) = scope.account_name(place.key) else {
                continue;
            };
            let window = budget.period.window(now);
            if let Some(limit) = budget.tokens {
                asks.push(Ask {
                    account: Account::tokens(name.clone(), window),
                    limit,
                    amount: tokens,
                    warn_at: budget.warn_threshold(limit),
                });
            }
            if let Some(limit) = budget.usd {
                let limit = limit.nanos();
                let Some(cost) = cost else {
                    return Err(unpriced(place.deployment, req.model.model()));
                };
                asks.push(Ask {
                    account: Account::usd(name, window),
                    limit,
                    amount: cost.nanos(),
                    warn_at: budget.warn_threshold(limit),
                });
            }
        }
        Ok((asks, output))
    }

    /// The balances of the budgets over `scope` (for a request carrying
    /// `key`), in this period: one a measure the budget limits.
    pub(crate) async fn balances(&self, scope: &Scope, key: Option<&str>) -> Vec<BudgetBalance> {
        let Some(ledger) = &self.ledger else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (s, budget) in self.budgets.iter().filter(|(s, _)| s == scope) {
            let Some(name) = s.account_name(key) else {
                continue;
            };
            let window = budget.period.window(SystemTime::now());
            let lines = [
                (Account::tokens(name.clone(), window), budget.tokens),
                (Account::usd(name, window), budget.usd.map(Usd::nanos)),
            ];
            for (account, limit) in lines {
                let Some(limit) = limit else { continue };
                let (spent, reserved) = ledger.balance(&account).await;
                out.push(BudgetBalance {
                    account,
                    limit,
                    spent,
                    reserved,
                });
            }
        }
        out
    }

    /// Reserves what an attempt of `req` at `place` may cost; `None` when no
    /// budget counts it. Refused: the budget with no room, what it had.
    pub(crate) async fn reserve(
        self: &Arc<Self>,
        req: &ChatRequest,
        place: Place<'_>,
    ) -> Result<Option<Hold>, Refusal> {
        let Some(ledger) = &self.ledger else {
            return Ok(None);
        };
        let (asks, output) = self.asks(req, place, SystemTime::now())?;
        if asks.is_empty() {
            return Ok(None);
        }
        let (held, kept) = ledger.reserve(&asks, self.lease).await?;
        for account in &held.warnings {
            steer_actors::budget::warn_crossed(account);
        }
        Ok(Some(Hold {
            gate: self.clone(),
            id: held.id,
            lines: asks,
            kept,
            deployment: place.deployment.to_string(),
            model: req.model.model().to_string(),
            output,
            settled: false,
        }))
    }
}

/// What grows a hold, apart from it: the hold stays with its attempt (which
/// settles it whenever it ends, a growth in flight or not; the ledger keeps
/// the amounts), and the outputs granted are added to it when the growth
/// answers.
pub(crate) struct Grower {
    gate: Arc<BudgetGate>,
    id: HoldId,
    kept: Kept,
    lines: Vec<Ask>,
    deployment: String,
    model: String,
}

impl Hold {
    /// What grows this hold.
    pub(crate) fn grower(&self) -> Grower {
        Grower {
            gate: self.gate.clone(),
            id: self.id,
            kept: self.kept,
            lines: self.lines.clone(),
            deployment: self.deployment.clone(),
            model: self.model.clone(),
        }
    }
}

impl Grower {
    /// Holds up to `wanted` more outputs, at least `need` (a stream
    /// delivering past its hold: what the budgets have room for); answers
    /// the outputs granted.
    pub(crate) async fn grow(self, wanted: u64, need: u64) -> Result<u64, Refusal> {
        let Some(ledger) = self.gate.ledger.clone() else {
            return Ok(wanted);
        };
        let lease = self.gate.lease;
        let price = self.gate.prices.get(&self.deployment, &self.model);
        let lines = |tokens: u64| -> Vec<u64> {
            let cost = price
                .and_then(|p| p.cost(&Usage::new(0, tokens)).ok())
                .map_or(0, Usd::nanos);
            self.lines
                .iter()
                .map(|line| match line.account.measure {
                    Measure::Tokens => tokens,
                    Measure::NanoUsd => cost,
                })
                .collect::<Vec<u64>>()
        };
        let (wanted_lines, need_lines) = (lines(wanted), lines(need));
        let grown = ledger
            .grow(
                self.kept,
                self.id,
                &self.lines,
                wanted_lines,
                need_lines,
                lease,
            )
            .await?;
        for account in &grown.warnings {
            steer_actors::budget::warn_crossed(account);
        }
        let part = u128::from(wanted).saturating_mul(u128::from(grown.share_ppm)) / 1_000_000;
        Ok(u64::try_from(part).unwrap_or(u64::MAX).max(need))
    }
}

impl Hold {
    /// `granted` outputs more are held (a growth answered).
    pub(crate) fn add_output(&mut self, granted: u64) {
        self.output = self.output.saturating_add(granted);
    }

    /// The attempt ended having spent `tokens` costing `cost` (a cost line
    /// is only held for a priced model).
    pub(crate) fn settle(mut self, tokens: u64, cost: Option<Usd>) {
        self.settled = true;
        let spent = self
            .lines
            .iter()
            .map(|line| match line.account.measure {
                Measure::Tokens => tokens,
                Measure::NanoUsd => cost.unwrap_or(Usd::ZERO).nanos(),
            })
            .collect();
        if let Some(ledger) = &self.gate.ledger {
            ledger.settle(self.kept, self.id, &self.lines, spent);
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.settled {
            if let Some(ledger) = &self.gate.ledger {
                ledger.settle(self.kept, self.id, &self.lines, Vec::new());
            }
        }
    }
}

/// What one request's attempts are admitted by: the client's budgets (with
/// the request's group and key) and the request's own.
#[derive(Clone)]
pub(crate) struct Admission {
    pub gate: Arc<BudgetGate>,
    pub group: Option<Arc<str>>,
    pub key: Option<Arc<str>>,
    pub request: Option<Budget>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("group", &self.group)
            .field("key", &self.key)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// Whether anything could refuse an attempt.
    pub(crate) fn any(&self) -> bool {
        self.request.is_some() || self.gate.any()
    }

    /// Admits an attempt of `req` at `deployment`: within the request's own
    /// budget (its spend so far in `log` and what the attempt may cost), then
    /// reserved against the client's.
    pub(crate) async fn admit(
        &self,
        req: &ChatRequest,
        deployment: &str,
        log: &super::SpendLog,
    ) -> Result<Option<Hold>, Refusal> {
        // A key names an account (a map entry, a Redis key): a longer one
        // is refused rather than kept.
        if self.key.as_deref().is_some_and(|k| k.len() > MAX_KEY) {
            return Err(Refusal {
                account: Account::tokens(format!("key (longer than {MAX_KEY} bytes)"), 0),
                limit: 0,
                spent: 0,
                reserved: 0,
                asked: 0,
            });
        }
        if let Some(budget) = &self.request {
            let (prompt, output, cost) = self.gate.estimate(req, deployment);
            let spent = log.spend();
            let used = spent.usage();
            let tokens = used.input_tokens().saturating_add(used.completion_tokens);
            within_request(
                budget,
                tokens,
                spent.total(),
                prompt.saturating_add(output),
                cost,
            )?;
        }
        let place = Place {
            deployment,
            group: self.group.as_deref(),
            key: self.key.as_deref(),
        };
        self.gate.reserve(req, place).await
    }
}

/// Whether an attempt asking `tokens` costing `cost` fits a request's own
/// `budget`, which has `spent_tokens` and `spent` so far.
pub(crate) fn within_request(
    budget: &Budget,
    spent_tokens: u64,
    spent: Usd,
    tokens: u64,
    cost: Option<Usd>,
) -> Result<(), Refusal> {
    if let Some(limit) = budget.tokens {
        if spent_tokens.saturating_add(tokens) > limit {
            return Err(Refusal {
                account: Account::tokens("request", 0),
                limit,
                spent: spent_tokens,
                reserved: 0,
                asked: tokens,
            });
        }
    }
    if let Some(limit) = budget.usd {
        let Some(cost) = cost else {
            return Err(unpriced("request", "its model"));
        };
        if spent.plus(cost) > limit {
            return Err(Refusal {
                account: Account::usd("request", 0),
                limit: limit.nanos(),
                spent: spent.nanos(),
                reserved: 0,
                asked: cost.nanos(),
            });
        }
    }
    Ok(())
}

/// The error of an attempt of `req` its budget refused (nothing was sent):
/// classified `budget_exceeded`, never retried.
pub(crate) fn refused(provider: &str, req: &ChatRequest, refusal: Refusal) -> ProviderError {
    ProviderError::new(
        provider,
        req.request_id.clone(),
        FailureKind::Budget {
            refusal: Box::new(refusal),
        },
    )
}

/// A dollar budget cannot hold an attempt at an unpriced model: refused (a
/// price in the table or the config file lets it through).
fn unpriced(deployment: &str, model: &str) -> Refusal {
    Refusal {
        account: Account::usd(format!("price of {deployment}/{model} (unpriced)"), 0),
        limit: 0,
        spent: 0,
        reserved: 0,
        asked: 0,
    }
}

/// A budget's standing in its current period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetBalance {
    /// Its account (scope, measure, window).
    pub account: Account,
    /// Its limit (tokens, or nano-dollars).
    pub limit: u64,
    /// Spent (settled).
    pub spent: u64,
    /// Held by attempts running.
    pub reserved: u64,
}

impl Ledgers {
    /// An account's spent and held amounts (nothing known: zeros).
    async fn balance(&self, account: &Account) -> (u64, u64) {
        match self {
            Ledgers::Local(addr) => addr
                .send(steer_actors::budget::actor::Balance(account.clone()))
                .await
                .unwrap_or((0, 0)),
            #[cfg(feature = "shared-redis")]
            Ledgers::Shared(redis) => redis.balance(account).await.unwrap_or((0, 0)),
        }
    }

    /// Reserves `asks` for `lease`: in Redis when shared (in this process's
    /// ledger when Redis cannot answer and the budgets fail open).
    async fn reserve(&self, asks: &[Ask], lease: Duration) -> Result<(Held, Kept), Refusal> {
        match self {
            Ledgers::Local(addr) => Ok((local_reserve(addr, asks, lease).await?, Kept::Local)),
            #[cfg(feature = "shared-redis")]
            Ledgers::Shared(redis) => match redis.reserve(asks, lease).await {
                Ok(answer) => Ok((answer?, Kept::Shared)),
                Err(down) => match redis.fallback() {
                    Some(addr) => Ok((local_reserve(addr, asks, lease).await?, Kept::Local)),
                    None => Err(down),
                },
            },
        }
    }

    /// Grows hold `id` of `lines` where it is kept.
    async fn grow(
        &self,
        kept: Kept,
        id: HoldId,
        lines: &[Ask],
        wanted: Vec<u64>,
        need: Vec<u64>,
        lease: Duration,
    ) -> Result<steer_actors::budget::Grown, Refusal> {
        let local = match (self, kept) {
            (Ledgers::Local(addr), _) => Some(addr),
            #[cfg(feature = "shared-redis")]
            (Ledgers::Shared(redis), Kept::Local) => redis.fallback(),
            #[cfg(feature = "shared-redis")]
            (Ledgers::Shared(redis), Kept::Shared) => {
                return redis.grow(id, lines, &wanted, &need, lease).await;
            }
        };
        // (Only a hold kept in Redis needs its lines and lease to grow.)
        let _ = (lines, lease);
        let Some(addr) = local else {
            return Err(unavailable());
        };
        match addr.send(Grow { id, wanted, need }).await {
            Ok(answer) => answer,
            Err(_) => Err(unavailable()),
        }
    }

    /// Settles hold `id` of `lines` on `spent` (empty: released), one way.
    fn settle(&self, kept: Kept, id: HoldId, lines: &[Ask], spent: Vec<u64>) {
        let lines = lines
            .iter()
            .enumerate()
            .map(|(i, l)| ChargeLine {
                account: l.account.clone(),
                spent: spent.get(i).copied().unwrap_or(0),
                warn_at: l.warn_at,
            })
            .collect();
        let settle = Settle { id, lines };
        match (self, kept) {
            (Ledgers::Local(addr), _) => addr.do_send(settle),
            #[cfg(feature = "shared-redis")]
            (Ledgers::Shared(redis), Kept::Local) => {
                if let Some(addr) = redis.fallback() {
                    addr.do_send(settle)
                }
            }
            #[cfg(feature = "shared-redis")]
            (Ledgers::Shared(redis), Kept::Shared) => redis.settle(settle),
        }
    }
}

/// A reservation in this process's ledger.
async fn local_reserve(
    addr: &Addr<BudgetLedger>,
    asks: &[Ask],
    lease: Duration,
) -> Result<Held, Refusal> {
    let reserve = Reserve {
        asks: asks.to_vec(),
        lease,
    };
    match addr.send(reserve).await {
        Ok(answer) => answer,
        // The ledger is gone (the client stopping): nothing is sent.
        Err(_) => Err(unavailable()),
    }
}

/// The ledger cannot be reached: refused (failing closed).
pub(crate) fn unavailable() -> Refusal {
    Refusal::unavailable()
}
