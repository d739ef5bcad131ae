//! What a task does for the scheduler it runs on.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Yields once when the current task runs on a multi-thread tokio runtime, and
/// returns at once anywhere else (a current-thread runtime, an actix arbiter, no
/// runtime).
///
/// The multi-thread scheduler runs a task woken by the task it is running right
/// after it (its LIFO slot): a caller hands its request to hyper's connection
/// task, which runs next and writes it, then the next caller handles its reply
/// and builds its next request, then its connection task, and so on: the
/// caller's code and hyper's alternate request by request and each evicts the
/// other from the CPU's caches. A request that yields once before it is sent
/// runs again after the tasks already queued: the callers' code then runs in a
/// row, and the writes in another (BENCHMARKS.md, "a yield before the send";
/// a current-thread scheduler queues its tasks so already, and gains nothing).
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// steer_actors::exec::scheduler::yield_on_multi_thread().await;
/// # });
/// ```
pub async fn yield_on_multi_thread() {
    let multi =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll};

    use futures::task::noop_waker_ref;

    use super::yield_on_multi_thread;

    fn first_poll_pending() -> bool {
        let mut f = pin!(yield_on_multi_thread());
        let mut cx = Context::from_waker(noop_waker_ref());
        f.as_mut().poll(&mut cx) == Poll::Pending
    }

    #[test]
    fn yields_once_on_a_multi_thread_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert!(rt.block_on(async { first_poll_pending() }));
        rt.block_on(yield_on_multi_thread());
    }

    #[test]
    fn returns_at_once_on_a_current_thread_runtime_and_outside_any() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(!rt.block_on(async { first_poll_pending() }));
        assert!(!first_poll_pending());
        actix::System::new().block_on(async { assert!(!first_poll_pending()) });
    }
}
