//! Spend budgets across a client's requests: token and dollar limits per
//! client, group, deployment and caller's key, each over a period and with a
//! warning; reserved before each attempt (retries, continuations, a group's
//! legs and hedges included), grown while a stream delivers, settled on what
//! the attempt spent. An attempt that does not fit is not sent: its request
//! fails with `budget_exceeded`, saying which budget, what it had spent and
//! held, and what was asked.
//!
//! ```
//! use steer_llm::budget::{Budget, Period, Scope};
//! let builder = steer_llm::Client::builder()
//!     .spend_budget(Scope::Client, Budget::usd(100.0).unwrap().per(Period::Month))
//!     .spend_budget(Scope::EveryKey, Budget::tokens(200_000).per(Period::Day));
//! # let _ = builder;
//! ```

mod file;
pub(crate) mod gate;
mod log;
mod outputs;
mod spec;

pub use file::BudgetFile;
pub use gate::{BudgetBalance, DEFAULT_LEASE, MAX_KEY};
pub use log::{billed, close_reply, SpendLog, Ticket};
pub(crate) use log::{close_result, Pricing};
pub use outputs::{OutputSizes, DEFAULT_OUTPUT};
pub use spec::{Budget, Period, Scope};
pub use steer_actors::budget::{Account, Measure, Refusal};
