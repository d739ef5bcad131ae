//! A price row as the config file writes it, in dollars a million tokens:
//!
//! ```toml
//! [prices."azure/gpt-4o"]          # a deployment's model, or a model alone
//! input = 2.5
//! output = 10.0
//! cache_read = 1.25
//! as_of = "2026-12-01"
//! source = "our Azure agreement"
//! tiers = { batch = 0.5, priority = 1.7 }
//!
//! [prices."claude-sonnet-4-6"]
//! input = 3.0
//! output = 15.0
//! cache_read = 0.3
//! cache_write_5m = 3.75
//! cache_write_1h = 6.0
//! long_context = { above = 200000, input = 6.0, output = 22.5 }
//! geos = { us = 1.1 }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::price::{LongContext, PerMillion, Price, Rates, ReasoningBilling};
use crate::model::{InferenceGeo, ServiceTier};

/// One `[prices."<model>"]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceFile {
    /// Dollars a million prompt tokens (not read from the cache).
    pub input: f64,
    /// Dollars a million generated tokens.
    pub output: f64,
    /// Dollars a million prompt tokens read from the cache (default: input's).
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Dollars a million tokens written to the cache for 5 minutes.
    #[serde(default)]
    pub cache_write_5m: Option<f64>,
    /// Dollars a million tokens written to the cache for an hour.
    #[serde(default)]
    pub cache_write_1h: Option<f64>,
    /// Prices past a prompt size: `{ above, input, output, cache_read, ... }`.
    #[serde(default)]
    pub long_context: Option<LongContextFile>,
    /// Tiers priced apart, as factors of the standard prices
    /// (`standard`, `priority`, `flex`, `batch`).
    #[serde(default)]
    pub tiers: BTreeMap<String, f64>,
    /// Places priced apart, as factors (`us`).
    #[serde(default)]
    pub geos: BTreeMap<String, f64>,
    /// `in_output` (default) or `beside_output` (xAI's reasoning).
    #[serde(default)]
    pub reasoning: ReasoningBilling,
    /// When the prices were read.
    #[serde(default)]
    pub as_of: Option<String>,
    /// Where they were read.
    #[serde(default)]
    pub source: Option<String>,
}

/// `long_context = { above = 200000, input = 6.0, output = 22.5 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongContextFile {
    /// Prompts of more than this many tokens.
    pub above: u64,
    /// Dollars a million prompt tokens.
    pub input: f64,
    /// Dollars a million generated tokens.
    pub output: f64,
    /// Cache reads.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// 5-minute cache writes.
    #[serde(default)]
    pub cache_write_5m: Option<f64>,
    /// 1-hour cache writes.
    #[serde(default)]
    pub cache_write_1h: Option<f64>,
}

/// A price that is not one: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct BadPrice {
    /// The field (`input`, `tiers.flex`, ...).
    pub field: String,
    /// What is wrong.
    pub why: &'static str,
}

fn price(field: &str, dollars: f64) -> Result<PerMillion, BadPrice> {
    PerMillion::dollars(dollars).ok_or(BadPrice {
        field: field.to_string(),
        why: "a price is a finite number, not negative",
    })
}

fn optional(field: &str, dollars: Option<f64>) -> Result<Option<PerMillion>, BadPrice> {
    dollars.map(|d| price(field, d)).transpose()
}

/// A factor as thousandths: positive, at most 100.
fn factor(field: String, f: f64) -> Result<u32, BadPrice> {
    if !(f.is_finite() && f > 0.0 && f <= 100.0) {
        return Err(BadPrice {
            field,
            why: "a factor is a number above 0 and at most 100",
        });
    }
    Ok((f * 1_000.0).round() as u32)
}

/// A table of factors (`tiers`, `geos`) read: each key named by `parse`
/// (`None`: not one, `unknown` says which are), each factor checked.
fn factors<K>(
    table: &str,
    entries: &BTreeMap<String, f64>,
    parse: impl Fn(&str) -> Option<K>,
    unknown: &'static str,
) -> Result<Vec<(K, u32)>, BadPrice> {
    entries
        .iter()
        .map(|(k, f)| {
            let field = format!("{table}.{k}");
            match parse(k) {
                None => Err(BadPrice {
                    field,
                    why: unknown,
                }),
                Some(key) => Ok((key, factor(field, *f)?)),
            }
        })
        .collect()
}

