//! Fault plans: what the mock does to one request, and their text form.
//!
//! A plan is written `part+part+...`, each part `kind` or `kind?key=value&key=value`:
//!
//! ```
//! use steer_llm::mock::FaultPlan;
//! let plan: FaultPlan = "latency?ms=50+rate_limit?retry_after=2".parse().unwrap();
//! assert_eq!(plan.to_string(), "latency?ms=50+rate_limit?retry_after=2");
//! ```
//!
//! The kinds are listed in the README (section "Fault injection").

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Server-directed wait headers added to an error response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitHeaders {
    /// `retry-after`, verbatim (seconds, or anything, to test parsers).
    pub retry_after: Option<String>,
    /// `retry-after` as an HTTP-date this many seconds from the response (may be negative).
    pub retry_after_date: Option<i64>,
    /// `retry-after-ms`, verbatim.
    pub retry_after_ms: Option<String>,
    /// `llm_provider-retry-after`, verbatim: the upstream's wait as a gateway
    /// (LiteLLM's proxy) passes it on, prefixed, with no plain `retry-after`.
    pub gateway_retry_after: Option<String>,
    /// `x-should-retry`.
    pub should_retry: Option<bool>,
    /// A 429 whose rate-limit headers still show capacity left (a burst
    /// window or a concurrency limit: Azure evaluates its per-minute limits
    /// over 1-10 s windows), instead of remaining 0 (the key's limit spent).
    pub capacity_left: bool,
}

/// What happens to the response.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A normal reply.
    Normal,
    /// A normal reply whose rate-limit headers say the limit is spent (remaining 0).
    NearlySpent,
    /// A provider error in its status form, by name (see [`super::errors`]).
    Error {
        /// The error's name.
        name: String,
        /// Wait headers to add.
        wait: WaitHeaders,
    },
    /// Any status with the flavour's generic body.
    Status {
        /// The status.
        code: u16,
        /// Wait headers to add.
        wait: WaitHeaders,
    },
    /// An in-band stream error after `after` text chunks (status form if not streaming).
    StreamError {
        /// The error's name.
        name: String,
        /// Text chunks sent first.
        after: Option<usize>,
    },
    /// Stop sending (keep the connection open) after `after` text chunks.
    Stall {
        /// Text chunks sent first.
        after: Option<usize>,
    },
    /// After `after` text chunks sent at once, each next one `ms` later: a
    /// stream that trickles after a fast first token (issue 28's incident:
    /// 0.8-1.6 tokens a second where a healthy deployment gives 143-269).
    Trickle {
        /// Text chunks sent first, at once.
        after: Option<usize>,
        /// Milliseconds before each later chunk.
        ms: u64,
    },
    /// After `after` text chunks, keep-alive events every `ms` and nothing
    /// else, until the server's stall limit: a stream that is alive by every
    /// byte it sends and says nothing. Anthropic documents "any number of
    /// `ping` events" in a stream (shared/reference/providers.md §2);
    /// OpenAI-compatible proxies send SSE comments (OpenRouter's `:
    /// OPENROUTER PROCESSING`, documented in its streaming guide). A non-streaming
    /// request stalls instead.
    Pings {
        /// Text chunks sent first.
        after: Option<usize>,
        /// Milliseconds between keep-alives.
        ms: u64,
    },
    /// End the body cleanly, without the terminal event, after `after` text chunks.
    Truncate {
        /// Text chunks sent first.
        after: Option<usize>,
    },
    /// Abort the connection mid-body after `after` text chunks.
    Reset {
        /// Text chunks sent first.
        after: Option<usize>,
    },
    /// Send a data line that is not JSON after `after` text chunks, then end.
    MalformedJson {
        /// Text chunks sent first.
        after: Option<usize>,
    },
    /// Send bytes that are not SSE (invalid UTF-8) after `after` text chunks, then end.
    MalformedSse {
        /// Text chunks sent first.
        after: Option<usize>,
    },
    /// A (background) response that stays `queued`: the stream ends
    /// (connection reset) after `response.created` and `response.queued`, and
    /// a resume of it sends nothing more.
    StuckQueued,
    /// A streaming request answered with the whole reply as JSON
    /// (`content-type: application/json`), as LiteLLM's proxy answers
    /// `/v1/messages` for some models whatever `stream` says.
    WholeReply,
    /// A normal reply whose headers come `ms` late: in a mix, a slow tail
    /// (issue 28's measured brownout: 5% of calls 20 times slower).
    Slow {
        /// Milliseconds before the headers.
        ms: u64,
    },
    /// A seeded random mix: each request draws one outcome.
    Mix(Mix),
}

