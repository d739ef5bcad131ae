//! What operators see of a provider: its breaker's status beside the counters
//! its RetryCoordinator keeps ([`ProviderMetrics`], defined with the
//! coordinator in [`retry::counters`](crate::retry::counters)), the snapshot
//! `client.metrics()` returns (and `GET /reliability` serves). The Prometheus
//! families are in [`meters`](crate::telemetry::meters).

use serde::Serialize;

use crate::breaker::BreakerStatus;
use crate::retry::ProviderMetrics;

/// One provider's metrics and breaker status, as shown to operators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderReport {
    /// The provider.
    pub provider: String,
    /// Its breaker.
    pub breaker: BreakerStatus,
    /// Its counters.
    pub metrics: ProviderMetrics,
}
