//! What the actors count: the Prometheus families of a client ([`meters`]:
//! histograms, counters, gauges) and each provider's report ([`metrics`]: the
//! snapshot of its breaker and counters).

pub mod meters;
pub mod metrics;
