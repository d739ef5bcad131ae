//! When paused models wake: one queue of pause ends for the whole breaker, so
//! that its actor runs a single timer (for the earliest) however many models are
//! paused. (An actix context polls every pending timer on every message it
//! handles: a timer per model made each request's report cost grow with the
//! paused models, measured in BENCHMARKS.md.)

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// Pause ends by model, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    queue: BTreeSet<(Instant, Arc<str>)>,
    due_at: HashMap<Arc<str>, Instant>,
}

impl Wakeups {
    /// `model` wakes at `at` (a later pause replaces an earlier one; an earlier
    /// one changes nothing). Returns whether the earliest wake-up moved earlier
    /// (the timer must be set again).
    pub(crate) fn schedule(&mut self, model: &Arc<str>, at: Instant) -> bool {
        let before = self.next();
        match self.due_at.get(model) {
            Some(old) if *old >= at => return false,
            Some(old) => {
                self.queue.remove(&(*old, model.clone()));
            }
            None => {}
        }
        self.due_at.insert(model.clone(), at);
        self.queue.insert((at, model.clone()));
        before.is_none_or(|b| at < b)
    }

    /// The models whose pauses have ended by `now`, taken out.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<Arc<str>> {
        let mut woken = Vec::new();
        while let Some((at, _)) = self.queue.first() {
            if *at > now {
                break;
            }
            if let Some((_, model)) = self.queue.pop_first() {
                self.due_at.remove(&model);
                woken.push(model);
            }
        }
        woken
    }

    /// The earliest wake-up, if any.
    pub fn next(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Forgets every wake-up (a restart, whose timers are gone).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.due_at.clear();
    }

    /// Forgets `model`'s wake-up (its state was dropped).
    pub(crate) fn forget(&mut self, model: &Arc<str>) {
        if let Some(at) = self.due_at.remove(model) {
            self.queue.remove(&(at, model.clone()));
        }
    }

    /// Wake-ups pending.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none is pending.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_queue_wakes_models_in_order_and_keeps_the_latest_pause() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        let mut w = Wakeups::default();
        assert!(w.schedule(&a, at(10)), "the first sets the timer");
        assert!(!w.schedule(&b, at(20)), "a later one does not");
        assert!(w.schedule(&c, at(5)), "an earlier one moves it");
        assert!(
            !w.schedule(&c, at(3)),
            "a shorter pause of the same model changes nothing"
        );
        assert!(
            !w.schedule(&a, at(30)),
            "a longer one moves a, not the earliest"
        );
        assert_eq!((w.len(), w.next()), (3, Some(at(5))));
        assert!(w.due(at(4)).is_empty());
        assert_eq!(w.due(at(20)), [c.clone(), b.clone()]);
        assert_eq!(w.next(), Some(at(30)));
        w.forget(&a);
        assert!(w.is_empty() && w.next().is_none());
        w.schedule(&b, at(1));
        w.clear();
        assert!(w.due(at(100)).is_empty());
    }
}
