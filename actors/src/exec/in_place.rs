//! An actor run inside the future that awaits it, wherever that future runs.
//!
//! `Actor::start` hands an actor's context to the current arbiter's task set
//! (`spawn_local`), so an actor can only live on an actix arbiter, and a caller
//! on plain tokio reaches it across threads: its start and its reply wake a
//! parked thread each, which measured at about half of a bare client's CPU per
//! request (BENCHMARKS.md, "Every placement"). [`InPlace`] drives the same
//! context (the actor, its mailbox, its timers and the futures it spawned)
//! from the caller's own task instead, by polling actix's
//! [`ContextFut`]: the actor is the same actor with the
//! same address and handlers, it just runs where its caller runs, as a bare
//! client's request does.
//!
//! ```
//! use actix::prelude::*;
//! use steer_actors::exec::in_place::InPlace;
//!
//! struct Once(Option<tokio::sync::oneshot::Sender<u32>>);
//! // SAFETY: it spawns nothing.
//! unsafe impl steer_actors::exec::in_place::SendContext for Once {}
//! impl Actor for Once {
//!     type Context = Context<Self>;
//!     fn started(&mut self, ctx: &mut Context<Self>) {
//!         if let Some(tx) = self.0.take() {
//!             let _ = tx.send(7);
//!         }
//!         ctx.stop();
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // A plain tokio task: no arbiter, no actix System.
//! let task = tokio::spawn(async {
//!     let (tx, rx) = tokio::sync::oneshot::channel();
//!     InPlace::new(Once(Some(tx))).await.expect("no panic");
//!     rx.await.expect("replied")
//! });
//! assert_eq!(task.await.unwrap(), 7);
//! # });
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix::dev::ContextFut;
use actix::{Actor, Addr, Context};

use crate::exec::own_wakes::OwnWakes;

/// An actor whose context is polled by whoever awaits this future. It resolves
/// when the actor stops; a panic in the actor's code resolves it with the panic
/// message instead of unwinding into the caller. Dropping it drops the actor
/// (actix stops it first: `stopping` and `stopped` run, then the futures it
/// spawned are dropped).
pub struct InPlace<A: Actor<Context = Context<A>>> {
    /// `None` once the actor has stopped or panicked. Boxed: the context holds
    /// the actor and its spawned futures, and the caller's future stays small.
    fut: Option<Box<ContextFut<A, Context<A>>>>,
    /// The actor waking its own task (a reply, a message to itself) is one
    /// more poll here, not a yield that hands the request to another worker.
    wakes: OwnWakes,
}

/// An actor whose context may move between threads with it.
///
/// # Safety
///
/// Implement it only for an actor every future and timer closure of which,
/// spawned into its context (by its handlers, `started`, `ctx.spawn`,
/// `ctx.run_later`, ...), is `Send`. actix stores them without that bound, so the
/// compiler cannot check it; `shell::spawn_send` and
/// `shell::run_later_send` are spawns that do.
pub unsafe trait SendContext: Actor<Context = Context<Self>> + Send {}

// SAFETY: `ContextFut` is `!Send` only because the futures and timer closures an
// actor spawns into its context are stored as `Box<dyn ...>` without a `Send`
// bound; nothing else in it is tied to a thread (its mailbox and address are
// `Arc`-based, it reads no thread-local, it spawns nothing). The actor is `Send`
// and, by `SendContext`'s contract, so is everything it spawns. Moving the whole
// between threads, never polled from two at once (`&mut` polling), is then what
// moving a `Send` future is.
unsafe impl<A: SendContext> Send for InPlace<A> {}

