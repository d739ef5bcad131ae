//! Server-directed waits and rate-limit hints, read from headers and messages.
//!
//! Every parser here ignores what it cannot trust: values that are not finite, not
//! positive, overflowing or unparseable give `None`, never a panic.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// The headers the classifier reads: each name becomes the index of its value in a
/// [`Scanned`] set, and `index_of` finds a header's index by its name with one
/// `match` (a jump on length, then a compare), not a compare with every name.
macro_rules! names {
    ($($id:ident = $name:literal;)*) => {
        const COUNT: usize = [$(stringify!($id)),*].len();
        names!(@index 0usize; $($id)*);
        #[cfg(test)]
        const NAMES: [&str; COUNT] = [$($name),*];
        fn index_of(name: &str) -> Option<usize> {
            match name {
                $($name => Some($id),)*
                _ => None,
            }
        }
    };
    (@index $n:expr; $id:ident $($rest:ident)*) => {
        const $id: usize = $n;
        names!(@index $n + 1usize; $($rest)*);
    };
    (@index $n:expr;) => {};
}

names! {
    SHOULD_RETRY = "x-should-retry";
    RETRY_AFTER = "retry-after";
    RETRY_AFTER_MS = "retry-after-ms";
    GATEWAY_RETRY_AFTER = "llm_provider-retry-after";
    GATEWAY_RETRY_AFTER_MS = "llm_provider-retry-after-ms";
    OPENAI_REMAINING_REQUESTS = "x-ratelimit-remaining-requests";
    OPENAI_REMAINING_TOKENS = "x-ratelimit-remaining-tokens";
    OPENAI_RESET_REQUESTS = "x-ratelimit-reset-requests";
    OPENAI_RESET_TOKENS = "x-ratelimit-reset-tokens";
    ANTHROPIC_REMAINING_REQUESTS = "anthropic-ratelimit-requests-remaining";
    ANTHROPIC_RESET_REQUESTS = "anthropic-ratelimit-requests-reset";
    ANTHROPIC_REMAINING_TOKENS = "anthropic-ratelimit-tokens-remaining";
    ANTHROPIC_REMAINING_INPUT = "anthropic-ratelimit-input-tokens-remaining";
    ANTHROPIC_REMAINING_OUTPUT = "anthropic-ratelimit-output-tokens-remaining";
    ANTHROPIC_RESET_TOKENS = "anthropic-ratelimit-tokens-reset";
    ANTHROPIC_RESET_INPUT = "anthropic-ratelimit-input-tokens-reset";
    ANTHROPIC_RESET_OUTPUT = "anthropic-ratelimit-output-tokens-reset";
}
use steer_actors::RateLimitHints;

/// The values of the headers the classifier reads, found in one pass over a
/// response's headers: cheaper than a hashed lookup for each name (a 429 carries a
/// dozen headers and the classifier asks for up to fifteen). The first value of a
/// repeated header counts, as with `HeaderMap::get`.
pub struct Scanned<'a>([Option<&'a str>; COUNT]);

impl<'a> Scanned<'a> {
    /// Scans `headers` once.
    pub fn of(headers: &'a HeaderMap) -> Self {
        let mut values = [None; COUNT];
        for (name, value) in headers {
            if let Some(i) = index_of(name.as_str()) {
                if values[i].is_none() {
                    values[i] = Some(value.to_str().map(str::trim).unwrap_or(""));
                }
            }
        }
        Scanned(values)
    }

    fn get(&self, name: usize) -> Option<&'a str> {
        self.0[name].filter(|v| !v.is_empty())
    }
}

/// A positive, finite number of seconds as a duration.
fn positive_secs(secs: f64) -> Option<Duration> {
    if secs.is_finite() && secs > 0.0 {
        // A value below a nanosecond rounds to zero: no wait at all.
        Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| !d.is_zero())
    } else {
        None
    }
}

/// `x-should-retry: true|false`, which overrides every status rule.
pub fn should_retry(headers: &HeaderMap) -> Option<bool> {
    should_retry_in(&Scanned::of(headers))
}

