//! A hedged stream's race to its first content, read where the consumer reads.
//!
//! When a stream's attempt has delivered nothing and its hedge delay passes,
//! the stream actor sends the same request to another target (or the same
//! one) as a [`HedgeLeg`]; the attempt's reader runs every leg's HTTP call
//! beside its own. Until one leg yields real content (text, reasoning, a tool
//! call, or its end), every leg's other events (its `Start`, usage, response
//! id) are held back, so that the consumer sees one attempt only: the
//! winner's. The first content decides: the winner's held events and that
//! content go to the consumer, every other leg is dropped (its HTTP request
//! aborted) and the actor is told ([`RaceNews`]) so that it returns their
//! permits and moves the stream to the winner. An error, a keep-alive, a
//! role-only chunk or `response.created` never wins: they are no content.
//!
//! ```text
//! leader ──Start──────────(held)───────────── first text at 900 ms ─ loses
//! hedge  ──────(sent at 300 ms)──Start─(held)─ first text at 420 ms ─ WINS
//! consumer sees: Start (hedge's), text (hedge's) ...
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix::{Message, Recipient};
use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};

use steer_actors::{Category, Failure};

use crate::budget::{billed, Ticket};
use crate::classify::classify;
use crate::error::ProviderError;
use crate::model::{ChatRequest, ProviderEvent, RouteStep};
use crate::provider::{EventStream, Provider};

/// A hedge of a stream's attempt, as the actor hands it to the reader.
pub(crate) struct HedgeLeg {
    /// The leg's number in the stream's race (the actor's key for its permit).
    pub number: u32,
    /// The provider of its target.
    pub provider: Arc<dyn Provider>,
    /// The request, at its target.
    pub request: Arc<ChatRequest>,
    /// The span its HTTP call runs in.
    pub span: tracing::Span,
    /// Its place in the request's spend (closed when it fails, dropped, as
    /// cancelled, when it loses).
    pub ticket: Option<Ticket>,
}

/// What the reader tells the stream actor about its race.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) enum RaceNews {
    /// The leading leg's first content came first: every hedge was dropped.
    Kept,
    /// Hedge `number` yielded the first content: it took the stream, and the
    /// leg that led (and any other hedge) was dropped.
    Won {
        /// The winner.
        number: u32,
    },
    /// The leading leg failed before any content (`failed`): hedge `number`
    /// leads now, and the race goes on.
    Took {
        /// The new leader.
        number: u32,
        /// How the leg that led ended.
        failed: Failure,
    },
    /// Hedge `number` failed before any content; the others race on.
    Lost {
        /// The hedge.
        number: u32,
        /// How it ended.
        failed: Failure,
    },
}

/// The race, as the reader holds it until it is decided.
pub(crate) struct RacePlan {
    /// Where the actor's hedges arrive.
    pub legs: mpsc::UnboundedReceiver<HedgeLeg>,
    /// Set once the race is decided: the actor sends no more hedges.
    pub decided: Arc<AtomicBool>,
    /// Where the news go.
    pub news: Recipient<RaceNews>,
}

type Opening =
    futures::future::BoxFuture<'static, std::thread::Result<Result<EventStream, ProviderError>>>;

/// A leg's HTTP call: opening, then read.
pub(crate) enum Call {
    /// Waiting for the response headers.
    Opening(Opening),
    /// Reading the body.
    Reading(EventStream),
}

impl Call {
    /// Opens `request` at `provider` in `span` (a panic in provider code
    /// becomes the call's failure).
    pub(crate) fn open(
        provider: Arc<dyn Provider>,
        request: Arc<ChatRequest>,
        span: tracing::Span,
    ) -> Call {
        let opening = tracing::Instrument::instrument(
            std::panic::AssertUnwindSafe(async move { provider.stream(&request).await })
                .catch_unwind(),
            span,
        )
        .boxed();
        Call::Opening(opening)
    }
}

