//! What the actors count: the Prometheus families of a client ([`meters`]:
//! histograms, counters, gauges), below every actor that records into them.

pub mod meters;
