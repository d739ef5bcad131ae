//! The route of one request or stream through a model group, as a plain state
//! machine: which target is next (a fallback the rules chose, else the group's
//! pick), what a target's end means for the route (move on or stop), the wait
//! for the earliest target to come back when every one is unavailable, the steps
//! the reply reports and when a move is a failover. No runtime and no clock: the
//! route actor (non-streaming) and the stream actor both own one, and run what
//! it answers.
//!
//! ```
//! use steer_llm::route::{Group, Next, Route, Verdict};
//! use steer_llm::model::ModelId;
//! let group = Group::new(["a/m", "b/m"]).unwrap();
//! let mut route = Route::new("fast", group);
//! let pick = |g: &Group, tried: &[ModelId]| {
//!     g.pick(tried, |_| true, 0.0).cloned()
//! };
//! let Next::Go { target, from } = route.next(pick, None) else { panic!() };
//! assert_eq!((target.to_string(), from), ("a/m".to_string(), None));
//! let down = steer_llm::Error::Internal("down".into());
//! assert_eq!(route.failed(&down), Verdict::Stop, "an error of steer's own stops");
//! ```

use std::time::Duration;

use steer_actors::breaker::Rejection;
use steer_actors::GiveUp;

use super::group::{after_failure, earliest_back, recovery_wait, Group, Move};
use crate::error::Error;
use crate::model::{ModelId, RouteStep};

/// Where the route goes next.
#[derive(Debug)]
pub enum Next {
    /// To this target; `from` is the target it leaves after a failure (a
    /// failover, counted and logged), `None` for the first.
    Go {
        /// The target.
        target: ModelId,
        /// The target it leaves, if any.
        from: Option<ModelId>,
    },
    /// Every target is unavailable and the earliest is back within the deadline:
    /// wait this long, then ask again.
    Wait(Duration),
    /// Every target is unavailable: the route fails with this
    /// [`Error::GroupExhausted`].
    Exhausted(Error),
}

/// What the end of a target means for the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Move on: ask [`Route::next`].
    MoveOn,
    /// Stop: the route ends with the target's error.
    Stop,
    /// Another leg (a hedge) is still running: wait for it.
    Racing,
}

/// The route of one request through a group.
#[derive(Debug)]
pub struct Route {
    name: String,
    group: Group,
    tried: Vec<ModelId>,
    steps: Vec<RouteStep>,
    /// A fallback the rules chose for the next move.
    forced: Option<ModelId>,
    /// The target in use, if any.
    current: Option<ModelId>,
    /// Hedges running beside it (a target may appear twice: a hedge at the
    /// same target).
    hedges: Vec<ModelId>,
    /// The last target that failed (the next move leaves it: a failover).
    left: Option<ModelId>,
    /// Whether the route already waited for a target to come back.
    waited: bool,
}

