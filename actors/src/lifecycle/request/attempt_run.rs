//! The attempt in flight as the request actor's context polls it.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use actix::prelude::*;
use futures::future::BoxFuture;

use super::RequestActor;
use crate::breaker::PermitLease;
use crate::exec::guarded::Guarded;
use crate::lifecycle::reply::AttemptError;

pin_project_lite::pin_project! {
    /// The attempt in flight, as its actor's context polls it: when the guarded
    /// future ends, its outcome goes straight to the actor (one future, not
    /// actix's `wrap_future` and `map` around it).
    pub(super) struct AttemptRun<T, E> {
        #[pin]
        pub(super) guarded: Guarded<BoxFuture<'static, Result<T, AttemptError<E>>>>,
        pub(super) lease: Option<PermitLease>,
        pub(super) deadline_bound: bool,
    }
}

impl<T: Send + 'static, E: Send + 'static> ActorFuture<RequestActor<T, E>> for AttemptRun<T, E> {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut RequestActor<T, E>,
        ctx: &mut Context<RequestActor<T, E>>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        let this = self.project();
        let Poll::Ready(outcome) = this.guarded.poll(task) else {
            return Poll::Pending;
        };
        // One reading of the clock ends the attempt and, if it answered, the
        // request.
        let ended = tokio::time::Instant::now();
        act.on_result(outcome, this.lease.take(), ended, *this.deadline_bound, ctx);
        Poll::Ready(())
    }
}
