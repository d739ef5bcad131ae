//! The budget ledger's actor: a thin shell that owns a client's [`Ledger`],
//! answers reservations and growths, takes settlements one way, and releases
//! the holds whose lease ended on a timer.

use std::time::Duration;

use actix::prelude::*;

use super::{Account, Ask, ChargeLine, Grown, Held, HoldId, Ledger, Refusal};

/// How often holds whose lease ended are released.
pub const EXPIRE_EVERY: Duration = Duration::from_secs(1);

/// Owns a client's ledger (see [`Ledger`]).
#[derive(Debug, Default)]
pub struct BudgetLedger {
    ledger: Ledger,
}

impl Actor for BudgetLedger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(crate::MAILBOX_CAPACITY);
        ctx.run_interval(EXPIRE_EVERY, |act, _| {
            let gone = act.ledger.expire(tokio::time::Instant::now());
            if gone > 0 {
                tracing::warn!(
                    holds = gone,
                    "steer.budget: holds released at the end of their lease"
                );
            }
        });
    }
}

/// Reserves `asks`, all or none, for `lease` (see [`Ledger::reserve`]).
#[derive(Debug, Message)]
#[rtype(result = "Result<Held, Refusal>")]
pub struct Reserve {
    /// The lines.
    pub asks: Vec<Ask>,
    /// How long the hold lasts without a growth.
    pub lease: Duration,
}

/// Grows a hold by up to `wanted`, at least `need` (see [`Ledger::grow`]).
#[derive(Debug, Message)]
#[rtype(result = "Result<Grown, Refusal>")]
pub struct Grow {
    /// The hold.
    pub id: HoldId,
    /// One amount a line: what is wanted.
    pub wanted: Vec<u64>,
    /// One amount a line: the least that will do.
    pub need: Vec<u64>,
}

/// Settles a hold on what its attempt spent, one line per account of the
/// hold, in its order (all 0: released, nothing spent); a hold whose lease
/// ended meanwhile has its spend charged to the lines' accounts all the same
/// (the attempt ran).
#[derive(Debug, Message)]
#[rtype(result = "Vec<Account>")]
pub struct Settle {
    /// The hold.
    pub id: HoldId,
    /// Each account of the hold: what was spent of it, and its warning.
    pub lines: Vec<ChargeLine>,
}

impl Settle {
    /// What was spent, one amount a line.
    pub fn spent(&self) -> Vec<u64> {
        self.lines.iter().map(|l| l.spent).collect()
    }
}

/// An account's spent and held amounts.
#[derive(Debug, Message)]
#[rtype(result = "(u64, u64)")]
pub struct Balance(pub Account);

impl Handler<Reserve> for BudgetLedger {
    type Result = Result<Held, Refusal>;

    fn handle(&mut self, msg: Reserve, _: &mut Context<Self>) -> Self::Result {
        self.ledger
            .reserve(&msg.asks, tokio::time::Instant::now(), msg.lease)
    }
}

impl Handler<Grow> for BudgetLedger {
    type Result = Result<Grown, Refusal>;

    fn handle(&mut self, msg: Grow, _: &mut Context<Self>) -> Self::Result {
        self.ledger
            .grow(msg.id, &msg.wanted, &msg.need, tokio::time::Instant::now())
    }
}

impl Handler<Settle> for BudgetLedger {
    type Result = Vec<Account>;

    /// Settles (or charges) and logs the warnings it crossed: a settlement is
    /// sent one way, so this is the only place that knows of them.
    fn handle(&mut self, msg: Settle, _: &mut Context<Self>) -> Self::Result {
        let warnings = match self.ledger.settle(msg.id, &msg.spent()) {
            Some(warnings) => warnings,
            None => self.ledger.charge(&msg.lines),
        };
        for account in &warnings {
            super::warn_crossed(account);
        }
        warnings
    }
}

impl Handler<Balance> for BudgetLedger {
    type Result = MessageResult<Balance>;

    fn handle(&mut self, msg: Balance, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.ledger.balance(&msg.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_left_by_a_gone_attempt_is_released_by_the_timer() {
        let system = actix::System::new();
        system.block_on(released_by_the_timer());
    }

    async fn released_by_the_timer() {
        tokio::time::pause();
        let ledger = BudgetLedger::default().start();
        let account = Account::tokens("client", 0);
        let asks = vec![Ask {
            account: account.clone(),
            limit: 100,
            amount: 100,
            warn_at: 100,
        }];
        let lease = Duration::from_millis(1_500);
        let reserve = || Reserve {
            asks: asks.clone(),
            lease,
        };
        ledger.send(reserve()).await.unwrap().unwrap();
        assert!(ledger.send(reserve()).await.unwrap().is_err(), "full");
        tokio::time::advance(Duration::from_secs(3)).await;
        // The timer ran: the hold is gone, the room back.
        let mut freed = false;
        for _ in 0..10 {
            tokio::task::yield_now().await;
            if ledger.send(Balance(account.clone())).await.unwrap() == (0, 0) {
                freed = true;
                break;
            }
        }
        assert!(freed);
        let held = ledger.send(reserve()).await.unwrap().unwrap();
        ledger
            .send(Settle {
                id: held.id,
                lines: vec![ChargeLine {
                    account: account.clone(),
                    spent: 60,
                    warn_at: u64::MAX,
                }],
            })
            .await
            .unwrap();
        assert_eq!(ledger.send(Balance(account)).await.unwrap(), (60, 0));
        // The spend of a hold gone meanwhile is charged to the accounts the
        // settlement names, and a warning it crosses comes back (and is logged).
        let other = Account::tokens("other", 0);
        let settle_gone = |spent: u64| Settle {
            id: HoldId::MAX,
            lines: vec![ChargeLine {
                account: other.clone(),
                spent,
                warn_at: 50,
            }],
        };
        assert_eq!(ledger.send(settle_gone(40)).await.unwrap(), []);
        assert_eq!(
            ledger.send(settle_gone(10)).await.unwrap(),
            std::slice::from_ref(&other)
        );
        assert_eq!(ledger.send(Balance(other)).await.unwrap(), (50, 0));
    }
}
