//! What requests cost: a price table ([`PriceTable`], dated and sourced rows,
//! overridable), what one usage costs at a model's price ([`Price::cost`], the
//! cache and reasoning by each provider's convention), and what a request
//! spent across its attempts ([`Spend`]: delivered and wasted, estimated or
//! unpriced where so).
//!
//! ```
//! use steer_llm::cost::PriceTable;
//! use steer_llm::Usage;
//! let table = PriceTable::defaults();
//! let cost = table.price("openai", "gpt-4o").unwrap().cost(&Usage::new(1_000, 100)).unwrap();
//! assert_eq!(cost.to_string(), "$0.003500");
//! ```

pub mod estimate;
mod price;
mod spend;
mod table;
mod usd;

pub use price::{LongContext, PerMillion, Price, Rates, ReasoningBilling, Unpriced};
pub use spend::{AttemptSpend, Fate, Spend, MAX_LISTED};
pub use table::{PriceTable, DEFAULTS_AS_OF};
pub use usd::Usd;
