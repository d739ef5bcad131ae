//! What a request spent: every attempt's tokens at its model's price, whether
//! its output reached the reply (delivered) or not (wasted: failed, cancelled
//! hedge legs and abandoned streams, text a restart generated again), and
//! whether a count was estimated or a model unpriced.

use serde::{Deserialize, Serialize};

use super::{Usage, Usd};

/// Attempts a [`Spend`] lists one by one; later ones count in its totals only
/// (memory stays bounded whatever a retry policy allows).
pub const MAX_LISTED: usize = 64;

/// What became of an attempt's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Its output is (part of) the reply.
    Delivered,
    /// It failed: nothing of it is in the reply.
    Failed,
    /// It was cancelled (a hedge that lost, a stream dropped): nothing of it
    /// is in the reply.
    Cancelled,
    /// A continuation generated its text again (the server restarted the
    /// reply): billed twice, delivered once.
    Repeated,
}

impl Fate {
    /// Whether the attempt's spend bought nothing of the reply.
    pub fn wasted(self) -> bool {
        !matches!(self, Fate::Delivered)
    }

    /// The fate as a metric label.
    pub fn label(self) -> &'static str {
        if self.wasted() {
            "wasted"
        } else {
            "delivered"
        }
    }
}

/// One attempt's spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptSpend {
    /// The attempt's target, `deployment/model`.
    pub target: String,
    /// Its tokens.
    pub usage: Usage,
    /// Whether steer estimated them (the server reported none).
    pub estimated: bool,
    /// What became of them.
    pub fate: Fate,
    /// What they cost; `None` when the model or its tier is unpriced.
    pub cost: Option<Usd>,
}

/// What a request spent, across its attempts.
///
/// ```
/// use steer_llm::cost::{priced, Fate, PriceTable, Spend};
/// use steer_llm::Usage;
/// let prices = PriceTable::defaults();
/// let mut spend = Spend::default();
/// let failed = Usage::new(1_000, 200);
/// spend.push(priced(&prices, "openai", "gpt-4o-mini", failed, true, Fate::Failed));
/// spend.push(priced(&prices, "openai", "gpt-4o-mini", Usage::new(1_000, 400), false, Fate::Delivered));
/// assert_eq!(spend.delivered().to_string(), "$0.000390");
/// assert_eq!(spend.wasted().to_string(), "$0.000270");
/// assert!(spend.estimated() && !spend.unpriced());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    /// The first [`MAX_LISTED`] attempts, in the order they ended.
    pub attempts: Vec<AttemptSpend>,
    /// Attempts in all (listed or not).
    pub count: u32,
    delivered: Usd,
    wasted: Usd,
    usage: Usage,
    wasted_tokens: u64,
    unpriced: u32,
    estimated: bool,
}

impl Spend {
    /// Adds an attempt.
    pub fn push(&mut self, attempt: AttemptSpend) {
        self.count = self.count.saturating_add(1);
        let cost = attempt.cost.unwrap_or(Usd::ZERO);
        if attempt.fate.wasted() {
            self.wasted = self.wasted.plus(cost);
            self.wasted_tokens = self
                .wasted_tokens
                .saturating_add(attempt.usage.input_tokens())
                .saturating_add(attempt.usage.completion_tokens);
        } else {
            self.delivered = self.delivered.plus(cost);
        }
        if attempt.cost.is_none() {
            self.unpriced = self.unpriced.saturating_add(1);
        }
        self.estimated |= attempt.estimated;
        self.usage = if self.count == 1 {
            attempt.usage
        } else {
            self.usage.plus(attempt.usage)
        };
        if self.attempts.len() < MAX_LISTED {
            // Room for one first (most requests make one attempt): a
            // vector's first growth would be four attempts' worth.
            if self.attempts.capacity() == 0 {
                self.attempts.reserve_exact(1);
            }
            self.attempts.push(attempt);
        }
    }

