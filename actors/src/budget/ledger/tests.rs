use super::*;
use proptest::prelude::*;

fn now() -> Instant {
    Instant::now()
}

const LEASE: Duration = Duration::from_secs(30);

fn ask(account: &Account, limit: u64, amount: u64) -> Ask {
    Ask {
        account: account.clone(),
        limit,
        amount,
        warn_at: limit,
    }
}

#[test]
fn a_reservation_is_all_or_nothing_across_its_accounts() {
    let mut l = Ledger::default();
    let (client, tenant) = (Account::tokens("client", 0), Account::tokens("key:t", 0));
    l.reserve(&[ask(&tenant, 100, 90)], now(), LEASE).unwrap();
    let refused = l
        .reserve(
            &[ask(&client, 1_000, 50), ask(&tenant, 100, 50)],
            now(),
            LEASE,
        )
        .unwrap_err();
    assert_eq!(refused.account, tenant);
    assert_eq!(
        (refused.spent, refused.reserved, refused.remaining()),
        (0, 90, 10)
    );
    assert_eq!(
        l.balance(&client),
        (0, 0),
        "nothing held where there was room"
    );
}

#[test]
fn a_hold_grows_settles_on_what_was_spent_and_releases_the_rest() {
    let mut l = Ledger::default();
    let a = Account::usd("client", 0);
    let held = l.reserve(&[ask(&a, 100, 40)], now(), LEASE).unwrap();
    l.grow(held.id, &[30], &[30], now()).unwrap();
    assert_eq!(l.balance(&a), (0, 70));
    assert!(
        l.grow(held.id, &[31], &[31], now()).is_err(),
        "70 + 31 > 100"
    );
    // Up to 40, at least 10: the 30 left.
    let grown = l.grow(held.id, &[40], &[10], now()).unwrap();
    assert_eq!(
        (grown.granted.clone(), grown.share_ppm),
        (vec![30], 750_000)
    );
    assert_eq!(l.balance(&a), (0, 100));
    l.settle(held.id, &[65]);
    assert_eq!(l.balance(&a), (65, 0));
    assert_eq!(l.holds(), 0);
    // A settled hold cannot grow again.
    assert!(l.grow(held.id, &[1], &[1], now()).is_err());
    // Released: nothing spent.
    let held = l.reserve(&[ask(&a, 100, 35)], now(), LEASE).unwrap();
    l.release(held.id);
    assert_eq!(l.balance(&a), (65, 0));
}

#[test]
fn a_warning_comes_once_a_window() {
    let mut l = Ledger::default();
    let a = Account::tokens("client", 7);
    let warn = |amount| Ask {
        warn_at: 80,
        ..ask(&a, 100, amount)
    };
    let first = l.reserve(&[warn(50)], now(), LEASE).unwrap();
    assert!(first.warnings.is_empty());
    let second = l.reserve(&[warn(30)], now(), LEASE).unwrap();
    assert_eq!(second.warnings, std::slice::from_ref(&a));
    l.settle(first.id, &[50]);
    l.settle(second.id, &[30]);
    let next = Account::tokens("client", 8);
    let third = l
        .reserve(
            &[Ask {
                warn_at: 80,
                ..ask(&next, 100, 85)
            }],
            now(),
            LEASE,
        )
        .unwrap();
    assert_eq!(
        third.warnings,
        std::slice::from_ref(&next),
        "a new window warns again"
    );
    // The old window's account is gone: memory holds the windows in use.
    assert_eq!(l.balance(&a), (0, 0));
    assert_eq!(l.balances.len(), 1);
}

#[test]
fn a_hold_whose_lease_ended_is_released() {
    let mut l = Ledger::default();
    let a = Account::tokens("client", 0);
    let start = now();
    let held = l.reserve(&[ask(&a, 100, 100)], start, LEASE).unwrap();
    assert_eq!(l.expire(start + LEASE / 2), 0);
    // Growth renews the lease.
    let later = start + LEASE / 2;
    assert!(l.grow(held.id, &[0], &[0], later).is_ok());
    assert_eq!(l.expire(start + LEASE), 0);
    assert_eq!(l.expire(later + LEASE), 1);
    assert_eq!(l.balance(&a), (0, 0));
    // Its attempt's late spend is still counted, refusing nothing.
    l.settle(held.id, &[10]);
    let charged = |account: &Account, spent| ChargeLine {
        account: account.clone(),
        spent,
        warn_at: 15,
    };
    assert_eq!(
        l.charge(&[charged(&a, 10)]),
        [],
        "warned at its reservation"
    );
    assert_eq!(l.balance(&a), (10, 0));
    // A charge that crosses an account's warning reports it, once a window.
    let b = Account::tokens("other", 0);
    assert_eq!(l.charge(&[charged(&b, 10)]), [], "10 of a warning at 15");
    assert_eq!(
        l.charge(&[charged(&b, 0)]),
        [],
        "nothing spent crosses nothing"
    );
    assert_eq!(l.charge(&[charged(&b, 5)]), std::slice::from_ref(&b));
    assert_eq!(l.charge(&[charged(&b, 5)]), []);
}

