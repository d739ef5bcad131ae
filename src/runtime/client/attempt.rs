//! One attempt of a non-streaming request at its provider: admitted against
//! the budgets where any could refuse it, its spend logged, its error
//! classified for the request actor.

use std::future::Future;
use std::sync::Arc;

use steer_actors::lifecycle::request::AttemptError;
use steer_actors::telemetry::meters::TargetMeters;

use crate::budget::gate::Admission;
use crate::budget::{SpendLog, Ticket};
use crate::classify::classify;
use crate::error::ProviderError;
use crate::model::{ChatRequest, ChatResponse};
use crate::provider::Provider;

/// What an attempt's future yields: the reply, or the classified error.
type Outcome = Result<Box<ChatResponse>, AttemptError<ProviderError>>;

/// An attempt of `req` at `provider` starts: its entry in the request's spend
/// log (if it keeps one, counted in `target`, the request's metric series)
/// opens now, so that an attempt dropped before it runs counts as cancelled;
/// `budgets` admit it first, where any could refuse it.
pub(super) fn start(
    provider: &Arc<dyn Provider>,
    req: &Arc<ChatRequest>,
    log: Option<&SpendLog>,
    budgets: Option<&Admission>,
    target: &TargetMeters,
) -> impl Future<Output = Outcome> + Send + 'static {
    let ticket = log.map(|l| l.open_at(req.clone(), Some(target.clone())));
    // The log again only where budgets admit the attempt.
    let admits = budgets.cloned().zip(log.cloned());
    at_provider(provider.clone(), req.clone(), ticket, admits)
}

/// The attempt's future: `ticket` is its entry in the request's spend log (none
/// when nothing is logged), `admits` the budgets that admit it and the log they
/// read (none when no budget could refuse it).
///
/// Every request's attempt is kept while it runs, inline in what its actor
/// spawns (one box, actix's; `attempts_stay_small`): the budgets' admission,
/// rare and large, is boxed apart, only when it runs.
// One `async move` block, not an `async fn`: an `async fn` keeps its arguments
// beside the body's state (504 bytes against 264).
#[allow(clippy::manual_async_fn)]
fn at_provider(
    provider: Arc<dyn Provider>,
    req: Arc<ChatRequest>,
    mut ticket: Option<Ticket>,
    admits: Option<(Admission, SpendLog)>,
) -> impl Future<Output = Outcome> + Send + 'static {
    async move {
        if let (Some((budgets, log)), Some(t)) = (&admits, ticket.as_mut()) {
            match Box::pin(budgets.admit(&req, req.model.provider(), log)).await {
                Ok(Some(hold)) => t.hold(hold),
                Ok(None) => {}
                Err(refusal) => {
                    if let Some(t) = ticket.take() {
                        t.withdraw();
                    }
                    let e = crate::budget::gate::refused(provider.name(), &req, refusal);
                    return Err(Box::new((classify(&e), e)));
                }
            }
        }
        // Boxed as it comes out of the provider's future: a move of the
        // 552-byte reply is a copy, and the box is what the actor keeps.
        let result = provider.generate(&req).await.map(Box::new);
        if let Some(ticket) = ticket {
            crate::budget::close_result(ticket, result.as_deref());
        }
        result.map_err(|e| Box::new((classify(&e), e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::OpenAiCompatible;

    /// Boxed (in its actor's `AttemptRun`) for every attempt and kept while it
    /// runs, among 64 or 1,024 others:
    /// each byte of it is a byte of cache the request's own work does not get
    /// (264 bytes; 760 with the admission inline).
    #[test]
    fn attempts_stay_small() {
        let provider: Arc<dyn Provider> = Arc::new(
            OpenAiCompatible::custom("p", "http://127.0.0.1:9/v1")
                .api_key("k")
                .build()
                .expect("provider"),
        );
        let req = Arc::new(ChatRequest::new("p/m").expect("model").user("hi"));
        let size = std::mem::size_of_val(&at_provider(provider, req, None, None));
        assert!(size <= 320, "an attempt's future is {size} bytes");
    }
}