/// One hedge in the race.
pub(crate) struct Racer {
    pub number: u32,
    pub provider: Arc<dyn Provider>,
    pub request: Arc<ChatRequest>,
    pub call: Call,
    /// Its events before its first content.
    pub held: Vec<ProviderEvent>,
    /// Its place in the request's spend.
    pub ticket: Option<Ticket>,
}

/// A hedge's turn: it yielded content first, or is still on its way.
pub(crate) enum Turn {
    /// Hedge at this index yielded this first content.
    Won(usize, ProviderEvent),
    /// Nothing decided.
    Pending,
}

/// The race of one attempt's legs, until the first content.
pub(crate) struct Race {
    plan: RacePlan,
    /// The leading leg's events before its first content.
    pub held: Vec<ProviderEvent>,
    /// The hedges running beside it.
    pub hedges: Vec<Racer>,
    /// Hedges that failed, for the route the stream reports.
    pub lost: Vec<RouteStep>,
}

impl Race {
    pub(crate) fn new(plan: RacePlan) -> Race {
        Race {
            plan,
            held: Vec::new(),
            hedges: Vec::new(),
            lost: Vec::new(),
        }
    }

    /// Tells the actor `news` (an actor that is gone cannot be told: its
    /// consumer then sees the channel close).
    pub(crate) fn tell(&self, news: RaceNews) {
        self.plan.news.do_send(news);
    }

    /// Hedges the actor sent that the reader has not taken yet join the race
    /// (a leader failing at once may hand over to one).
    pub(crate) fn join_sent(&mut self) {
        while let Ok(leg) = self.plan.legs.try_recv() {
            self.join(leg);
        }
    }

    /// The race is decided: no hedge is sent any more; returns the leader's
    /// held events and the hedges (to drop, or to take the lead), with those
    /// sent but not started yet (their calls never made).
    pub(crate) fn decide(mut self) -> (Vec<ProviderEvent>, Vec<Racer>) {
        self.plan.decided.store(true, Ordering::Relaxed);
        self.plan.legs.close();
        self.join_sent();
        (self.held, self.hedges)
    }

    /// A hedge joins the race (its call made when first polled).
    fn join(&mut self, leg: HedgeLeg) {
        let HedgeLeg {
            number,
            provider,
            request,
            span,
            ticket,
        } = leg;
        let call = Call::open(provider.clone(), request.clone(), span);
        self.hedges.push(Racer {
            number,
            provider,
            request,
            call,
            held: Vec::new(),
            ticket,
        });
    }

    /// Polls the hedges: new legs start, each running leg reads on until it
    /// waits; a leg that fails is dropped (the actor told); the first that
    /// yields content wins.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Turn {
        while let Poll::Ready(Some(leg)) = self.plan.legs.poll_next_unpin(cx) {
            self.join(leg);
        }
        let mut i = 0;
        while i < self.hedges.len() {
            match poll_racer(&mut self.hedges[i], cx) {
                Leg::Waiting => i += 1,
                Leg::Content(event) => return Turn::Won(i, event),
                Leg::Ended(failed, billed) => {
                    let mut racer = self.hedges.remove(i);
                    if let Some(ticket) = racer.ticket.take() {
                        ticket.close_failed(billed);
                    }
                    let step = RouteStep::ended(&racer.request.model, failed.category.as_str());
                    self.lost.push(step);
                    self.tell(RaceNews::Lost {
                        number: racer.number,
                        failed,
                    });
                }
            }
        }
        Turn::Pending
    }
}

/// Where one leg stands after a poll.
enum Leg {
    Waiting,
    Content(ProviderEvent),
    /// It failed before its content (and whether its server billed it).
    Ended(Failure, bool),
}

