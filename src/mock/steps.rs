//! How the mock sends a body: the steps of a stream (events, waits, a stall,
//! a reset) and how a fault cuts it.

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

pub(super) fn stream_steps(frames: Frames, fault: Option<(usize, Cut)>) -> Vec<Step> {
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
        steps.push(Step::Send(frame));
    }
    match fault {
        None | Some((_, Cut::Trickle(_))) => steps.extend(tail.into_iter().map(Step::Send)),
        Some((_, Cut::Send(frame))) => steps.push(Step::Send(frame)),
        Some((_, Cut::Stall)) => steps.push(Step::Stall),
        Some((_, Cut::End)) => {}
        Some((_, Cut::Reset)) => steps.push(Step::Reset),
    }
    steps
}

pub(super) fn steps_body(
    steps: Vec<Step>,
    delay: Option<Duration>,
    stall_limit: Duration,
    sent: Arc<std::sync::atomic::AtomicU64>,
) -> Body {
    let stream = futures::stream::unfold(steps.into_iter(), move |mut steps| {
        let sent = sent.clone();
        async move {
            match steps.next()? {
                Step::Send(bytes) => {
                    if let Some(d) = delay {
                        tokio::time::sleep(d).await;
                    }
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Some((Ok(bytes), steps))
                }
                Step::Wait(d) => {
                    tokio::time::sleep(d).await;
                    // The next step comes in the same turn.
                    match steps.next()? {
                        Step::Send(bytes) => {
                            sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            Some((Ok(bytes), steps))
                        }
                        _ => None,
                    }
                }
                Step::Stall => {
                    tokio::time::sleep(stall_limit).await;
                    None
                }
                Step::Reset => {
                    // Let the server flush what was sent, so the client sees the
                    // headers and the first events before the connection dies.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "steer mock: connection reset",
                        )),
                        Vec::new().into_iter(),
                    ))
                }
            }
        }
    });
    Body::from_stream(stream)
}
