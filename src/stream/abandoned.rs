//! Background responses a stream leaves running (a resume the server refused,
//! a failover, a client-side stop, a consumer that went away) are cancelled,
//! so that they stop billing: the Responses API keeps generating a background
//! response whatever happens to its readers.

use std::sync::Arc;
use std::time::Duration;

use crate::model::ChatRequest;
use crate::provider::Provider;

/// How long cancelling one abandoned background response may take.
pub(crate) const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

/// Cancels `ids` at `provider` in a task of their own (the stream's actor may
/// be stopping), each given [`CANCEL_TIMEOUT`]; outcomes go to `span`. Nothing
/// is sent outside a tokio runtime.
pub(crate) fn cancel(
    provider: Arc<dyn Provider>,
    original: Arc<ChatRequest>,
    ids: Vec<String>,
    span: tracing::Span,
) {
    if ids.is_empty() || tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        for id in ids {
            let cancel = provider.cancel(&original, &id);
            let outcome = match tokio::time::timeout(CANCEL_TIMEOUT, cancel).await {
                Ok(Ok(())) => "cancelled",
                Ok(Err(_)) => "refused",
                Err(_) => "timed out",
            };
            tracing::debug!(parent: &span, response_id = %id, outcome, "steer.stream.background_cancel");
        }
    });
}
