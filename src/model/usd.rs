//! An amount of US dollars, counted in nano-dollars so that sums are exact
//! and a ledger (local or in Redis) adds integers.

use serde::{Deserialize, Serialize};

/// Nano-dollars in a dollar.
const NANOS: u64 = 1_000_000_000;

/// An amount of US dollars, exact to a nano-dollar. Sums saturate.
///
/// ```
/// use steer_llm::cost::Usd;
/// let a = Usd::from_dollars(0.25).unwrap();
/// assert_eq!(a.plus(a).to_string(), "$0.500000");
/// assert_eq!(Usd::from_dollars(-1.0), None);
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Usd(u64);

impl Usd {
    /// Nothing.
    pub const ZERO: Usd = Usd(0);

    /// `nanos` nano-dollars.
    pub const fn from_nanos(nanos: u64) -> Self {
        Usd(nanos)
    }

    /// An amount of dollars; `None` unless finite and not negative (an
    /// amount too large to count saturates).
    pub fn from_dollars(dollars: f64) -> Option<Self> {
        if !dollars.is_finite() || dollars < 0.0 {
            return None;
        }
        // `as` saturates a float too large for u64.
        Some(Usd((dollars * NANOS as f64).round() as u64))
    }

    /// The amount in nano-dollars.
    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// The amount in dollars (for display and metrics; sums use nanos).
    pub fn dollars(self) -> f64 {
        self.0 as f64 / NANOS as f64
    }

    /// The sum of two amounts (saturating).
    pub const fn plus(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    /// This amount less `other`, never below zero.
    pub const fn minus(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }
}

impl std::fmt::Display for Usd {
    /// Dollars to the micro-dollar: `$0.000150`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let micros = self.0.div_ceil(1_000);
        write!(f, "${}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }
}

impl std::iter::Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Usd::plus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_round_trip_and_sums_saturate() {
        let d = Usd::from_dollars(1.5).unwrap();
        assert_eq!(d.nanos(), 1_500_000_000);
        assert_eq!(d.dollars(), 1.5);
        assert_eq!(Usd::from_nanos(u64::MAX).plus(d), Usd::from_nanos(u64::MAX));
        assert_eq!(Usd::from_dollars(f64::NAN), None);
        assert_eq!(Usd::from_dollars(f64::INFINITY), None);
        assert_eq!(Usd::from_dollars(1e30).map(Usd::nanos), Some(u64::MAX));
        assert_eq!(d.minus(Usd::from_dollars(2.0).unwrap()), Usd::ZERO);
    }

    #[test]
    fn display_rounds_up_to_the_micro_dollar() {
        assert_eq!(Usd::from_nanos(1).to_string(), "$0.000001");
        assert_eq!(Usd::from_nanos(2_000_000_000).to_string(), "$2.000000");
        assert_eq!(Usd::ZERO.to_string(), "$0.000000");
    }
}
