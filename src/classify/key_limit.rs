//! Whether a rate limit speaks for the key (its organization or team) or the
//! model group, rather than for one call: then every call to that model waits
//! ([`Failure::pause_wait`](steer_actors::Failure::pause_wait)). Read from the
//! body when the response carried no rate-limit headers to decide it (real
//! bodies: providers.md, real-servers.md §5).

/// Error codes that speak for the key or the model as a whole (xAI's
/// `slow_down`, LiteLLM's router cooldown).
const KEY_LIMIT_CODES: &[&str] = &["slow_down", "all_deployments_in_cooldown"];

/// Phrases of a message that name such a limit: OpenAI's "in organization ...
/// on requests per min", Anthropic's "your per-minute rate limit", xAI's
/// "rate limit of your team", a gateway's cooldown.
const PHRASES: &[&str] = &[
    "in organization",
    "your organization",
    "your per-minute rate limit",
    "rate limit of your team",
    "requests per min",
    "tokens per min",
    "cooldown",
];

/// Whether `message` or `code` names a limit of the key or the model group.
pub fn names_a_key_limit(message: &str, code: Option<&str>) -> bool {
    if code.is_some_and(|c| KEY_LIMIT_CODES.contains(&c)) {
        return true;
    }
    let lower = message.to_ascii_lowercase();
    PHRASES.iter().any(|p| lower.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bodies_of_real_servers_that_name_the_keys_limit_are_told_from_a_bare_429() {
        for body in [
            "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 60, Used 60, Requested 1.",
            "Number of request tokens has exceeded your per-minute rate limit",
            "Too many requests: you have exceeded the rate limit of your team.",
            "No deployments available: all deployments in cooldown",
        ] {
            assert!(names_a_key_limit(body, None), "{body}");
        }
        assert!(names_a_key_limit(
            "Please reduce your request rate.",
            Some("slow_down")
        ));
        assert!(!names_a_key_limit("Too Many Requests", None));
        assert!(!names_a_key_limit(
            "Too Many Requests",
            Some("rate_limit_exceeded")
        ));
    }
}
