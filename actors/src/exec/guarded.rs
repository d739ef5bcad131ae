//! An attempt's future as its request actor polls it: a panic in it caught, its
//! time limit kept, and its span entered while it runs.
//!
//! One future instead of four layers (`catch_unwind`, a `timeout_at`, an `async`
//! block and `Instrumented`), each of which was polled, moved and cache-missed on
//! every request (BENCHMARKS.md, "2026-12-03, afternoon"); a span no subscriber wants
//! is not entered at all.
//!
//! ```
//! use std::time::Duration;
//! use steer_actors::exec::guarded::{Guarded, Outcome};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let limit = tokio::time::Instant::now() + Duration::from_millis(10);
//! let slow = Guarded::new(std::future::pending::<u32>(), Some(limit), tracing::Span::none());
//! assert!(matches!(slow.await, Outcome::TimedOut));
//! let quick = Guarded::new(async { 7 }, None, tracing::Span::none());
//! assert!(matches!(quick.await, Outcome::Done(7)));
//! # });
//! ```

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// How a guarded future ended.
#[derive(Debug)]
pub enum Outcome<T> {
    /// It finished with a value.
    Done(T),
    /// It panicked, with this payload.
    Panicked(Box<dyn std::any::Any + Send>),
    /// Its time limit passed first.
    TimedOut,
}

pin_project_lite::pin_project! {
    /// `future`, polled inside `span` (unless the span is disabled), its panic
    /// caught, cut at `limit`.
    pub struct Guarded<F> {
        #[pin]
        future: F,
        #[pin]
        limit: Option<Sleep>,
        span: tracing::Span,
    }
}

impl<F: Future> Guarded<F> {
    /// Guards `future`: cut at `limit` (none for no limit), polled in `span`.
    pub fn new(future: F, limit: Option<Instant>, span: tracing::Span) -> Self {
        Guarded {
            future,
            limit: limit.map(tokio::time::sleep_until),
            // A disabled span is not entered at all (`spans::kept`).
            span: crate::exec::spans::kept(span),
        }
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = Outcome<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _entered = (!this.span.is_none()).then(|| this.span.enter());
            let future = this.future;
            catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
        };
        match polled {
            Ok(Poll::Ready(value)) => return Poll::Ready(Outcome::Done(value)),
            Err(panic) => return Poll::Ready(Outcome::Panicked(panic)),
            Ok(Poll::Pending) => {}
        }
        match this.limit.as_pin_mut().map(|limit| limit.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Outcome::TimedOut),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn paused() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_value_before_the_limit_is_done() {
        paused().block_on(async {
            let limit = Instant::now() + Duration::from_millis(50);
            let f = async {
                tokio::time::sleep(Duration::from_millis(49)).await;
                5
            };
            assert!(matches!(
                Guarded::new(f, Some(limit), tracing::Span::none()).await,
                Outcome::Done(5)
            ));
        });
    }

    #[test]
    fn the_limit_cuts_a_slower_future_at_its_instant() {
        paused().block_on(async {
            let start = Instant::now();
            let limit = start + Duration::from_millis(50);
            let f = async {
                tokio::time::sleep(Duration::from_millis(51)).await;
                5
            };
            assert!(matches!(
                Guarded::new(f, Some(limit), tracing::Span::none()).await,
                Outcome::TimedOut
            ));
            assert_eq!(start.elapsed(), Duration::from_millis(50));
        });
    }

    #[test]
    fn no_limit_waits_as_long_as_it_takes() {
        paused().block_on(async {
            let f = async {
                tokio::time::sleep(Duration::from_secs(86_400)).await;
                1
            };
            assert!(matches!(
                Guarded::new(f, None, tracing::Span::none()).await,
                Outcome::Done(1)
            ));
        });
    }

    #[test]
    fn a_panic_after_a_pending_poll_is_caught_with_its_message() {
        paused().block_on(async {
            let f = async {
                tokio::task::yield_now().await;
                if std::hint::black_box(true) {
                    panic!("provider bug");
                }
                0u8
            };
            match Guarded::new(f, None, tracing::Span::none()).await {
                Outcome::Panicked(p) => {
                    assert_eq!(p.downcast_ref::<&str>(), Some(&"provider bug"))
                }
                other => panic!("expected a panic, got {other:?}"),
            }
        });
    }

    /// A subscriber that counts the spans entered and names the current span of
    /// each event.
    #[derive(Default, Clone)]
    struct Seen(std::sync::Arc<parking_lot::Mutex<(usize, Vec<Option<String>>)>>);

    impl tracing::Subscriber for Seen {
        fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
            m.name() != "unwanted"
        }
        fn new_span(&self, a: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            let mut seen = self.0.lock();
            seen.1.push(Some(a.metadata().name().to_string()));
            tracing::span::Id::from_u64(seen.1.len() as u64)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {
            self.0.lock().0 += 1;
        }
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn a_wanted_span_is_entered_at_every_poll_and_an_unwanted_one_never() {
        let seen = Seen::default();
        let _default = tracing::subscriber::set_default(seen.clone());
        paused().block_on(async {
            let twice = async {
                tokio::task::yield_now().await;
            };
            Guarded::new(twice, None, tracing::info_span!("steer.attempt")).await;
            assert_eq!(seen.0.lock().0, 2, "entered at both polls");
            let twice = async {
                tokio::task::yield_now().await;
            };
            Guarded::new(twice, None, tracing::info_span!("unwanted")).await;
            assert_eq!(seen.0.lock().0, 2, "a disabled span is not entered");
        });
    }
}