/// [`should_retry`] over headers already scanned.
pub fn should_retry_in(headers: &Scanned<'_>) -> Option<bool> {
    match headers.get(SHOULD_RETRY)? {
        v if v.eq_ignore_ascii_case("true") => Some(true),
        v if v.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The server-directed wait: `retry-after-ms` (float milliseconds), then
/// `retry-after` as float seconds, then as an HTTP-date relative to `now`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// let mut h = http::HeaderMap::new();
/// h.insert("retry-after", "2".parse().unwrap());
/// assert_eq!(steer_llm::classify::wait::retry_after(&h, SystemTime::now()), Some(Duration::from_secs(2)));
/// h.insert("retry-after-ms", "inf".parse().unwrap()); // ignored: not finite
/// assert_eq!(steer_llm::classify::wait::retry_after(&h, SystemTime::now()), Some(Duration::from_secs(2)));
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    retry_after_in(&Scanned::of(headers), now)
}

/// [`retry_after`] over headers already scanned. A gateway's own wait comes
/// first; the upstream's, as LiteLLM's proxy passes it on (prefixed
/// `llm_provider-`, the plain header absent), when the gateway gave none.
pub fn retry_after_in(headers: &Scanned<'_>, now: SystemTime) -> Option<Duration> {
    wait_in(headers, RETRY_AFTER_MS, RETRY_AFTER, now)
        .or_else(|| wait_in(headers, GATEWAY_RETRY_AFTER_MS, GATEWAY_RETRY_AFTER, now))
}

/// The wait of one pair of headers: milliseconds first, then seconds or an HTTP-date.
fn wait_in(headers: &Scanned<'_>, ms: usize, secs: usize, now: SystemTime) -> Option<Duration> {
    if let Some(wait) = headers
        .get(ms)
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| positive_secs(ms / 1000.0))
    {
        return Some(wait);
    }
    let value = headers.get(secs)?;
    if let Ok(secs) = value.parse::<f64>() {
        return positive_secs(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    at.duration_since(now).ok().filter(|d| !d.is_zero())
}

/// The wait an error message states: OpenAI's "Please try again in 84ms /
/// 1.146s / 6s / 1m30s", or Azure OpenAI's "Please retry after 37 seconds."
/// (both 429 families of responses-api.md §8).
pub fn try_again_in(message: &str) -> Option<Duration> {
    if let Some(rest) = after_marker(message, "try again in ") {
        let token = rest
            .split(|c: char| c.is_whitespace() || c == ',')
            .next()?
            .trim_end_matches('.');
        return go_duration(token).filter(|d| !d.is_zero());
    }
    let rest = after_marker(message, "retry after ")?;
    let mut words = rest.split_whitespace();
    let number = words.next()?;
    let unit = words.next()?.trim_end_matches(['.', ',']);
    if !matches!(unit.to_ascii_lowercase().as_str(), "second" | "seconds") {
        return None;
    }
    let secs: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
}

/// What follows the first `marker` in `message` (ASCII case ignored).
fn after_marker<'a>(message: &'a str, marker: &str) -> Option<&'a str> {
    let at = message
        .char_indices()
        .find(|(i, _)| {
            message
                .get(*i..i.saturating_add(marker.len()))
                .is_some_and(|s| s.eq_ignore_ascii_case(marker))
        })
        .map(|(i, _)| i)?;
    message.get(at.saturating_add(marker.len())..)
}

