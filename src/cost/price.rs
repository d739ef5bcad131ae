//! One model's prices and what a usage costs at them: the cache by the
//! provider's convention, reasoning by the provider's, a long-context tier,
//! and the tier and place the response says it was billed at.

use serde::{Deserialize, Serialize};

use super::Usd;
use crate::model::{CacheAccounting, InferenceGeo, ServiceTier, Usage};

/// A price per million tokens, kept in micro-dollars (so one token costs as
/// many pico-dollars): exact for every published price.
///
/// ```
/// use steer_llm::cost::PerMillion;
/// let p = PerMillion::dollars(0.15).unwrap();
/// assert_eq!(p.of(1_000_000).to_string(), "$0.150000");
/// assert_eq!(p.of(1).nanos(), 150);
/// assert_eq!(PerMillion::dollars(0.0001).unwrap().of(1).nanos(), 1); // rounded up
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PerMillion(u64);

impl PerMillion {
    /// Free (a price someone set so, never a missing one).
    pub const ZERO: PerMillion = PerMillion(0);

    /// `dollars` a million tokens; `None` unless finite and not negative.
    pub fn dollars(dollars: f64) -> Option<Self> {
        if !dollars.is_finite() || dollars < 0.0 {
            return None;
        }
        Some(PerMillion((dollars * 1e6).round() as u64))
    }

    /// The price in dollars a million tokens.
    pub fn as_dollars(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// What `tokens` cost, rounded up to the nano-dollar (saturating).
    pub fn of(self, tokens: u64) -> Usd {
        let pico = u128::from(tokens).saturating_mul(u128::from(self.0));
        Usd::from_nanos(u64::try_from(pico.div_ceil(1_000)).unwrap_or(u64::MAX))
    }

    /// This price times `permille` thousandths.
    fn scaled(self, permille: u32) -> PerMillion {
        let p = u128::from(self.0).saturating_mul(u128::from(permille)) / 1_000;
        PerMillion(u64::try_from(p).unwrap_or(u64::MAX))
    }
}

/// The prices of each kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Prompt tokens not read from the cache.
    pub input: PerMillion,
    /// Generated tokens (and reasoning).
    pub output: PerMillion,
    /// Prompt tokens read from the cache; without one they cost as input
    /// (never nothing).
    pub cache_read: Option<PerMillion>,
    /// Prompt tokens written to the cache for 5 minutes; without one, 1.25
    /// times the input price (Anthropic's rule).
    pub cache_write_5m: Option<PerMillion>,
    /// Prompt tokens written to the cache for an hour; without one, twice
    /// the input price (Anthropic's rule).
    pub cache_write_1h: Option<PerMillion>,
}

impl Rates {
    /// Input and output prices, the cache's by the fallbacks above.
    pub fn new(input: PerMillion, output: PerMillion) -> Self {
        Rates {
            input,
            output,
            cache_read: None,
            cache_write_5m: None,
            cache_write_1h: None,
        }
    }
}

/// Whether a provider's generated-token count holds its reasoning tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningBilling {
    /// Reasoning is part of the completion tokens (OpenAI, Anthropic).
    #[default]
    InOutput,
    /// Reasoning comes beside the completion tokens and is billed as output
    /// too (xAI: "reasoning token consumption will be counted separately
    /// from completion_tokens").
    BesideOutput,
}

/// One model's prices, dated, with where they were read.
///
/// ```
/// use steer_llm::cost::{PerMillion, Price, Rates};
/// use steer_llm::Usage;
/// let d = |x| PerMillion::dollars(x).unwrap();
/// let price = Price::new(Rates::new(d(1.0), d(2.0)), "2026-12-07", "my contract");
/// assert_eq!(price.cost(&Usage::new(1_000, 500)).unwrap().to_string(), "$0.002000");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// The prices up to the long-context threshold (or always).
    pub rates: Rates,
    /// Prices for a request whose prompt holds more than `above` tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_context: Option<LongContext>,
    /// Service tiers priced apart from the standard one, as thousandths of
    /// the standard prices (batch 500). A tier not listed is unpriced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<(ServiceTier, u32)>,
    /// Places priced apart from anywhere (Anthropic's US-only inference,
    /// 1100). A place not listed is unpriced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub geos: Vec<(InferenceGeo, u32)>,
    /// How the provider counts reasoning.
    #[serde(default)]
    pub reasoning: ReasoningBilling,
    /// When the prices were read (`YYYY-MM-DD`).
    pub as_of: String,
    /// Where they were read.
    pub source: String,
}

