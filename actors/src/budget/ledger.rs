//! The budget ledger as a plain state machine: accounts (a scope's spend in
//! one measure and one period) and holds (what an attempt reserved across
//! every account it counts against). Reserving is all or nothing across those
//! accounts; a hold grows while a stream delivers, settles on what the attempt
//! really spent, and is released when the attempt did not run; a hold whose
//! lease ended (its replica or request gone) is released by [`Ledger::expire`].
//!
//! The same rules run as Redis scripts for replicas that share a ledger; this
//! machine is the reference the scripts are tested against.
//!
//! ```
//! use std::time::Duration;
//! use steer_actors::budget::{Account, Ask, Ledger};
//! let mut ledger = Ledger::default();
//! let now = tokio::time::Instant::now();
//! let key = Account::tokens("client", 0);
//! let ask = |amount| vec![Ask { account: key.clone(), limit: 1_000, amount, warn_at: 800 }];
//! let held = ledger.reserve(&ask(600), now, Duration::from_secs(60)).unwrap();
//! assert!(ledger.reserve(&ask(600), now, Duration::from_secs(60)).is_err(), "400 left");
//! ledger.settle(held.id, &[450]);
//! assert_eq!(ledger.balance(&key), (450, 0));
//! ```

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// What an account counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// Tokens (prompt and generated).
    Tokens,
    /// Nano-dollars at the client's prices.
    NanoUsd,
}

impl Measure {
    /// The measure as a word (metrics, errors, Redis keys).
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Tokens => "tokens",
            Measure::NanoUsd => "usd",
        }
    }
}

/// One account: a scope's spend in one measure over one period's window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account {
    /// The scope (`client`, `group:fast`, `deployment:openai`, `key:tenant-a`).
    pub scope: String,
    /// What it counts.
    pub measure: Measure,
    /// The period's window it belongs to (0 for a budget with no period; a
    /// day or month number otherwise): a later window starts from nothing.
    pub window: u64,
}

impl Account {
    /// A token account.
    pub fn tokens(scope: impl Into<String>, window: u64) -> Self {
        Account {
            scope: scope.into(),
            measure: Measure::Tokens,
            window,
        }
    }

    /// A cost account (nano-dollars).
    pub fn usd(scope: impl Into<String>, window: u64) -> Self {
        Account {
            scope: scope.into(),
            measure: Measure::NanoUsd,
            window,
        }
    }
}

/// One line of a reservation: `amount` against `account`, whose budget is
/// `limit`; a warning once spent and held pass `warn_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The account.
    pub account: Account,
    /// Its budget.
    pub limit: u64,
    /// What the attempt may spend of it.
    pub amount: u64,
    /// Where its warning is (at or above: warned once a window).
    pub warn_at: u64,
}

/// One account's spend, with its warning threshold: a line of a settlement,
/// and what [`Ledger::charge`] counts when the hold is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeLine {
    /// The account.
    pub account: Account,
    /// What was spent.
    pub spent: u64,
    /// Where its warning is, as the hold's line said.
    pub warn_at: u64,
}

/// An account that had no room: what it had, and what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} budget of {} exhausted: {spent} spent and {reserved} reserved of {limit}, {asked} asked",
    .account.measure.as_str(), .account.scope
)]
pub struct Refusal {
    /// The account.
    pub account: Account,
    /// Its budget.
    pub limit: u64,
    /// Spent in the window.
    pub spent: u64,
    /// Held by attempts running.
    pub reserved: u64,
    /// What was asked.
    pub asked: u64,
}

impl Refusal {
    /// The ledger could not be reached (its actor gone, Redis down with the
    /// budgets failing closed): nothing can be held.
    pub fn unavailable() -> Self {
        Refusal {
            account: Account::tokens("ledger (unavailable)", 0),
            limit: 0,
            spent: 0,
            reserved: 0,
            asked: 0,
        }
    }

    /// What is left of the budget, holds aside.
    pub fn remaining(&self) -> u64 {
        self.limit
            .saturating_sub(self.spent)
            .saturating_sub(self.reserved)
    }
}

/// A reservation's number.
pub type HoldId = u64;

/// A reservation made: its number, and the accounts whose warning it crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its number (to grow, settle or release it).
    pub id: HoldId,
    /// Accounts that passed their warning with it (each once a window).
    pub warnings: Vec<Account>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Balance {
    spent: u64,
    reserved: u64,
    warned: bool,
}

#[derive(Debug, Clone)]
struct Hold {
    lines: Vec<Ask>,
    expires: Instant,
    lease: Duration,
}

/// A millionth's denominator.
const MILLION: u64 = 1_000_000;

