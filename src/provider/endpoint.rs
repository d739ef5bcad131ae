//! Where a provider lives and how to authenticate: base URL, key, HTTP client.

use std::time::Duration;

use crate::error::{ConfigError, Error};
use crate::secret::ApiKey;

use super::clients::HttpClients;
use crate::wire::sse::DEFAULT_MAX_EVENT_BYTES;

/// Default time allowed to open a TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings shared by every provider builder. Precedence for the key and the base
/// URL: the builder's value, then the environment variable, then the default.
#[derive(Clone)]
pub struct EndpointBuilder {
    pub(crate) name: String,
    pub(crate) base_url: Option<String>,
    pub(crate) api_key: Option<ApiKey>,
    pub(crate) default_base_url: Option<&'static str>,
    pub(crate) key_env: Option<&'static str>,
    pub(crate) base_env: Option<&'static str>,
    pub(crate) http: Option<reqwest::Client>,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_event_bytes: usize,
    pub(crate) allow_insecure_http: bool,
    /// Azure OpenAI's dated API: the `api-version` every URL carries (and, for
    /// Chat Completions, the deployment in the path).
    pub(crate) api_version: Option<String>,
}

impl std::fmt::Debug for EndpointBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointBuilder")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

/// A resolved endpoint.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub name: String,
    pub base_url: String,
    /// The endpoint's one URL (base + the API's path), parsed once.
    pub url: reqwest::Url,
    pub api_key: Option<ApiKey>,
    /// The header that carries the key (`Bearer <key>` or the key itself, as the
    /// provider's API wants), made once and marked sensitive: a request clones it
    /// instead of formatting and checking the key again.
    pub key_header: Option<http::HeaderValue>,
    /// Its HTTP clients (one per runtime that calls, unless the caller gave one).
    pub http: std::sync::Arc<HttpClients>,
    /// Largest server-sent event accepted from this endpoint.
    pub max_event_bytes: usize,
    /// Azure's dated API: the `api-version` of every URL.
    pub api_version: Option<String>,
}

impl EndpointBuilder {
    pub(crate) fn new(
        name: &str,
        default_base_url: Option<&'static str>,
        key_env: Option<&'static str>,
        base_env: Option<&'static str>,
    ) -> Self {
        EndpointBuilder {
            name: name.to_string(),
            base_url: None,
            api_key: None,
            default_base_url,
            key_env,
            base_env,
            http: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            allow_insecure_http: false,
            api_version: None,
        }
    }

    /// OpenAI's public API: `OPENAI_API_KEY`, `OPENAI_BASE_URL`, default
    /// `https://api.openai.com/v1` (whichever of its APIs is called).
    pub(crate) fn openai() -> Self {
        EndpointBuilder::new(
            "openai",
            Some("https://api.openai.com/v1"),
            Some("OPENAI_API_KEY"),
            Some("OPENAI_BASE_URL"),
        )
    }

    /// xAI's public API: `XAI_API_KEY`, `XAI_BASE_URL`, default `https://api.x.ai/v1`.
    pub(crate) fn xai() -> Self {
        EndpointBuilder::new(
            "xai",
            Some("https://api.x.ai/v1"),
            Some("XAI_API_KEY"),
            Some("XAI_BASE_URL"),
        )
    }

    /// Azure OpenAI's v1 API at `resource`: `{resource}/openai/v1`, the key from
    /// `AZURE_OPENAI_API_KEY`.
    pub(crate) fn azure(resource: &str) -> Self {
        let mut endpoint = EndpointBuilder::new("azure", None, Some("AZURE_OPENAI_API_KEY"), None);
        endpoint.base_url = Some(format!("{}/openai/v1", resource.trim_end_matches('/')));
        endpoint
    }

    /// Azure OpenAI's dated API at `resource`: `{resource}/openai`, every URL
    /// with `?api-version={api_version}`, the key from `AZURE_OPENAI_API_KEY`.
    pub(crate) fn azure_dated(resource: &str, api_version: &str) -> Self {
        let mut endpoint = EndpointBuilder::new("azure", None, Some("AZURE_OPENAI_API_KEY"), None);
        endpoint.base_url = Some(format!("{}/openai", resource.trim_end_matches('/')));
        endpoint.api_version = Some(api_version.to_string());
        endpoint
    }

