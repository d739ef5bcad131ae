//! The error responses of each provider, as providers.md records them.
//!
//! Each error has a name (the fault spec's word for it). Names are looked up in the
//! flavour's own table first, then in the shared aliases (`rate_limit`,
//! `server_error`, `overloaded`, `payload_too_large`, ...).

use super::Flavour;

/// An error response: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// HTTP status.
    pub status: u16,
    /// `application/json`, or `text/html` for a proxy's page.
    pub content_type: &'static str,
    /// The body as sent.
    pub body: String,
}

/// A proxy's 413 page: not JSON at all.
const PROXY_413: &str = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

const CREDITS_TEXT: &str = "Your team 0b7a3c9e-1f2d-4e5a-9b8c-7d6e5f4a3b2c has either used all available credits or reached its monthly spending limit. To continue making API requests, please purchase more credits or raise your spending limit.";

/// (name, status, type, code, param, message)
type OpenAiRow = (
    &'static str,
    u16,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

const OPENAI: &[OpenAiRow] = &[
    ("context_length_exceeded", 400, "invalid_request_error", Some("context_length_exceeded"), Some("messages"),
     "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages."),
    ("invalid_request", 400, "invalid_request_error", None, Some("temperature"),
     "Invalid type for 'temperature': expected a decimal, but got a string instead."),
    ("content_policy", 400, "invalid_request_error", Some("content_policy_violation"), None,
     "Your request was rejected as a result of our safety system."),
    ("invalid_api_key", 401, "invalid_request_error", Some("invalid_api_key"), None,
     "Incorrect API key provided: sk-mock***key. You can find your API key at https://platform.openai.com/account/api-keys."),
    ("permission_denied", 403, "request_forbidden", Some("unsupported_country_region_territory"), None,
     "Country, region, or territory not supported"),
    ("model_not_found", 404, "invalid_request_error", Some("model_not_found"), None,
     "The model `gpt-unknown` does not exist or you do not have access to it."),
    ("rate_limit", 429, "requests", Some("rate_limit_exceeded"), None,
     "Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again in 1s. Visit https://platform.openai.com/account/rate-limits to learn more."),
    ("tokens_rate_limit", 429, "tokens", Some("rate_limit_exceeded"), None,
     "Rate limit reached for gpt-4o-mini in organization org-mock on tokens per min (TPM): Limit 150000, Used 149950, Requested 84. Please try again in 84ms. Visit https://platform.openai.com/account/rate-limits to learn more."),
    ("request_too_large", 429, "tokens", Some("rate_limit_exceeded"), None,
     "Request too large for gpt-4o-mini in organization org-mock on tokens per min (TPM): Limit 150000, Requested 250000. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more."),
    ("insufficient_quota", 429, "insufficient_quota", Some("insufficient_quota"), None,
     "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."),
    ("slow_down", 429, "rate_limit_error", Some("slow_down"), None,
     "Please reduce your request rate."),
    ("server_error", 500, "server_error", None, None,
     "The server had an error while processing your request. Sorry about that!"),
    ("overloaded", 503, "service_unavailable_error", Some("server_is_overloaded"), None,
     "The server is overloaded or not ready yet."),
];

/// (name, status, type, message)
type AnthropicRow = (&'static str, u16, &'static str, &'static str);

const ANTHROPIC: &[AnthropicRow] = &[
    ("invalid_request", 400, "invalid_request_error", "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row"),
    ("spend_limit", 400, "invalid_request_error", "You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC."),
    ("prefill_rejected", 400, "invalid_request_error", "This model does not support assistant message prefill. The conversation must end with a user message."),
    ("trailing_whitespace", 400, "invalid_request_error", "messages: final assistant content cannot end with trailing whitespace"),
    ("authentication", 401, "authentication_error", "invalid x-api-key"),
    ("billing", 402, "billing_error", "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."),
    ("permission", 403, "permission_error", "Your API key does not have permission to use the specified resource."),
    ("not_found", 404, "not_found_error", "model: claude-unknown"),
    ("conflict", 409, "conflict_error", "Conflict with a concurrent request."),
    ("rate_limit", 429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later."),
    ("spend_cap", 429, "rate_limit_error", "You have reached your monthly spend cap. Raise it in the Console to continue."),
    // The tier's cap, no `retry-after` (real-servers.md §6, from public client fixtures).
    ("enforced_spend_limit", 429, "rate_limit_error", "You have reached your API usage limits: your organization has crossed its monthly API usage threshold, set based on your organization's API tier. You will regain access on 2026-09-01 at 00:00 UTC."),
    // A workspace limit the organization set (real-servers.md §6).
    ("workspace_limit", 400, "invalid_request_error", "You have reached your specified workspace API usage limits. You will regain access on 2026-12-01 at 00:00 UTC."),
    ("api_error", 500, "api_error", "Internal server error"),
    ("timeout", 504, "timeout_error", "Request timed out"),
    ("overloaded", 529, "overloaded_error", "Overloaded"),
];

/// (name, status, body)
const XAI: &[(&str, u16, &str)] = &[
    (
        "invalid_api_key",
        400,
        r#"{"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***. You can obtain an API key from https://console.x.ai."}"#,
    ),
    (
        "invalid_api_key_v2",
        400,
        r#"{"code":"invalid-argument","error":"Incorrect API key provided. You can obtain an API key from https://console.x.ai."}"#,
    ),
    (
        "invalid_request",
        400,
        r#"{"code":"invalid-argument","error":"temperature must be between 0 and 2"}"#,
    ),
    (
        "unauthorized",
        401,
        r#"{"code":"unauthenticated","error":"Missing or invalid authorization header."}"#,
    ),
    (
        "out_of_credits",
        402,
        r#"{"error":{"message":"Your team has run out of credits"}}"#,
    ),
    (
        "not_found",
        404,
        r#"{"code":"not-found","error":"The model grok-unknown does not exist or your team does not have access to it."}"#,
    ),
    (
        "method_not_allowed",
        405,
        r#"{"code":"method-not-allowed","error":"Method Not Allowed"}"#,
    ),
    (
        "unsupported_media_type",
        415,
        r#"{"code":"unsupported-media-type","error":"Expected request with `Content-Type: application/json`"}"#,
    ),
    (
        "unprocessable",
        422,
        r#"{"code":"invalid-argument","error":"Failed to deserialize the JSON body into the target type: messages: missing field `role`"}"#,
    ),
    (
        "rate_limit",
        429,
        r#"{"code":"resource-exhausted","error":"Too many requests: you have exceeded the rate limit of your team."}"#,
    ),
    (
        "server_error",
        500,
        r#"{"code":"internal","error":"Internal server error."}"#,
    ),
    (
        "overloaded",
        503,
        r#"{"code":"unavailable","error":"The service is currently unavailable. Please try again later."}"#,
    ),
];

/// A gateway in front of the providers (LiteLLM's proxy 1.108.7), as it
/// rewrites their errors, in any wire format (shared/reference/real-servers.md
/// §5): (name, status, body).
const GATEWAY: &[(&str, u16, &str)] = &[
    // OpenAI's 429 insufficient_quota, hidden as throttling.
    (
        "gateway_quota",
        429,
        r#"{"error":{"message":"litellm.RateLimitError: RateLimitError: OpenAIException - You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.\n\nLiteLLM: model group 'up-openai-quota' failed with the error above. No fallback was attempted.","type":"throttling_error","param":null,"code":"429"}}"#,
    ),
    // A rate limit whose wait comes only as `llm_provider-retry-after`.
    (
        "gateway_rate_limit",
        429,
        r#"{"error":{"message":"litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 60, Used 60, Requested 1.","type":"throttling_error","param":null,"code":"429"}}"#,
    ),
    // OpenRouter's in-flight budget: a wait, until the account's calls in
    // flight settle (real-servers.md §6, OpenRouterTeam/docs `limits.mdx`).
    (
        "openrouter_in_flight_budget",
        402,
        r#"{"error":{"code":402,"message":"This request would exceed your available credits given your current in-flight requests. Retry after in-flight requests settle, or add credits.","metadata":{"reason":"in_flight_budget_exhausted","limit_source":"openrouter_in_flight_budget","remedy_hint":"Retry after in-flight requests settle."}}}"#,
    ),
    // OpenRouter's credits: one request too big for what is left (not a wait).
    (
        "openrouter_credits",
        402,
        r#"{"error":{"code":402,"message":"This request requires more credits, or fewer max_tokens. You requested up to 4096 tokens, but can only afford 1000.","metadata":{"reason":"weight_exceeds_budget","limit_source":"openrouter_credits"}}}"#,
    ),
    // Anthropic's 529, passed on as a 500.
    (
        "gateway_overloaded",
        500,
        r#"{"error":{"message":"litellm.InternalServerError: AnthropicError - {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"},\"type\":\"error\"}","type":"internal_server_error","param":null,"code":"500"}}"#,
    ),
    // In a stream, after an upstream reset: the type is null.
    (
        "gateway_stream_error",
        500,
        r#"{"error": {"message": "litellm.InternalServerError: AnthropicError - Overloaded", "type": null, "param": null, "code": "500"}}"#,
    ),
];

fn credits(status: u16, code: &str) -> ErrorResponse {
    json(
        status,
        serde_json::json!({ "code": code, "error": CREDITS_TEXT }).to_string(),
    )
}

fn json(status: u16, body: String) -> ErrorResponse {
    ErrorResponse {
        status,
        content_type: "application/json",
        body,
    }
}

/// The `request_id` Anthropic puts in its error bodies.
fn anthropic_body(kind: &str, message: &str, request_id: &str) -> String {
    serde_json::json!({
        "type": "error",
        "error": { "type": kind, "message": message },
        "request_id": request_id,
    })
    .to_string()
}

/// The status-form error `name` of `flavour`, or `None` if the flavour has no such error.
pub fn status_error(flavour: Flavour, name: &str, request_id: &str) -> Option<ErrorResponse> {
    // OpenAI answers every API's HTTP errors alike.
    if flavour == Flavour::Responses {
        return status_error(Flavour::OpenAi, name, request_id);
    }
    let alias = |name: &str| -> Option<&'static str> {
        Some(match (flavour, name) {
            (Flavour::Anthropic, "server_error") => "api_error",
            (Flavour::Anthropic, "invalid_api_key") => "authentication",
            (Flavour::Anthropic, "model_not_found") => "not_found",
            (Flavour::Anthropic, "permission_denied") => "permission",
            (Flavour::OpenAi, "not_found") => "model_not_found",
            (Flavour::OpenAi, "authentication") => "invalid_api_key",
            (Flavour::Xai, "model_not_found") => "not_found",
            (Flavour::Xai, "authentication") => "unauthorized",
            _ => return None,
        })
    };
    if name == "payload_too_large" {
        return Some(ErrorResponse {
            status: 413,
            content_type: "text/html",
            body: PROXY_413.to_string(),
        });
    }
    if let Some((_, status, body)) = GATEWAY.iter().find(|row| row.0 == name) {
        return Some(json(*status, body.to_string()));
    }
    let name = alias(name).unwrap_or(name);
    match flavour {
        Flavour::OpenAi | Flavour::Responses => OPENAI.iter().find(|row| row.0 == name).map(
            |(_, status, kind, code, param, message)| {
                json(
                    *status,
                    serde_json::json!({"error": {
                        "message": message, "type": kind, "param": param, "code": code,
                    }})
                    .to_string(),
                )
            },
        ),
        Flavour::Anthropic => {
            if name == "request_too_large" {
                return Some(ErrorResponse {
                    status: 413,
                    content_type: "text/html",
                    body: PROXY_413.to_string(),
                });
            }
            ANTHROPIC
                .iter()
                .find(|row| row.0 == name)
                .map(|(_, status, kind, message)| {
                    json(*status, anthropic_body(kind, message, request_id))
                })
        }
        Flavour::Xai => match name {
            "credits_exhausted" => Some(credits(403, "permission-denied")),
            "credits_exhausted_legacy" => Some(credits(429, "Some resource has been exhausted")),
            _ => XAI
                .iter()
                .find(|row| row.0 == name)
                .map(|(_, status, body)| json(*status, body.to_string())),
        },
    }
}

/// The in-band form of error `name`: the SSE event name (Anthropic's `error`) and its data.
pub fn in_band_error(flavour: Flavour, name: &str) -> Option<(Option<&'static str>, String)> {
    let status_form = status_error(flavour, name, "")?;
    if name.starts_with("gateway_") {
        // A gateway's stream error is a `data:` line in every format.
        return Some((None, status_form.body));
    }
    match flavour {
        Flavour::Anthropic => {
            let v: serde_json::Value = serde_json::from_str(&status_form.body).ok()?;
            let data = serde_json::json!({"type": "error", "error": v.get("error")?});
            Some((Some("error"), data.to_string()))
        }
        Flavour::OpenAi | Flavour::Xai => Some((None, status_form.body)),
        // The Responses API's `error` event: `{type, code, message, param}`.
        Flavour::Responses => Some((
            Some("error"),
            super::responses::error_event(&status_form.body)?,
        )),
    }
}

/// Every error name, over all flavours and aliases (for validating fault specs).
pub fn all_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = OPENAI
        .iter()
        .map(|r| r.0)
        .chain(ANTHROPIC.iter().map(|r| r.0))
        .chain(XAI.iter().map(|r| r.0))
        .chain(GATEWAY.iter().map(|r| r.0))
        .chain([
            "credits_exhausted",
            "credits_exhausted_legacy",
            "payload_too_large",
            "request_too_large",
            "not_found",
            "authentication",
            "permission_denied",
        ])
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The error names of one flavour (aliases included), for docs and tests.
pub fn names(flavour: Flavour) -> Vec<&'static str> {
    all_names()
        .into_iter()
        .filter(|n| status_error(flavour, n, "").is_some())
        .collect()
}
