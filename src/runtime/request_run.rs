//! Where a non-streaming request's actor runs, and the future that awaits its
//! reply.
//!
//! Called from an actix arbiter (a user's actor, an actix-web handler, code in a
//! System), the actor is a task of that arbiter, started through its queue, and the
//! caller awaits its oneshot reply: the two stay on one thread. Called from
//! anywhere else (a plain tokio task), the actor runs inside the caller's own
//! future ([`InPlace`]), so neither its start nor its reply wakes another thread.
//! Both were measured (`cargo bench --bench e2e`, BENCHMARKS.md "Every placement"):
//! in place from plain tokio, at 64 concurrent, 1.11-1.56 of a bare client's CPU per
//! request against 1.60-1.81 on steer's arbiter; on an arbiter, 64 requests joined
//! in one caller task cost 1.45-1.55 run in place against 1.19-1.24 as tasks of
//! their own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix::Addr;
use steer_actors::in_place::{InPlace, NoReply, Until};
use steer_actors::request::{Cancel, RequestActor, RequestResult};
use tokio::sync::oneshot;

use crate::error::ProviderError;
use crate::model::ChatResponse;

/// What a request's actor replies.
/// A request's reply. The response is boxed: it is moved on every hop from the
/// attempt to the caller (the attempt's timeout, its span, the actor, the reply
/// channel, this future), 328 bytes each time against a pointer's 8 (callgrind:
/// the copies were a fifth of the cache lines steer wrote that bare did not).
pub(crate) type GenerateReply = RequestResult<Box<ChatResponse>, ProviderError>;

type Actor = RequestActor<Box<ChatResponse>, ProviderError>;

/// Cancels the request actor if the caller's future is dropped before the reply.
pub(crate) struct CancelOnDrop<A: actix::Handler<Cancel>>(pub(crate) Option<Addr<A>>)
where
    A::Context: actix::dev::ToEnvelope<A, Cancel>;

impl<A: actix::Handler<Cancel>> Drop for CancelOnDrop<A>
where
    A::Context: actix::dev::ToEnvelope<A, Cancel>,
{
    fn drop(&mut self) {
        if let Some(actor) = self.0.take() {
            actor.do_send(Cancel);
        }
    }
}

/// A running request: its reply, or why none came. Dropping it cancels the request.
pub(crate) enum RequestRun {
    /// The actor runs in this future.
    InPlace(Until<Actor, GenerateReply>),
    /// The actor is a task of the caller's arbiter; dropping this sends it `Cancel`.
    OnArbiter {
        reply: oneshot::Receiver<GenerateReply>,
        guard: CancelOnDrop<Actor>,
    },
}

impl RequestRun {
    /// Runs `actor`, which replies on `reply`'s sender, where its caller runs.
    pub(crate) fn start(actor: Actor, reply: oneshot::Receiver<GenerateReply>) -> Self {
        match actix::Arbiter::try_current() {
            // Through the arbiter's queue: its closure runs inside the arbiter's
            // task set even when the caller is a plain tokio task on that thread.
            Some(arbiter) => RequestRun::OnArbiter {
                reply,
                guard: CancelOnDrop(Some(<Actor as actix::Actor>::start_in_arbiter(
                    &arbiter,
                    move |_| actor,
                ))),
            },
            None => RequestRun::InPlace(InPlace::new(actor).until(reply)),
        }
    }
}

impl Future for RequestRun {
    type Output = Result<GenerateReply, NoReply>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            RequestRun::InPlace(until) => Pin::new(until).poll(cx),
            RequestRun::OnArbiter { reply, guard } => match Pin::new(reply).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(r) => {
                    // Replied (or gone): nothing to cancel.
                    guard.0 = None;
                    Poll::Ready(r.map_err(|_| NoReply::Stopped))
                }
            },
        }
    }
}