/// Spawns `fut` into a [`SendContext`] actor's context, checking that it is
/// `Send`: the one way such an actor spawns a future.
///
/// A future that is not `Send` is refused at compile time:
///
/// ```compile_fail
/// use std::rc::Rc;
/// use actix::prelude::*;
/// use steer_actors::exec::in_place::{spawn_send, SendContext};
///
/// struct A;
/// impl Actor for A { type Context = Context<Self>; }
/// unsafe impl SendContext for A {}
///
/// fn started(ctx: &mut Context<A>) {
///     let held = Rc::new(1); // not Send
///     spawn_send(ctx, actix::fut::wrap_future(async move { drop(held) }));
/// }
/// ```
///
/// and a `Send` one compiles:
///
/// ```
/// use actix::prelude::*;
/// use steer_actors::exec::in_place::{spawn_send, SendContext};
///
/// struct A;
/// impl Actor for A { type Context = Context<Self>; }
/// unsafe impl SendContext for A {}
///
/// fn started(ctx: &mut Context<A>) {
///     let held = std::sync::Arc::new(1);
///     spawn_send(ctx, actix::fut::wrap_future(async move { drop(held) }));
/// }
/// ```
pub fn spawn_send<A, F>(ctx: &mut Context<A>, fut: F)
where
    A: SendContext,
    F: actix::fut::ActorFuture<A, Output = ()> + Send + 'static,
{
    actix::AsyncContext::spawn(ctx, fut);
}

/// Runs `f` after `delay` on a [`SendContext`] actor's timer, checking that it
/// is `Send`: the one way such an actor sets a timer.
///
/// ```compile_fail
/// use std::rc::Rc;
/// use std::time::Duration;
/// use actix::prelude::*;
/// use steer_actors::exec::in_place::{run_later_send, SendContext};
///
/// struct A;
/// impl Actor for A { type Context = Context<Self>; }
/// unsafe impl SendContext for A {}
///
/// fn started(ctx: &mut Context<A>) {
///     let held = Rc::new(1); // not Send
///     run_later_send(ctx, Duration::from_millis(1), move |_, _| drop(held));
/// }
/// ```
///
/// and with `Arc` in place of `Rc` it compiles:
///
/// ```
/// # use std::time::Duration;
/// # use actix::prelude::*;
/// # use steer_actors::exec::in_place::{run_later_send, SendContext};
/// # struct A;
/// # impl Actor for A { type Context = Context<Self>; }
/// # unsafe impl SendContext for A {}
/// fn started(ctx: &mut Context<A>) {
///     let held = std::sync::Arc::new(1);
///     run_later_send(ctx, Duration::from_millis(1), move |_, _| drop(held));
/// }
/// ```
pub fn run_later_send<A, F>(
    ctx: &mut Context<A>,
    delay: std::time::Duration,
    f: F,
) -> actix::SpawnHandle
where
    A: SendContext,
    F: FnOnce(&mut A, &mut Context<A>) + Send + 'static,
{
    actix::AsyncContext::run_later(ctx, delay, f)
}

/// The lines of `source` (an implementor of [`SendContext`]) that spawn into
/// an actor's context without checking `Send`: what its contract forbids.
/// Comment lines are not read.
#[doc(hidden)]
pub fn spawns_unchecked(source: &str) -> Vec<String> {
    const UNCHECKED: [&str; 11] = [
        ".spawn(",
        ".wait(",
        ".run_later(",
        ".run_interval(",
        ".notify_later(",
        ".add_stream(",
        ".add_message_stream(",
        "ResponseActFuture",
        "ResponseFuture",
        "AtomicResponse",
        "ActorResponse",
    ];
    source
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .filter(|l| UNCHECKED.iter().any(|u| l.contains(u)))
        .map(str::to_string)
        .collect()
}

impl<A: Actor<Context = Context<A>>> InPlace<A> {
    /// The actor with a fresh context; it starts (`started` runs) on the first poll.
    pub fn new(actor: A) -> Self {
        InPlace {
            fut: Some(Box::new(Context::new().into_future(actor))),
            wakes: OwnWakes::default(),
        }
    }

