//! Wakes a future causes itself, while it is being polled, turned into one more
//! poll on the spot instead of a trip through the scheduler.
//!
//! An actor run in place ([`InPlace`](crate::exec::in_place::InPlace)) often wakes
//! the task it runs in: its reply is sent while the caller's future polls the
//! actor, and the caller waits on that reply's receiver; a message to itself,
//! a spawned future that ends, a stream's batch handed to the reader in the
//! same task. A task woken while it runs is a *yield* to tokio's multi-thread
//! scheduler: it goes to the back of the worker's queue and a parked worker is
//! woken to steal it, so the next step of the request moves to another thread.
//! Measured from plain tokio, one request at a time: 2.3 context switches a
//! request against a bare client's 1.0 (BENCHMARKS.md, "Every placement").
//!
//! [`OwnWakes::poll`] polls with a waker of its own: a wake while the poll runs
//! is noted and answered by polling again at once (a few times at most, and
//! only while the task has coop budget left); a wake at any other time, from any
//! thread, goes to the task's waker as usual. Nothing is lost: every wake
//! either reaches the task or is followed by a poll that began after it.
//!
//! ```
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//! use steer_actors::exec::own_wakes::OwnWakes;
//!
//! /// Wakes itself once, then is ready: with `OwnWakes`, in one poll.
//! struct WakesItself(bool, OwnWakes);
//! impl Future for WakesItself {
//!     type Output = ();
//!     fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
//!         let this = self.get_mut();
//!         let woke = &mut this.0;
//!         this.1.poll(cx, |cx| {
//!             if std::mem::replace(woke, true) {
//!                 return Poll::Ready(());
//!             }
//!             cx.waker().wake_by_ref();
//!             Poll::Pending
//!         })
//!     }
//! }
//!
//! let waker = futures::task::noop_waker();
//! let mut cx = Context::from_waker(&waker);
//! let mut f = WakesItself(false, OwnWakes::default());
//! assert!(Pin::new(&mut f).poll(&mut cx).is_ready());
//! ```

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::task::{waker_ref, ArcWake, AtomicWaker};

/// Polls in a row at most, before an own wake goes to the scheduler after all
/// (so that a future that wakes itself forever still lets others run).
const MAX_POLLS: usize = 8;

/// Not being polled: a wake goes to the task.
const IDLE: u8 = 0;
/// Being polled: a wake is noted.
const POLLING: u8 = 1;
/// Being polled, and woken since the poll began.
const WOKEN: u8 = 2;

/// The waker [`OwnWakes`] polls with (made on first poll, one per future).
#[derive(Default)]
pub struct OwnWakes {
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for OwnWakes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnWakes").finish_non_exhaustive()
    }
}

/// Starts [`IDLE`] (0).
#[derive(Default)]
struct Shared {
    state: AtomicU8,
    task: AtomicWaker,
}

impl ArcWake for Shared {
    fn wake_by_ref(arc: &Arc<Self>) {
        match arc
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            // The poll under way sees it when it ends.
            Ok(_) | Err(WOKEN) => {}
            Err(_) => arc.task.wake(),
        }
    }
}

impl OwnWakes {
    /// Runs `poll` with this waker in `cx`'s place, again at once while it
    /// returns `Pending` having been woken during the call (see the module
    /// doc); `cx`'s task is woken by every other wake.
    pub fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let shared = self.shared.get_or_insert_with(Arc::default);
        shared.task.register(cx.waker());
        let waker = waker_ref(shared);
        let mut own = Context::from_waker(&waker);
        for _ in 0..MAX_POLLS {
            shared.state.store(POLLING, Ordering::Release);
            let result = poll(&mut own);
            let woken = shared.state.swap(IDLE, Ordering::AcqRel) == WOKEN;
            if result.is_ready() || !woken {
                return result;
            }
            if !tokio::task::coop::has_budget_remaining() {
                break;
            }
        }
        // Woken during the last poll: the task's turn comes again through the
        // scheduler.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts the wakes that reach the task.
    struct Count(AtomicUsize);
    impl ArcWake for Count {
        fn wake_by_ref(arc: &Arc<Self>) {
            arc.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Count {
        fn woken(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn task() -> (Arc<Count>, std::task::Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = futures::task::waker(count.clone());
        (count, waker)
    }

    #[test]
    fn a_wake_during_the_poll_is_another_poll_not_a_task_wake() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let mut wakes = OwnWakes::default();
        let mut polls = 0;
        let r = wakes.poll(&mut cx, |cx| {
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(polls)
        });
        assert_eq!(r, Poll::Ready(3));
        assert_eq!(count.woken(), 0);
    }

    #[test]
    fn a_wake_after_the_poll_reaches_the_task() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let mut wakes = OwnWakes::default();
        let mut kept = None;
        let r: Poll<()> = wakes.poll(&mut cx, |cx| {
            kept = Some(cx.waker().clone());
            Poll::Pending
        });
        assert!(r.is_pending());
        assert_eq!(count.woken(), 0);
        // From another thread, as a reply from another arbiter would.
        let kept = kept.expect("registered");
        std::thread::spawn(move || kept.wake())
            .join()
            .expect("waker");
        assert_eq!(count.woken(), 1);
    }

    #[test]
    fn a_future_that_always_wakes_itself_yields_to_the_scheduler() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let mut wakes = OwnWakes::default();
        let mut polls = 0;
        let r: Poll<()> = wakes.poll(&mut cx, |cx| {
            polls += 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        assert!(r.is_pending());
        assert_eq!(polls, MAX_POLLS);
        assert_eq!(count.woken(), 1, "the task is woken once");
    }

    #[test]
    fn the_task_waker_is_the_latest_one() {
        let (first, w1) = task();
        let (second, w2) = task();
        let mut wakes = OwnWakes::default();
        let mut kept = None;
        let _: Poll<()> = wakes.poll(&mut Context::from_waker(&w1), |cx| {
            kept = Some(cx.waker().clone());
            Poll::Pending
        });
        // The future moved to another task, then was woken.
        let _: Poll<()> = wakes.poll(&mut Context::from_waker(&w2), |_| Poll::Pending);
        kept.expect("registered").wake();
        assert_eq!(first.woken(), 0);
        assert_eq!(second.woken(), 1);
    }
}