/// Parses a Go duration (`12ms`, `1s`, `1m30s`, `6m0s`, `1h2m3.5s`, `250us`).
///
/// ```
/// use std::time::Duration;
/// use steer_llm::classify::wait::go_duration;
/// assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
/// assert_eq!(go_duration("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
/// assert_eq!(go_duration("12ms"), Some(Duration::from_millis(12)));
/// assert_eq!(go_duration("soon"), None);
/// ```
pub fn go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim().as_bytes();
    if rest == b"0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    // Integer arithmetic on bytes (it runs on every reply's rate-limit headers):
    // no float parse; a fraction is read to 12 digits (a trillionth of its unit)
    // and the sum cut to whole nanoseconds.
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let whole_len = digits(rest);
        let whole = rest[..whole_len].iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        rest = &rest[whole_len..];
        let mut fraction: &[u8] = &[];
        if let Some((b'.', after)) = rest.split_first() {
            let len = digits(after);
            fraction = &after[..len];
            rest = &after[len..];
        }
        if whole_len == 0 && fraction.is_empty() {
            return None;
        }
        let unit_len = rest
            .iter()
            .position(|b| b.is_ascii_digit() || *b == b'.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            b"h" => Unit::Seconds(3600),
            b"m" => Unit::Seconds(60),
            b"s" => Unit::Seconds(1),
            b"ms" => Unit::PerSecond(1_000),
            b"us" => Unit::PerSecond(1_000_000),
            u if u == "µs".as_bytes() || u == "μs".as_bytes() => Unit::PerSecond(1_000_000),
            b"ns" => Unit::PerSecond(1_000_000_000),
            _ => return None,
        };
        rest = &rest[unit_len..];
        // The fraction as trillionths of a unit.
        let mut trillionths = 0u64;
        if !fraction.is_empty() {
            for i in 0..12 {
                let digit = fraction.get(i).map_or(0, |d| u64::from(d - b'0'));
                trillionths = trillionths * 10 + digit;
            }
        }
        let part = match unit {
            Unit::Seconds(secs) => Duration::from_secs(whole.checked_mul(secs)?)
                .checked_add(Duration::from_nanos(trillionths * secs / 1_000))?,
            Unit::PerSecond(per) => {
                let nanos_each = 1_000_000_000 / per;
                let whole_part = Duration::new(whole / per, ((whole % per) * nanos_each) as u32);
                whole_part.checked_add(Duration::from_nanos(trillionths / (per * 1_000)))?
            }
        };
        total = total.checked_add(part)?;
    }
    Some(total)
}

/// A Go duration's unit: a whole number of seconds, or a fraction of one.
#[derive(Clone, Copy)]
enum Unit {
    Seconds(u64),
    PerSecond(u64),
}

/// How many ASCII digits `bytes` begins with.
fn digits(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len())
}

/// Time from `now` until an RFC 3339 instant (zero if it has passed).
pub fn until_rfc3339(value: &str, now: SystemTime) -> Option<Duration> {
    let at =
        time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    let now = time::OffsetDateTime::from(now);
    let diff = at - now;
    if diff.is_negative() {
        Some(Duration::ZERO)
    } else {
        Duration::try_from(diff).ok()
    }
}

/// Rate-limit counts and resets: OpenAI's `x-ratelimit-*` (Go durations) and
/// Anthropic's `anthropic-ratelimit-*` (RFC 3339 instants).
///
/// Run on every successful reply, so the headers are scanned once ([`Scanned`]):
/// four lookups by name cost more (each hashes its name, measured with
/// callgrind), and Anthropic's names are read only when OpenAI's are absent.
pub fn rate_limit_hints(headers: &HeaderMap, now: SystemTime) -> RateLimitHints {
    rate_limit_hints_in(&Scanned::of(headers), now)
}

