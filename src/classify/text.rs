//! Classifying free text, when nothing but a message is known (errors from user
//! code, unknown transports). Patterns are checked in order: timeout before
//! network ("Connection error: timeout" is a timeout), billing before rate limits
//! ("quota exceeded" is billing).

use steer_actors::Category;

/// Whether `word` appears in `text` with no letter or digit on either side.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

const RULES: &[(Category, &[&str])] = &[
    (
        Category::Timeout,
        &["timed out", "timeout", "deadline exceeded", "408", "504"],
    ),
    (
        Category::Network,
        &[
            "connection refused",
            "connection reset",
            "connection error",
            "connection closed",
            "broken pipe",
            "network",
            "dns",
            "unreachable",
            "eof",
        ],
    ),
    (
        Category::QuotaExceeded,
        &[
            "quota exceeded",
            "insufficient quota",
            "insufficient_quota",
            "billing",
            "credits",
            "spending limit",
        ],
    ),
    (
        Category::RateLimited,
        &[
            "rate limit",
            "rate-limit",
            "ratelimit",
            "too many requests",
            "429",
        ],
    ),
    (
        Category::Authentication,
        &[
            "unauthorized",
            "unauthenticated",
            "invalid api key",
            "incorrect api key",
            "authentication",
            "401",
        ],
    ),
    (
        Category::PermissionDenied,
        &["forbidden", "permission denied", "403"],
    ),
    (
        Category::ContentFiltered,
        &[
            "content filter",
            "content policy",
            "content_filter",
            "safety",
        ],
    ),
    (
        Category::ContextLengthExceeded,
        &["context length", "maximum context", "context window"],
    ),
    (
        Category::Overloaded,
        &["overloaded", "service unavailable", "503", "529"],
    ),
    (
        Category::ServerError,
        &[
            "internal server error",
            "server error",
            "bad gateway",
            "500",
            "502",
        ],
    ),
    (
        Category::InvalidRequest,
        &[
            "invalid",
            "validation",
            "bad request",
            "malformed",
            "400",
            "422",
        ],
    ),
];

/// The category of a free-text message (`Unknown` if no pattern matches).
///
/// ```
/// use steer_actors::Category;
/// use steer_llm::classify::text::category;
/// assert_eq!(category("Connection error: timeout"), Category::Timeout);
/// assert_eq!(category("Quota exceeded for this month"), Category::QuotaExceeded);
/// assert_eq!(category("something odd"), Category::Unknown);
/// ```
pub fn category(message: &str) -> Category {
    let lower = message.to_lowercase();
    RULES
        .iter()
        .find(|(_, words)| words.iter().any(|w| has_word(&lower, w)))
        .map(|(c, _)| *c)
        .unwrap_or(Category::Unknown)
}
