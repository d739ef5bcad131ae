//! API keys that never leak into logs, `Debug` output or errors.

use std::fmt;

/// A provider API key.
///
/// It has no `Display`, its `Debug` prints `ApiKey(<redacted>)`, and errors built by
/// steer's providers scrub it from any text a server echoes back.
///
/// ```
/// let key = steer_llm::ApiKey::new("sk-live-123");
/// assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
/// assert_eq!(key.expose(), "sk-live-123");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// Reads a key from an environment variable; empty values count as unset.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var(var)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(ApiKey)
    }

    /// The key itself, for building the authentication header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of this key in `text` by `<redacted>`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 || !text.contains(self.0.as_str()) {
            return text.to_string();
        }
        text.replace(self.0.as_str(), "<redacted>")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_every_occurrence() {
        let key = ApiKey::new("sk-secret-value");
        let out = key.scrub("bad key sk-secret-value, again sk-secret-value");
        assert!(!out.contains("sk-secret-value"));
        assert_eq!(out.matches("<redacted>").count(), 2);
    }

    #[test]
    fn debug_of_a_struct_holding_a_key_hides_it() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            key: ApiKey,
        }
        let text = format!(
            "{:?}",
            Holder {
                key: ApiKey::new("sk-abcdef")
            }
        );
        assert!(!text.contains("sk-abcdef"));
    }
}
