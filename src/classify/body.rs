//! Reading an error body of any provider's shape, and the rules that turn
//! (status, error type, code, message) into a category.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use steer_actors::Category;

/// The parts of an error body the rules look at.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// `error.type` (OpenAI, Anthropic).
    pub kind: Option<String>,
    /// `error.code` (OpenAI) or the top-level `code` (xAI).
    pub code: Option<String>,
    /// `error.message`, a string `error` (xAI), or a top-level `message`.
    pub message: Option<String>,
    /// `error.metadata.limit_source` (OpenRouter: which limit refused the
    /// call, `openrouter_in_flight_budget`, `openrouter_credits`, ...).
    pub limit_source: Option<String>,
}

/// OpenRouter's `error.metadata`: its `limit_source`, when it is an object
/// that has one as text; anything else is ignored.
struct LimitSource(Option<String>);

impl<'de> Deserialize<'de> for LimitSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LimitSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LimitSource, A::Error> {
                let mut out = None;
                while let Some(key) = map.next_key::<Loose>()? {
                    match key.0.as_deref() {
                        Some("limit_source") => out = map.next_value::<Loose>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(LimitSource(out))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<LimitSource, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LimitSource(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<LimitSource, D::Error> {
                LimitSource::deserialize(d)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<LimitSource, E> {
                Ok(LimitSource(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<LimitSource, E> {
                Ok(LimitSource(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<LimitSource, E> {
                Ok(LimitSource(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<LimitSource, E> {
                Ok(LimitSource(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<LimitSource, E> {
                Ok(LimitSource(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LimitSource, E> {
                Ok(LimitSource(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<LimitSource, E> {
                Ok(LimitSource(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON value read as text when it is a string or a number, ignored otherwise.
struct Loose(Option<String>);

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
                Loose::deserialize(d)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `error` field: an object (OpenAI, Anthropic, xAI 402) or a string (xAI).
#[derive(Default)]
struct ErrorField {
    text: Option<String>,
    kind: Option<String>,
    code: Option<String>,
    message: Option<String>,
    limit_source: Option<String>,
}

impl<'de> Deserialize<'de> for ErrorField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ErrorField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error object or string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ErrorField, E> {
                Ok(ErrorField {
                    text: Some(v.to_string()),
                    ..ErrorField::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ErrorField, A::Error> {
                let mut out = ErrorField::default();
                while let Some(key) = map.next_key::<Loose>()? {
                    match key.0.as_deref() {
                        Some("type") => out.kind = map.next_value::<Loose>()?.0,
                        Some("code") => out.code = map.next_value::<Loose>()?.0,
                        Some("message") => out.message = map.next_value::<Loose>()?.0,
                        Some("metadata") => {
                            out.limit_source = map.next_value::<LimitSource>()?.0;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
            fn visit_unit<E: de::Error>(self) -> Result<ErrorField, E> {
                Ok(ErrorField::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<ErrorField, E> {
                Ok(ErrorField::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ErrorField, D::Error> {
                ErrorField::deserialize(d)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ErrorField, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ErrorField::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ErrorField, E> {
                Ok(ErrorField::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<ErrorField, E> {
                Ok(ErrorField::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<ErrorField, E> {
                Ok(ErrorField::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ErrorField, E> {
                Ok(ErrorField::default())
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    error: Option<ErrorField>,
    #[serde(default)]
    code: Option<Loose>,
    #[serde(default)]
    message: Option<Loose>,
}

/// Reads an error body of any of the three shapes; non-JSON gives an empty info.
///
/// ```
/// use steer_llm::classify::body::parse;
/// let xai = parse(br#"{"code":"permission-denied","error":"Your team has used all available credits"}"#);
/// assert_eq!(xai.code.as_deref(), Some("permission-denied"));
/// let anthropic = parse(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#);
/// assert_eq!(anthropic.kind.as_deref(), Some("overloaded_error"));
/// ```
pub fn parse(body: &[u8]) -> ErrorInfo {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return ErrorInfo::default();
    };
    let top_code = envelope.code.and_then(|c| c.0);
    let top_message = envelope.message.and_then(|m| m.0);
    match envelope.error {
        Some(e) => ErrorInfo {
            kind: e.kind,
            code: e.code.or(top_code),
            message: e.message.or(e.text).or(top_message),
            limit_source: e.limit_source,
        },
        None => ErrorInfo {
            kind: None,
            code: top_code,
            message: top_message,
            limit_source: None,
        },
    }
}

#[derive(Clone, Copy)]
enum Phrase {
    Billing = 1,
    ContextLength = 2,
    ContentFilter = 4,
    BadKey = 8,
}

/// Which kinds of phrase the message contains, as a bit set of [`Phrase`].
///
/// One pass over the words: a word that can start a phrase is checked against the
/// text that follows it. Faster than a general multi-pattern automaton on these
/// messages, whose words share many prefixes.
fn phrases(message: &str) -> u8 {
    let lower = message.to_ascii_lowercase();
    let mut bits = 0u8;
    let mut start = 0usize;
    for word in lower.split(' ') {
        let rest = &lower[start..];
        start += word.len() + 1;
        let at = |phrase: &str| rest.starts_with(phrase);
        let found = match word {
            "used" if at("used all available credits") => Phrase::Billing,
            // OpenAI's insufficient_quota, as a gateway rewrites it (LiteLLM:
            // `"type":"throttling_error","code":"429"`).
            "exceeded" if at("exceeded your current quota") => Phrase::Billing,
            "check" if at("check your plan and billing details") => Phrase::Billing,
            "reached" if at("reached your api usage limits") => Phrase::Billing,
            "monthly" if at("monthly spending limit") => Phrase::Billing,
            "run" if at("run out of credits") => Phrase::Billing,
            "credit" if at("credit balance is too low") => Phrase::Billing,
            "spend" if at("spend cap") => Phrase::Billing,
            "specified" if at("specified api usage limits") => Phrase::Billing,
            // Anthropic's workspace limit, set by the organization.
            "specified" if at("specified workspace api usage limits") => Phrase::Billing,
            "maximum" if at("maximum context length") => Phrase::ContextLength,
            "prompt" if at("prompt is too long") => Phrase::ContextLength,
            "context" if at("context window") => Phrase::ContextLength,
            "content" if at("content management policy") || at("content policy") => {
                Phrase::ContentFilter
            }
            "safety" if at("safety system") => Phrase::ContentFilter,
            "incorrect" if at("incorrect api key") => Phrase::BadKey,
            "invalid" if at("invalid api key") || at("invalid x-api-key") => Phrase::BadKey,
            _ => continue,
        };
        bits |= found as u8;
    }
    bits
}

/// Whether a server's message says it is overloaded.
fn mentions_overload(message: &str) -> bool {
    message
        .as_bytes()
        .windows(10)
        .any(|w| w.eq_ignore_ascii_case(b"overloaded"))
}

/// The category of an error from its status (`None` for in-band errors), type,
/// code and message. The order of the checks is the policy: billing before rate
/// limits, specific types and codes before status classes.
pub fn category(status: Option<u16>, info: &ErrorInfo) -> Category {
    let kind = info.kind.as_deref().unwrap_or("");
    let code = info.code.as_deref().unwrap_or("");
    let message = info.message.as_deref().unwrap_or("");
    // OpenRouter's in-flight budget: a 402 that is a wait (its `Retry-After`),
    // until the account's calls in flight settle; branch on the limit's
    // source, not the text (OpenRouterTeam/docs `limits.mdx`).
    if status == Some(402) && info.limit_source.as_deref() == Some("openrouter_in_flight_budget") {
        return Category::RateLimited;
    }
    // Billing and spend caps first: never retried, never mistaken for a rate limit.
    if matches!(
        code,
        "insufficient_quota" | "organization_spend_limit_exceeded" | "project_spend_limit_exceeded"
    ) || kind == "insufficient_quota"
        || kind == "billing_error"
        || status == Some(402)
    {
        return Category::QuotaExceeded;
    }
    if code == "context_length_exceeded" {
        return Category::ContextLengthExceeded;
    }
    let too_large = message
        .get(..17)
        .is_some_and(|p| p.eq_ignore_ascii_case("request too large"));
    if kind == "request_too_large" || status == Some(413) || too_large {
        return Category::RequestTooLarge;
    }
    // OpenAI's rate-limit codes are exact (quota has its own code, checked above):
    // no need to read the message.
    if matches!(code, "rate_limit_exceeded" | "slow_down") {
        return Category::RateLimited;
    }
    if matches!(code, "content_filter" | "content_policy_violation") {
        return Category::ContentFiltered;
    }
    if matches!(code, "invalid_api_key" | "unauthenticated") || kind == "authentication_error" {
        return Category::Authentication;
    }
    // Providers without precise codes say it in words (xAI credits, Anthropic spend
    // caps, context and key errors of OpenAI-compatible servers).
    let found = phrases(message);
    let has = |p: Phrase| found & p as u8 != 0;
    if has(Phrase::Billing) {
        return Category::QuotaExceeded;
    }
    if has(Phrase::ContextLength) {
        return Category::ContextLengthExceeded;
    }
    if has(Phrase::ContentFilter) {
        return Category::ContentFiltered;
    }
    if has(Phrase::BadKey) {
        return Category::Authentication;
    }
    // An overload a gateway passed on as a 500 (LiteLLM turns Anthropic's 529
    // into `"type":"internal_server_error"` with "Overloaded" or
    // `overloaded_error` only in the message), or in-band.
    let server_side = status.is_none_or(|s| s >= 500);
    if server_side && kind != "overloaded_error" && mentions_overload(message) {
        return Category::Overloaded;
    }
    match kind {
        "permission_error" | "request_forbidden" => return Category::PermissionDenied,
        "not_found_error" => return Category::NotFound,
        "conflict_error" => return Category::Conflict,
        "rate_limit_error" | "requests" | "tokens" => return Category::RateLimited,
        "overloaded_error" | "service_unavailable_error" => return Category::Overloaded,
        "timeout_error" => return Category::Timeout,
        "api_error" | "server_error"
            if code != "server_is_overloaded" && !matches!(status, Some(503 | 504 | 529)) =>
        {
            return Category::ServerError
        }
        _ => {}
    }
    match code {
        "model_not_found" | "not-found" => return Category::NotFound,
        "rate_limit_exceeded" | "slow_down" | "resource-exhausted" => return Category::RateLimited,
        "Some resource has been exhausted" => return Category::RateLimited,
        "server_is_overloaded" | "unavailable" => return Category::Overloaded,
        "permission-denied" => return Category::PermissionDenied,
        "internal" if !matches!(status, Some(503 | 504 | 529)) => return Category::ServerError,
        "deadline-exceeded" => return Category::Timeout,
        // The Responses API's codes for a request it cannot serve (its `error`
        // event and a failed response carry a code and no type).
        "invalid_prompt"
        | "invalid_image"
        | "invalid_image_format"
        | "invalid_base64_image"
        | "invalid_image_url"
        | "image_too_large"
        | "image_too_small"
        | "image_parse_error"
        | "invalid_image_mode"
        | "image_file_too_large"
        | "unsupported_image_media_type"
        | "empty_image_file"
        | "failed_to_download_image"
        | "image_file_not_found"
        | "invalid-argument"
        | "Client specified an invalid argument"
        | "method-not-allowed"
        | "unsupported-media-type"
            if status.is_none() =>
        {
            // In a status form the status class says it (and 408/409/429 stay themselves).
            return Category::InvalidRequest;
        }
        _ => {}
    }
    match status {
        Some(401) => Category::Authentication,
        Some(403) => Category::PermissionDenied,
        Some(404) => Category::NotFound,
        Some(408) => Category::Timeout,
        Some(409) => Category::Conflict,
        Some(429) => Category::RateLimited,
        Some(503) | Some(529) => Category::Overloaded,
        Some(504) => Category::Timeout,
        Some(500..=599) => Category::ServerError,
        Some(400) | Some(405) | Some(415) | Some(422) => Category::InvalidRequest,
        Some(_) => Category::Unknown,
        // An in-band error nobody recognises: the stream broke on the server's side.
        None if kind == "invalid_request_error" => Category::InvalidRequest,
        None => Category::ServerError,
    }
}
