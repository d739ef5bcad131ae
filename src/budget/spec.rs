//! What a budget is: a limit in tokens, in dollars or both, over a period
//! (the whole life of the ledger, a UTC day, a UTC month), with a warning
//! threshold; and what it counts: the client, a group, a deployment, a
//! caller's key (a tenant, a user), or every key apart.

use std::time::SystemTime;

use crate::model::Usd;

/// A spend budget.
///
/// ```
/// use steer_llm::budget::{Budget, Period};
/// let b = Budget::usd(25.0).unwrap().per(Period::Day).warn_at(90);
/// assert_eq!(b.period, Period::Day);
/// assert!(Budget::usd(f64::NAN).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Tokens (prompt, the cache's included, and generated), if limited.
    pub tokens: Option<u64>,
    /// Dollars at the client's prices, if limited.
    pub usd: Option<Usd>,
    /// The period it renews over.
    pub period: Period,
    /// The share of the limit (percent) past which it warns, once a period.
    pub warn_at_percent: u8,
}

/// When a budget starts again from nothing (UTC calendar windows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Never: one budget for the ledger's whole life.
    #[default]
    Total,
    /// Each UTC day.
    Day,
    /// Each UTC month.
    Month,
}

impl Period {
    /// The window `at` falls in: 0 for `Total`, the day or month number
    /// since 1970 otherwise.
    pub fn window(self, at: SystemTime) -> u64 {
        let t = time::OffsetDateTime::from(at);
        match self {
            Period::Total => 0,
            Period::Day => {
                let days = t.unix_timestamp().div_euclid(86_400);
                u64::try_from(days).unwrap_or(0)
            }
            Period::Month => {
                let months = i64::from(t.year())
                    .saturating_sub(1970)
                    .saturating_mul(12)
                    .saturating_add(i64::from(u8::from(t.month())).saturating_sub(1));
                u64::try_from(months).unwrap_or(0)
            }
        }
    }
}

impl Budget {
    /// A budget of `tokens` tokens, no period, warning at 80%.
    pub fn tokens(tokens: u64) -> Self {
        Budget {
            tokens: Some(tokens),
            usd: None,
            period: Period::Total,
            warn_at_percent: 80,
        }
    }

    /// A budget of `dollars` (`None` unless finite and not negative), no
    /// period, warning at 80%.
    pub fn usd(dollars: f64) -> Option<Self> {
        Some(Budget {
            tokens: None,
            usd: Some(Usd::from_dollars(dollars)?),
            period: Period::Total,
            warn_at_percent: 80,
        })
    }

    /// Also limited to `tokens`.
    pub fn and_tokens(mut self, tokens: u64) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Renewed each `period`.
    pub fn per(mut self, period: Period) -> Self {
        self.period = period;
        self
    }

    /// Warns past `percent` of its limit (at most 100).
    pub fn warn_at(mut self, percent: u8) -> Self {
        self.warn_at_percent = percent.min(100);
        self
    }

    /// `limit`'s warning threshold.
    pub(crate) fn warn_threshold(&self, limit: u64) -> u64 {
        let t = u128::from(limit).saturating_mul(u128::from(self.warn_at_percent)) / 100;
        u64::try_from(t).unwrap_or(u64::MAX)
    }
}

/// What a budget counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every request of the client.
    Client,
    /// The requests to a model group (`group/<name>`), every target's.
    Group(String),
    /// The attempts at one deployment (a group moves on past it when it is
    /// spent).
    Deployment(String),
    /// The requests that carry this key ([`GenerateOptions::budget_key`](crate::GenerateOptions::budget_key)).
    Key(String),
    /// Each key apart: the same budget for every key a request carries.
    EveryKey,
}

impl Scope {
    /// The ledger's name of the scope (`client`, `group:fast`,
    /// `deployment:openai`, `key:tenant-a`), for a request carrying `key`;
    /// `None` for [`Scope::EveryKey`] when it carries none.
    pub fn account_name(&self, key: Option<&str>) -> Option<String> {
        Some(match self {
            Scope::Client => "client".into(),
            Scope::Group(g) => format!("group:{g}"),
            Scope::Deployment(d) => format!("deployment:{d}"),
            Scope::Key(k) => format!("key:{k}"),
            Scope::EveryKey => format!("key:{}", key?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn windows_are_utc_days_and_months() {
        // 2026-12-07T12:00:00Z and the last second of that month.
        let noon = UNIX_EPOCH + Duration::from_secs(1_796_644_800);
        assert_eq!(Period::Total.window(noon), 0);
        assert_eq!(Period::Day.window(noon), 20_794);
        let month = Period::Month.window(noon);
        assert_eq!(month, (2026 - 1970) * 12 + 11);
        let last = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(Period::Month.window(last), month);
        assert_eq!(
            Period::Month.window(last + Duration::from_secs(1)),
            month + 1
        );
        assert_eq!(Period::Day.window(UNIX_EPOCH), 0);
    }

    #[test]
    fn every_key_names_the_requests_key_and_none_without_one() {
        assert_eq!(
            Scope::EveryKey.account_name(Some("t1")).as_deref(),
            Some("key:t1")
        );
        assert_eq!(Scope::EveryKey.account_name(None), None);
        assert_eq!(
            Scope::Key("t2".into()).account_name(Some("t1")).as_deref(),
            Some("key:t2")
        );
        let b = Budget::tokens(1_000).warn_at(250);
        assert_eq!((b.warn_at_percent, b.warn_threshold(1_000)), (100, 1_000));
        let max = Budget::tokens(u64::MAX);
        assert_eq!(max.warn_threshold(u64::MAX), 14_757_395_258_967_641_292);
    }
}
