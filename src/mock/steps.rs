//! How the mock sends a body: the steps of a stream (events, waits, a stall,
//! a reset) and how a fault cuts it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;

use super::render::Frames;

/// How a faulted stream ends.
pub(super) enum Cut {
    /// Go on, each later content event this long after the one before.
    Trickle(Duration),
    /// Send this event, then end without the terminal event.
    Send(Bytes),
    /// Send nothing more, keep the connection open.
    Stall,
    /// Send `frame` every `every` and nothing else, until `until` has passed;
    /// then end without the terminal event.
    Pings {
        frame: Bytes,
        every: Duration,
        until: Duration,
    },
    /// End cleanly without the terminal event.
    End,
    /// Abort the connection.
    Reset,
}

pub(super) enum Step {
    Send(Bytes),
    /// Wait this long before the next step.
    Wait(Duration),
    Stall,
    Reset,
}

/// The steps of a stream of `frames`, cut by `fault`; `first_token` waits
/// before the first content frame.
pub(super) fn stream_steps(
    frames: Frames,
    fault: Option<(usize, Cut)>,
    first_token: Option<Duration>,
) -> Vec<Step> {
    let Frames {
        head,
        content,
        tail,
    } = frames;
    let cut_at = fault.as_ref().map(|(after, _)| (*after).min(content.len()));
    let mut steps: Vec<Step> = Vec::with_capacity(head.len() + 2 * content.len() + tail.len() + 1);
    steps.extend(head.into_iter().map(Step::Send));
    let trickle = match &fault {
        Some((_, Cut::Trickle(d))) => Some(*d),
        _ => None,
    };
    for (i, frame) in content.into_iter().enumerate() {
        match (cut_at, trickle) {
            (Some(at), Some(d)) if i >= at => steps.push(Step::Wait(d)),
            (Some(at), None) if i == at => break,
            _ => {}
        }
        if let (0, Some(d)) = (i, first_token) {
            steps.push(Step::Wait(d));
        }
        steps.push(Step::Send(frame));
    }
    match fault {
        None | Some((_, Cut::Trickle(_))) => steps.extend(tail.into_iter().map(Step::Send)),
        Some((_, Cut::Send(frame))) => steps.push(Step::Send(frame)),
        Some((_, Cut::Stall)) => steps.push(Step::Stall),
        Some((
            _,
            Cut::Pings {
                frame,
                every,
                until,
            },
        )) => {
            let every_ms = every.as_millis().max(1);
            let count = (until.as_millis() / every_ms).min(MAX_PINGS);
            for _ in 0..count {
                steps.push(Step::Wait(every));
                steps.push(Step::Send(frame.clone()));
            }
        }
        Some((_, Cut::End)) => {}
        Some((_, Cut::Reset)) => steps.push(Step::Reset),
    }
    steps
}

/// The most keep-alives one stream sends (a stall limit of hours at a
/// millisecond's pace stays a bounded list of steps).
const MAX_PINGS: u128 = 10_000;

/// What a streamed body counts: events handed to the network, and bodies
/// their client closed before the end.
pub(super) struct BodyCounters {
    pub sent: Arc<AtomicU64>,
    pub cut: Arc<AtomicU64>,
}

/// Counts its body cut when dropped before [`Unfinished::finished`].
struct Unfinished(Option<Arc<AtomicU64>>);

impl Unfinished {
    fn finished(&mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(cut) = self.0.take() {
            cut.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(super) fn steps_body(
    steps: Vec<Step>,
    delay: Option<Duration>,
    stall_limit: Duration,
    counters: BodyCounters,
) -> Body {
    let BodyCounters { sent, cut } = counters;
    let state = (steps.into_iter(), Unfinished(Some(cut)));
    let stream = futures::stream::unfold(state, move |(mut steps, mut unfinished)| {
        let sent = sent.clone();
        async move {
            // A wait's next step comes in the same turn (without the chunk delay).
            let mut waited = false;
            loop {
                let Some(step) = steps.next() else {
                    unfinished.finished();
                    return None;
                };
                match step {
                    Step::Send(bytes) => {
                        if let (Some(d), false) = (delay, waited) {
                            tokio::time::sleep(d).await;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                        return Some((Ok(bytes), (steps, unfinished)));
                    }
                    Step::Wait(d) => {
                        tokio::time::sleep(d).await;
                        waited = true;
                    }
                    Step::Stall => {
                        // The server's own end (its stall limit), not the client's.
                        tokio::time::sleep(stall_limit).await;
                        unfinished.finished();
                        return None;
                    }
                    Step::Reset => {
                        // Let the server flush what was sent, so the client sees the
                        // headers and the first events before the connection dies.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        unfinished.finished();
                        let error = std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "steer mock: connection reset",
                        );
                        return Some((Err(error), (Vec::new().into_iter(), Unfinished(None))));
                    }
                }
            }
        }
    });
    Body::from_stream(stream)
}
