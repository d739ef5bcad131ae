//! How a stream ends, as plain functions: the failure of a continuation that
//! cannot be spliced, and what the end records on the stream's span and meters.

use steer_actors::lifecycle::shell::RequestCore;
use steer_actors::retry::RequestEnd;
use steer_actors::{Category, Failure};

use super::delivery::Delivery;
use crate::error::Error;
use crate::model::{FinishReason, RequestId};
use crate::observe::trace;

/// The failure of a continuation that started the reply again and then
/// differed from what the consumer has: `stream_interrupted`, not retried.
pub(super) fn diverged(provider: &str, request_id: &RequestId) -> Failure {
    let mut failure = Failure::new(
        Category::StreamInterrupted,
        provider,
        "the continuation started the reply again and then differed from the text \
         delivered: it cannot be spliced",
    );
    failure.retryable = false;
    failure.request_id = Some(request_id.to_string());
    failure
}

/// Records how the stream ended on its span and meters: its outcome, time to
/// first content, finish reason, the model that answered, and its tokens (or
/// that its usage is unknown).
pub(super) fn record(
    d: &Delivery,
    core: &RequestCore,
    model: &str,
    record_content: bool,
    error: Option<&Error>,
    end: RequestEnd,
) {
    let span = &core.span;
    let reported = d.reported_usage();
    match error {
        Some(e) => trace::record_error(span, e),
        None => {
            span.record("gen_ai.response.model", model);
            let finish = d.finish_reason.clone().unwrap_or(FinishReason::Stop);
            trace::record_end(span, &finish, reported);
            if record_content {
                span.record("gen_ai.output.messages", d.checkpoint.text.as_str());
            }
        }
    }
    let (meters, labels) = (&core.actors.meters, core.target.labels());
    if let Some(first) = d.first_content {
        meters.first_token(labels, end.outcome(), first);
    }
    match reported {
        Some(usage) => meters.tokens(labels, usage.prompt_tokens, usage.completion_tokens),
        None if error.is_none() => meters.usage_unknown(labels),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_divergence_is_an_interruption_never_retried() {
        let f = diverged("p", &RequestId::from("r"));
        assert_eq!(
            (f.category, f.retryable),
            (Category::StreamInterrupted, false)
        );
        assert_eq!(f.request_id.as_deref(), Some("r"));
    }
}
