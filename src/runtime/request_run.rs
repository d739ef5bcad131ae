//! Where a non-streaming request's actor runs, and the future that awaits its
//! reply: inside the caller's own future ([`InPlace`]), wherever the caller runs
//! (a plain tokio task, a user's actor, an actix-web handler). Its start, its
//! timers and its reply wake no other thread and go through no arbiter's queue;
//! the provider's breaker and coordinator stay on their home arbiter, reached by
//! the lock-free gate and one-way reports.
//!
//! Measured (`cargo bench --bench e2e`, BENCHMARKS.md "2026-12-03, afternoon"):
//! from an arbiter, 64 concurrent requests as tasks of the arbiter cost 1.16-1.37
//! of a bare client's CPU per request, run in place 1.02-1.12 (an actix-web
//! handler: 1.11-1.31 against 1.04-1.07). An earlier build measured the opposite
//! (1.45-1.55 in place against 1.19-1.24); since then the attempt is one future
//! and the actor's own wakes are polls, not yields.

use steer_actors::exec::in_place::{InPlace, Until};
use steer_actors::lifecycle::request::{MakeAttempt, RequestActor, RequestResult};
use tokio::sync::oneshot;

use crate::error::ProviderError;
use crate::model::ChatResponse;

/// A request's reply. The response is boxed: it is moved on every hop from the
/// attempt to the caller (the actor, the reply channel, this future, the
/// deployment's and the request's futures), 552 bytes each time against a
/// pointer's 8 (callgrind: the copies were a fifth of the cache lines steer
/// wrote that bare did not, when the response was 328 bytes).
pub(crate) type GenerateReply = RequestResult<Box<ChatResponse>, ProviderError>;

/// A request's actor, whose attempts `A` makes.
type Actor<A> = RequestActor<Box<ChatResponse>, ProviderError, A>;

/// A running request: its reply, or why none came. Dropping it cancels the
/// request (the actor stops, seeing its caller gone).
pub(crate) type RequestRun<A> = Until<Actor<A>, GenerateReply>;

/// Runs `actor`, which replies on `reply`'s sender, in the future returned.
pub(crate) fn start<A>(actor: Actor<A>, reply: oneshot::Receiver<GenerateReply>) -> RequestRun<A>
where
    A: MakeAttempt<Box<ChatResponse>, ProviderError>,
{
    InPlace::new(actor).until(reply)
}
