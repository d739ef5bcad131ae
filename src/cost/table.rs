//! The price table: a dated, sourced row for each model the README names and
//! their close kin, overridable in code and in the config file, looked up by
//! `deployment/model` first, then by model (a dated or `-latest` name finds
//! its family's row). A model with no row is unpriced, never free.

use foldhash::HashMap;
use std::sync::Arc;

use super::price::{LongContext, PerMillion, Price, Rates, ReasoningBilling, Unpriced};
use crate::model::{InferenceGeo, ServiceTier};

/// When the default rows were read.
pub const DEFAULTS_AS_OF: &str = "2026-12-07";

const OPENAI: &str = "https://platform.openai.com/docs/pricing";
const ANTHROPIC: &str = "https://docs.anthropic.com/en/docs/about-claude/pricing";
const XAI: &str =
    "https://docs.x.ai/docs/models (reasoning: docs.x.ai consumption-and-rate-limits)";

/// Prices by model, shared by a client's requests. Cloning shares the rows.
///
/// ```
/// use steer_llm::cost::PriceTable;
/// let table = PriceTable::defaults();
/// let price = table.price("openai", "gpt-4o-mini").unwrap();
/// assert_eq!(price.rates.input.as_dollars(), 0.15);
/// // A dated name finds its family's row; an unknown model is unpriced.
/// assert!(table.price("anthropic", "claude-3-5-haiku-20241022").is_ok());
/// assert!(table.price("local", "llama-3").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    rows: HashMap<String, Arc<Price>>,
    /// Whether any row is a deployment's own (`deployment/model`): without
    /// one, a lookup builds no key.
    own_rows: bool,
}

impl PriceTable {
    /// No rows: every model unpriced.
    pub fn empty() -> Self {
        PriceTable::default()
    }

    /// The default rows (see [`DEFAULTS_AS_OF`] and each row's source).
    pub fn defaults() -> Self {
        let mut t = PriceTable::empty();
        for (model, price) in default_rows() {
            t.set(model, price);
        }
        t
    }

    /// Sets the row of `key`: a model (`gpt-4o`), or a deployment's model
    /// (`openai-b/gpt-4o`), which wins over the model's own.
    pub fn set(&mut self, key: impl Into<String>, price: Price) -> &mut Self {
        let key = key.into();
        self.own_rows |= key.contains('/');
        self.rows.insert(key, Arc::new(price));
        self
    }

    /// The row for `model` at `deployment`: the deployment's own, else the
    /// model's, else its family's (`-latest` or a date removed; after a
    /// router's `vendor/` prefix).
    pub fn price(&self, deployment: &str, model: &str) -> Result<&Price, Unpriced> {
        self.get(deployment, model)
            .ok_or_else(|| Unpriced::Model(format!("{deployment}/{model}")))
    }

    /// [`PriceTable::price`], `None` when unpriced (no allocation).
    ///
    /// Every attempt looks its model up here, so the common case (the model's
    /// own row) is one hash lookup, and the rest no iterator chain or key built
    /// on the heap.
    pub fn get(&self, deployment: &str, model: &str) -> Option<&Price> {
        if self.own_rows {
            if let Some(p) = self.own_row(deployment, model) {
                return Some(p);
            }
        }
        if let Some(p) = self.family_row(model) {
            return Some(p);
        }
        // After a router's `vendor/` prefix.
        let bare = after_last(model, b'/')?;
        self.family_row(bare)
    }

    /// The row of `name`, else of its family: without `-latest`, then without
    /// a trailing date (`-20241022` or `-2024-10-22`).
    fn family_row(&self, name: &str) -> Option<&Price> {
        let row = |n: &str| self.rows.get(n).map(|p| &**p);
        row(name)
            .or_else(|| name.strip_suffix("-latest").and_then(row))
            .or_else(|| strip_date(name).and_then(row))
    }

    /// The deployment's own row (`deployment/model`), its key written on the
    /// stack when it fits.
    fn own_row(&self, deployment: &str, model: &str) -> Option<&Price> {
        const ROOM: usize = 128;
        let len = deployment
            .len()
            .saturating_add(1)
            .saturating_add(model.len());
        if len > ROOM {
            return self
                .rows
                .get(&format!("{deployment}/{model}"))
                .map(|p| &**p);
        }
        let mut key = [0u8; ROOM];
        key[..deployment.len()].copy_from_slice(deployment.as_bytes());
        key[deployment.len()] = b'/';
        key[deployment.len() + 1..len].copy_from_slice(model.as_bytes());
        // Two strings and an ASCII byte between them: always UTF-8.
        let key = std::str::from_utf8(&key[..len]).ok()?;
        self.rows.get(key).map(|p| &**p)
    }
}

