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
            "billing",
            "credits",
            "spending limit",
        ],
    ),
    (
        Category::RateLimited,
        &[
            "rate limit",
            "ratelimit",
            "rate limited",
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
        &["content filter", "content policy", "safety"],
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

/// A message as the patterns are written: lower case, words split at `_`, `-`,
/// whitespace and camel-case humps, one space between them. `TOO_MANY_REQUESTS`,
/// `too-many-requests` and `TooManyRequests` all read "too many requests".
pub fn normalise(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut prev: Option<char> = None;
    for c in message.chars() {
        let separator = c == '_' || c == '-' || c.is_whitespace();
        if separator {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            if c.is_uppercase() && prev.is_some_and(|p| p.is_lowercase()) && !out.ends_with(' ') {
                out.push(' ');
            }
            out.extend(c.to_lowercase());
        }
        prev = Some(c);
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// The category of a free-text message (`Unknown` if no pattern matches). Case
/// and separators do not matter (see [`normalise`]).
///
/// ```
/// # use steer_actors::Category;
/// # use steer_llm::classify::text::category;
/// assert_eq!(category("TOO_MANY_REQUESTS"), Category::RateLimited);
/// assert_eq!(category("RateLimitExceeded"), Category::RateLimited);
/// ```
///
/// ```
/// use steer_actors::Category;
/// use steer_llm::classify::text::category;
/// assert_eq!(category("Connection error: timeout"), Category::Timeout);
/// assert_eq!(category("Quota exceeded for this month"), Category::QuotaExceeded);
/// assert_eq!(category("something odd"), Category::Unknown);
/// ```
pub fn category(message: &str) -> Category {
    let lower = normalise(message);
    RULES
        .iter()
        .find(|(_, words)| words.iter().any(|w| has_word(&lower, w)))
        .map(|(c, _)| *c)
        .unwrap_or(Category::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling of a phrase the classifier knows: upper case, snake case,
    /// kebab case, camel case, extra spaces.
    fn spellings(phrase: &str) -> Vec<String> {
        let words: Vec<&str> = phrase.split(' ').collect();
        let camel: String = words
            .iter()
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .collect();
        vec![
            phrase.to_uppercase(),
            words.join("_").to_uppercase(),
            words.join("-"),
            words.join("  "),
            camel,
            format!("error: {}!", words.join("_")),
        ]
    }

    #[test]
    fn case_and_separators_do_not_change_the_category() {
        for (category, phrases) in RULES {
            for phrase in phrases.iter().filter(|p| p.contains(' ')) {
                for spelled in spellings(phrase) {
                    let got = super::category(&spelled);
                    // An earlier rule may claim the phrase (timeout before network):
                    // the spelling must not change which.
                    assert_eq!(got, super::category(phrase), "{spelled:?}");
                    assert_ne!(got, Category::Unknown, "{spelled:?} of {category:?}");
                }
            }
        }
        assert_eq!(super::category("TOO_MANY_REQUESTS"), Category::RateLimited);
        assert_eq!(
            normalise("  TooManyRequests__now "),
            "too many requests now"
        );
    }
}
