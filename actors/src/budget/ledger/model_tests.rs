//! Model-based test of the budget ledger: random sequences of reservations
//! over several accounts, growths, settlements (below, at and above what was
//! held), releases, direct charges and lease expiries, applied to [`Ledger`]
//! and to a reference model written from its documentation here; their
//! answers, balances, warnings and open holds never differ.
//!
//! Every account stays in window 0 (a later window's reset is covered by the
//! ledger's own tests).

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

/// Accounts (by index) and their limits.
const LIMITS: [u64; 3] = [100, 250, 1_000];

fn account(i: usize) -> Account {
    Account::tokens(format!("scope-{i}"), 0)
}

fn warn_at(limit: u64) -> u64 {
    limit / 4 * 3
}

#[derive(Debug, Clone)]
enum Op {
    /// Lines of (account index, amount); the lease in milliseconds.
    Reserve(Vec<(usize, u64)>, u64),
    /// The `n`-th open hold (modulo), wanted and needed per line.
    Grow(usize, Vec<u64>, Vec<u64>),
    /// The `n`-th open hold ends with this spent per line.
    Settle(usize, Vec<u64>),
    Release(usize),
    Charge(usize, u64),
    Advance(u64),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    let lines = prop::collection::btree_map(0usize..3, 0u64..160, 1..4)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    let amounts = prop::collection::vec(0u64..120, 0..4);
    prop_oneof![
        5 => (lines, 1u64..8).prop_map(|(l, k)| Op::Reserve(l, k * 50)),
        3 => (0usize..6, amounts.clone(), amounts.clone()).prop_map(|(n, w, need)| {
            let need = need.iter().zip(&w).map(|(a, b)| (*a).min(*b)).collect();
            Op::Grow(n, w, need)
        }),
        4 => (0usize..6, amounts).prop_map(|(n, s)| Op::Settle(n, s)),
        1 => (0usize..6).prop_map(Op::Release),
        1 => (0usize..3, 0u64..60).prop_map(|(a, n)| Op::Charge(a, n)),
        // Steps of 50 ms: a lease that ends exactly now comes up often.
        2 => (0u64..6).prop_map(|k| Op::Advance(k * 50)),
        1 => Just(Op::Expire),
    ]
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Bal {
    spent: u64,
    reserved: u64,
    warned: bool,
}

#[derive(Debug, Clone)]
struct MHold {
    lines: Vec<(usize, u64)>,
    expires: Instant,
    lease: Duration,
}

/// The reference ledger.
#[derive(Debug, Default)]
struct Model {
    bal: [Bal; 3],
    holds: BTreeMap<HoldId, MHold>,
    next: HoldId,
}

impl Model {
    fn refusal(&self, a: usize, asked: u64) -> Refusal {
        Refusal {
            account: account(a),
            limit: LIMITS[a],
            spent: self.bal[a].spent,
            reserved: self.bal[a].reserved,
            asked,
        }
    }

    fn warn(&mut self, a: usize, warnings: &mut Vec<Account>) {
        let b = &mut self.bal[a];
        if !b.warned && b.spent + b.reserved >= warn_at(LIMITS[a]) {
            b.warned = true;
            warnings.push(account(a));
        }
    }

    fn reserve(
        &mut self,
        lines: &[(usize, u64)],
        now: Instant,
        lease: Duration,
    ) -> Result<Held, Refusal> {
        for &(a, amount) in lines {
            if self.bal[a].spent + self.bal[a].reserved + amount > LIMITS[a] {
                return Err(self.refusal(a, amount));
            }
        }
        let mut warnings = Vec::new();
        for &(a, amount) in lines {
            self.bal[a].reserved += amount;
            self.warn(a, &mut warnings);
        }
        let id = self.next;
        self.next += 1;
        self.holds.insert(
            id,
            MHold {
                lines: lines.to_vec(),
                expires: now + lease,
                lease,
            },
        );
        Ok(Held { id, warnings })
    }

