//! What one stream is started with: its timeouts and policy, and for a group
//! its route.

use std::time::Duration;

use steer_actors::spec::RequestSpec;

use super::continuation::{Continuation, Divergence};
use crate::route::{Route, Targets};

/// Timeouts and policy of one stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamSettings {
    /// What every request has (its `attempt_timeout` runs until the response headers).
    pub spec: RequestSpec,
    pub first_token_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// The least rate of content after the first token.
    pub min_rate: Option<super::rate::RateFloor>,
    pub continuation: Continuation,
    /// What to do with a continuation that cannot be spliced.
    pub divergence: Divergence,
    /// Whether the span records prompt and reply text.
    pub record_content: bool,
    /// Where its attempts' spend goes.
    pub spend: Option<crate::budget::SpendLog>,
    /// What admits its attempts against the budgets, when any could refuse.
    pub budgets: Option<crate::budget::gate::Admission>,
}

/// The route of a stream that names a model group.
pub(crate) struct StreamRoute {
    /// Where the stream stands in its group.
    pub route: Route,
    /// Its targets' providers, actors and load.
    pub targets: Targets,
    /// How its attempts are hedged before their first content, if they are.
    pub hedge: Option<crate::route::hedge::Hedge>,
}
