//! State shared across the replicas of a service, through Redis (feature
//! `shared-redis`):
//!
//! - **Pauses.** A pause one replica obeys (a 429 with a server-directed wait)
//!   describes the API key all replicas share: every replica obeys it until the
//!   same instant. Key `{prefix}:pause:{provider}/{model}`, its TTL the pause
//!   (`PX`, extended only, never shortened).
//! - **Opens, by quorum.** A replica whose breaker opens on its own evidence
//!   votes (`{prefix}:opens:{target}`, a sorted set of replica ids scored by the
//!   vote's expiry); the fleet opens the target on every replica when
//!   [`SharedConfig::quorum`] replicas vote within their open times. One sick
//!   replica (a broken network on its host) stops only itself.
//! - **Probes.** When an open ends, a replica claims one of
//!   [`SharedConfig::probes`] leases (`{prefix}:probe:{target}`, a counter with a
//!   TTL) before half-opening; the others stay open until the leases expire, with
//!   jitter. When a probe finds the target well, the others half-open at once.
//!
//! Announcements go on `{prefix}:events`. Nothing else is written: no keys,
//! prompts or responses. Redis owns every expiry (TTLs, and `TIME` inside the
//! scripts), so the replicas' clocks need not agree. The request path reads only
//! the breakers' local gates: Redis slow or down never makes a request slower or
//! fail.

#[cfg(feature = "shared-redis")]
pub(crate) mod ledger;
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
    /// Replicas whose breakers must open a target before the fleet opens it
    /// everywhere (default 2).
    pub quorum: u32,
    /// Probes fleet-wide when an open ends (default 1).
    pub probes: u32,
    /// How long a probe lease lasts (default 5 s).
    pub probe_lease: Duration,
    /// What the spend budgets do while Redis cannot be reached (default:
    /// fail open, counting in this process).
    pub budget_fail: BudgetFail,
}

/// What spend budgets kept in Redis do while it cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetFail {
    /// Count in this process's own ledger meanwhile (each replica then
    /// holds the whole budget on its own).
    #[default]
    Open,
    /// Refuse every attempt a budget counts (`budget_exceeded`, the ledger
    /// named unavailable).
    Closed,
}

impl SharedConfig {
    /// Sharing through the Redis at `url`, with the default prefix and backstop.
    pub fn redis(url: &str) -> Self {
        SharedConfig {
            url: url.to_string(),
            prefix: "steer".to_string(),
            backstop: Duration::from_secs(1),
            quorum: 2,
            probes: 1,
            probe_lease: Duration::from_secs(5),
            budget_fail: BudgetFail::Open,
        }
    }

    /// What the spend budgets do while Redis cannot be reached.
    pub fn budget_fail(mut self, fail: BudgetFail) -> Self {
        self.budget_fail = fail;
        self
    }

    /// Replicas that must open a target before the fleet does (at least 1).
    pub fn quorum(mut self, replicas: u32) -> Self {
        self.quorum = replicas.max(1);
        self
    }

    /// Probes fleet-wide when an open ends (at least 1), and how long each
    /// lease lasts (1 ms to 1 h: Redis keeps it as milliseconds).
    pub fn probes(mut self, probes: u32, lease: Duration) -> Self {
        self.probes = probes.max(1);
        self.probe_lease = probe_lease_within(lease);
        self
    }

    /// The backstop's period as its timer runs it: the field, within 10 ms
    /// and 1 h (the field is public: set directly, it is not checked).
    #[cfg(any(feature = "shared-redis", test))]
    pub(crate) fn backstop_period(&self) -> Duration {
        backstop_within(self.backstop)
    }

    /// A probe lease as Redis keeps it: milliseconds, 1 to an hour's.
    #[cfg(any(feature = "shared-redis", test))]
    pub(crate) fn probe_lease_ms(&self) -> u64 {
        wait_ms(probe_lease_within(self.probe_lease))
    }

    /// The prefix of keys and channels.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_string();
        self
    }

    /// The period of the backstop read (10 ms to 1 h: an actor timer runs it,
    /// which a zero period would spin and a period past the clock would
    /// overflow).
    pub fn backstop(mut self, every: Duration) -> Self {
        self.backstop = backstop_within(every);
        self
    }
}

/// The longest backstop period and probe lease.
const LONGEST: Duration = Duration::from_secs(3600);

/// A backstop period an actor timer can run: 10 ms to [`LONGEST`].
fn backstop_within(every: Duration) -> Duration {
    every.clamp(Duration::from_millis(10), LONGEST)
}

