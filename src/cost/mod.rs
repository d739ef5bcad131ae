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
mod file;
mod price;
mod table;

pub use file::{BadPrice, LongContextFile, PriceFile};
pub use price::{LongContext, PerMillion, Price, Rates, ReasoningBilling, Unpriced};
pub use table::{PriceTable, DEFAULTS_AS_OF};

use crate::model::Usage;
pub use crate::model::{AttemptSpend, Fate, Spend, Usd, MAX_LISTED};

/// An attempt's spend, priced by `prices` (`cost` is `None` when the model,
/// its tier or its place has no price).
pub fn priced(
    prices: &PriceTable,
    deployment: &str,
    model: &str,
    usage: Usage,
    estimated: bool,
    fate: Fate,
) -> AttemptSpend {
    let cost = prices
        .get(deployment, model)
        .and_then(|p| p.cost(&usage).ok());
    // Not `format!`: its machinery costs more than the two copies, on every
    // attempt's path.
    let mut target = String::with_capacity(deployment.len() + 1 + model.len());
    target.push_str(deployment);
    target.push('/');
    target.push_str(model);
    AttemptSpend {
        target,
        usage,
        estimated,
        fate,
        cost,
    }
}
