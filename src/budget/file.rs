//! A budget as the config file writes it:
//!
//! ```toml
//! [[budgets]]
//! scope = "client"            # or "group:fast", "deployment:openai",
//! usd = 100.0                 # "key:tenant-a", "every_key"
//! period = "month"            # "day", "month", or none (the default)
//!
//! [[budgets]]
//! scope = "every_key"
//! tokens = 200000
//! period = "day"
//! warn_at = 90                # percent (default 80)
//! ```

use serde::Deserialize;

use super::{Budget, Period, Scope};
use crate::model::Usd;

/// One `[[budgets]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetFile {
    /// What it counts: `client`, `group:<name>`, `deployment:<name>`,
    /// `key:<key>`, or `every_key`.
    pub scope: String,
    /// Its limit in tokens.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Its limit in dollars.
    #[serde(default)]
    pub usd: Option<f64>,
    /// `day` or `month`; none: the ledger's whole life.
    #[serde(default)]
    pub period: Period,
    /// The percent of its limit past which it warns (default 80).
    #[serde(default)]
    pub warn_at: Option<u8>,
}

impl BudgetFile {
    /// The budget and its scope; what is wrong with it otherwise.
    pub fn budget(&self) -> Result<(Scope, Budget), String> {
        let scope = parse_scope(&self.scope)?;
        let usd = match self.usd {
            None => None,
            Some(d) => Some(Usd::from_dollars(d).ok_or("usd: a finite amount, not negative")?),
        };
        if self.tokens.is_none() && usd.is_none() {
            return Err("a budget limits tokens, usd or both".into());
        }
        let warn_at = self.warn_at.unwrap_or(80);
        if warn_at > 100 {
            return Err("warn_at: a percent, at most 100".into());
        }
        Ok((
            scope,
            Budget {
                tokens: self.tokens,
                usd,
                period: self.period,
                warn_at_percent: warn_at,
            },
        ))
    }
}

/// `client`, `group:<name>`, `deployment:<name>`, `key:<key>`, `every_key`.
fn parse_scope(text: &str) -> Result<Scope, String> {
    let named = |kind: &str, name: &str| {
        if name.is_empty() {
            Err(format!("scope: {kind}: needs a name"))
        } else {
            Ok(name.to_string())
        }
    };
    match text.split_once(':') {
        None if text == "client" => Ok(Scope::Client),
        None if text == "every_key" => Ok(Scope::EveryKey),
        Some(("group", n)) => Ok(Scope::Group(named("group", n)?)),
        Some(("deployment", n)) => Ok(Scope::Deployment(named("deployment", n)?)),
        Some(("key", n)) => Ok(Scope::Key(named("key", n)?)),
        _ => Err(format!(
            "scope {text:?}: client, group:<name>, deployment:<name>, key:<key> or every_key"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Scope, Budget), String> {
        toml::from_str::<BudgetFile>(text)
            .map_err(|e| e.to_string())?
            .budget()
    }

    #[test]
    fn scopes_periods_and_limits_read_as_in_code() {
        let (scope, b) = parse("scope = \"every_key\"\ntokens = 5\nperiod = \"day\"\n").unwrap();
        assert_eq!(scope, Scope::EveryKey);
        assert_eq!(b, Budget::tokens(5).per(Period::Day));
        let (scope, b) = parse("scope = \"group:fast\"\nusd = 2.5\nwarn_at = 90\n").unwrap();
        assert_eq!(scope, Scope::Group("fast".into()));
        assert_eq!(b, Budget::usd(2.5).unwrap().warn_at(90));
        assert_eq!(
            parse("scope = \"key:a:b\"\ntokens = 1\n").unwrap().0,
            Scope::Key("a:b".into())
        );
    }

    #[test]
    fn a_budget_that_is_not_one_says_why() {
        for (text, why) in [
            ("scope = \"client\"\n", "limits tokens, usd or both"),
            ("scope = \"tenant\"\ntokens = 1\n", "scope \"tenant\""),
            ("scope = \"group:\"\ntokens = 1\n", "needs a name"),
            ("scope = \"client\"\nusd = -1.0\n", "usd"),
            ("scope = \"client\"\ntokens = 1\nwarn_at = 101\n", "warn_at"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
        assert!(parse("scope = \"client\"\ntokens = 1\nperiod = \"week\"\n").is_err());
    }
}