    /// A server at `base_url` registered as `name`; no environment variable is read.
    pub(crate) fn custom(name: &str, base_url: &str) -> Self {
        let mut endpoint = EndpointBuilder::new(name, None, None, None);
        endpoint.base_url = Some(base_url.to_string());
        endpoint
    }

    /// Resolves key, base URL and HTTP client; `path` is the API's path after the base.
    /// The endpoint at `path` of the base URL, its key carried after `key_prefix`
    /// (`"Bearer "`, or `""` for a header holding the key alone).
    pub(crate) fn resolve(self, path: &str, key_prefix: &str) -> Result<Endpoint, Error> {
        let from_env = |var: Option<&'static str>| {
            var.and_then(|v| std::env::var(v).ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let base_url = self
            .base_url
            .or_else(|| from_env(self.base_env))
            .or_else(|| self.default_base_url.map(str::to_string))
            .ok_or_else(|| ConfigError::endpoint(&self.name, "no base URL"))?;
        let parsed = reqwest::Url::parse(&base_url).map_err(|e| {
            ConfigError::endpoint(
                &self.name,
                format!("base URL {base_url:?} is not a URL: {e}"),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::endpoint(
                &self.name,
                format!("base URL {base_url:?} must be http or https"),
            ));
        }
        let api_key = self
            .api_key
            .or_else(|| self.key_env.and_then(ApiKey::from_env));
        let key_header = match &api_key {
            Some(key) => {
                match http::HeaderValue::from_str(&format!("{key_prefix}{}", key.expose())) {
                    Ok(mut value) => {
                        value.set_sensitive(true);
                        Some(value)
                    }
                    Err(_) => {
                        return Err(ConfigError::endpoint(
                            &self.name,
                            "the API key holds characters an HTTP header cannot carry",
                        ))
                    }
                }
            }
            None => None,
        };
        if api_key.is_some()
            && parsed.scheme() == "http"
            && !is_loopback(&parsed)
            && !self.allow_insecure_http
        {
            return Err(ConfigError::endpoint(
                &self.name,
                format!(
                    "base URL {base_url:?} would send the API key in clear text to a host that \
                     is not this machine; use https, or opt in with allow_insecure_http(true)"
                ),
            ));
        }
        let http = std::sync::Arc::new(HttpClients::new(self.http, self.connect_timeout)?);
        let base_url = base_url.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&format!("{base_url}{path}")).map_err(|e| {
            ConfigError::endpoint(&self.name, format!("{base_url}{path} is not a URL: {e}"))
        })?;
        Ok(Endpoint {
            name: self.name,
            base_url,
            url,
            api_key,
            key_header,
            http,
            max_event_bytes: self.max_event_bytes,
            api_version: self.api_version,
        })
    }
}

impl Endpoint {
    /// What every error of one attempt at this endpoint carries.
    pub(crate) fn context(&self, req: &crate::model::ChatRequest) -> super::http::CallContext {
        super::http::CallContext {
            provider: self.name.clone(),
            request_id: req.request_id.clone(),
            api_key: self.api_key.clone(),
            max_event_bytes: self.max_event_bytes,
        }
    }
}

/// Whether `url` names this machine: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let host = host.to_ascii_lowercase();
            host == "localhost" || host.ends_with(".localhost")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(key: &str) -> EndpointBuilder {
        let mut b = EndpointBuilder::new("p", None, None, None);
        b.base_url = Some("http://127.0.0.1:9/v1".into());
        b.api_key = Some(ApiKey::new(key));
        b
    }

    #[test]
    fn the_key_header_is_made_once_with_its_prefix_and_marked_sensitive() {
        let e = with_key("sk-1")
            .resolve("/chat", "Bearer ")
            .expect("endpoint");
        let h = e.key_header.expect("a key header");
        assert_eq!(h.to_str().ok(), Some("Bearer sk-1"));
        assert!(h.is_sensitive());
        assert_eq!(format!("{h:?}"), "Sensitive");
        let raw = with_key("sk-2").resolve("/m", "").expect("endpoint");
        assert_eq!(
            raw.key_header
                .and_then(|h| h.to_str().ok().map(str::to_string))
                .as_deref(),
            Some("sk-2")
        );
        let mut none = with_key("x");
        none.api_key = None;
        assert!(none
            .resolve("/m", "")
            .expect("endpoint")
            .key_header
            .is_none());
    }
}