/// The prices past a prompt size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongContext {
    /// Prompts of more than this many tokens (the cache's included) pay
    /// `rates` for every token of the request.
    pub above: u64,
    /// The prices.
    pub rates: Rates,
}

/// Why a usage has no price: reported as unpriced, never as free.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unpriced {
    /// No row of the table names the model.
    #[error("no price for model {0}")]
    Model(String),
    /// The row does not price the tier the response was billed at.
    #[error("no price for service tier {0:?}")]
    Tier(ServiceTier),
    /// The row does not price the place the response ran.
    #[error("no price for inference place {0:?}")]
    Geo(InferenceGeo),
}

impl Price {
    /// Prices with no long-context tier, no other tier or place, reasoning
    /// counted in the output.
    pub fn new(rates: Rates, as_of: impl Into<String>, source: impl Into<String>) -> Self {
        Price {
            rates,
            long_context: None,
            tiers: Vec::new(),
            geos: Vec::new(),
            reasoning: ReasoningBilling::InOutput,
            as_of: as_of.into(),
            source: source.into(),
        }
    }

    /// What `usage` costs: each kind of token at its price, the cache by the
    /// usage's convention (OpenAI's reads are inside the prompt tokens,
    /// Anthropic's reads and writes beside them), then the tier's and the
    /// place's factor.
    pub fn cost(&self, usage: &Usage) -> Result<Usd, Unpriced> {
        let tier = match usage.service_tier {
            None | Some(ServiceTier::Standard) => 1_000,
            Some(t) => factor(&self.tiers, t).ok_or(Unpriced::Tier(t))?,
        };
        let geo = match usage.inference_geo {
            None | Some(InferenceGeo::Global) => 1_000,
            Some(g) => factor(&self.geos, g).ok_or(Unpriced::Geo(g))?,
        };
        let rates = match self.long_context {
            Some(long) if usage.input_tokens() > long.above => long.rates,
            _ => self.rates,
        };
        let permille = (tier as u64).saturating_mul(geo as u64) / 1_000;
        let permille = u32::try_from(permille).unwrap_or(u32::MAX);
        let at = |p: PerMillion| p.scaled(permille);
        let reads = usage.cached_prompt_tokens.unwrap_or(0);
        let (uncached, writes) = match usage.cache {
            CacheAccounting::InPrompt => (usage.prompt_tokens.saturating_sub(reads), 0),
            CacheAccounting::BesidePrompt => {
                (usage.prompt_tokens, usage.cache_write_tokens.unwrap_or(0))
            }
        };
        let writes_1h = usage.cache_write_1h_tokens.unwrap_or(0).min(writes);
        let output = match self.reasoning {
            ReasoningBilling::InOutput => usage.completion_tokens,
            ReasoningBilling::BesideOutput => usage
                .completion_tokens
                .saturating_add(usage.reasoning_tokens.unwrap_or(0)),
        };
        let input = rates.input;
        Ok([
            at(input).of(uncached),
            at(rates.cache_read.unwrap_or(input)).of(reads),
            at(rates.cache_write_5m.unwrap_or(input.scaled(1_250))).of(writes - writes_1h),
            at(rates.cache_write_1h.unwrap_or(input.scaled(2_000))).of(writes_1h),
            at(rates.output).of(output),
        ]
        .into_iter()
        .sum())
    }
}

