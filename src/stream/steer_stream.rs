//! The consumer's end of a stream: what `client.stream()` returns.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::{mpsc, oneshot};
use futures::{Stream, StreamExt};
use sync_wrapper::SyncWrapper;

use steer_actors::exec::in_place::InPlace;

use super::actor::StreamActor;
use super::reader::{Command, Item, Read, Reader};
use crate::error::Error;
use crate::model::StreamEvent;

/// The events of a reliable stream; dropping it cancels the request (its HTTP call
/// is aborted and its breaker permit returned).
///
/// Each attempt's HTTP call is made and read by the task that polls this stream,
/// as a bare client's would be (its events never cross a thread); the stream's
/// actor decides between attempts, and runs in this stream too (`InPlace`): it
/// starts at the first poll, and goes with the stream.
pub struct SteerStream {
    rx: mpsc::UnboundedReceiver<Command>,
    /// Events ready for the consumer.
    queue: VecDeque<Item>,
    /// The attempt being read, if any. Only ever used through `&mut`, so the
    /// stream is `Sync` whatever the provider's body is.
    reader: Option<SyncWrapper<Reader>>,
    /// Whether `Complete` or an error was yielded: the only two ways to end.
    ended: bool,
    /// Tells the actor how its consumer went: a `()` once the stream ended,
    /// dropped unsent when the consumer gave up before (a cancellation).
    alive: Option<oneshot::Sender<()>>,
    /// What the stream spent, as its attempts end.
    spend: Option<crate::budget::SpendLog>,
    /// The stream's actor, polled with the stream (`None` once it has stopped).
    /// Last: dropped after the consumer's end of everything above.
    actor: Option<SyncWrapper<InPlace<StreamActor>>>,
}

impl SteerStream {
    /// The stream's two ends: what the consumer holds, and what the actor holds.
    pub(crate) fn channel() -> (Self, mpsc::UnboundedSender<Command>, oneshot::Receiver<()>) {
        let (tx, rx) = mpsc::unbounded();
        let (alive, gone) = oneshot::channel();
        let stream = SteerStream {
            rx,
            queue: VecDeque::new(),
            reader: None,
            ended: false,
            alive: Some(alive),
            spend: None,
            actor: None,
        };
        (stream, tx, gone)
    }

    /// The stream whose attempts write their spend to `log`.
    pub(crate) fn with_spend(mut self, log: crate::budget::SpendLog) -> Self {
        self.spend = Some(log);
        self
    }

    /// What the stream has spent so far: every attempt that ended (retries,
    /// continuations, a group's targets, hedges that lost), at the client's
    /// prices. A complete stream's `Spend` event carries the same at its end;
    /// this is for a stream that failed, or was dropped (an attempt still
    /// running counts once it ends).
    pub fn spend(&self) -> crate::model::Spend {
        self.spend.as_ref().map(|l| l.spend()).unwrap_or_default()
    }

    /// The stream with its actor, which runs as the stream is polled.
    pub(crate) fn run(mut self, actor: StreamActor) -> Self {
        self.actor = Some(SyncWrapper::new(InPlace::new(actor)));
        self
    }

    /// Gives the actor its turn; a panic in it ends the stream with an error.
    fn poll_actor(&mut self, cx: &mut Context<'_>) {
        let Some(actor) = self.actor.as_mut() else {
            return;
        };
        match actor.get_mut().poll_here(cx) {
            Poll::Pending => {}
            Poll::Ready(Ok(())) => self.actor = None,
            Poll::Ready(Err(message)) => {
                self.actor = None;
                self.queue.push_back(Err(Error::Internal(format!(
                    "the stream's actor panicked: {message}"
                ))));
            }
        }
    }
}

impl Drop for SteerStream {
    fn drop(&mut self) {
        if self.ended {
            if let Some(alive) = self.alive.take() {
                let _ = alive.send(());
            }
        }
    }
}

impl std::fmt::Debug for SteerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteerStream")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Stream for SteerStream {
    type Item = Result<StreamEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // The actor's messages and timers wake this task: it runs first.
        this.poll_actor(cx);
        loop {
            if let Some(item) = this.queue.pop_front() {
                if matches!(item, Err(_) | Ok(StreamEvent::Complete { .. })) {
                    this.ended = true;
                    // Nothing follows the end: free what the stream held.
                    this.reader = None;
                    this.queue = VecDeque::new();
                }
                return Poll::Ready(Some(item));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            if let Some(reader) = this.reader.as_mut() {
                match reader.get_mut().poll(cx, &mut this.queue) {
                    Poll::Ready(Read::Events) => continue,
                    Poll::Ready(Read::Ended) => {
                        this.reader = None;
                        // The actor has the attempt's outcome to decide on.
                        this.poll_actor(cx);
                        continue;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            match this.rx.poll_next_unpin(cx) {
                Poll::Ready(Some(Command::Events(events))) => this.queue.extend(events),
                Poll::Ready(Some(Command::Attempt(plan))) => {
                    this.reader = Some(SyncWrapper::new(Reader::new(plan)));
                }
                Poll::Ready(None) => {
                    // The actor is gone without a last word: never a silent truncation.
                    this.ended = true;
                    return Poll::Ready(Some(Err(Error::Internal(
                        "the stream's actor stopped before the stream ended".into(),
                    ))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