    fn grow(
        &mut self,
        id: HoldId,
        wanted: &[u64],
        need: &[u64],
        now: Instant,
    ) -> Result<Grown, Refusal> {
        let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
        let Some(hold) = self.holds.get(&id).cloned() else {
            return Err(Refusal {
                account: Account::tokens("expired hold", 0),
                limit: 0,
                spent: 0,
                reserved: 0,
                asked: need.iter().sum(),
            });
        };
        let mut share = 1_000_000u64;
        for (i, &(a, _)) in hold.lines.iter().enumerate() {
            let b = self.bal[a];
            let used = b.spent + b.reserved;
            let room = LIMITS[a].saturating_sub(used);
            if used > LIMITS[a] || room < at(need, i) {
                return Err(self.refusal(a, at(need, i)));
            }
            if at(wanted, i) > room {
                share = share.min(room * 1_000_000 / at(wanted, i));
            }
        }
        let mut granted = Vec::new();
        let mut warnings = Vec::new();
        for (i, &(a, _)) in hold.lines.iter().enumerate() {
            let g = (at(wanted, i) * share / 1_000_000).max(at(need, i));
            self.bal[a].reserved += g;
            self.warn(a, &mut warnings);
            granted.push(g);
        }
        let h = self.holds.get_mut(&id).expect("present");
        for (line, g) in h.lines.iter_mut().zip(&granted) {
            line.1 += g;
        }
        h.expires = now + h.lease;
        Ok(Grown {
            share_ppm: share,
            granted,
            warnings,
        })
    }

    fn settle(&mut self, id: HoldId, spent: &[u64]) -> Option<Vec<Account>> {
        let hold = self.holds.remove(&id)?;
        let mut warnings = Vec::new();
        for (i, &(a, amount)) in hold.lines.iter().enumerate() {
            let line_spent = spent.get(i).copied().unwrap_or(0);
            self.bal[a].reserved -= amount;
            self.bal[a].spent += line_spent;
            // A release lowers what is held: only a spend crosses a warning.
            if line_spent > 0 {
                self.warn(a, &mut warnings);
            }
        }
        Some(warnings)
    }
}

fn asks(lines: &[(usize, u64)]) -> Vec<Ask> {
    lines
        .iter()
        .map(|&(a, amount)| Ask {
            account: account(a),
            limit: LIMITS[a],
            amount,
            warn_at: warn_at(LIMITS[a]),
        })
        .collect()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut now = Instant::now();
    let mut real = Ledger::default();
    let mut model = Model::default();
    // Holds open, by the model's ids (the ledger numbers them the same).
    let pick = |model: &Model, n: usize| -> Option<HoldId> {
        let ids: Vec<HoldId> = model.holds.keys().copied().collect();
        (!ids.is_empty()).then(|| ids[n % ids.len()])
    };
    for (step, op) in ops.into_iter().enumerate() {
        let said = format!("step {step}: {op:?}");
        match op {
            Op::Reserve(lines, lease) => {
                let lease = Duration::from_millis(lease);
                let a = real.reserve(&asks(&lines), now, lease);
                let b = model.reserve(&lines, now, lease);
                prop_assert_eq!(a, b, "{}", said);
            }
            Op::Grow(n, wanted, need) => {
                // A hold that is gone, too (the last one settled).
                let id = pick(&model, n).unwrap_or(model.next);
                let a = real.grow(id, &wanted, &need, now);
                let b = model.grow(id, &wanted, &need, now);
                prop_assert_eq!(a, b, "{}", said);
            }
            Op::Settle(n, spent) => {
                let id = pick(&model, n).unwrap_or(model.next);
                prop_assert_eq!(
                    real.settle(id, &spent),
                    model.settle(id, &spent),
                    "{}",
                    said
                );
            }
            Op::Release(n) => {
                if let Some(id) = pick(&model, n) {
                    real.release(id);
                    model.settle(id, &[]);
                }
            }
            Op::Charge(a, amount) => {
                let line = ChargeLine {
                    account: account(a),
                    spent: amount,
                    warn_at: warn_at(LIMITS[a]),
                };
                let mut warnings = Vec::new();
                model.bal[a].spent += amount;
                if amount > 0 {
                    model.warn(a, &mut warnings);
                }
                prop_assert_eq!(real.charge(&[line]), warnings, "{}", said);
            }
            Op::Advance(ms) => now += Duration::from_millis(ms),
            Op::Expire => {
                let due: Vec<HoldId> = model
                    .holds
                    .iter()
                    .filter(|(_, h)| h.expires <= now)
                    .map(|(id, _)| *id)
                    .collect();
                for id in &due {
                    model.settle(*id, &[]);
                }
                prop_assert_eq!(real.expire(now), due.len(), "{}", said);
            }
        }
        for (a, b) in model.bal.iter().enumerate() {
            prop_assert_eq!(
                real.balance(&account(a)),
                (b.spent, b.reserved),
                "{} account {}",
                said,
                a
            );
        }
        prop_assert_eq!(real.holds(), model.holds.len(), "{}", said);
    }
    // Settling every hold leaves nothing reserved.
    for id in model.holds.keys().copied().collect::<Vec<_>>() {
        real.release(id);
    }
    for a in 0..LIMITS.len() {
        prop_assert_eq!(real.balance(&account(a)).1, 0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_ledger_never_differs_from_its_model(ops in prop::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