/// `amounts[i]`, or nothing.
fn at(amounts: &[u64], i: usize) -> u64 {
    amounts.get(i).copied().unwrap_or(0)
}

/// What a growth got: the share of what was wanted (millionths) and the
/// amount each line grew by, and the warnings it crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grown {
    /// The share of the wanted amounts granted, in millionths.
    pub share_ppm: u64,
    /// What each line grew by.
    pub granted: Vec<u64>,
    /// Accounts that passed their warning with it.
    pub warnings: Vec<Account>,
}

/// The ledger (see the module).
#[derive(Debug, Default)]
pub struct Ledger {
    balances: HashMap<Account, Balance>,
    holds: HashMap<HoldId, Hold>,
    /// The latest window each scope and measure was asked in.
    windows: HashMap<(String, Measure), u64>,
    next: HoldId,
}

/// The longest a hold's lease lasts: a day.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

/// When a hold leased at `now` for `lease` ends: at most [`MAX_LEASE`] on, so
/// a lease too long to add to the clock holds rather than ending at once.
fn expiry(now: Instant, lease: Duration) -> Instant {
    crate::exec::clock::later_tokio(now, lease.min(MAX_LEASE))
}

impl Ledger {
    /// Reserves every line of `asks` or none: refused by the first account
    /// whose spent and held amounts plus the ask pass its limit. The hold
    /// lasts `lease` unless renewed (a growth renews it).
    pub fn reserve(
        &mut self,
        asks: &[Ask],
        now: Instant,
        lease: Duration,
    ) -> Result<Held, Refusal> {
        self.forget_old_windows(asks);
        self.check(asks)?;
        let mut warnings = Vec::new();
        for ask in asks {
            let b = self.balances.entry(ask.account.clone()).or_default();
            b.reserved = b.reserved.saturating_add(ask.amount);
            if !b.warned && b.spent.saturating_add(b.reserved) >= ask.warn_at {
                b.warned = true;
                warnings.push(ask.account.clone());
            }
        }
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        self.holds.insert(
            id,
            Hold {
                lines: asks.to_vec(),
                expires: expiry(now, lease),
                lease,
            },
        );
        Ok(Held { id, warnings })
    }