impl Route {
    /// A route through `group` (named `name`) that has tried nothing yet.
    pub fn new(name: impl Into<String>, group: Group) -> Self {
        Route {
            name: name.into(),
            group,
            tried: Vec::new(),
            steps: Vec::new(),
            forced: None,
            current: None,
            hedges: Vec::new(),
            left: None,
            waited: false,
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// The target in use, if any.
    pub fn current(&self) -> Option<&ModelId> {
        self.current.as_ref()
    }

    /// Each target left so far and how it ended.
    pub fn steps(&self) -> &[RouteStep] {
        &self.steps
    }

    /// The next target: a fallback the rules chose, else what `pick` picks among
    /// the untried targets. With none left, a wait for the earliest to come back
    /// (once, within `time_left`), else the route is exhausted.
    pub fn next(
        &mut self,
        pick: impl FnOnce(&Group, &[ModelId]) -> Option<ModelId>,
        time_left: Option<Duration>,
    ) -> Next {
        let target = match self.forced.take() {
            Some(t) => Some(t),
            None => pick(&self.group, &self.tried),
        };
        let Some(target) = target else {
            return self.exhausted(time_left);
        };
        let from = self.left.clone();
        self.tried.push(target.clone());
        self.current = Some(target.clone());
        Next::Go { target, from }
    }

    /// Whether the current target should hand a failure that asks for a wait
    /// to the route rather than wait it out: the route has not waited yet, no
    /// fallback is pending, and `pick_now` finds another untried target that
    /// can answer now. (Once the route has waited for every target, a target
    /// waits out its own server's waits again.)
    pub fn wait_elsewhere(
        &self,
        pick_now: impl FnOnce(&Group, &[ModelId]) -> Option<ModelId>,
    ) -> bool {
        !self.waited && self.forced.is_none() && pick_now(&self.group, &self.tried).is_some()
    }

    /// A hedge: the target a copy of the request goes to beside the legs
    /// running (`same_target`: the current one again; else an untried one
    /// `pick_now` finds that can answer now), if there is one.
    pub fn hedge(
        &mut self,
        pick_now: impl FnOnce(&Group, &[ModelId]) -> Option<ModelId>,
        same_target: bool,
    ) -> Option<ModelId> {
        let target = if same_target {
            self.current.clone()?
        } else {
            let t = pick_now(&self.group, &self.tried)?;
            self.tried.push(t.clone());
            t
        };
        self.hedges.push(target.clone());
        Some(target)
    }

    /// A hedge at `target` did not go after all (its provider's retry budget
    /// or throttle refused it): it is forgotten, and the target may be picked
    /// again.
    pub fn withdraw_hedge(&mut self, target: &ModelId) {
        if let Some(i) = self.hedges.iter().rposition(|t| t == target) {
            self.hedges.remove(i);
        }
        let running = self.current.as_ref() == Some(target) || self.hedges.contains(target);
        if !running {
            if let Some(i) = self.tried.iter().rposition(|t| t == target) {
                self.tried.remove(i);
            }
        }
    }

    /// Every hedge not yet decided is withdrawn (a stream's attempt ended
    /// before they ran): their targets may be picked again.
    pub fn withdraw_hedges(&mut self) {
        for target in self.hedges.clone() {
            self.withdraw_hedge(&target);
        }
    }

    /// Legs running: the current target and its hedges.
    pub fn legs(&self) -> usize {
        self.hedges.len() + usize::from(self.current.is_some())
    }

    /// The current target answered: the route ends; returns its steps.
    pub fn answered(&mut self) -> Vec<RouteStep> {
        match self.current.clone() {
            Some(target) => self.answered_by(&target),
            None => std::mem::take(&mut self.steps),
        }
    }

    /// A leg at `target` answered: the route ends; every other leg running
    /// lost the race (its step says `hedge_lost`). Returns the steps.
    pub fn answered_by(&mut self, target: &ModelId) -> Vec<RouteStep> {
        let mut losers: Vec<ModelId> = self.current.take().into_iter().collect();
        losers.append(&mut self.hedges);
        if let Some(i) = losers.iter().position(|t| t == target) {
            losers.remove(i);
        }
        self.steps.push(RouteStep::answered(target));
        for t in losers {
            self.steps.push(RouteStep::lost_race(&t));
        }
        std::mem::take(&mut self.steps)
    }

    /// The leg at `target` leads now (a stream's hedge that took over from a
    /// leg that failed, or won its race): it is the current target, and the
    /// leg that led before, if it still runs, races on as a hedge.
    pub fn lead(&mut self, target: &ModelId) {
        if self.current.as_ref() == Some(target) {
            return;
        }
        let Some(i) = self.hedges.iter().position(|t| t == target) else {
            return;
        };
        let leader = self.hedges.remove(i);
        if let Some(before) = self.current.replace(leader) {
            self.hedges.push(before);
        }
    }

    /// A stream's race is won by the leg at `target` (its first content came
    /// first): it leads, and every other leg lost (its step says
    /// `hedge_lost`); the route goes on from `target`.
    pub fn won(&mut self, target: &ModelId) {
        self.lead(target);
        for t in std::mem::take(&mut self.hedges) {
            self.steps.push(RouteStep::lost_race(&t));
        }
    }

    /// A leg of a stream's race at `target` failed before its content, with
    /// `outcome`, while another leg races on: recorded, and the leg is gone
    /// (the one that takes the lead is named by [`Route::lead`]).
    pub fn leg_lost(&mut self, target: &ModelId, outcome: &str) {
        self.steps.push(RouteStep::ended(target, outcome));
        if let Some(i) = self.hedges.iter().position(|t| t == target) {
            self.hedges.remove(i);
        } else if self.current.as_ref() == Some(target) {
            self.current = self.hedges.pop();
        }
    }

    /// The current target ended with `error`: failures of the target move on, a
    /// prompt too long or a refusal go to the group's fallback (once), anything
    /// the request itself caused (or a deadline) stops the route.
    pub fn failed(&mut self, error: &Error) -> Verdict {
        match self.current.clone() {
            Some(target) => self.leg_failed(&target, error),
            None => self.verdict(error),
        }
    }

    /// A leg at `target` ended with `error`: while another leg runs, the
    /// route waits for it ([`Verdict::Racing`]); the last leg's failure
    /// decides as [`Route::failed`] says.
    pub fn leg_failed(&mut self, target: &ModelId, error: &Error) -> Verdict {
        self.steps.push(failed_step(target, error));
        if let Some(i) = self.hedges.iter().position(|t| t == target) {
            self.hedges.remove(i);
        } else if self.current.as_ref() == Some(target) {
            self.current = self.hedges.pop();
        }
        if self.current.is_some() {
            return Verdict::Racing;
        }
        self.left = Some(target.clone());
        self.verdict(error)
    }

    fn verdict(&mut self, error: &Error) -> Verdict {
        match after_failure(&self.group, error) {
            Move::Next => Verdict::MoveOn,
            Move::Fallback(t) if !self.tried.contains(&t) => {
                self.forced = Some(t);
                Verdict::MoveOn
            }
            Move::Fallback(_) | Move::Stop => Verdict::Stop,
        }
    }

    fn exhausted(&mut self, time_left: Option<Duration>) -> Next {
        if let Some(wait) = recovery_wait(&self.steps, self.waited, time_left) {
            self.waited = true;
            self.tried.clear();
            return Next::Wait(wait);
        }
        Next::Exhausted(Error::GroupExhausted {
            group: self.name.clone(),
            back_in: earliest_back(&self.steps),
            steps: std::mem::take(&mut self.steps),
        })
    }
}

/// How a target's end is reported in the route: the breaker's rejection (and
/// when the target is back), an invalid request, or the failure's category.
pub fn failed_step(target: &ModelId, error: &Error) -> RouteStep {
    let (outcome, back_in) = match error {
        // A target that asked for a wait is back when the wait ends.
        Error::Failed(f) => {
            let back_in = match f.reason {
                GiveUp::WaitElsewhere { wait } => Some(wait),
                _ => None,
            };
            (f.failure.category.as_str().to_string(), back_in)
        }
        Error::Rejected { rejection, .. } => match rejection {
            Rejection::Open { retry_in } => ("breaker_open".to_string(), Some(*retry_in)),
            Rejection::Paused { retry_in } => ("paused".to_string(), Some(*retry_in)),
            Rejection::ProbesBusy => ("breaker_half_open".to_string(), None),
            Rejection::ForcedOpen => ("breaker_forced_open".to_string(), None),
            Rejection::ConcurrencyLimit(_) => ("concurrency_limit".to_string(), None),
            Rejection::Throttled => ("throttled".to_string(), None),
        },
        Error::InvalidRequest { .. } => ("invalid_request".to_string(), None),
        other => (
            other
                .failure()
                .map_or("error".to_string(), |f| f.category.as_str().to_string()),
            None,
        ),
    };
    RouteStep {
        target: target.to_string(),
        outcome,
        back_in,
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
