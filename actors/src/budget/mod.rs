//! Spend budgets: the [`Ledger`] that reserves before an attempt runs, grows
//! while a stream delivers, settles on what was really spent and releases
//! what a gone attempt held (a plain state machine), and the
//! [`BudgetLedger`](actor::BudgetLedger) actor that owns one for a client and
//! expires leases on its timer.

pub mod actor;
mod ledger;

pub use ledger::{Account, Ask, Grown, Held, HoldId, Ledger, Measure, Refusal};
