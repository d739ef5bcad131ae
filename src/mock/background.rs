//! The background responses the mock keeps, as the Responses API keeps them in
//! background mode (`background: true`; responses-api.md §5, from
//! developers.openai.com/docs/guides/background and the failures reported
//! there):
//!
//! - every event of a background stream is kept, and `GET /v1/responses/{id}
//!   ?stream=true&starting_after=N` replays those after event `N` (nothing is
//!   generated again);
//! - a resume later than the resume window (OpenAI's is about five minutes,
//!   shorter than the ten minutes a response is kept) is refused with 400 "This
//!   response can no longer be streamed because it is more than 5 minutes old"
//!   (openai/openai-python #2828);
//! - a response whose stream broke right after `response.created` can stay
//!   `queued`, and a resume of it sends nothing (a community.openai.com report:
//!   `starting_after=0` did not revive it): the `stuck_queued` fault;
//! - an id the server does not have is a 404;
//! - a resume with the `whole_reply` fault gets the poll's JSON instead of
//!   events, as through a proxy that drops the query string;
//! - `POST /v1/responses/{id}/cancel` cancels one still running, answering
//!   with the response, `status: cancelled`; a finished one cannot be
//!   cancelled (a 400).
//!
//! The store is bounded: the oldest responses are forgotten past
//! [`CAPACITY`] (a resume of one is a 404, as on a server past its retention).

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use serde_json::{json, Value};

use super::render::Frames;

/// Background responses kept at most.
pub const CAPACITY: usize = 1024;

/// How far a stored response got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Generating (as far as a reader knows): a stream of it broke.
    Running,
    /// Ended: some stream of it reached its terminal event (or its error).
    Ended,
    /// Stuck in `queued`: a resume sends nothing.
    Stuck,
    /// Cancelled.
    Cancelled,
}

struct Stored {
    frames: Frames,
    model: String,
    created: Instant,
    state: State,
}

/// The stored background responses, oldest first.
#[derive(Default)]
pub(crate) struct Store {
    order: VecDeque<String>,
    responses: HashMap<String, Stored>,
}

/// Why a resume or a cancel is refused: the status and OpenAI's message.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    pub status: u16,
    pub message: String,
}

/// A resume's events: those after the point, and whether the response stays
/// stuck (the stream then stays open with nothing more).
pub(super) struct Resumed {
    pub frames: Frames,
    pub stuck: bool,
}

impl Store {
    /// Keeps response `id`'s events (`frames`, numbered from 0 in order), in
    /// `state`.
    pub(super) fn keep(&mut self, id: &str, model: &str, frames: Frames, state: State) {
        while self.order.len() >= CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.responses.remove(&old);
            }
        }
        self.order.push_back(id.to_string());
        self.responses.insert(
            id.to_string(),
            Stored {
                frames,
                model: model.to_string(),
                created: Instant::now(),
                state,
            },
        );
    }

    /// The events of response `id` after event `after` (all of them without
    /// one), if it may still be streamed within `window`. `ends` says whether
    /// this stream will send them all (then the response has ended).
    pub(super) fn resume(
        &mut self,
        id: &str,
        after: Option<u64>,
        window: std::time::Duration,
        ends: bool,
    ) -> Result<Resumed, Refusal> {
        let stored = self.responses.get_mut(id).ok_or_else(|| not_found(id))?;
        if stored.created.elapsed() > window {
            return Err(Refusal {
                status: 400,
                message:
                    "This response can no longer be streamed because it is more than 5 minutes old."
                        .into(),
            });
        }
        let skip = after.map_or(0, |n| {
            usize::try_from(n).unwrap_or(usize::MAX).saturating_add(1)
        });
        let rest = |frames: &[Bytes], skip: &mut usize| {
            let from = (*skip).min(frames.len());
            *skip -= from;
            frames[from..].to_vec()
        };
        let mut left = skip;
        let frames = Frames {
            head: rest(&stored.frames.head, &mut left),
            content: rest(&stored.frames.content, &mut left),
            tail: rest(&stored.frames.tail, &mut left),
        };
        let stuck = stored.state == State::Stuck;
        if ends && stored.state == State::Running {
            stored.state = State::Ended;
        }
        Ok(Resumed { frames, stuck })
    }

    /// Cancels response `id`: the cancelled response's JSON.
    pub(super) fn cancel(&mut self, id: &str) -> Result<Value, Refusal> {
        let stored = self.responses.get_mut(id).ok_or_else(|| not_found(id))?;
        if stored.state == State::Ended {
            return Err(Refusal {
                status: 400,
                message: "Cannot cancel a completed response.".into(),
            });
        }
        stored.state = State::Cancelled;
        Ok(
            json!({"id": id, "object": "response", "status": "cancelled",
            "background": true, "model": stored.model, "output": [],
            "error": null, "incomplete_details": null, "usage": null}),
        )
    }

    /// The state of response `id`, if kept.
    pub fn state(&self, id: &str) -> Option<State> {
        self.responses.get(id).map(|s| s.state)
    }
}

fn not_found(id: &str) -> Refusal {
    Refusal {
        status: 404,
        message: format!(
            "Response with id '{}' not found.",
            id.chars().take(64).collect::<String>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize) -> Frames {
        let f = |i: usize| Bytes::from(format!("{i}"));
        Frames {
            head: (0..2).map(f).collect(),
            content: (2..n - 1).map(f).collect(),
            tail: vec![f(n - 1)],
        }
    }

    #[test]
    fn a_resume_replays_the_events_after_its_point_and_a_late_or_unknown_one_is_refused() {
        let mut store = Store::default();
        store.keep("resp_1", "m", frames(6), State::Running);
        let long = std::time::Duration::from_secs(300);
        let r = store.resume("resp_1", Some(2), long, false).expect("kept");
        let all: Vec<Bytes> = [r.frames.head, r.frames.content, r.frames.tail].concat();
        assert_eq!(
            all,
            vec![Bytes::from("3"), Bytes::from("4"), Bytes::from("5")]
        );
        let past = store
            .resume("resp_1", Some(u64::MAX), long, false)
            .expect("kept");
        assert!(past.frames.tail.is_empty() && past.frames.content.is_empty());
        let all = store.resume("resp_1", None, long, false).expect("kept");
        assert_eq!(
            all.frames.head.len() + all.frames.content.len() + all.frames.tail.len(),
            6
        );
        assert_eq!(
            store
                .resume("resp_2", None, long, false)
                .err()
                .map(|r| r.status),
            Some(404)
        );
        let late = store.resume("resp_1", None, std::time::Duration::ZERO, false);
        assert_eq!(late.err().map(|r| r.status), Some(400));
        // Cancelled while running; a response read to its end cannot be.
        assert!(store.cancel("resp_1").is_ok());
        assert_eq!(store.state("resp_1"), Some(State::Cancelled));
        store.keep("resp_3", "m", frames(6), State::Running);
        store.resume("resp_3", None, long, true).expect("kept");
        assert_eq!(store.cancel("resp_3").err().map(|r| r.status), Some(400));
    }

    #[test]
    fn the_store_forgets_its_oldest_past_its_capacity() {
        let mut store = Store::default();
        for i in 0..CAPACITY + 10 {
            store.keep(&format!("resp_{i}"), "m", frames(4), State::Ended);
        }
        assert_eq!(store.responses.len(), CAPACITY);
        assert!(store.state("resp_0").is_none());
        assert!(store.state(&format!("resp_{}", CAPACITY + 9)).is_some());
    }
}
