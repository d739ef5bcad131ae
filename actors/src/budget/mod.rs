//! Spend budgets: the [`Ledger`] that reserves before an attempt runs, grows
//! while a stream delivers, settles on what was really spent and releases
//! what a gone attempt held (a plain state machine), and the
//! [`BudgetLedger`](actor::BudgetLedger) actor that owns one for a client and
//! expires leases on its timer.

pub mod actor;
mod ledger;

pub use ledger::{
    Account, Ask, ChargeLine, Grown, Held, HoldId, Ledger, Measure, Refusal, MAX_LEASE,
};

/// Logs that `account` passed its warning threshold (once a window: the
/// ledger says when), as every ledger's caller does.
pub fn warn_crossed(account: &Account) {
    tracing::warn!(
        scope = %account.scope,
        measure = account.measure.as_str(),
        "steer.budget.warning: past its warning threshold"
    );
}
