//! State shared across the replicas of a service: rate-limit pauses, through
//! Redis (feature `shared-redis`). A pause one replica obeys (a 429 with a
//! server-directed wait) describes the API key all replicas share, so every
//! replica obeys it until the same instant.
//!
//! What goes to Redis: for each paused `(provider, model)`, a key
//! `{prefix}:pause:{provider}/{model}` whose TTL (set with `PX`, extended only,
//! never shortened) is the pause, and a message on `{prefix}:events`. Nothing
//! else: no keys, prompts or responses. Redis owns the expiry, so the replicas'
//! clocks need not agree. The request path reads only the breaker's local gates:
//! Redis being slow or down never makes a request slower or fail.
//!
//! Shared breaker opens (with a quorum) and fleet-wide probe leases are not
//! shared yet (see ARCHITECTURE.md).

#[cfg(feature = "shared-redis")]
pub mod redis;

use std::time::Duration;

/// Where and how a client shares its pauses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedConfig {
    /// The Redis URL (`redis://host:port/db`; user and password in the URL).
    pub url: String,
    /// The prefix of every key and channel, so that several services can share
    /// one Redis (default `steer`).
    pub prefix: String,
    /// How often the full state is read again, as a backstop for pub/sub
    /// messages lost while disconnected (default 1 s).
    pub backstop: Duration,
}

impl SharedConfig {
    /// Sharing through the Redis at `url`, with the default prefix and backstop.
    pub fn redis(url: &str) -> Self {
        SharedConfig {
            url: url.to_string(),
            prefix: "steer".to_string(),
            backstop: Duration::from_secs(1),
        }
    }

    /// The prefix of keys and channels.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_string();
        self
    }

    /// The period of the backstop read.
    pub fn backstop(mut self, every: Duration) -> Self {
        self.backstop = every;
        self
    }
}

/// The key of a pause of `model` at `provider`.
///
/// ```
/// use steer_llm::shared::{pause_key, parse_pause_key};
/// let key = pause_key("steer", "openai", "ft:gpt-4o:org:x");
/// assert_eq!(key, "steer:pause:openai/ft:gpt-4o:org:x");
/// assert_eq!(parse_pause_key("steer", &key), Some(("openai", "ft:gpt-4o:org:x")));
/// ```
pub fn pause_key(prefix: &str, provider: &str, model: &str) -> String {
    format!("{prefix}:pause:{provider}/{model}")
}

/// The provider and model of a pause key (provider names hold no `/`; models may
/// hold anything).
pub fn parse_pause_key<'a>(prefix: &str, key: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(":pause:")?;
    let (provider, model) = rest.split_once('/')?;
    (!provider.is_empty() && !model.is_empty()).then_some((provider, model))
}

/// The channel pause announcements go to.
pub fn events_channel(prefix: &str) -> String {
    format!("{prefix}:events")
}

/// An announcement: `{pause key}\n{milliseconds}`.
pub fn announcement(key: &str, ms: u64) -> String {
    format!("{key}\n{ms}")
}

/// Reads an announcement back: the provider, model and wait. Anything else
/// (another service's message on a shared channel, a bad number) is `None`.
pub fn parse_announcement<'a>(
    prefix: &str,
    payload: &'a str,
) -> Option<(&'a str, &'a str, Duration)> {
    let (key, ms) = payload.split_once('\n')?;
    let (provider, model) = parse_pause_key(prefix, key)?;
    let ms: u64 = ms.trim().parse().ok()?;
    Some((provider, model, Duration::from_millis(ms)))
}

/// Milliseconds of a wait as Redis takes them: at least 1 (`PX 0` is an error),
/// saturating.
pub fn wait_ms(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_announcements_read_back() {
        let key = pause_key("svc", "east", "gpt-4o");
        assert_eq!(parse_pause_key("svc", &key), Some(("east", "gpt-4o")));
        assert_eq!(parse_pause_key("other", &key), None);
        assert_eq!(parse_pause_key("svc", "svc:pause:nomodel"), None);
        assert_eq!(parse_pause_key("svc", "svc:pause:/m"), None);
        let a = announcement(&key, 1500);
        assert_eq!(
            parse_announcement("svc", &a),
            Some(("east", "gpt-4o", Duration::from_millis(1500)))
        );
        for bad in [
            "",
            "svc:pause:east/m",
            "svc:pause:east/m\nx",
            "x\n5",
            "svc:pause:east/m\n-1",
        ] {
            assert_eq!(parse_announcement("svc", bad), None, "{bad:?}");
        }
        assert_eq!(wait_ms(Duration::ZERO), 1);
        assert_eq!(wait_ms(Duration::MAX), u64::MAX);
    }
}