/// [`rate_limit_hints`] over headers already scanned.
pub fn rate_limit_hints_in(headers: &Scanned<'_>, now: SystemTime) -> RateLimitHints {
    let count = |name: usize| headers.get(name).and_then(|v| v.parse::<u64>().ok());
    let mut hints = RateLimitHints {
        requests_remaining: count(OPENAI_REMAINING_REQUESTS),
        tokens_remaining: count(OPENAI_REMAINING_TOKENS),
        requests_reset: headers.get(OPENAI_RESET_REQUESTS).and_then(go_duration),
        tokens_reset: headers.get(OPENAI_RESET_TOKENS).and_then(go_duration),
    };
    if hints.requests_remaining.is_none() {
        hints.requests_remaining = count(ANTHROPIC_REMAINING_REQUESTS);
    }
    if hints.requests_reset.is_none() {
        hints.requests_reset = headers
            .get(ANTHROPIC_RESET_REQUESTS)
            .and_then(|v| until_rfc3339(v, now));
    }
    // Anthropic has one token bucket in total and one each for input and output:
    // the scarcest one decides.
    const TOKEN_REMAINING: [usize; 3] = [
        ANTHROPIC_REMAINING_TOKENS,
        ANTHROPIC_REMAINING_INPUT,
        ANTHROPIC_REMAINING_OUTPUT,
    ];
    const TOKEN_RESET: [usize; 3] = [
        ANTHROPIC_RESET_TOKENS,
        ANTHROPIC_RESET_INPUT,
        ANTHROPIC_RESET_OUTPUT,
    ];
    if hints.tokens_remaining.is_none() {
        hints.tokens_remaining = TOKEN_REMAINING.into_iter().filter_map(count).min();
    }
    if hints.tokens_reset.is_none() {
        hints.tokens_reset = TOKEN_RESET
            .into_iter()
            .filter_map(|name| headers.get(name).and_then(|v| until_rfc3339(v, now)))
            .max();
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn every_name_read_has_its_own_index_and_no_other_header_has_one() {
        for (i, name) in NAMES.iter().enumerate() {
            assert_eq!(index_of(name), Some(i), "{name}");
            let h = headers(&[("content-type", "x"), (name, "7")]);
            assert_eq!(Scanned::of(&h).get(i), Some("7"), "{name}");
        }
        for other in ["retry-after-s", "x-ratelimit", "", "content-length"] {
            assert_eq!(index_of(other), None, "{other}");
        }
    }

    #[test]
    fn retry_after_prefers_ms_then_seconds_then_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        type Case<'a> = (&'a [(&'static str, &'a str)], Option<Duration>);
        let cases: &[Case<'_>] = &[
            (
                &[("retry-after-ms", "150.5")],
                Some(Duration::from_micros(150_500)),
            ),
            (
                &[("retry-after-ms", "150"), ("retry-after", "9")],
                Some(Duration::from_millis(150)),
            ),
            (&[("retry-after", "2")], Some(Duration::from_secs(2))),
            (&[("retry-after", "0.25")], Some(Duration::from_millis(250))),
            (
                &[("retry-after", date.as_str())],
                Some(Duration::from_secs(30)),
            ),
            (
                &[("retry-after-ms", "nan"), ("retry-after", "3")],
                Some(Duration::from_secs(3)),
            ),
            (&[("retry-after", "inf")], None),
            (&[("retry-after", "-1")], None),
            (&[("retry-after", "0")], None),
            (&[("retry-after", "1e400")], None),
            (&[("retry-after", "1e300")], None),
            (&[("retry-after", "soon")], None),
            (&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], None), // in the past
            (&[], None),
        ];
        for (pairs, expected) in cases {
            assert_eq!(retry_after(&headers(pairs), now), *expected, "{pairs:?}");
        }
    }

    #[test]
    fn should_retry_reads_only_true_and_false() {
        assert_eq!(
            should_retry(&headers(&[("x-should-retry", "false")])),
            Some(false)
        );
        assert_eq!(
            should_retry(&headers(&[("x-should-retry", "TRUE")])),
            Some(true)
        );
        assert_eq!(should_retry(&headers(&[("x-should-retry", "1")])), None);
    }

    #[test]
    fn openai_try_again_messages() {
        for (msg, expected) in [
            (
                "Please try again in 84ms. Visit",
                Some(Duration::from_millis(84)),
            ),
            (
                "Please try again in 1.146s. Visit",
                Some(Duration::from_millis(1146)),
            ),
            ("Please try again in 6s.", Some(Duration::from_secs(6))),
            ("Please Try Again In 1m30s.", Some(Duration::from_secs(90))),
            ("Please try again later.", None),
            ("try again in", None),
            ("no hint", None),
            // Azure OpenAI's two 429 families.
            (
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 37 seconds.",
                Some(Duration::from_secs(37)),
            ),
            (
                "The system is currently experiencing high demand and cannot process your request. Please retry after 6 seconds. For improved latency reliability, consider switching to Provisioned Throughput.",
                Some(Duration::from_secs(6)),
            ),
            ("Please retry after 1 second", Some(Duration::from_secs(1))),
            ("Please retry after 0.5 seconds.", Some(Duration::from_millis(500))),
            ("Please retry after 1e400 seconds.", None),
            ("Please retry after -3 seconds.", None),
            ("Please retry after NaN seconds.", None),
            ("Please retry after 5 minutes.", None),
            ("Please retry after the quota resets.", None),
        ] {
            assert_eq!(try_again_in(msg), expected, "{msg}");
        }
    }

    #[test]
    fn go_durations() {
        for (s, expected) in [
            ("12ms", Some(Duration::from_millis(12))),
            ("1s", Some(Duration::from_secs(1))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("6m0s", Some(Duration::from_secs(360))),
            ("1h2m3.5s", Some(Duration::from_millis(3_723_500))),
            ("250us", Some(Duration::from_micros(250))),
            ("0", Some(Duration::ZERO)),
            ("", None),
            ("5", None),
            ("1x", None),
            ("-1s", None),
            ("1..5s", None),
            ("1.5.3s", None),
            ("1m-1s", None),
            (".", None),
            ("s", None),
            ("99999999999999999999999h", None),
            (".5s", Some(Duration::from_millis(500))),
            ("5.s", Some(Duration::from_secs(5))),
            ("0s", Some(Duration::ZERO)),
            (" 1.146s ", Some(Duration::from_millis(1146))),
            ("1.5µs", Some(Duration::from_nanos(1500))),
            ("2μs3ns", Some(Duration::from_nanos(2003))),
            ("1.000000000000000000000009s", Some(Duration::from_secs(1))),
            ("0.000000000001h", Some(Duration::from_nanos(3))),
            ("1.5ns", Some(Duration::from_nanos(1))),
            ("2500000000ns", Some(Duration::from_millis(2500))),
            (
                "18446744073709551615ns",
                Some(Duration::from_nanos(u64::MAX)),
            ),
            (
                "5124095576030431h",
                Some(Duration::from_secs(5_124_095_576_030_431 * 3600)),
            ),
            ("5124095576030432h", None),
            ("18446744073709551615s", Some(Duration::from_secs(u64::MAX))),
            (
                "18446744073709551615.999999999s",
                Some(Duration::new(u64::MAX, 999_999_999)),
            ),
            ("18446744073709551616s", None),
            ("18446744073709551616ns", None),
        ] {
            assert_eq!(go_duration(s), expected, "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn go_durations_add_their_parts_exactly(
            h in proptest::option::of(0u64..10_000),
            m in proptest::option::of(0u64..100_000),
            s in proptest::option::of(0u64..1_000_000),
            ms in proptest::option::of(0u64..1_000),
            tenths in proptest::option::of(0u64..10),
        ) {
            let mut text = String::new();
            let mut expected = Duration::ZERO;
            if let Some(h) = h {
                text += &format!("{h}h");
                expected += Duration::from_secs(h * 3600);
            }
            if let Some(m) = m {
                text += &format!("{m}m");
                expected += Duration::from_secs(m * 60);
            }
            if let Some(s) = s {
                match tenths {
                    Some(t) => text += &format!("{s}.{t}s"),
                    None => text += &format!("{s}s"),
                }
                expected += Duration::from_secs(s) + Duration::from_millis(tenths.unwrap_or(0) * 100);
            }
            if let Some(ms) = ms {
                text += &format!("{ms}ms");
                expected += Duration::from_millis(ms);
            }
            let parsed = go_duration(&text);
            if text.is_empty() {
                proptest::prop_assert_eq!(parsed, None);
            } else {
                proptest::prop_assert_eq!(parsed, Some(expected), "{}", text);
            }
        }

        #[test]
        fn go_duration_takes_any_text_without_a_panic(text in "\\PC{0,40}|[0-9.hmsunµ]{0,40}") {
            let _ = go_duration(&text);
        }
    }

    #[test]
    fn hints_from_both_header_families() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_755_780_000); // 2025-08-21T12:40:00Z
        let openai = rate_limit_hints(
            &headers(&[
                ("x-ratelimit-remaining-requests", "59"),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ]),
            now,
        );
        assert_eq!(openai.requests_remaining, Some(59));
        assert_eq!(openai.tokens_reset, Some(Duration::from_secs(360)));
        assert_eq!(openai.exhausted_until(), Some(Duration::from_secs(360)));
        let anthropic = rate_limit_hints(
            &headers(&[
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", "2025-08-21T12:40:59Z"),
                ("anthropic-ratelimit-tokens-remaining", "96000"),
                ("anthropic-ratelimit-tokens-reset", "2025-08-21T12:40:10Z"),
                ("anthropic-ratelimit-output-tokens-remaining", "15"),
            ]),
            now,
        );
        assert_eq!(anthropic.requests_remaining, Some(0));
        assert_eq!(anthropic.requests_reset, Some(Duration::from_secs(59)));
        assert_eq!(anthropic.tokens_remaining, Some(15));
        assert_eq!(anthropic.tokens_reset, Some(Duration::from_secs(10)));
        assert_eq!(
            rate_limit_hints(&headers(&[("x-ratelimit-reset-tokens", "garbage")]), now),
            RateLimitHints::default()
        );
    }
}
