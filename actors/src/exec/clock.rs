//! The actors' clock, and instant arithmetic that cannot overflow.
//!
//! Every `Instant + Duration` on a value that input can reach (a server's
//! `retry-after`, a user's deadline or open time) goes through [`later`]: an
//! instant too far in the future for the platform becomes the farthest one it
//! can hold, never a panic.

use std::time::{Duration, Instant};

/// Now, on tokio's clock: a paused test clock drives breakers, budgets and
/// backoff alike.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// `at + d`, saturating: when the sum overflows the platform's instant, the
/// latest instant reachable by halving `d` (at worst `at` itself).
///
/// ```
/// use std::time::{Duration, Instant};
/// let now = Instant::now();
/// assert_eq!(steer_actors::exec::clock::later(now, Duration::from_secs(2)), now + Duration::from_secs(2));
/// assert!(steer_actors::exec::clock::later(now, Duration::MAX) > now);
/// ```
pub fn later(at: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        if let Some(t) = at.checked_add(d) {
            return t;
        }
        if d.is_zero() {
            return at;
        }
        d = d.checked_div(2).unwrap_or_default();
    }
}

/// [`later`] for tokio's instants: the one way a deadline, a timer or a
/// lease is set from a duration that input can reach, in both crates (a
/// duration past the clock means "as late as the clock goes", never a panic
/// nor "no limit" by accident).
///
/// ```
/// use std::time::Duration;
/// use steer_actors::exec::clock::later_tokio;
/// let now = tokio::time::Instant::now();
/// assert_eq!(later_tokio(now, Duration::from_millis(5)), now + Duration::from_millis(5));
/// assert!(later_tokio(now, Duration::MAX) > now);
/// ```
pub fn later_tokio(at: tokio::time::Instant, d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(later(at.into_std(), d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_saturates_instead_of_panicking() {
        let now = Instant::now();
        for d in [
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(u64::MAX / 2),
            Duration::MAX,
        ] {
            let t = later(now, d);
            assert!(t >= now);
            if let Some(exact) = now.checked_add(d) {
                assert_eq!(t, exact);
            }
        }
    }
}