    /// One poll of the actor with `cx`'s waker as it is, without `OwnWakes`:
    /// for a caller that polls the actor beside work of its own in one future
    /// (a stream and its reader), where the actor's wakes are mostly for that
    /// work, and which keeps the memory `OwnWakes` takes (a stream's
    /// memory is measured per open stream).
    pub fn poll_here(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), String>> {
        poll_context(&mut self.fut, cx)
    }

    /// The actor's address (`None` once it has stopped).
    pub fn address(&self) -> Option<Addr<A>> {
        self.fut.as_ref().map(|f| f.address())
    }
}

impl<A: Actor<Context = Context<A>>> Future for InPlace<A> {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.wakes.poll(cx, |cx| poll_context(&mut this.fut, cx))
    }
}

/// One poll of an actor's context: `Ok` once it has stopped, the panic's
/// message if its code panicked.
fn poll_context<A: Actor<Context = Context<A>>>(
    context: &mut Option<Box<ContextFut<A, Context<A>>>>,
    cx: &mut TaskContext<'_>,
) -> Poll<Result<(), String>> {
    let Some(fut) = context.as_mut() else {
        return Poll::Ready(Ok(()));
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut **fut).poll(cx))) {
        Ok(Poll::Pending) => Poll::Pending,
        Ok(Poll::Ready(())) => {
            *context = None;
            Poll::Ready(Ok(()))
        }
        Err(panic) => {
            // The context may be half-way through a handler: drop it where a
            // second panic (its drop polls it once more) is caught too.
            let fut = context.take();
            let _ = std::panic::catch_unwind(AssertUnwindSafe(move || drop(fut)));
            Poll::Ready(Err(crate::exec::supervise::panic_message(panic.as_ref())))
        }
    }
}

/// How [`InPlace::until`] ended without a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoReply {
    /// The actor stopped and dropped its reply sender.
    Stopped,
    /// The actor's code panicked (the message).
    Panicked(String),
}

impl<A: Actor<Context = Context<A>>> InPlace<A> {
    /// Runs the actor until `reply` is answered: the reply, or why none came.
    /// Dropped before that, the reply's receiver goes first, then the actor (so
    /// that the actor, as it stops, sees that its caller is gone).
    pub fn until<T>(self, reply: tokio::sync::oneshot::Receiver<T>) -> Until<A, T> {
        Until {
            reply,
            actor: self,
            stopped: false,
        }
    }
}

/// The future of [`InPlace::until`].
pub struct Until<A: Actor<Context = Context<A>>, T> {
    // Declared first: dropped first.
    reply: tokio::sync::oneshot::Receiver<T>,
    actor: InPlace<A>,
    stopped: bool,
}

impl<A: Actor<Context = Context<A>>, T> Future for Until<A, T> {
    type Output = Result<T, NoReply>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (context, stopped, reply) = (&mut this.actor.fut, &mut this.stopped, &mut this.reply);
        // The reply is sent while the actor is polled here, waking this very
        // task: under `wakes` that wake is noted (a turn more if the poll ends
        // `Pending`), not a yield that hands the task to another worker.
        this.actor.wakes.poll(cx, |cx| {
            if !*stopped {
                match poll_context(context, cx) {
                    Poll::Pending => {}
                    Poll::Ready(Ok(())) => *stopped = true,
                    Poll::Ready(Err(message)) => {
                        return Poll::Ready(Err(NoReply::Panicked(message)))
                    }
                }
            }
            match Pin::new(&mut *reply).poll(cx) {
                Poll::Ready(Ok(value)) => Poll::Ready(Ok(value)),
                Poll::Ready(Err(_)) => Poll::Ready(Err(NoReply::Stopped)),
                // A stopped actor has dropped its sender, so this is not reached
                // then; if it were, the receiver's waker is registered.
                Poll::Pending => Poll::Pending,
            }
        })
    }
}

