//! A deployment's concurrency limiters, one for the whole deployment or, with
//! [`LimitConfig::per_model`](super::LimitConfig::per_model), one per model:
//! each model's limit then adapts to its own 429s and latency (a provider's
//! limits are per model: OpenAI's and Anthropic's rate limits are). Started on
//! the first call to a model; a bounded number of them (a model name comes
//! from input), the models past it sharing one.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Addr, ArbiterHandle};
use parking_lot::RwLock;

use super::{ConcurrencyLimiter, LimitConfig};

/// Models with a limiter of their own, at most; the rest share one.
pub const MAX_MODELS: usize = 64;

/// The limiters of one deployment.
#[derive(Debug)]
pub struct Limiters {
    config: LimitConfig,
    arbiter: ArbiterHandle,
    /// The deployment's (or, per model, the one the models past the bound share).
    shared: Addr<ConcurrencyLimiter>,
    models: Option<RwLock<HashMap<Arc<str>, Addr<ConcurrencyLimiter>>>>,
}

fn start(arbiter: &ArbiterHandle, config: LimitConfig) -> Addr<ConcurrencyLimiter> {
    actix::Supervisor::start_in_arbiter(arbiter, move |_| ConcurrencyLimiter::new(config))
}

impl Limiters {
    /// The limiters `config` (checked by the caller) asks for, on `arbiter`.
    pub fn start(arbiter: &ArbiterHandle, config: LimitConfig) -> Self {
        Limiters {
            config,
            arbiter: arbiter.clone(),
            shared: start(arbiter, config),
            models: config.per_model.then(|| RwLock::new(HashMap::new())),
        }
    }

    /// The limiter of calls to `model`.
    pub fn for_model(&self, model: &str) -> Addr<ConcurrencyLimiter> {
        let Some(models) = &self.models else {
            return self.shared.clone();
        };
        if let Some(addr) = models.read().get(model) {
            return addr.clone();
        }
        let mut models = models.write();
        if let Some(addr) = models.get(model) {
            return addr.clone();
        }
        if models.len() >= MAX_MODELS {
            return self.shared.clone();
        }
        let addr = start(&self.arbiter, self.config);
        models.insert(Arc::from(model), addr.clone());
        addr
    }

    /// The limiter `model`'s calls use now, without starting one (for a
    /// status): its own if it has one, else the shared one.
    pub fn current(&self, model: &str) -> Addr<ConcurrencyLimiter> {
        self.models
            .as_ref()
            .and_then(|m| m.read().get(model).cloned())
            .unwrap_or_else(|| self.shared.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_model_has_its_own_limiter_up_to_the_bound_and_the_rest_share_one() {
        actix::System::new().block_on(async { bounded() });
    }

    fn bounded() {
        let arbiter = actix::Arbiter::current();
        let per_model = LimitConfig {
            per_model: true,
            ..LimitConfig::default()
        };
        let limiters = Limiters::start(&arbiter, per_model);
        let a = limiters.for_model("a");
        assert!(
            a == limiters.for_model("a"),
            "the same model, the same limiter"
        );
        assert!(a != limiters.for_model("b"));
        assert!(
            limiters.current("unseen") == limiters.shared,
            "a status starts none"
        );
        for n in 0..MAX_MODELS * 2 {
            let _ = limiters.for_model(&format!("m{n}"));
        }
        assert!(
            limiters.for_model("one more") == limiters.shared,
            "past the bound"
        );
        // One for the deployment when the limit is not per model.
        let one = Limiters::start(&arbiter, LimitConfig::default());
        assert!(one.for_model("a") == one.for_model("b"));
    }
}
