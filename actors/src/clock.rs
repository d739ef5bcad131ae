//! The actors' clock.

/// Now, on tokio's clock: a paused test clock drives breakers, budgets and
/// backoff alike.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