#[test]
fn extreme_amounts_saturate() {
    let mut l = Ledger::default();
    let a = Account::tokens("client", 0);
    let held = l
        .reserve(&[ask(&a, u64::MAX, u64::MAX)], now(), LEASE)
        .unwrap();
    assert!(l.reserve(&[ask(&a, u64::MAX, 1)], now(), LEASE).is_err());
    l.settle(held.id, &[u64::MAX]);
    l.charge(&[ChargeLine {
        account: a.clone(),
        spent: u64::MAX,
        warn_at: u64::MAX,
    }]);
    assert_eq!(l.balance(&a), (u64::MAX, 0));
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Op {
    Reserve { accounts: Vec<usize>, amount: u64 },
    Grow { hold: usize, extra: u64 },
    Settle { hold: usize, spent: u64 },
    Release { hold: usize },
    Advance { secs: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (proptest::collection::vec(0..3usize, 1..3), 0..60u64)
            .prop_map(|(accounts, amount)| Op::Reserve { accounts, amount }),
        (0..8usize, 0..30u64).prop_map(|(hold, extra)| Op::Grow { hold, extra }),
        (0..8usize, 0..80u64).prop_map(|(hold, spent)| Op::Settle { hold, spent }),
        (0..8usize).prop_map(|hold| Op::Release { hold }),
        (0..40u64).prop_map(|secs| Op::Advance { secs }),
    ]
}

fn account(i: usize) -> Account {
    [
        Account::tokens("a", 0),
        Account::tokens("b", 0),
        Account::usd("a", 0),
    ][i]
        .clone()
}

/// The reference: open holds (id, lines, expiry).
type Open = Vec<(HoldId, Vec<(usize, u64)>, Instant)>;

fn held(open: &Open, i: usize) -> u64 {
    open.iter()
        .flat_map(|h| &h.1)
        .filter(|(j, _)| *j == i)
        .map(|(_, a)| a)
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Against a reference written here: every account's held amount is the
    /// sum of its open holds' lines; a hold never takes an account past its
    /// limit; spend past it comes only from settlements above their holds;
    /// an expired hold holds nothing.
    #[test]
    fn holds_never_pass_a_limit_and_balances_match_a_reference(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        let limits = [100u64, 150, 120];
        let mut l = Ledger::default();
        let mut t = Instant::now();
        let mut open: Open = Vec::new();
        let mut spent = [0u64; 3];
        let mut excess = [0u64; 3];
        for op in ops {
            match op {
                Op::Reserve { mut accounts, amount } => {
                    accounts.sort_unstable();
                    accounts.dedup();
                    let asks: Vec<Ask> =
                        accounts.iter().map(|&i| ask(&account(i), limits[i], amount)).collect();
                    let room = accounts
                        .iter()
                        .all(|&i| spent[i] + held(&open, i) + amount <= limits[i]);
                    match l.reserve(&asks, t, LEASE) {
                        Ok(h) => {
                            prop_assert!(room);
                            let lines = accounts.iter().map(|&i| (i, amount)).collect();
                            open.push((h.id, lines, t + LEASE));
                        }
                        Err(_) => prop_assert!(!room),
                    }
                }
                Op::Grow { hold, extra } => {
                    let Some(h) = open.get(hold % open.len().max(1)).cloned() else {
                        continue;
                    };
                    let room = h.1.iter().all(|&(i, _)| spent[i] + held(&open, i) + extra <= limits[i]);
                    match l.grow(h.0, &vec![extra; h.1.len()], &vec![extra; h.1.len()], t) {
                        Ok(_) => {
                            prop_assert!(room);
                            let entry = open.iter_mut().find(|o| o.0 == h.0).unwrap();
                            for line in &mut entry.1 {
                                line.1 += extra;
                            }
                            entry.2 = t + LEASE;
                        }
                        Err(_) => prop_assert!(!room),
                    }
                }
                Op::Settle { hold, spent: s } => {
                    if open.is_empty() {
                        continue;
                    }
                    let h = open.remove(hold % open.len());
                    l.settle(h.0, &vec![s; h.1.len()]);
                    for (i, was_held) in h.1 {
                        spent[i] += s;
                        excess[i] += s.saturating_sub(was_held);
                    }
                }
                Op::Release { hold } => {
                    if open.is_empty() {
                        continue;
                    }
                    let h = open.remove(hold % open.len());
                    l.release(h.0);
                }
                Op::Advance { secs } => {
                    t += Duration::from_secs(secs);
                    let before = open.len();
                    open.retain(|h| h.2 > t);
                    prop_assert_eq!(l.expire(t), before - open.len());
                }
            }
            for i in 0..3 {
                prop_assert_eq!(l.balance(&account(i)), (spent[i], held(&open, i)));
                prop_assert!(spent[i] <= limits[i] + excess[i]);
            }
            prop_assert_eq!(l.holds(), open.len());
        }
    }
}

#[test]
fn a_lease_too_long_for_the_clock_holds_for_a_day_rather_than_ending_at_once() {
    let mut l = Ledger::default();
    let t0 = now();
    let client = Account::tokens("client", 0);
    l.reserve(&[ask(&client, 100, 60)], t0, Duration::MAX)
        .unwrap();
    assert_eq!(
        l.expire(t0 + Duration::from_secs(3600)),
        0,
        "held an hour on"
    );
    assert_eq!(l.balance(&client), (0, 60));
    assert!(l.reserve(&[ask(&client, 100, 60)], t0, LEASE).is_err());
    assert_eq!(l.expire(t0 + MAX_LEASE), 1, "ended after a day");
    assert_eq!(l.balance(&client), (0, 0));
}