impl PriceFile {
    /// The row it writes; `as_of` and `source` default to "config file".
    pub fn price(&self) -> Result<Price, BadPrice> {
        let rates = Rates {
            input: price("input", self.input)?,
            output: price("output", self.output)?,
            cache_read: optional("cache_read", self.cache_read)?,
            cache_write_5m: optional("cache_write_5m", self.cache_write_5m)?,
            cache_write_1h: optional("cache_write_1h", self.cache_write_1h)?,
        };
        let long_context = match &self.long_context {
            None => None,
            Some(l) => Some(LongContext {
                above: l.above,
                rates: Rates {
                    input: price("long_context.input", l.input)?,
                    output: price("long_context.output", l.output)?,
                    cache_read: optional("long_context.cache_read", l.cache_read)?,
                    cache_write_5m: optional("long_context.cache_write_5m", l.cache_write_5m)?,
                    cache_write_1h: optional("long_context.cache_write_1h", l.cache_write_1h)?,
                },
            }),
        };
        let tiers = factors(
            "tiers",
            &self.tiers,
            |k| Some(ServiceTier::parse(k)).filter(|t| *t != ServiceTier::Other),
            "tiers are standard, priority, flex and batch",
        )?;
        let geos = factors(
            "geos",
            &self.geos,
            |k| Some(InferenceGeo::parse(k)).filter(|g| *g != InferenceGeo::Other),
            "places are global and us",
        )?;
        let mut p = Price::new(
            rates,
            self.as_of.clone().unwrap_or_else(|| "config file".into()),
            self.source.clone().unwrap_or_else(|| "config file".into()),
        );
        p.long_context = long_context;
        p.tiers = tiers;
        p.geos = geos;
        p.reasoning = self.reasoning;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Usage;

    fn parse(toml_text: &str) -> PriceFile {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_row_in_the_file_prices_as_one_in_code() {
        let f = parse(
            "input = 3.0\noutput = 15.0\ncache_read = 0.3\n\
             long_context = { above = 200000, input = 6.0, output = 22.5 }\n\
             tiers = { batch = 0.5 }\ngeos = { us = 1.1 }\nreasoning = \"beside_output\"\n",
        );
        let p = f.price().unwrap();
        assert_eq!(p.rates.input.as_dollars(), 3.0);
        assert_eq!(p.long_context.unwrap().above, 200_000);
        assert_eq!(p.tiers, [(ServiceTier::Batch, 500)]);
        assert_eq!(p.geos, [(InferenceGeo::Us, 1_100)]);
        assert_eq!(p.reasoning, ReasoningBilling::BesideOutput);
        assert_eq!(p.as_of, "config file");
        let mut u = Usage::new(100_000, 0);
        u.service_tier = Some(ServiceTier::Batch);
        assert_eq!(p.cost(&u).unwrap().to_string(), "$0.150000");
    }

    #[test]
    fn a_price_that_is_not_one_names_its_field() {
        for (text, field) in [
            ("input = -1.0\noutput = 1.0\n", "input"),
            ("input = 1.0\noutput = nan\n", "output"),
            ("input = 1.0\noutput = 1.0\ntiers = { turbo = 2.0 }\n", "tiers.turbo"),
            ("input = 1.0\noutput = 1.0\ntiers = { batch = 0.0 }\n", "tiers.batch"),
            ("input = 1.0\noutput = 1.0\ngeos = { us = inf }\n", "geos.us"),
            (
                "input = 1.0\noutput = 1.0\nlong_context = { above = 1, input = -2.0, output = 1.0 }\n",
                "long_context.input",
            ),
        ] {
            assert_eq!(parse(text).price().unwrap_err().field, field, "{text}");
        }
        assert!(toml::from_str::<PriceFile>("input = 1.0\noutput = 1.0\nextra = 1\n").is_err());
    }
}
