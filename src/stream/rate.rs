//! A floor on a stream's rate of content after its first token: a stream that
//! trickles (a reported incident: 0.8-1.6 tokens a second against 143-269 on a
//! healthy deployment, its first token fast, so no idle timeout fired) is a
//! failure of its target, resumed or failed over with the exact seam like any
//! other break. Plain logic: the time and the characters delivered in, a
//! verdict out; the reader owns one per attempt and runs its timer.

use tokio::time::Instant;

pub use crate::model::RateFloor;

/// What a look at the rate says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rate {
    /// Fast enough (or not measured yet): look again at this time.
    Until(Instant),
    /// The last window held too little: the stream is too slow.
    TooSlow {
        /// Characters the window held.
        chars: u64,
    },
}

/// One attempt's measure of its rate.
#[derive(Debug, Clone)]
pub(crate) struct RateWindow {
    floor: RateFloor,
    /// When the current window started, and the characters delivered then;
    /// `None` before the first token.
    start: Option<(Instant, u64)>,
}

impl RateWindow {
    /// A measure against `floor`, not started.
    pub fn new(floor: RateFloor) -> Self {
        RateWindow { floor, start: None }
    }

    /// At `now`, with `chars` delivered by the attempt so far: the first
    /// content starts the first window; a window that ended is judged, and the
    /// next one starts where it ended.
    pub fn look(&mut self, now: Instant, chars: u64) -> Option<Rate> {
        let (start, at_start) = match self.start {
            None if chars == 0 => return None,
            None => {
                self.start = Some((now, chars));
                (now, chars)
            }
            Some(s) => s,
        };
        // A window past the clock's range never ends: no measure.
        let end = start.checked_add(self.floor.window)?;
        if now < end {
            return Some(Rate::Until(end));
        }
        let held = chars.saturating_sub(at_start);
        if held < self.floor.least_in_window() {
            return Some(Rate::TooSlow { chars: held });
        }
        self.start = Some((now, chars));
        now.checked_add(self.floor.window).map(Rate::Until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_window_too_thin_is_too_slow_a_full_one_starts_the_next() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut w = RateWindow::new(RateFloor::new(10, Duration::from_secs(1)));
        assert_eq!(w.look(t0, 0), None, "not before the first token");
        assert_eq!(w.look(ms(5), 3), Some(Rate::Until(ms(1005))));
        assert_eq!(w.look(ms(500), 9), Some(Rate::Until(ms(1005))));
        // 10 characters in the first second: enough; the next window starts.
        assert_eq!(w.look(ms(1005), 13), Some(Rate::Until(ms(2005))));
        // 9 in the next: too slow.
        assert_eq!(w.look(ms(2005), 22), Some(Rate::TooSlow { chars: 9 }));
    }

    #[test]
    fn extreme_floors_saturate() {
        let huge = RateFloor::new(u32::MAX, Duration::from_secs(u64::MAX / 2));
        assert_eq!(huge.least_in_window(), u64::MAX);
        assert_eq!(
            RateFloor::new(0, Duration::ZERO).window,
            Duration::from_millis(10)
        );
        let mut w = RateWindow::new(huge);
        let now = Instant::now();
        assert_eq!(w.look(now, 1), None, "a window past the clock never ends");
        assert_eq!(w.look(now + Duration::from_secs(3600), 1), None);
    }
}
