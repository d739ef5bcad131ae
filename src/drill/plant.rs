//! The drill's world: a mock server for every deployment the configuration
//! names (so that a fault strikes one target, not its neighbours), and the
//! client the configuration builds over them.

use std::collections::BTreeMap;

use crate::config::{Config, Kind};
use crate::error::Error;
use crate::mock::{MockServer, MOCK_API_KEY};
use crate::provider::Providers;
use crate::runtime::Client;

/// The built-in providers a request may name without a configuration.
const BUILT_IN: [&str; 4] = [
    "openai",
    "anthropic",
    "xai",
    crate::mock::RESPONSES_PROVIDER,
];

/// Mock servers by provider (deployment) name, and the client over them.
pub(super) struct Plant {
    pub mocks: BTreeMap<String, MockServer>,
    pub client: Client,
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
            let url = match kind {
                Kind::Anthropic => mock.base_url(),
                _ => mock.openai_base_url(),
            };
            Some((url, MOCK_API_KEY.to_string()))
        })?;
        let builder = Client::builder().providers(providers).arbiters(1);
        let client = config.apply(builder)?.build()?;
        Ok(Plant { mocks, client })
    }

    /// Requests the mocks answered, in all.
    pub fn mock_requests(&self) -> u64 {
        self.mocks.values().map(MockServer::request_count).sum()
    }
}
