//! Where one request stands in its retries: attempts, backoff spent, deadline.

use std::time::Duration;

use super::policy::AttemptState;
use crate::exec::clock::later_tokio;

/// The retry progress of one request (owned by its actor).
#[derive(Debug, Clone)]
pub struct Progress {
    attempts: u32,
    backoff_so_far: Duration,
    previous_delay: Option<Duration>,
    deadline: Option<tokio::time::Instant>,
    reported: bool,
}

impl Progress {
    /// No attempt yet; the deadline, if any, runs from now.
    pub fn new(deadline: Option<Duration>) -> Self {
        Self::starting_at(deadline, tokio::time::Instant::now())
    }

    /// No attempt yet; the deadline, if any, runs from `now`.
    pub fn starting_at(deadline: Option<Duration>, now: tokio::time::Instant) -> Self {
        Progress {
            attempts: 0,
            backoff_so_far: Duration::ZERO,
            previous_delay: None,
            deadline: deadline.map(|d| later_tokio(now, d)),
            reported: false,
        }
    }

    /// Counts a new attempt; returns its number (1-based).
    pub fn start_attempt(&mut self) -> u32 {
        self.attempts = self.attempts.saturating_add(1);
        self.attempts
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time left until the deadline (zero once passed), if there is one.
    pub fn time_left(&self) -> Option<Duration> {
        self.time_left_at(tokio::time::Instant::now())
    }

    /// Time left at `now` until the deadline (zero once passed), if there is one.
    pub fn time_left_at(&self, now: tokio::time::Instant) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(now))
    }

    /// Whether the deadline has passed.
    pub fn past_deadline(&self) -> bool {
        self.past_deadline_at(tokio::time::Instant::now())
    }

    /// Whether the deadline has passed at `now`.
    pub fn past_deadline_at(&self, now: tokio::time::Instant) -> bool {
        self.time_left_at(now) == Some(Duration::ZERO)
    }

    /// `limit`, shortened to the time left before the deadline.
    pub fn bounded(&self, limit: Option<Duration>) -> Option<Duration> {
        self.attempt_limit(limit).map(|l| l.duration)
    }

    /// The time one attempt may take: `limit`, or the time left before the
    /// deadline when that is shorter (then `by_deadline` is set). One reading of
    /// the clock decides both, so a deadline that cuts an attempt is always
    /// reported as the deadline, never as the attempt's own timeout.
    pub fn attempt_limit(&self, limit: Option<Duration>) -> Option<AttemptLimit> {
        self.attempt_limit_at(limit, tokio::time::Instant::now())
    }

    /// [`attempt_limit`](Self::attempt_limit) for an attempt that starts at `now`
    /// (a clock reading the caller already has).
    pub fn attempt_limit_at(
        &self,
        limit: Option<Duration>,
        now: tokio::time::Instant,
    ) -> Option<AttemptLimit> {
        limit_at(limit, self.deadline, now)
    }

    /// The deadline, if there is one.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.deadline
    }

    /// How long to wait out a provider paused by a server-directed wait before
    /// asking again: `None` when the pause is longer than `max_wait` or would
    /// outlast the deadline (the request then fails, or fails over, at once).
    pub fn pause_wait(&self, retry_in: Duration, max_wait: Duration) -> Option<Duration> {
        self.pause_wait_at(retry_in, max_wait, tokio::time::Instant::now())
    }

    /// [`pause_wait`](Self::pause_wait) at `now`.
    pub fn pause_wait_at(
        &self,
        retry_in: Duration,
        max_wait: Duration,
        now: tokio::time::Instant,
    ) -> Option<Duration> {
        let fits = self.time_left_at(now).is_none_or(|left| retry_in < left);
        (retry_in <= max_wait && fits).then_some(retry_in)
    }

    /// What the retry policy needs to decide.
    pub fn state(&self) -> AttemptState {
        self.state_at(tokio::time::Instant::now())
    }

    /// What the retry policy needs to decide, at `now`.
    pub fn state_at(&self, now: tokio::time::Instant) -> AttemptState {
        AttemptState {
            attempts: self.attempts,
            backoff_so_far: self.backoff_so_far,
            previous_delay: self.previous_delay,
            time_left: self.time_left_at(now),
        }
    }

    /// Whether a report to the coordinator about to be sent is the request's first
    /// (the coordinator counts the request then): `true` once, then `false`.
    pub fn first_report(&mut self) -> bool {
        !std::mem::replace(&mut self.reported, true)
    }

    /// Records a scheduled backoff delay.
    pub fn backed_off(&mut self, delay: Duration) {
        self.backoff_so_far = self.backoff_so_far.saturating_add(delay);
        self.previous_delay = Some(delay);
    }
}

/// How long one attempt may run, and whether the request's deadline is what
/// limits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimit {
    /// The time the attempt may take.
    pub duration: Duration,
    /// Whether it is the time left before the deadline (a timeout is then the
    /// deadline's).
    pub by_deadline: bool,
}

/// [`Progress::attempt_limit`] at `now` for a request whose deadline is
/// `deadline`: for code that runs an attempt away from its request's actor.
pub fn limit_at(
    limit: Option<Duration>,
    deadline: Option<tokio::time::Instant>,
    now: tokio::time::Instant,
) -> Option<AttemptLimit> {
    let time_left = deadline.map(|d| d.saturating_duration_since(now));
    match (limit, time_left) {
        (Some(a), Some(left)) if left <= a => Some(AttemptLimit {
            duration: left,
            by_deadline: true,
        }),
        (Some(a), _) => Some(AttemptLimit {
            duration: a,
            by_deadline: false,
        }),
        (None, Some(left)) => Some(AttemptLimit {
            duration: left,
            by_deadline: true,
        }),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_is_waited_out_only_within_the_cap_and_the_deadline() {
        let s = Duration::from_secs;
        let open_ended = Progress::new(None);
        assert_eq!(open_ended.pause_wait(s(5), s(60)), Some(s(5)));
        assert_eq!(open_ended.pause_wait(s(61), s(60)), None);
        let bounded = Progress::new(Some(s(3)));
        assert_eq!(bounded.pause_wait(s(5), s(60)), None);
    }

    #[test]
    fn a_deadline_shorter_than_the_attempt_timeout_is_named_as_the_limit() {
        let s = Duration::from_secs;
        let p = Progress::new(Some(s(3)));
        let limit = p.attempt_limit(Some(s(10))).unwrap();
        assert!(limit.by_deadline && limit.duration <= s(3));
        let limit = p.attempt_limit(None).unwrap();
        assert!(limit.by_deadline);
        let open = Progress::new(None);
        assert_eq!(
            open.attempt_limit(Some(s(10))),
            Some(AttemptLimit {
                duration: s(10),
                by_deadline: false
            })
        );
        assert_eq!(open.attempt_limit(None), None);
        // A deadline too far away to represent is no panic.
        let far = Progress::new(Some(Duration::MAX));
        assert!(far.time_left().is_some());
    }
}
