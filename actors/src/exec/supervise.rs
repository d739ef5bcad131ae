//! Handlers that cannot take their actor down: a panic in a handler's body (a
//! bug: every input is checked) is caught, logged, and stops the actor, which its
//! `Supervisor` restarts at the same address with fresh state.

use actix::{Actor, ActorContext};

/// Runs `body`; on a panic, logs it with the name `who` gives the actor and
/// stops the actor (its supervisor restarts it). `None` when the body
/// panicked. The name is written only then: a handler that runs once a report
/// allocates nothing for it.
pub(crate) fn guarded<A, C, R>(
    act: &mut A,
    ctx: &mut C,
    who: impl FnOnce(&A) -> String,
    body: impl FnOnce(&mut A, &mut C) -> R,
) -> Option<R>
where
    A: Actor<Context = C>,
    C: ActorContext,
{
    let run = std::panic::AssertUnwindSafe(|| body(act, ctx));
    match std::panic::catch_unwind(run) {
        Ok(r) => Some(r),
        Err(panic) => {
            let who = who(act);
            let message = panic_message(panic.as_ref());
            tracing::error!(%who, %message, "actor failed: restarting it");
            ctx.stop();
            None
        }
    }
}

/// The message of a caught panic (`panic!("...")` payloads are `&str` or `String`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}