/// A seeded random mix of outcomes, in percent.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// Seed of the draw; the n-th request to draw gets the same outcome every run.
    pub seed: u64,
    /// Outcomes and their percentages (the rest is normal).
    pub entries: Vec<(Outcome, f64)>,
}

impl Mix {
    /// The outcome a roll from 0 to 100 draws: each entry takes its
    /// percentage of the range in turn, the rest is normal.
    ///
    /// ```
    /// use steer_llm::mock::{FaultPlan, Outcome};
    /// let plan: FaultPlan = "mix?seed=1&server_error=30&reset=20".parse().unwrap();
    /// let Outcome::Mix(mix) = plan.outcome else { unreachable!() };
    /// assert!(matches!(mix.pick(10.0), Outcome::Error { .. }));
    /// assert!(matches!(mix.pick(40.0), Outcome::Reset { .. }));
    /// assert_eq!(mix.pick(60.0), Outcome::Normal);
    /// ```
    pub fn pick(&self, roll: f64) -> Outcome {
        let mut acc = 0.0;
        for (outcome, pct) in &self.entries {
            acc += pct;
            if roll < acc {
                return outcome.clone();
            }
        }
        Outcome::Normal
    }
}

/// What the mock does to one request: timing plus one outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// Delay before the response headers.
    pub latency: Option<Duration>,
    /// Delay before each streamed event.
    pub chunk_delay: Option<Duration>,
    /// Delay before the first content event of a stream, after its headers
    /// and opening events (OpenAI's role-only chunk, Anthropic's
    /// `message_start`, the Responses API's `response.created`): a slow
    /// time to first token, as a queued or thinking model gives.
    pub first_token: Option<Duration>,
    /// What the response is.
    pub outcome: Outcome,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan::from(Outcome::Normal)
    }
}

impl From<Outcome> for FaultPlan {
    fn from(outcome: Outcome) -> Self {
        FaultPlan {
            latency: None,
            chunk_delay: None,
            first_token: None,
            outcome,
        }
    }
}

impl FaultPlan {
    /// The plan with a `slow` outcome as the latency it is (a normal reply,
    /// later).
    pub fn slow_as_latency(mut self) -> Self {
        if let Outcome::Slow { ms } = self.outcome {
            let late = self.latency.unwrap_or_default();
            self.latency = Some(late.saturating_add(Duration::from_millis(ms)));
            self.outcome = Outcome::Normal;
        }
        self
    }

    /// A normal reply.
    pub fn normal() -> Self {
        Self::default()
    }
    /// The provider error `name` in its status form.
    pub fn error(name: &str) -> Self {
        Outcome::Error {
            name: name.to_string(),
            wait: WaitHeaders::default(),
        }
        .into()
    }
    /// Any status, with a generic body.
    pub fn status(code: u16) -> Self {
        Outcome::Status {
            code,
            wait: WaitHeaders::default(),
        }
        .into()
    }
    /// The in-band error `name` after `after` text chunks.
    pub fn stream_error(name: &str, after: usize) -> Self {
        Outcome::StreamError {
            name: name.to_string(),
            after: Some(after),
        }
        .into()
    }
    /// A stall after `after` text chunks.
    pub fn stall(after: usize) -> Self {
        Outcome::Stall { after: Some(after) }.into()
    }
    /// A clean end without the terminal event after `after` text chunks.
    pub fn truncate(after: usize) -> Self {
        Outcome::Truncate { after: Some(after) }.into()
    }
    /// A connection reset after `after` text chunks.
    pub fn reset(after: usize) -> Self {
        Outcome::Reset { after: Some(after) }.into()
    }
    /// A malformed JSON data line after `after` text chunks.
    pub fn malformed_json(after: usize) -> Self {
        Outcome::MalformedJson { after: Some(after) }.into()
    }
    /// Bytes that are not SSE after `after` text chunks.
    pub fn malformed_sse(after: usize) -> Self {
        Outcome::MalformedSse { after: Some(after) }.into()
    }
    /// Adds a delay before the response headers.
    pub fn with_latency(mut self, d: Duration) -> Self {
        self.latency = Some(d);
        self
    }
    /// Adds a delay before a stream's first content event (after its
    /// headers and opening events).
    pub fn with_first_token(mut self, d: Duration) -> Self {
        self.first_token = Some(d);
        self
    }
    /// Adds a delay before each streamed event.
    pub fn with_chunk_delay(mut self, d: Duration) -> Self {
        self.chunk_delay = Some(d);
        self
    }
    /// Adds `retry-after: <value>` (verbatim) to an error.
    pub fn retry_after(self, value: &str) -> Self {
        self.map_wait(|w| w.retry_after = Some(value.to_string()))
    }
    /// Adds `retry-after` as an HTTP-date `secs` seconds from the response.
    pub fn retry_after_date(self, secs: i64) -> Self {
        self.map_wait(|w| w.retry_after_date = Some(secs))
    }
    /// A streaming request answered with the whole reply as JSON (see
    /// [`Outcome::WholeReply`]).
    pub fn whole_reply() -> Self {
        Outcome::WholeReply.into()
    }
    /// Adds `llm_provider-retry-after: <value>` (verbatim) to an error, as
    /// LiteLLM's proxy passes on an upstream wait.
    pub fn gateway_retry_after(self, value: &str) -> Self {
        self.map_wait(|w| w.gateway_retry_after = Some(value.to_string()))
    }
    /// Adds `retry-after-ms: <value>` (verbatim) to an error.
    pub fn retry_after_ms(self, value: &str) -> Self {
        self.map_wait(|w| w.retry_after_ms = Some(value.to_string()))
    }
    /// Adds `x-should-retry` to an error.
    pub fn should_retry(self, value: bool) -> Self {
        self.map_wait(|w| w.should_retry = Some(value))
    }
    /// A 429 whose rate-limit headers still show capacity left (see
    /// [`WaitHeaders::capacity_left`]).
    pub fn capacity_left(self) -> Self {
        self.map_wait(|w| w.capacity_left = true)
    }

