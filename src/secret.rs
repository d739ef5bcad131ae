//! API keys that never leak into logs, `Debug` output or errors.

use std::fmt;

/// The shortest piece of a key's start that is scrubbed wherever it appears.
pub const MIN_PREFIX: usize = 8;

const REDACTED: &str = "<redacted>";

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
///
/// Shared, not copied: every attempt's error context holds it (a clone is a
/// reference count, not an allocation).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(std::sync::Arc<str>);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(std::sync::Arc::from(key.into()))
    }

    /// Reads a key from an environment variable; empty values count as unset.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var(var)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(ApiKey::new)
    }

    /// The key itself, for building the authentication header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of this key in `text` by `<redacted>`, and every
    /// occurrence of a piece of its start at least [`MIN_PREFIX`] characters long
    /// (a key cut by a length limit, or echoed half).
    pub fn scrub(&self, text: &str) -> String {
        match self.scrub_bytes(text.as_bytes()) {
            std::borrow::Cow::Borrowed(_) => text.to_string(),
            std::borrow::Cow::Owned(bytes) => String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// [`ApiKey::scrub`] over bytes (a body that may not be text); borrowed when
    /// nothing was found.
    pub fn scrub_bytes<'a>(&self, text: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let key = self.0.as_bytes();
        let Some(&first) = key.first() else {
            return std::borrow::Cow::Borrowed(text);
        };
        // Shorter keys are only scrubbed whole (and not at all under 4 bytes,
        // where a match says nothing).
        let min = if key.len() < 4 {
            return std::borrow::Cow::Borrowed(text);
        } else {
            MIN_PREFIX.min(key.len())
        };
        let mut out: Option<Vec<u8>> = None;
        let mut i = 0usize;
        while i < text.len() {
            let matched = if text[i] == first {
                let mut m = text[i..]
                    .iter()
                    .zip(key)
                    .take_while(|(a, b)| a == b)
                    .count();
                while !self.0.is_char_boundary(m) {
                    m = m.saturating_sub(1);
                }
                m
            } else {
                0
            };
            if matched >= min {
                let buf = out.get_or_insert_with(|| text[..i].to_vec());
                buf.extend_from_slice(REDACTED.as_bytes());
                i = i.saturating_add(matched);
            } else {
                if let Some(buf) = out.as_mut() {
                    buf.push(text[i]);
                }
                i = i.saturating_add(1);
            }
        }
        match out {
            Some(buf) => std::borrow::Cow::Owned(buf),
            None => std::borrow::Cow::Borrowed(text),
        }
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
    fn pieces_of_the_key_start_are_scrubbed_too() {
        let key = ApiKey::new("sk-proj-0123456789abcdef");
        let out = key.scrub("cut here: sk-proj-0123 and whole sk-proj-0123456789abcdef end");
        assert_eq!(out, "cut here: <redacted> and whole <redacted> end");
        // Seven characters are not enough to say it is the key.
        assert_eq!(key.scrub("sk-proj"), "sk-proj");
        assert_eq!(key.scrub("at the end sk-proj-"), "at the end <redacted>");
        let short = ApiKey::new("abcde");
        assert_eq!(short.scrub("x abcde abcd"), "x <redacted> abcd");
        assert!(matches!(
            key.scrub_bytes(b"nothing here"),
            std::borrow::Cow::Borrowed(_)
        ));
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
