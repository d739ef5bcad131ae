//! The attempt in flight as the request actor's context polls it.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use actix::prelude::*;

use super::RequestActor;
use crate::breaker::PermitLease;
use crate::exec::guarded::Guarded;
use crate::lifecycle::reply::MakeAttempt;

pin_project_lite::pin_project! {
    /// The attempt in flight, as its actor's context polls it: when the guarded
    /// future ends, its outcome goes straight to the actor (one future, not
    /// actix's `wrap_future` and `map` around it). The attempt's future is
    /// kept inline: actix boxes this once, and that is the only box.
    pub(super) struct AttemptRun<F> {
        #[pin]
        pub(super) guarded: Guarded<F>,
        pub(super) lease: Option<PermitLease>,
        pub(super) deadline_bound: bool,
    }
}

impl<T, E, A> ActorFuture<RequestActor<T, E, A>> for AttemptRun<A::Future>
where
    T: Send + 'static,
    E: Send + 'static,
    A: MakeAttempt<T, E>,
{
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut RequestActor<T, E, A>,
        ctx: &mut Context<RequestActor<T, E, A>>,
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
