//! Which breaker a failure speaks about: the endpoint's (every model behind it) or
//! one model's. Providers meter rate limits and overload per model, so a model's
//! 429 or 5xx must not stop its siblings; a connection, DNS or TLS failure says
//! the endpoint itself is unreachable, for every model.

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
