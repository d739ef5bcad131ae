//! Which breaker a failure speaks about: the endpoint's (every model behind it) or
//! one model's. Providers meter rate limits and overload per model, so a model's
//! 429 or 5xx must not stop its siblings; a connection, DNS or TLS failure says
//! the endpoint itself is unreachable, for every model.
//!
//! A model's health failure also speaks for the provider when its failures span
//! the provider, by this rule ([`Spread`]): **it counts for the provider's
//! breaker too unless another model of the provider succeeded within the
//! breaker's window.** One sick model among healthy siblings stays the model's
//! alone; a storm across every model in use (or in the only model in use) opens
//! the provider with its own threshold and window, so a service calling one
//! model sees the provider open at its 5th failure, and one calling fifty sees
//! it open at the 5th failure of any of them, not after each learned it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::failure::Category;

/// What a failure (or an operator's command) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The provider's endpoint: every model behind it.
    Endpoint,
    /// One model of the provider.
    Model,
}

/// The scope a failure of `category` counts in: network failures (connect, DNS,
/// TLS, reset) speak for the endpoint, everything else for the model.
///
/// ```
/// use steer_actors::breaker::scope::{failure_scope, Scope};
/// use steer_actors::Category;
/// assert_eq!(failure_scope(Category::Network), Scope::Endpoint);
/// assert_eq!(failure_scope(Category::Overloaded), Scope::Model);
/// ```
pub fn failure_scope(category: Category) -> Scope {
    match category {
        Category::Network => Scope::Endpoint,
        _ => Scope::Model,
    }
}

/// The latest successes of a provider's models, two distinct models at most:
/// enough to tell whether a model's failure has a healthy sibling.
///
/// ```
/// use std::time::{Duration, Instant};
/// use steer_actors::breaker::scope::Spread;
/// let (mut spread, now, window) = (Spread::default(), Instant::now(), Duration::from_secs(60));
/// assert!(spread.speaks_for_provider("gpt-4o", now, window), "no sibling known well");
/// spread.success("gpt-4o-mini".into(), now);
/// assert!(!spread.speaks_for_provider("gpt-4o", now, window), "a sibling is well");
/// assert!(spread.speaks_for_provider("gpt-4o-mini", now, window), "its own success is no sibling's");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Spread {
    /// The latest success of two distinct models, the newest first.
    latest: [Option<(Arc<str>, Instant)>; 2],
}

impl Spread {
    /// `model` succeeded at `now`.
    pub fn success(&mut self, model: Arc<str>, now: Instant) {
        let [first, second] = &mut self.latest;
        if first.as_ref().is_some_and(|(m, _)| *m == model) {
            *first = Some((model, now));
            return;
        }
        *second = first.take();
        *first = Some((model, now));
    }

    /// Whether a health failure of `model` at `now` also counts for the
    /// provider: no other model succeeded within `window`.
    pub fn speaks_for_provider(&self, model: &str, now: Instant, window: Duration) -> bool {
        !self
            .latest
            .iter()
            .flatten()
            .any(|(m, at)| &**m != model && now.saturating_duration_since(*at) < window)
    }
}

/// What an operator's command or a query names: a provider, or one of its models,
/// written `provider` or `provider/model`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The provider.
    pub provider: String,
    /// The model, or `None` for the whole provider.
    pub model: Option<String>,
}

impl Target {
    /// Reads `provider` or `provider/model`.
    ///
    /// ```
    /// use steer_actors::breaker::scope::Target;
    /// let t = Target::parse("openai/gpt-4o");
    /// assert_eq!((t.provider.as_str(), t.model.as_deref()), ("openai", Some("gpt-4o")));
    /// assert_eq!(Target::parse("openai").model, None);
    /// ```
    pub fn parse(target: &str) -> Target {
        match target.split_once('/') {
            Some((provider, model)) if !model.is_empty() => Target {
                provider: provider.to_string(),
                model: Some(model.to_string()),
            },
            _ => Target {
                provider: target.trim_end_matches('/').to_string(),
                model: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sibling_success_keeps_a_model_failure_its_own_until_it_leaves_the_window() {
        let window = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut spread = Spread::default();
        spread.success("a".into(), t0);
        spread.success("b".into(), t0 + Duration::from_secs(1));
        spread.success("b".into(), t0 + Duration::from_secs(2));
        // `a` is still remembered beside `b` (two distinct models kept).
        assert!(!spread.speaks_for_provider("b", t0 + Duration::from_secs(3), window));
        assert!(!spread.speaks_for_provider("c", t0 + Duration::from_secs(3), window));
        // Past the window, no sibling is known well.
        let late = t0 + Duration::from_secs(70);
        assert!(spread.speaks_for_provider("a", late, window));
        assert!(spread.speaks_for_provider("b", late, window));
    }
}