/// What follows the last `byte` (an ASCII one) in `s`, if it has one.
fn after_last(s: &str, byte: u8) -> Option<&str> {
    let i = s.bytes().rposition(|b| b == byte)?;
    s.get(i + 1..)
}

/// What precedes the last `byte` (an ASCII one) in `s`, and what follows it.
fn split_last(s: &str, byte: u8) -> Option<(&str, &str)> {
    let i = s.bytes().rposition(|b| b == byte)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `name` without a trailing `-YYYYMMDD` or `-YYYY-MM-DD`.
fn strip_date(name: &str) -> Option<&str> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (head, tail) = split_last(name, b'-')?;
    if tail.len() == 8 && digits(tail) {
        return Some(head);
    }
    // -YYYY-MM-DD: three dash-separated parts of 4, 2 and 2 digits.
    let (head, day) = (head, tail);
    let (head, month) = split_last(head, b'-')?;
    let (head, year) = split_last(head, b'-')?;
    let ok = year.len() == 4 && month.len() == 2 && day.len() == 2;
    (ok && digits(year) && digits(month) && digits(day)).then_some(head)
}

/// Dollars a million tokens (a literal of the table below).
fn m(dollars: f64) -> PerMillion {
    PerMillion::dollars(dollars).unwrap_or(PerMillion::ZERO)
}

/// An OpenAI row: input, cached input, output; batch at half.
fn openai(input: f64, cached: f64, output: f64, tiers: &[(ServiceTier, u32)]) -> Price {
    let mut rates = Rates::new(m(input), m(output));
    rates.cache_read = Some(m(cached));
    let mut p = Price::new(rates, DEFAULTS_AS_OF, OPENAI);
    p.tiers = [(ServiceTier::Batch, 500)]
        .into_iter()
        .chain(tiers.iter().copied())
        .collect();
    p
}

/// An Anthropic row: input and output; cache reads at a tenth of input,
/// 5-minute writes at 1.25 times, 1-hour writes at twice; batch at half.
fn anthropic(input: f64, output: f64) -> Price {
    let rates = |input: f64, output: f64| {
        let mut r = Rates::new(m(input), m(output));
        r.cache_read = Some(m(input / 10.0));
        r.cache_write_5m = Some(m(input * 1.25));
        r.cache_write_1h = Some(m(input * 2.0));
        r
    };
    let mut p = Price::new(rates(input, output), DEFAULTS_AS_OF, ANTHROPIC);
    p.tiers = vec![(ServiceTier::Batch, 500)];
    p
}

/// An xAI row: reasoning tokens come beside the completion tokens.
fn xai(input: f64, cached: f64, output: f64) -> Price {
    let mut rates = Rates::new(m(input), m(output));
    rates.cache_read = Some(m(cached));
    let mut p = Price::new(rates, DEFAULTS_AS_OF, XAI);
    p.reasoning = ReasoningBilling::BesideOutput;
    p
}

