//! The consumer's end of a stream: what `client.stream()` returns.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::{mpsc, oneshot};
use futures::{Stream, StreamExt};
use sync_wrapper::SyncWrapper;

use super::stream_reader::{Command, Item, Read, Reader};
use crate::error::Error;
use crate::model::StreamEvent;

/// The events of a reliable stream; dropping it cancels the request (its HTTP call
/// is aborted and its breaker permit returned).
///
/// Each attempt's HTTP call is made and read by the task that polls this stream,
/// as a bare client's would be (its events never cross a thread); the stream's
/// actor decides between attempts.
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
        };
        (stream, tx, gone)
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
