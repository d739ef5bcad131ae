//! The stream's end: reported once, its partial text stored before its error
//! reaches the consumer, recorded on its span and meters; or cancelled by a
//! consumer that went away.

use actix::prelude::*;
use steer_actors::lifecycle::shell;
use steer_actors::partials::{PartialResponse, StorePartial};
use steer_actors::retry::RequestEnd;

use super::StreamActor;
use crate::error::Error;
use crate::stream::ending;
use crate::stream::reader::Command;

impl StreamActor {
    /// Ends the stream with an error (after delivering it) or with nothing more.
    /// A failed stream's partial text is stored before its error reaches the
    /// consumer, so `client.partial(id)` has it as soon as the error is seen.
    pub(super) fn end(&mut self, error: Option<Error>, end: RequestEnd, ctx: &mut Context<Self>) {
        if self.done {
            return;
        }
        let mut error = error;
        if let (Some(Error::Failed(f)), Some(log)) = (error.as_mut(), &self.spend) {
            f.spend = log.spend();
        }
        self.done = true;
        self.machine.abandon_resume();
        self.cancel_abandoned();
        self.record_end(error.as_ref(), end);
        shell::report_end(self, end);
        let store = error.as_ref().and_then(|_| self.partial_record());
        let partials = self.partials.clone();
        let tx = self.tx.clone();
        shell::spawn_send(
            ctx,
            actix::fut::wrap_future(async move {
                if let Some(record) = store {
                    let _ = partials.send(StorePartial(record)).await;
                }
                if let Some(e) = error {
                    let _ = tx.unbounded_send(Command::Events(vec![Err(e)]));
                }
            })
            .map(|_, _: &mut Self, ctx: &mut Context<Self>| ctx.stop()),
        );
    }

    /// Records how the stream ended on its span and meters.
    pub(super) fn record_end(&mut self, error: Option<&Error>, end: RequestEnd) {
        let model = self.original.model.model();
        let d = self.machine.delivery();
        ending::record(d, &self.core, model, self.record_content, error, end);
        if let (Some(log), false) = (&self.spend, self.core.span.is_disabled()) {
            crate::observe::trace::record_spend(&self.core.span, &log.spend());
        }
    }

    /// What the client's partial store keeps of a failed stream, if it delivered text.
    pub(super) fn partial_record(&self) -> Option<PartialResponse> {
        self.machine.partial().map(|text| PartialResponse {
            request_id: self.original.request_id.to_string(),
            provider: self.provider.name().to_string(),
            text,
            attempts: self.core.attempts.attempts(),
            failure: self.core.attempts.last_failure().cloned(),
        })
    }

    pub(super) fn cancelled(&mut self, ctx: &mut Context<Self>) {
        if self.done {
            return;
        }
        tracing::debug!(parent: &self.core.span, "stream dropped by its consumer");
        self.done = true;
        self.machine.abandon_resume();
        self.cancel_abandoned();
        shell::report_cancelled(self);
        // Stopping drops the HTTP body and the permit lease (handing the permit back).
        ctx.stop();
    }
}