    fn map_wait(mut self, f: impl FnOnce(&mut WaitHeaders)) -> Self {
        if let Outcome::Error { wait, .. } | Outcome::Status { wait, .. } = &mut self.outcome {
            f(wait);
        }
        self
    }
}

/// Why a fault spec does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault spec {spec:?}: {reason}")]
pub struct InvalidFaultSpec {
    /// The spec.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for FaultPlan {
    type Err = InvalidFaultSpec;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| InvalidFaultSpec {
            spec: spec.to_string(),
            reason,
        };
        let mut plan = FaultPlan::default();
        let mut outcome_set = false;
        for part in spec.split('+').map(str::trim) {
            let (kind, params) = parse_part(part).map_err(&fail)?;
            match kind {
                "latency" | "chunk_delay" | "first_token" => {
                    let ms = params.number::<u64>("ms").map_err(&fail)?.unwrap_or(0);
                    params.only(&["ms"]).map_err(&fail)?;
                    let d = Some(Duration::from_millis(ms));
                    match kind {
                        "latency" => plan.latency = d,
                        "chunk_delay" => plan.chunk_delay = d,
                        _ => plan.first_token = d,
                    }
                }
                _ => {
                    if outcome_set {
                        return Err(fail(format!(
                            "{part:?}: only one outcome per plan (latency, chunk_delay and first_token combine)"
                        )));
                    }
                    plan.outcome = parse_outcome(kind, &params).map_err(&fail)?;
                    outcome_set = true;
                }
            }
        }
        Ok(plan)
    }
}

struct Params<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Params<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn number<T: FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        self.get(key)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| format!("{key}={v:?} is not a valid number"))
            })
            .transpose()
    }

    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.0.iter().find(|(k, _)| !allowed.contains(k)) {
            Some((k, _)) => Err(format!(
                "unknown parameter {k:?} (allowed: {})",
                allowed.join(", ")
            )),
            None => Ok(()),
        }
    }
}

fn parse_part(part: &str) -> Result<(&str, Params<'_>), String> {
    if part.is_empty() {
        return Err("empty part".into());
    }
    let (kind, query) = part.split_once('?').unwrap_or((part, ""));
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("parameter {pair:?} is not key=value"))?;
        params.push((k.trim(), v.trim()));
    }
    Ok((kind.trim(), Params(params)))
}

fn parse_wait(params: &Params<'_>) -> Result<WaitHeaders, String> {
    Ok(WaitHeaders {
        retry_after: params.get("retry_after").map(str::to_string),
        retry_after_date: params.number("retry_after_date")?,
        retry_after_ms: params.get("retry_after_ms").map(str::to_string),
        gateway_retry_after: params.get("gateway_retry_after").map(str::to_string),
        should_retry: params
            .get("should_retry")
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(format!("should_retry={other:?} must be true or false")),
            })
            .transpose()?,
        capacity_left: match params.get("capacity_left") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(format!("capacity_left={other:?} must be true or false")),
        },
    })
}

