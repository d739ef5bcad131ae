//! `steer drill`: replays a catalogue of real incidents against a client built
//! from your configuration, on the embedded mock (a mock server for every
//! deployment, so that a fault strikes one target), and reports what a user
//! would lose: requests failed by category against what no retries, no
//! resumption and no failover would have given, characters lost or repeated
//! against the fault-free text (the number that must be 0), time to recover,
//! breaker transitions, latency percentiles, and the extra attempts, tokens
//! and cost the faults caused.
//!
//! ```no_run
//! # async fn run() -> Result<(), steer_llm::Error> {
//! use steer_llm::drill::{Drill, Scenario};
//! let report = Drill::built_in()?
//!     .requests(60)
//!     .run(&[Scenario::Outage, Scenario::StreamResets])
//!     .await?;
//! for scenario in &report.scenarios {
//!     println!("{scenario}");
//! }
//! assert_eq!(report.chars_wrong(), 0);
//! # Ok(()) }
//! ```
//!
//! The scenarios are [`Scenario::ALL`]; the JSON report's schema is
//! [`Report`] (its `schema` field is [`report::SCHEMA_VERSION`]; each field
//! is documented there). `steer drill --json` prints, per scenario:
//!
//! ```text
//! { "schema": 1, "seed": 1, "config": "built-in", "target": "group/main",
//!   "interrupted": false,
//!   "scenarios": [{
//!     "scenario": "outage", "incident": "...", "skipped": null,
//!     "requests": 20, "streams": 11, "elapsed_ms": 290,
//!     "with_steer":    { "succeeded": 20, "failed": {} },
//!     "without_steer": { "succeeded": 11, "failed": { "first_attempt_failed": 9 } },
//!     "text": { "checked": true, "exact": 20, "differing": 0, "chars_lost": 0,
//!               "chars_repeated": 0, "restarted": 0, "cross_model": 0,
//!               "short_at_limit": 0 },
//!     "recovered_after_ms": 120,
//!     "breaker": [{ "at_ms": 109, "target": "direct", "from": "closed", "to": "open" }],
//!     "latency_ms": { "p50": 4, "p95": 65, "p99": 151, "max": 151 },
//!     "extra": { "attempts": 5, "resumptions": 0, "failovers": 7, "wasted_tokens": 0,
//!                "tokens": 1379, "wasted_usd": 0.0, "cost_usd": 0.0044 },
//!     "server_requests": 25 }] }
//! ```

mod plant;
mod proxy;
pub mod report;
mod run;
pub mod scenario;
mod workload;

pub use report::{Report, ScenarioReport};
pub use run::{Counters, Drill, BUILT_IN_CONFIG, LIVE_MAX_REQUESTS, LIVE_MAX_TOKENS, MAX_SPREAD};
pub use scenario::{Scenario, UnknownScenario};