    /// Adds up to `wanted` to hold `id` (one amount a line, in the hold's
    /// order), at least `need`: each line gets what its account has room
    /// for, the same share of `wanted` for every line; refused when a line
    /// has not room for its `need`. Renews the hold's lease. A hold that is
    /// gone (settled, released, expired) is refused.
    pub fn grow(
        &mut self,
        id: HoldId,
        wanted: &[u64],
        need: &[u64],
        now: Instant,
    ) -> Result<Grown, Refusal> {
        let Some(hold) = self.holds.get(&id) else {
            return Err(Refusal {
                account: Account::tokens("expired hold", 0),
                limit: 0,
                spent: 0,
                reserved: 0,
                asked: need.iter().copied().fold(0, u64::saturating_add),
            });
        };
        // The share of `wanted` every line has room for, in millionths.
        let mut share = MILLION;
        for (i, line) in hold.lines.iter().enumerate() {
            let (want, least) = (at(wanted, i), at(need, i));
            let b = self
                .balances
                .get(&line.account)
                .copied()
                .unwrap_or_default();
            let room = line
                .limit
                .saturating_sub(b.spent)
                .saturating_sub(b.reserved);
            // An account past its limit (spend settled above its holds) has
            // no room at all.
            let over = b.spent.saturating_add(b.reserved) > line.limit;
            if over || room < least {
                return Err(Refusal {
                    account: line.account.clone(),
                    limit: line.limit,
                    spent: b.spent,
                    reserved: b.reserved,
                    asked: least,
                });
            }
            if want > room {
                let part = u128::from(room)
                    .saturating_mul(u128::from(MILLION))
                    .checked_div(u128::from(want))
                    .unwrap_or(0);
                share = share.min(u64::try_from(part).unwrap_or(MILLION));
            }
        }
        let lines = hold.lines.clone();
        let mut granted = Vec::with_capacity(lines.len());
        let mut warnings = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let part = u128::from(at(wanted, i))
                .saturating_mul(u128::from(share))
                .checked_div(u128::from(MILLION))
                .unwrap_or(0);
            let g = u64::try_from(part).unwrap_or(u64::MAX).max(at(need, i));
            let b = self.balances.entry(line.account.clone()).or_default();
            b.reserved = b.reserved.saturating_add(g);
            if !b.warned && b.spent.saturating_add(b.reserved) >= line.warn_at {
                b.warned = true;
                warnings.push(line.account.clone());
            }
            granted.push(g);
        }
        if let Some(hold) = self.holds.get_mut(&id) {
            for (line, g) in hold.lines.iter_mut().zip(&granted) {
                line.amount = line.amount.saturating_add(*g);
            }
            hold.expires = expiry(now, hold.lease);
        }
        Ok(Grown {
            share_ppm: share,
            granted,
            warnings,
        })
    }

    /// Hold `id` ends with `spent` (one amount a line): its reservation goes,
    /// its spend is counted (even past the limit: it was spent). Returns the
    /// accounts whose warning the spend crossed.
    /// A hold that is gone (its lease ended) answers `None`: its spend is
    /// then [charged](Ledger::charge) by its caller, who knows its accounts.
    pub fn settle(&mut self, id: HoldId, spent: &[u64]) -> Option<Vec<Account>> {
        let hold = self.holds.remove(&id)?;
        let mut warnings = Vec::new();
        for (i, line) in hold.lines.iter().enumerate() {
            let b = self.balances.entry(line.account.clone()).or_default();
            b.reserved = b.reserved.saturating_sub(line.amount);
            let line_spent = spent.get(i).copied().unwrap_or(0);
            b.spent = b.spent.saturating_add(line_spent);
            // Only a spend crosses a warning: a line that spent nothing
            // lowers what is held (so that which of two holds ends first
            // never decides a warning).
            if line_spent > 0 && !b.warned && b.spent.saturating_add(b.reserved) >= line.warn_at {
                b.warned = true;
                warnings.push(line.account.clone());
            }
        }
        for line in &hold.lines {
            self.drop_if_idle(&line.account);
        }
        Some(warnings)
    }

    /// Counts spend against accounts directly (an attempt whose hold
    /// expired, or that ran with no hold): nothing is refused. Returns the
    /// accounts whose warning the spend crossed, as [`settle`](Ledger::settle)
    /// does.
    pub fn charge(&mut self, lines: &[ChargeLine]) -> Vec<Account> {
        let mut warnings = Vec::new();
        for line in lines {
            let b = self.balances.entry(line.account.clone()).or_default();
            b.spent = b.spent.saturating_add(line.spent);
            if line.spent > 0 && !b.warned && b.spent.saturating_add(b.reserved) >= line.warn_at {
                b.warned = true;
                warnings.push(line.account.clone());
            }
        }
        warnings
    }

    /// Hold `id` ends unspent (its attempt never ran).
    pub fn release(&mut self, id: HoldId) {
        self.settle(id, &[]);
    }

    /// Releases every hold whose lease ended by `now`; how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let gone: Vec<HoldId> = self
            .holds
            .iter()
            .filter(|(_, h)| h.expires <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            self.release(*id);
        }
        gone.len()
    }

    /// An account's spent and held amounts.
    pub fn balance(&self, account: &Account) -> (u64, u64) {
        self.balances
            .get(account)
            .map_or((0, 0), |b| (b.spent, b.reserved))
    }

    /// Holds open.
    pub fn holds(&self) -> usize {
        self.holds.len()
    }

    /// The first line of `asks` with no room for its amount.
    fn check(&self, asks: &[Ask]) -> Result<(), Refusal> {
        for ask in asks {
            let b = self.balances.get(&ask.account).copied().unwrap_or_default();
            // Past u64 is past any limit.
            let after = b
                .spent
                .checked_add(b.reserved)
                .and_then(|x| x.checked_add(ask.amount));
            if after.is_none_or(|after| after > ask.limit) {
                return Err(Refusal {
                    account: ask.account.clone(),
                    limit: ask.limit,
                    spent: b.spent,
                    reserved: b.reserved,
                    asked: ask.amount,
                });
            }
        }
        Ok(())
    }

    /// A scope asked in a later window than before: its earlier window's
    /// account is gone (or goes when its last hold settles).
    fn forget_old_windows(&mut self, asks: &[Ask]) {
        for ask in asks {
            let a = &ask.account;
            let latest = self
                .windows
                .entry((a.scope.clone(), a.measure))
                .or_insert(a.window);
            if a.window > *latest {
                let old = Account {
                    window: std::mem::replace(latest, a.window),
                    ..a.clone()
                };
                self.drop_if_idle(&old);
            }
        }
    }

    /// Removes `account` if it is of an earlier window and nothing holds it.
    fn drop_if_idle(&mut self, account: &Account) {
        let latest = self
            .windows
            .get(&(account.scope.clone(), account.measure))
            .copied();
        let idle = self.balances.get(account).is_some_and(|b| b.reserved == 0);
        if idle && latest.is_some_and(|w| account.window < w) {
            self.balances.remove(account);
        }
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