const WAIT_KEYS: &[&str] = &[
    "retry_after",
    "retry_after_date",
    "retry_after_ms",
    "gateway_retry_after",
    "should_retry",
    "capacity_left",
];

fn known_error(name: &str) -> Result<(), String> {
    if super::errors::all_names().contains(&name) {
        Ok(())
    } else {
        Err(format!(
            "unknown fault or error name {name:?}; errors: {}",
            super::errors::all_names().join(", ")
        ))
    }
}

fn parse_outcome(kind: &str, params: &Params<'_>) -> Result<Outcome, String> {
    let after = || params.number::<usize>("after");
    Ok(match kind {
        "ok" | "normal" => {
            params.only(&[])?;
            Outcome::Normal
        }
        "nearly_spent" => {
            params.only(&[])?;
            Outcome::NearlySpent
        }
        "whole_reply" => {
            params.only(&[])?;
            Outcome::WholeReply
        }
        "stuck_queued" => {
            params.only(&[])?;
            Outcome::StuckQueued
        }
        "trickle" => {
            params.only(&["after", "ms"])?;
            Outcome::Trickle {
                after: after()?,
                ms: params.number::<u64>("ms")?.ok_or("trickle needs ms=N")?,
            }
        }
        "slow" => {
            params.only(&["ms"])?;
            Outcome::Slow {
                ms: params.number::<u64>("ms")?.unwrap_or(1000),
            }
        }
        "pings" => {
            params.only(&["after", "ms"])?;
            Outcome::Pings {
                after: after()?,
                ms: params
                    .number::<u64>("ms")?
                    .filter(|ms| *ms > 0)
                    .ok_or("pings needs ms=N (at least 1)")?,
            }
        }
        "status" => {
            let code = params
                .number::<u16>("code")?
                .filter(|c| (400..=599).contains(c))
                .ok_or("status needs code=400..599")?;
            let mut allowed = vec!["code"];
            allowed.extend_from_slice(WAIT_KEYS);
            params.only(&allowed)?;
            Outcome::Status {
                code,
                wait: parse_wait(params)?,
            }
        }
        "stream_error" => {
            params.only(&["name", "after"])?;
            let name = params.get("name").unwrap_or("server_error");
            known_error(name)?;
            Outcome::StreamError {
                name: name.to_string(),
                after: after()?,
            }
        }
        "stall" | "truncate" | "reset" | "malformed_json" | "malformed_sse" => {
            params.only(&["after"])?;
            let after = after()?;
            match kind {
                "stall" => Outcome::Stall { after },
                "truncate" => Outcome::Truncate { after },
                "reset" => Outcome::Reset { after },
                "malformed_json" => Outcome::MalformedJson { after },
                _ => Outcome::MalformedSse { after },
            }
        }
        "mix" => {
            let seed = params.number::<u64>("seed")?.unwrap_or(0);
            let mut entries = Vec::new();
            for (k, v) in params.0.iter().filter(|(k, _)| *k != "seed") {
                let pct: f64 = v
                    .trim_end_matches('%')
                    .parse()
                    .ok()
                    .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                    .ok_or_else(|| format!("mix entry {k}={v:?} is not a percentage"))?;
                let outcome = parse_outcome(k, &Params(Vec::new()))?;
                if matches!(outcome, Outcome::Mix(_)) {
                    return Err("a mix cannot contain a mix".into());
                }
                entries.push((outcome, pct));
            }
            let total: f64 = entries.iter().map(|(_, p)| p).sum();
            if total > 100.0 {
                return Err(format!("mix percentages add up to {total} (> 100)"));
            }
            Outcome::Mix(Mix { seed, entries })
        }
        name => {
            known_error(name)?;
            params.only(WAIT_KEYS)?;
            Outcome::Error {
                name: name.to_string(),
                wait: parse_wait(params)?,
            }
        }
    })
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = self.latency {
            parts.push(format!("latency?ms={}", d.as_millis()));
        }
        if let Some(d) = self.chunk_delay {
            parts.push(format!("chunk_delay?ms={}", d.as_millis()));
        }
        if let Some(d) = self.first_token {
            parts.push(format!("first_token?ms={}", d.as_millis()));
        }
        if self.outcome != Outcome::Normal || parts.is_empty() {
            parts.push(self.outcome.to_string());
        }
        f.write_str(&parts.join("+"))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn with_params(kind: &str, params: Vec<String>) -> String {
            if params.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}?{}", params.join("&"))
            }
        }
        fn wait_params(w: &WaitHeaders) -> Vec<String> {
            let mut p = Vec::new();
            if let Some(v) = &w.retry_after {
                p.push(format!("retry_after={v}"));
            }
            if let Some(v) = w.retry_after_date {
                p.push(format!("retry_after_date={v}"));
            }
            if let Some(v) = &w.retry_after_ms {
                p.push(format!("retry_after_ms={v}"));
            }
            if let Some(v) = &w.gateway_retry_after {
                p.push(format!("gateway_retry_after={v}"));
            }
            if let Some(v) = w.should_retry {
                p.push(format!("should_retry={v}"));
            }
            if w.capacity_left {
                p.push("capacity_left=true".into());
            }
            p
        }
        let after = |a: &Option<usize>| a.map(|n| format!("after={n}")).into_iter().collect();
        let text = match self {
            Outcome::Normal => "ok".to_string(),
            Outcome::NearlySpent => "nearly_spent".to_string(),
            Outcome::WholeReply => "whole_reply".to_string(),
            Outcome::StuckQueued => "stuck_queued".to_string(),
            Outcome::Trickle { after: a, ms } => {
                let mut p: Vec<String> = after(a);
                p.push(format!("ms={ms}"));
                with_params("trickle", p)
            }
            Outcome::Slow { ms } => format!("slow?ms={ms}"),
            Outcome::Pings { after: a, ms } => {
                let mut p: Vec<String> = after(a);
                p.push(format!("ms={ms}"));
                with_params("pings", p)
            }
            Outcome::Error { name, wait } => with_params(name, wait_params(wait)),
            Outcome::Status { code, wait } => {
                let mut p = vec![format!("code={code}")];
                p.extend(wait_params(wait));
                with_params("status", p)
            }
            Outcome::StreamError { name, after: a } => {
                let mut p = vec![format!("name={name}")];
                p.extend(after(a));
                with_params("stream_error", p)
            }
            Outcome::Stall { after: a } => with_params("stall", after(a)),
            Outcome::Truncate { after: a } => with_params("truncate", after(a)),
            Outcome::Reset { after: a } => with_params("reset", after(a)),
            Outcome::MalformedJson { after: a } => with_params("malformed_json", after(a)),
            Outcome::MalformedSse { after: a } => with_params("malformed_sse", after(a)),
            Outcome::Mix(mix) => {
                let mut p = vec![format!("seed={}", mix.seed)];
                p.extend(mix.entries.iter().map(|(o, pct)| format!("{o}={pct}")));
                with_params("mix", p)
            }
        };
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip() {
        for spec in [
            "ok",
            "rate_limit",
            "rate_limit?retry_after=2",
            "rate_limit?retry_after_date=30",
            "rate_limit?retry_after_ms=150.5",
            "server_error?should_retry=false",
            "rate_limit?retry_after=1&capacity_left=true",
            "status?code=418",
            "stream_error?name=overloaded&after=3",
            "stall?after=5",
            "truncate?after=0",
            "reset?after=2",
            "malformed_json?after=1",
            "malformed_sse",
            "latency?ms=200+overloaded",
            "chunk_delay?ms=5",
            "first_token?ms=300+reset?after=2",
            "mix?seed=7&server_error=10&reset=5&rate_limit=15",
        ] {
            let plan: FaultPlan = spec.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(plan.to_string(), spec);
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, needle) in [
            ("", "empty part"),
            ("explode", "unknown fault or error name"),
            ("stall?after=x", "not a valid number"),
            ("stall?when=3", "unknown parameter"),
            ("status?code=200", "status needs code"),
            ("rate_limit+overloaded", "only one outcome"),
            ("mix?server_error=80&reset=30", "add up to"),
            ("server_error?should_retry=maybe", "true or false"),
        ] {
            let err = spec.parse::<FaultPlan>().unwrap_err();
            assert!(err.to_string().contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn builders_match_their_spec() {
        assert_eq!(
            FaultPlan::error("rate_limit").retry_after("2"),
            "rate_limit?retry_after=2".parse().unwrap()
        );
        assert_eq!(
            FaultPlan::reset(3).with_latency(Duration::from_millis(10)),
            "latency?ms=10+reset?after=3".parse().unwrap()
        );
    }
}