fn poll_racer(racer: &mut Racer, cx: &mut Context<'_>) -> Leg {
    let provider = racer.provider.clone();
    let steer =
        |category, message| Leg::Ended(Failure::new(category, provider.name(), message), true);
    let failed = |e: &crate::error::ProviderError| Leg::Ended(classify(e), billed(e));
    let panicked = || steer(Category::Unknown, "the provider panicked");
    loop {
        let stream = match &mut racer.call {
            Call::Opening(opening) => match opening.as_mut().poll(cx) {
                Poll::Pending => return Leg::Waiting,
                Poll::Ready(Ok(Ok(stream))) => {
                    racer.call = Call::Reading(stream);
                    continue;
                }
                Poll::Ready(Ok(Err(e))) => return failed(&e),
                Poll::Ready(Err(_panic)) => return panicked(),
            },
            Call::Reading(stream) => stream,
        };
        let next =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stream.poll_next_unpin(cx)));
        match next {
            Err(_panic) => return panicked(),
            Ok(Poll::Pending) => return Leg::Waiting,
            Ok(Poll::Ready(Some(Ok(event)))) if is_content(&event) => return Leg::Content(event),
            Ok(Poll::Ready(Some(Ok(event)))) => hold(&mut racer.held, event),
            Ok(Poll::Ready(Some(Err(e)))) => return failed(&e),
            Ok(Poll::Ready(None)) => {
                let message = "the stream ended without its terminal event";
                return steer(Category::StreamInterrupted, message);
            }
        }
    }
}

/// Whether `event` is real content: what decides a race. A response's start,
/// its usage, its ids and resume points are not (nor are a keep-alive or a
/// role-only chunk, which decoders never turn into events); its end is (an
/// empty reply is an answer).
pub(crate) fn is_content(event: &ProviderEvent) -> bool {
    match event {
        ProviderEvent::TextDelta { text, .. } => !text.is_empty(),
        ProviderEvent::Start { .. }
        | ProviderEvent::Usage(_)
        | ProviderEvent::ResponseId { .. }
        | ProviderEvent::Resumable(_)
        | ProviderEvent::LeftRunning { .. } => false,
        _ => true,
    }
}

/// Holds `event` back until the race is decided. Only the latest of each kind
/// is kept (usage is cumulative; an id or a resume point replaces the one
/// before): a leg can hold a handful of events at most, however many a
/// hostile server sends before its content.
pub(crate) fn hold(held: &mut Vec<ProviderEvent>, event: ProviderEvent) {
    let kind = std::mem::discriminant(&event);
    held.retain(|e| std::mem::discriminant(e) != kind);
    held.push(event);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Usage;

    #[test]
    fn only_real_content_decides_and_what_is_held_stays_a_handful() {
        let start = ProviderEvent::Start {
            request_id: crate::model::RequestId::from("r"),
            provider: "p".into(),
            model: "m".into(),
            provider_request_id: None,
        };
        let empty = ProviderEvent::TextDelta {
            text: String::new(),
            offset: 0,
        };
        let id = |n: usize| ProviderEvent::ResponseId {
            id: format!("resp_{n}"),
        };
        for no in [start.clone(), empty.clone(), id(1)] {
            assert!(!is_content(&no), "{no:?}");
        }
        let text = ProviderEvent::TextDelta {
            text: "a".into(),
            offset: 0,
        };
        let done = ProviderEvent::Complete {
            finish_reason: crate::model::FinishReason::Stop,
            usage: None,
        };
        assert!(is_content(&text) && is_content(&done));
        // A server that sends ten thousand ids and usages before its text.
        let mut held = Vec::new();
        hold(&mut held, start.clone());
        for n in 0..10_000 {
            hold(&mut held, id(n));
            hold(&mut held, ProviderEvent::Usage(Usage::default()));
            hold(&mut held, empty.clone());
        }
        assert_eq!(held.len(), 4);
        assert_eq!(held[0], start, "the start stays first");
        assert!(held.contains(&id(9_999)), "the latest id is kept");
    }
}