    /// Adds `other`'s attempts and totals (those it listed are listed here
    /// while there is room).
    pub fn extend(&mut self, other: Spend) {
        self.usage = if self.count == 0 {
            other.usage
        } else if other.count == 0 {
            self.usage
        } else {
            self.usage.plus(other.usage)
        };
        self.count = self.count.saturating_add(other.count);
        self.delivered = self.delivered.plus(other.delivered);
        self.wasted = self.wasted.plus(other.wasted);
        self.wasted_tokens = self.wasted_tokens.saturating_add(other.wasted_tokens);
        self.unpriced = self.unpriced.saturating_add(other.unpriced);
        self.estimated |= other.estimated;
        let room = MAX_LISTED.saturating_sub(self.attempts.len());
        self.attempts.extend(other.attempts.into_iter().take(room));
    }

    /// The reply started again from its beginning (a continuation the server
    /// answered afresh): what the attempts so far delivered was discarded,
    /// and their spend is wasted (repeated).
    pub fn repeat_delivered(&mut self) {
        for a in self
            .attempts
            .iter_mut()
            .filter(|a| a.fate == Fate::Delivered)
        {
            a.fate = Fate::Repeated;
            self.wasted_tokens = self
                .wasted_tokens
                .saturating_add(a.usage.input_tokens())
                .saturating_add(a.usage.completion_tokens);
        }
        self.wasted = self.wasted.plus(self.delivered);
        self.delivered = Usd::ZERO;
    }

    /// What the attempts whose output is the reply cost (priced ones).
    pub fn delivered(&self) -> Usd {
        self.delivered
    }

    /// What the other attempts cost (priced ones).
    pub fn wasted(&self) -> Usd {
        self.wasted
    }

    /// Both.
    pub fn total(&self) -> Usd {
        self.delivered.plus(self.wasted)
    }

    /// Every attempt's tokens together.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The tokens of attempts whose output is not in the reply.
    pub fn wasted_tokens(&self) -> u64 {
        self.wasted_tokens
    }

    /// Whether some attempt's model (or tier) has no price: the totals then
    /// leave it out, and say so here (never as free).
    pub fn unpriced(&self) -> bool {
        self.unpriced > 0
    }

    /// Whether some attempt's tokens were estimated.
    pub fn estimated(&self) -> bool {
        self.estimated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(fate: Fate, cost: Option<u64>) -> AttemptSpend {
        AttemptSpend {
            target: "p/m".into(),
            usage: Usage::new(10, 5),
            estimated: false,
            fate,
            cost: cost.map(Usd::from_nanos),
        }
    }

    #[test]
    fn delivered_and_wasted_add_up_apart() {
        let mut s = Spend::default();
        s.push(attempt(Fate::Failed, Some(3)));
        s.push(attempt(Fate::Cancelled, Some(4)));
        s.push(attempt(Fate::Repeated, Some(5)));
        s.push(attempt(Fate::Delivered, Some(7)));
        assert_eq!((s.delivered().nanos(), s.wasted().nanos()), (7, 12));
        assert_eq!(s.total().nanos(), 19);
        assert_eq!(s.usage(), Usage::new(40, 20));
        assert_eq!(s.wasted_tokens(), 45);
        assert!(!s.unpriced() && !s.estimated());
    }

    #[test]
    fn an_unpriced_attempt_is_never_free() {
        let mut s = Spend::default();
        s.push(attempt(Fate::Delivered, None));
        assert!(s.unpriced());
        assert_eq!(s.total(), Usd::ZERO);
    }

    #[test]
    fn the_list_is_bounded_and_the_totals_are_not() {
        let mut s = Spend::default();
        for _ in 0..(MAX_LISTED + 10) {
            s.push(attempt(Fate::Failed, Some(1)));
        }
        assert_eq!(s.attempts.len(), MAX_LISTED);
        assert_eq!(s.count as usize, MAX_LISTED + 10);
        assert_eq!(s.wasted().nanos(), (MAX_LISTED + 10) as u64);
        let mut all = Spend::default();
        all.push(attempt(Fate::Delivered, Some(100)));
        all.extend(s);
        assert_eq!(all.count as usize, MAX_LISTED + 11);
        assert_eq!(all.attempts.len(), MAX_LISTED);
        assert_eq!(all.wasted().nanos(), (MAX_LISTED + 10) as u64);
        assert_eq!(all.delivered().nanos(), 100);
    }
}
