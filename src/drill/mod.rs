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
//! [`Report`] (its `schema` field is [`report::SCHEMA_VERSION`]).

mod plant;
mod proxy;
pub mod report;
mod run;
pub mod scenario;
mod workload;

pub use report::{Report, ScenarioReport};
pub use run::{Drill, Live, BUILT_IN_CONFIG, LIVE_MAX_REQUESTS, LIVE_MAX_TOKENS};
pub use scenario::{Scenario, UnknownScenario};