/// A probe lease Redis can keep as milliseconds: 1 ms to [`LONGEST`].
fn probe_lease_within(lease: Duration) -> Duration {
    lease.clamp(Duration::from_millis(1), LONGEST)
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

/// The channel announcements go to.
pub fn events_channel(prefix: &str) -> String {
    format!("{prefix}:events")
}

/// A breaker's target as shared: `provider/model`, or `provider/` for the
/// provider's endpoint.
pub fn target(provider: &str, model: Option<&str>) -> String {
    format!("{provider}/{}", model.unwrap_or(""))
}

/// Reads a target back: the provider and the model (`None`: the endpoint).
pub fn parse_target(target: &str) -> Option<(&str, Option<&str>)> {
    let (provider, model) = target.split_once('/')?;
    (!provider.is_empty()).then_some((provider, (!model.is_empty()).then_some(model)))
}

/// The key of the open votes for a target.
pub fn opens_key(prefix: &str, target: &str) -> String {
    format!("{prefix}:opens:{target}")
}

/// The key of the probe leases of a target.
pub fn probe_key(prefix: &str, target: &str) -> String {
    format!("{prefix}:probe:{target}")
}

/// What goes over the events channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement<'a> {
    /// `pause\n{pause key}\n{ms}`: a pause of `ms` from now.
    Pause {
        /// The provider.
        provider: &'a str,
        /// The model.
        model: &'a str,
        /// The wait.
        wait: Duration,
    },
    /// `open\n{target}\n{votes}`: replicas that opened the target.
    Open {
        /// The target.
        target: &'a str,
        /// Live votes.
        votes: u64,
    },
    /// `recovered\n{target}`: a probe found the target well.
    Recovered {
        /// The target.
        target: &'a str,
    },
}

/// A pause announcement's text.
pub fn announcement(key: &str, ms: u64) -> String {
    format!("pause\n{key}\n{ms}")
}

/// Reads an announcement. Anything else (another service's message on a shared
/// channel, a bad number) is `None`.
pub fn parse_announcement<'a>(prefix: &str, payload: &'a str) -> Option<Announcement<'a>> {
    let mut parts = payload.splitn(3, '\n');
    let (kind, subject, rest) = (parts.next()?, parts.next()?, parts.next());
    match (kind, rest) {
        ("pause", Some(ms)) => {
            let (provider, model) = parse_pause_key(prefix, subject)?;
            let ms: u64 = ms.trim().parse().ok()?;
            Some(Announcement::Pause {
                provider,
                model,
                wait: Duration::from_millis(ms),
            })
        }
        ("open", Some(votes)) => Some(Announcement::Open {
            target: parse_target(subject).map(|_| subject)?,
            votes: votes.trim().parse().ok()?,
        }),
        ("recovered", None) => Some(Announcement::Recovered {
            target: parse_target(subject).map(|_| subject)?,
        }),
        _ => None,
    }
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
    fn a_backstop_and_a_probe_lease_stay_within_what_a_timer_and_redis_take() {
        let set = SharedConfig::redis("redis://127.0.0.1/")
            .backstop(Duration::ZERO)
            .probes(2, Duration::MAX);
        assert_eq!(
            (set.backstop, set.probe_lease),
            (Duration::from_millis(10), LONGEST)
        );
        // Fields set directly are held to the same bounds where they are used.
        let direct = SharedConfig {
            backstop: Duration::MAX,
            probe_lease: Duration::ZERO,
            ..set.clone()
        };
        assert_eq!(direct.backstop_period(), LONGEST);
        assert_eq!(direct.probe_lease_ms(), 1);
        let zero = SharedConfig {
            backstop: Duration::ZERO,
            ..set
        };
        assert_eq!(zero.backstop_period(), Duration::from_millis(10));
    }

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
            Some(Announcement::Pause {
                provider: "east",
                model: "gpt-4o",
                wait: Duration::from_millis(1500)
            })
        );
        assert_eq!(
            parse_announcement("svc", "open\neast/\n2"),
            Some(Announcement::Open {
                target: "east/",
                votes: 2
            })
        );
        assert_eq!(
            parse_announcement("svc", "recovered\neast/gpt-4o"),
            Some(Announcement::Recovered {
                target: "east/gpt-4o"
            })
        );
        for bad in [
            "",
            "pause\nsvc:pause:east/m",
            "pause\nsvc:pause:east/m\nx",
            "pause\nx\n5",
            "pause\nsvc:pause:east/m\n-1",
            "open\n/m\n2",
            "open\neast/m\nmany",
            "recovered\neast/m\nextra",
            "hello\nworld",
        ] {
            assert_eq!(parse_announcement("svc", bad), None, "{bad:?}");
        }
        assert_eq!(target("east", None), "east/");
        assert_eq!(parse_target("east/"), Some(("east", None)));
        assert_eq!(parse_target("east/ft:x"), Some(("east", Some("ft:x"))));
        assert_eq!(parse_target("/x"), None);
        assert_eq!(wait_ms(Duration::ZERO), 1);
        assert_eq!(wait_ms(Duration::MAX), u64::MAX);
    }
}