/// The default rows.
fn default_rows() -> Vec<(&'static str, Price)> {
    use ServiceTier::{Flex, Priority};
    let sonnet = || {
        let mut p = anthropic(3.0, 15.0);
        // Prompts above 200K tokens (the 1M context window): input at twice,
        // output at 1.5 times, the cache's prices scaled as the input's.
        let mut long = p.rates;
        long.input = m(6.0);
        long.output = m(22.5);
        long.cache_read = Some(m(0.6));
        long.cache_write_5m = Some(m(7.5));
        long.cache_write_1h = Some(m(12.0));
        p.long_context = Some(LongContext {
            above: 200_000,
            rates: long,
        });
        p
    };
    let opus = || {
        let mut p = anthropic(5.0, 25.0);
        // US-only inference (`inference_geo: "us"`) is 1.1 times on Opus 4.6+.
        p.geos = vec![(InferenceGeo::Us, 1_100)];
        p
    };
    vec![
        ("gpt-4o-mini", openai(0.15, 0.075, 0.60, &[])),
        ("gpt-4o", openai(2.50, 1.25, 10.00, &[(Priority, 1_700)])),
        ("gpt-4.1", openai(2.00, 0.50, 8.00, &[])),
        ("gpt-4.1-mini", openai(0.40, 0.10, 1.60, &[])),
        (
            "gpt-5",
            openai(1.25, 0.125, 10.00, &[(Flex, 500), (Priority, 2_000)]),
        ),
        (
            "gpt-5-mini",
            openai(0.25, 0.025, 2.00, &[(Flex, 500), (Priority, 1_800)]),
        ),
        ("gpt-5-nano", openai(0.05, 0.005, 0.40, &[(Flex, 500)])),
        ("claude-3-5-haiku", anthropic(0.80, 4.00)),
        ("claude-haiku-4-5", anthropic(1.00, 5.00)),
        ("claude-sonnet-4-5", sonnet()),
        ("claude-sonnet-4-6", sonnet()),
        ("claude-opus-4-6", opus()),
        ("grok-3-mini", xai(0.30, 0.075, 0.50)),
        ("grok-3", xai(3.00, 0.75, 15.00)),
        ("grok-4", xai(3.00, 0.75, 15.00)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_and_latest_names_find_their_family() {
        let t = PriceTable::defaults();
        for name in [
            "claude-3-5-haiku-latest",
            "claude-3-5-haiku-20241022",
            "gpt-4o-2024-08-06",
            "openai/gpt-4o",
        ] {
            assert!(t.price("x", name).is_ok(), "{name}");
        }
        // No loose prefix match: gpt-4o-mini is not gpt-4o, and a cousin
        // with no row is unpriced.
        let mini = t.price("openai", "gpt-4o-mini").unwrap();
        assert_eq!(mini.rates.output.as_dollars(), 0.6);
        assert!(matches!(
            t.price("openai", "gpt-4o-audio-preview"),
            Err(Unpriced::Model(m)) if m == "openai/gpt-4o-audio-preview"
        ));
    }

    #[test]
    fn a_deployments_own_row_wins() {
        let mut t = PriceTable::defaults();
        let own = Price::new(Rates::new(m(9.0), m(9.0)), "2026-12-07", "contract");
        t.set("azure/gpt-4o", own.clone());
        assert_eq!(t.price("azure", "gpt-4o").unwrap(), &own);
        assert_eq!(t.price("openai", "gpt-4o").unwrap().rates.input, m(2.5));
        // Its key is written on the stack up to 128 bytes, on the heap past
        // them: found either way, and a dated name finds the family's row.
        let long = "d".repeat(200);
        t.set(format!("{long}/gpt-4o"), own.clone());
        assert_eq!(t.price(&long, "gpt-4o").unwrap(), &own);
        assert_eq!(t.price(&long[..100], "gpt-4o").unwrap().rates.input, m(2.5));
        assert_eq!(
            t.price(&long, "gpt-4o-2024-08-06").unwrap().rates.input,
            m(2.5)
        );
        // Names that are not ASCII, their key's end on either side of 128 bytes.
        for n in [59, 60, 61, 62, 63] {
            let deployment = "é".repeat(n);
            t.set(format!("{deployment}/modèle"), own.clone());
            assert_eq!(t.price(&deployment, "modèle").unwrap(), &own, "{n}");
        }
        // A router's vendor prefix: the model's own name after it, then its
        // family's; a bare name with no row is unpriced.
        let via = t.price("openrouter", "openai/gpt-4o-latest").unwrap();
        assert_eq!(via.rates.input, m(2.5));
        assert!(t.price("openrouter", "openai/").is_err());
        assert!(t.price("openrouter", "/").is_err());
    }

    #[test]
    fn every_default_row_is_dated_and_sourced() {
        for (model, p) in default_rows() {
            assert_eq!(p.as_of, DEFAULTS_AS_OF, "{model}");
            assert!(p.source.starts_with("https://"), "{model}");
            assert!(p.rates.output.as_dollars() > 0.0, "{model}");
        }
    }

    #[test]
    fn dates_are_stripped_only_when_they_are_dates() {
        assert_eq!(
            strip_date("claude-3-5-haiku-20241022"),
            Some("claude-3-5-haiku")
        );
        assert_eq!(strip_date("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(strip_date("gpt-4o-mini"), None);
        assert_eq!(strip_date("model-12345678x"), None);
        assert_eq!(strip_date("-"), None);
    }
}