impl<A: Actor<Context = Context<A>>> Drop for InPlace<A> {
    fn drop(&mut self) {
        // actix polls a live context once as it drops it; a panic there must not
        // unwind out of a drop.
        if let Some(fut) = self.fut.take() {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(move || drop(fut)));
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every implementor of `SendContext` in this crate spawns only through
    /// the checked spawns (the contract the `Send` of `InPlace` rests on).
    #[test]
    fn send_context_actors_spawn_only_through_the_checked_spawns() {
        let sources = [
            (
                "lifecycle/request.rs",
                include_str!("../lifecycle/request.rs"),
            ),
            (
                "lifecycle/request/attempt_run.rs",
                include_str!("../lifecycle/request/attempt_run.rs"),
            ),
            ("lifecycle/shell.rs", include_str!("../lifecycle/shell.rs")),
            ("provider/relay.rs", include_str!("../provider/relay.rs")),
        ];
        for (file, source) in sources {
            assert!(
                source.contains("SendContext") || file.contains("attempt_run"),
                "{file}"
            );
            assert_eq!(spawns_unchecked(source), Vec::<String>::new(), "{file}");
        }
        // The check sees what it must refuse.
        let bad =
            "fn f(ctx: &mut Context<A>) {\n    ctx.spawn(fut);\n    // ctx.spawn(in a comment)\n}";
        assert_eq!(spawns_unchecked(bad), ["ctx.spawn(fut);"]);
        assert_eq!(
            spawns_unchecked("type Result = ResponseActFuture<Self, ()>;").len(),
            1
        );
    }

    use super::*;
    use actix::{ActorContext, AsyncContext};

    struct Ticks {
        left: u32,
        done: Option<tokio::sync::oneshot::Sender<u32>>,
    }

    // SAFETY: its one timer closure is a plain function.
    unsafe impl SendContext for Ticks {}
    impl Actor for Ticks {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Context<Self>) {
            ctx.run_later(std::time::Duration::from_millis(5), tick);
        }
    }

    fn tick(act: &mut Ticks, ctx: &mut Context<Ticks>) {
        act.left -= 1;
        if act.left == 0 {
            if let Some(tx) = act.done.take() {
                let _ = tx.send(3);
            }
            ctx.stop();
        } else {
            ctx.run_later(std::time::Duration::from_millis(5), tick);
        }
    }

    struct Boom;
    // SAFETY: it spawns nothing.
    unsafe impl SendContext for Boom {}
    impl Actor for Boom {
        type Context = Context<Self>;
        fn started(&mut self, _: &mut Context<Self>) {
            panic!("boom in started");
        }
    }

    /// Its timers run on the runtime of the task that polls it (paused clock: no
    /// real time passes).
    #[test]
    fn an_actor_runs_its_timers_in_a_spawned_task() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        let got = rt.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let actor = InPlace::new(Ticks {
                left: 3,
                done: Some(tx),
            });
            assert!(actor.address().is_some());
            tokio::spawn(actor).await.expect("task").expect("no panic");
            rx.await.expect("reply")
        });
        assert_eq!(got, 3);
    }

    #[test]
    fn a_panic_in_the_actor_is_its_error_not_the_callers() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let out = rt.block_on(async { tokio::spawn(InPlace::new(Boom)).await });
        assert_eq!(
            out.expect("the task did not panic"),
            Err("boom in started".into())
        );
    }

    /// Dropped before it stops, the actor runs `stopped` and is dropped.
    #[test]
    fn dropping_it_stops_the_actor() {
        struct Watch(Option<tokio::sync::oneshot::Sender<&'static str>>);
        impl Actor for Watch {
            type Context = Context<Self>;
        }
        impl Drop for Watch {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send("dropped");
                }
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let got = rt.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let mut actor = InPlace::new(Watch(Some(tx)));
            // An actor with an address out there waits for messages.
            let _addr = actor.address();
            assert!(futures::poll!(&mut actor).is_pending(), "alive");
            drop(actor);
            rx.await
        });
        assert_eq!(got, Ok("dropped"));
    }
}
