//! The drill's world: a mock server for every deployment the configuration
//! names (so that a fault strikes one target, not its neighbours), or, live,
//! the real endpoints with a fault proxy in front of the first target; and
//! the client the configuration builds over them.

use std::collections::BTreeMap;

use std::sync::Arc;

use super::proxy::FaultProxy;
use crate::budget::{Budget, Scope};
use crate::config::{Config, Kind};
use crate::error::{ConfigError, Error};
use crate::mock::{FaultPlan, Flavour, MockServer, MOCK_API_KEY};
use crate::provider::{Anthropic, OpenAiCompatible, Provider, Providers};
use crate::runtime::Client;

/// The built-in providers a request may name without a configuration.
const BUILT_IN: [&str; 4] = [
    "openai",
    "anthropic",
    "xai",
    crate::mock::RESPONSES_PROVIDER,
];

/// Mock servers by provider (deployment) name, or a live drill's proxy, and
/// the client over them.
pub(super) struct Plant {
    pub mocks: BTreeMap<String, MockServer>,
    /// Live: the proxy in front of the first target, and its name.
    pub proxy: Option<(String, FaultProxy)>,
    pub client: Client,
}

/// A live drill's limits: at most this many dollars, counted by a
/// client-wide budget that refuses past it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveLimits {
    /// The most one scenario may spend, in dollars (each scenario has a
    /// client, and its budget, of its own).
    pub max_usd: f64,
}

impl Plant {
    /// Starts a mock for each built-in provider and each deployment of
    /// `config`, and builds the client `config` describes over them.
    pub fn start(config: &Config) -> Result<Plant, Error> {
        let start = |name: &str| {
            MockServer::builder()
                .start_background()
                .map_err(|e| Error::Internal(format!("cannot start the mock for {name}: {e}")))
        };
        let mut mocks = BTreeMap::new();
        let mut providers = Providers::new();
        for name in BUILT_IN {
            let mock = start(name)?;
            providers.register(mock.providers()?.get(name)?);
            mocks.insert(name.to_string(), mock);
        }
        for name in config.deployments.keys() {
            mocks.insert(name.clone(), start(name)?);
        }
        let providers = config.deployments(providers, |name, kind| {
            let mock = mocks.get(name)?;
            Some((kind.mock_base_url(mock), MOCK_API_KEY.to_string()))
        })?;
        let builder = Client::builder().providers(providers).arbiters(1);
        let client = config.apply(builder)?.build()?;
        Ok(Plant {
            mocks,
            proxy: None,
            client,
        })
    }

    /// The real endpoints of `config` (keys from the environment), with a
    /// fault proxy in front of `first` (of wire format `kind`), and a
    /// client-wide budget of `limits.max_usd`.
    pub fn start_live(
        config: &Config,
        first: &str,
        kind: Kind,
        seed: u64,
        limits: LiveLimits,
    ) -> Result<Plant, Error> {
        let (origin, prefix) = live_base(config, first, kind)?;
        let flavour = match kind {
            Kind::Anthropic => Flavour::Anthropic,
            Kind::Xai => Flavour::Xai,
            Kind::Openai | Kind::Azure => Flavour::OpenAi,
        };
        let proxy = FaultProxy::start(&origin, flavour, seed)
            .map_err(|e| Error::Internal(format!("cannot start the drill's fault proxy: {e}")))?;
        let proxied = format!("{}{prefix}", proxy.origin());
        let mut providers = Providers::from_env().unwrap_or_default();
        if !config.deployments.contains_key(first) {
            let built: Arc<dyn Provider> = match first {
                "openai" => Arc::new(OpenAiCompatible::openai().base_url(&proxied).build()?),
                "anthropic" => Arc::new(Anthropic::builder().base_url(&proxied).build()?),
                "xai" => Arc::new(OpenAiCompatible::xai().base_url(&proxied).build()?),
                other => {
                    return Err(ConfigError::setting(
                        "--live",
                        format!("{other:?} is neither a deployment of the file nor openai, anthropic or xai"),
                    ))
                }
            };
            providers.register(built);
        }
        let key = config
            .deployments
            .get(first)
            .and_then(|d| d.api_key_env.as_deref())
            .and_then(|v| std::env::var(v).ok())
            .filter(|k| !k.trim().is_empty());
        if config.deployments.contains_key(first) && key.is_none() {
            return Err(ConfigError::setting(
                format!("deployments.{first}.api_key_env"),
                "--live calls the real endpoint: name the variable that holds its key, and set it",
            ));
        }
        let providers = config.deployments(providers, |name, _| {
            (name == first).then(|| (proxied.clone(), key.clone().unwrap_or_default()))
        })?;
        let budget = Budget::usd(limits.max_usd).ok_or_else(|| {
            ConfigError::setting("--max-usd", "must be a positive number of dollars")
        })?;
        let builder = Client::builder()
            .providers(providers)
            .arbiters(1)
            .spend_budget(Scope::Client, budget);
        let client = config.apply(builder)?.build()?;
        Ok(Plant {
            mocks: BTreeMap::new(),
            proxy: Some((first.to_string(), proxy)),
            client,
        })
    }

    /// Sets the fault the first target meets (`first` names it).
    pub fn set_fault(&self, first: &str, plan: Option<FaultPlan>) {
        if let Some(mock) = self.mocks.get(first) {
            mock.set_default_fault(plan.clone());
        }
        if let Some((name, proxy)) = &self.proxy {
            if name == first {
                proxy.set_fault(plan);
            }
        }
    }

    /// Requests the servers answered (the mocks; live, those the proxy
    /// answered or sent on), in all.
    pub fn server_requests(&self) -> u64 {
        let mocks: u64 = self.mocks.values().map(MockServer::request_count).sum();
        let proxied = self.proxy.as_ref().map_or(0, |(_, p)| p.requests());
        mocks.saturating_add(proxied)
    }
}

/// The real base URL of `first`, as its origin and its path (`/v1`).
fn live_base(config: &Config, first: &str, kind: Kind) -> Result<(String, String), Error> {
    let env_base = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    let base = match config.deployments.get(first) {
        Some(d) => d.base_url.clone().or_else(|| match kind {
            Kind::Anthropic => Some("https://api.anthropic.com".into()),
            Kind::Xai => Some("https://api.x.ai/v1".into()),
            Kind::Openai => Some("https://api.openai.com/v1".into()),
            Kind::Azure => None,
        }),
        None => match first {
            "anthropic" => {
                env_base("ANTHROPIC_BASE_URL").or(Some("https://api.anthropic.com".into()))
            }
            "xai" => env_base("XAI_BASE_URL").or(Some("https://api.x.ai/v1".into())),
            _ => env_base("OPENAI_BASE_URL").or(Some("https://api.openai.com/v1".into())),
        },
    };
    let base = base.ok_or_else(|| {
        ConfigError::setting(
            format!("deployments.{first}.base_url"),
            "an Azure deployment needs its resource's URL",
        )
    })?;
    let url = reqwest::Url::parse(&base).map_err(|e| {
        ConfigError::setting(format!("deployments.{first}.base_url"), e.to_string())
    })?;
    let origin = url.origin().ascii_serialization();
    let prefix = url.path().trim_end_matches('/').to_string();
    Ok((origin, prefix))
}