/// The factor `list` gives `key`.
fn factor<K: PartialEq>(list: &[(K, u32)], key: K) -> Option<u32> {
    list.iter().find(|(k, _)| *k == key).map(|(_, f)| *f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(x: f64) -> PerMillion {
        PerMillion::dollars(x).unwrap()
    }

    fn anthropic_like() -> Price {
        let mut rates = Rates::new(d(3.0), d(15.0));
        rates.cache_read = Some(d(0.30));
        rates.cache_write_5m = Some(d(3.75));
        rates.cache_write_1h = Some(d(6.0));
        let mut long = rates;
        long.input = d(6.0);
        long.output = d(22.5);
        long.cache_read = Some(d(0.6));
        let mut p = Price::new(rates, "2026-12-07", "test");
        p.long_context = Some(LongContext {
            above: 200_000,
            rates: long,
        });
        p.tiers = vec![(ServiceTier::Batch, 500)];
        p.geos = vec![(InferenceGeo::Us, 1_100)];
        p
    }

    #[test]
    fn openai_cached_tokens_are_inside_the_prompt_tokens() {
        let mut rates = Rates::new(d(2.5), d(10.0));
        rates.cache_read = Some(d(1.25));
        let price = Price::new(rates, "x", "y");
        let mut u = Usage::new(1_000_000, 0);
        u.cached_prompt_tokens = Some(400_000);
        // 600k at 2.50 + 400k at 1.25 = 1.50 + 0.50.
        assert_eq!(price.cost(&u).unwrap(), Usd::from_dollars(2.0).unwrap());
    }

    #[test]
    fn anthropic_cache_reads_and_writes_come_beside_the_input() {
        let price = anthropic_like();
        let mut u = Usage::new(100_000, 10_000);
        u.cache = CacheAccounting::BesidePrompt;
        u.cached_prompt_tokens = Some(50_000);
        u.cache_write_tokens = Some(30_000);
        u.cache_write_1h_tokens = Some(10_000);
        // 0.30 input + 0.015 reads + 0.075 5m writes + 0.06 1h writes + 0.15 output.
        assert_eq!(price.cost(&u).unwrap(), Usd::from_dollars(0.6).unwrap());
    }

    #[test]
    fn the_long_context_tier_counts_the_cache_in_the_prompt() {
        let price = anthropic_like();
        let mut u = Usage::new(150_000, 0);
        u.cache = CacheAccounting::BesidePrompt;
        assert_eq!(price.cost(&u).unwrap(), Usd::from_dollars(0.45).unwrap());
        u.cached_prompt_tokens = Some(60_000);
        // 210k in all: every token at the long-context prices.
        assert_eq!(
            price.cost(&u).unwrap(),
            Usd::from_dollars(0.9 + 0.036).unwrap()
        );
    }

    #[test]
    fn tiers_and_places_scale_or_are_unpriced() {
        let price = anthropic_like();
        let mut u = Usage::new(100_000, 0);
        u.service_tier = Some(ServiceTier::Batch);
        assert_eq!(price.cost(&u).unwrap(), Usd::from_dollars(0.15).unwrap());
        u.inference_geo = Some(InferenceGeo::Us);
        assert_eq!(price.cost(&u).unwrap(), Usd::from_dollars(0.165).unwrap());
        u.service_tier = Some(ServiceTier::Priority);
        assert_eq!(price.cost(&u), Err(Unpriced::Tier(ServiceTier::Priority)));
        u.service_tier = Some(ServiceTier::Standard);
        u.inference_geo = Some(InferenceGeo::Other);
        assert_eq!(price.cost(&u), Err(Unpriced::Geo(InferenceGeo::Other)));
    }

    #[test]
    fn reasoning_beside_the_output_is_billed_as_output() {
        let mut price = Price::new(Rates::new(d(0.3), d(0.5)), "x", "y");
        let mut u = Usage::new(0, 2);
        u.reasoning_tokens = Some(386);
        assert_eq!(price.cost(&u).unwrap().nanos(), 1_000);
        price.reasoning = ReasoningBilling::BesideOutput;
        assert_eq!(price.cost(&u).unwrap().nanos(), 194_000);
    }

    #[test]
    fn a_cached_token_without_a_cache_price_costs_as_input_never_nothing() {
        let price = Price::new(Rates::new(d(1.0), d(1.0)), "x", "y");
        let mut u = Usage::new(1_000_000, 0);
        u.cached_prompt_tokens = Some(1_000_000);
        assert_eq!(price.cost(&u).unwrap(), Usd::from_dollars(1.0).unwrap());
        let mut a = Usage::new(0, 0);
        a.cache = CacheAccounting::BesidePrompt;
        a.cache_write_tokens = Some(1_000_000);
        assert_eq!(price.cost(&a).unwrap(), Usd::from_dollars(1.25).unwrap());
    }

    #[test]
    fn extreme_counts_saturate() {
        let price = Price::new(Rates::new(d(1e6), d(1e6)), "x", "y");
        let u = Usage::new(u64::MAX, u64::MAX);
        assert_eq!(price.cost(&u).unwrap(), Usd::from_nanos(u64::MAX));
    }
}
