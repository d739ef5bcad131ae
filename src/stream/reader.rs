//! One attempt of a stream, read where the consumer reads.
//!
//! The stream actor decides everything around an attempt (the permit, the
//! request, the retry, the continuation, the failover); the attempt itself (the
//! HTTP call and its body) is polled by the consumer's own task, inside
//! [`SteerStream`](super::SteerStream)'s `poll_next`, as a bare client's body
//! would be. Then every event reaches the consumer without crossing a thread, and
//! the attempt's connection belongs to the consumer's runtime. The actor lends the
//! attempt its [`Delivery`] in an [`AttemptPlan`] and gets it back with the
//! [`Outcome`] in an [`AttemptEnded`] message: one owner at a time, no lock.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::{Message, Recipient};
use futures::{FutureExt, StreamExt};
use steer_actors::exec::clock::later_tokio;
use steer_actors::retry::limit_at;
use steer_actors::Category;
use tokio::time::{Instant, Sleep};

use super::budget_cap::{BudgetCap, Fits};
use super::delivery::{Asked, Delivery, Step};
use super::race::{hold, is_content, Call, Race, RaceNews, RacePlan, Racer, Turn};
use super::rate::{Rate, RateWindow};
use crate::budget::{billed, SpendLog, Ticket};
use crate::cost::{estimate, Fate};
use crate::error::{Error, ProviderError};
use crate::model::{ChatRequest, FinishReason, ProviderEvent, ResumePoint, RouteStep, StreamEvent};
use crate::provider::Provider;

/// What the consumer receives: an event or the error that ends the stream.
pub(crate) type Item = Result<StreamEvent, Error>;

/// What the stream actor sends its consumer.
pub(crate) enum Command {
    /// Events to deliver as they are (a seam announcement, an end at the
    /// token limit, the error that ends the stream).
    Events(Vec<Item>),
    /// The next attempt, to read.
    Attempt(Box<AttemptPlan>),
}

/// One attempt, as the actor hands it to the consumer's side.
pub(crate) struct AttemptPlan {
    /// The stream's delivery state, lent for the attempt (the reader takes it).
    pub delivery: Option<Box<Delivery>>,
    pub provider: Arc<dyn Provider>,
    /// What this attempt sends (the request, or its continuation); taken by the
    /// reader's HTTP call, so that it lives no longer than that call.
    pub request: Option<Arc<ChatRequest>>,
    /// Where a resumed attempt picks up the stored background response
    /// (instead of sending a request).
    pub resume: Option<ResumePoint>,
    /// The request as the caller made it, at the current target.
    pub original: Arc<ChatRequest>,
    /// When the stream started.
    pub started: Instant,
    /// The request's deadline.
    pub deadline: Option<Instant>,
    /// Until the response headers.
    pub headers_timeout: Option<Duration>,
    /// Until the first text delta.
    pub first_token_timeout: Option<Duration>,
    /// The longest silence between events after it.
    pub idle_timeout: Option<Duration>,
    /// The least rate of content after the first token.
    pub min_rate: Option<super::rate::RateFloor>,
    /// A grouped stream's route so far.
    pub route: Option<Vec<RouteStep>>,
    /// The request's span (a response id is recorded there).
    pub span: tracing::Span,
    /// The attempt's span (the HTTP call runs in it; taken by the reader).
    pub attempt_span: tracing::Span,
    /// Where the outcome goes.
    pub report: Recipient<AttemptEnded>,
    /// The race to the first content, when the attempt is hedged.
    pub race: Option<RacePlan>,
    /// The attempt's place in the request's spend, and the spend (the
    /// stream's `Spend` event reads it).
    pub ticket: Option<Ticket>,
    pub spend: Option<SpendLog>,
    /// Bytes of delivered text before the attempt (what it adds is its own).
    pub text_start: usize,
}

/// How an attempt ended, with the delivery state handed back.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct AttemptEnded {
    pub delivery: Box<Delivery>,
    pub outcome: Outcome,
}

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The stream is complete: its `Complete` reached the consumer's queue.
    Complete,
    /// The provider failed it (before the headers or in the stream).
    Failed(ProviderError),
    /// steer's own reading failed it: a timeout, a panic in provider code, a
    /// stream that stopped without its terminal event.
    Steer {
        category: Category,
        message: &'static str,
    },
    /// The request's deadline cut it.
    DeadlineCut,
    /// The continuation restarted and then differed from the delivered text:
    /// it cannot be spliced (the server answered afresh), and none of it was
    /// delivered.
    Diverged,
}

impl Outcome {
    /// The failure of `provider`'s attempt it is, classified: a provider's
    /// error, or steer's own reading's; `None` for any other end.
    pub(crate) fn failure(&self, provider: &str) -> Option<steer_actors::Failure> {
        match self {
            Outcome::Failed(e) => Some(crate::classify::classify(e)),
            Outcome::Steer { category, message } => {
                Some(steer_actors::Failure::new(*category, provider, message))
            }
            Outcome::Complete | Outcome::DeadlineCut | Outcome::Diverged => None,
        }
    }
}

/// A reader dropped during its attempt (its consumer went away, the stream's
/// actor with it) cancels the background response it was reading: the server
/// would otherwise generate it to its end, billed.
impl Drop for Reader {
    fn drop(&mut self) {
        let Some(delivery) = self.delivery.as_mut() else {
            return;
        };
        // The attempt's tokens so far are spent.
        if let Some(ticket) = self.plan.ticket.take() {
            let text = delivery.checkpoint.text.get(self.plan.text_start..);
            let model = self.plan.original.model.model();
            let output = text.map_or(0, |t| estimate::text_tokens(model, t));
            ticket.close_estimated(output, Fate::Cancelled);
        }
        let ids: Vec<String> = delivery
            .take_resume()
            .map(|p| p.response_id)
            .into_iter()
            .chain(delivery.left_running.take())
            .collect();
        let plan = &self.plan;
        let span = plan.span.clone();
        super::abandoned::cancel(plan.provider.clone(), plan.original.clone(), ids, span);
    }
}

/// The last look a wait that ran out gets before it fails (see `Reader::timed_out`).
const LAST_LOOK: Duration = Duration::from_millis(25);

/// Events queued for the consumer, at most, before it gets them.
const BATCH: usize = 64;

/// The timer of the wait in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Not waiting (an event just arrived): armed at the next wait.
    Unarmed,
    /// Waiting with no limit.
    Unlimited,
    /// Waiting until the timer; `by_deadline` when the deadline set it.
    Armed { by_deadline: bool },
}

/// What one poll of the reader did.
pub(crate) enum Read {
    /// Events are in the queue.
    Events,
    /// The attempt ended (its outcome is sent; events before it are queued).
    Ended,
}

/// Reads one attempt.
pub(crate) struct Reader {
    plan: Box<AttemptPlan>,
    /// The stream's delivery state while this attempt holds it.
    delivery: Option<Box<Delivery>>,
    state: Call,
    /// The race to the first content, while a hedged attempt has none.
    race: Option<Box<Race>>,
    wait: Wait,
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether the wait in progress had its last look.
    looked_last: bool,
    /// Reused for the events one provider event makes.
    scratch: Vec<StreamEvent>,
    /// The attempt's rate against its floor, and the timer of its next look
    /// (boxed: only streams with a floor have one).
    rate: Option<Box<RateCheck>>,
    /// The attempt's budget cap (boxed: only attempts that hold a budget
    /// have one), and the event that waits for its growth.
    cap: Option<Box<BudgetCap>>,
    stashed: Option<ProviderEvent>,
}

/// A rate floor's measure and the timer that wakes the reader to look again.
struct RateCheck {
    window: RateWindow,
    /// The characters the consumer had when the attempt began.
    base: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Reader {
    pub fn new(mut plan: Box<AttemptPlan>) -> Reader {
        let provider = plan.provider.clone();
        let request = plan.request.take().unwrap_or_else(|| plan.original.clone());
        let resume = plan.resume.take();
        let opening = tracing::Instrument::instrument(
            std::panic::AssertUnwindSafe(async move {
                match resume {
                    Some(point) => provider.resume(&request, &point).await,
                    None => provider.stream(&request).await,
                }
            })
            .catch_unwind(),
            std::mem::replace(&mut plan.attempt_span, tracing::Span::none()),
        )
        .boxed();
        let race = plan.race.take().map(|r| Box::new(Race::new(r)));
        let cap = plan
            .ticket
            .as_ref()
            .and_then(|t| t.held_output())
            .map(|_| Box::new(BudgetCap::new()));
        let delivery = plan.delivery.take();
        let base = delivery.as_ref().map_or(0, |d| d.checkpoint.chars as u64);
        let rate = plan.min_rate.map(|floor| {
            Box::new(RateCheck {
                window: RateWindow::new(floor),
                base,
                timer: None,
            })
        });
        Reader {
            delivery,
            plan,
            state: Call::Opening(opening),
            race,
            wait: Wait::Unarmed,
            timer: None,
            looked_last: false,
            scratch: Vec::new(),
            rate,
            cap,
            stashed: None,
        }
    }

    /// Whether the attempt has fallen below its rate floor (the timer of the
    /// next look registered otherwise).
    fn too_slow(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(check) = self.rate.as_deref_mut() else {
            return false;
        };
        let chars = self.delivery.as_ref().map_or(0, |d| {
            (d.checkpoint.chars as u64).saturating_sub(check.base)
        });
        // A timer that fired is looked at again, a few times at most.
        for _ in 0..4 {
            match check.window.look(Instant::now(), chars) {
                None => return false,
                Some(Rate::TooSlow { chars }) => {
                    tracing::info!(parent: &self.plan.span, chars, "steer.stream.slow: below the rate floor");
                    return true;
                }
                Some(Rate::Until(at)) => {
                    let timer = check
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                    if timer.deadline() != at {
                        timer.as_mut().reset(at);
                    }
                    if timer.as_mut().poll(cx).is_pending() {
                        return false;
                    }
                }
            }
        }
        false
    }

    fn slow(&mut self, queue: &mut VecDeque<Item>) -> Poll<Read> {
        self.end(
            queue,
            Outcome::Steer {
                category: Category::SlowStream,
                message: "the stream fell below its rate floor",
            },
        )
    }

    /// Sets the timer for a wait of at most `timeout` (and the deadline).
    fn arm(&mut self, timeout: Option<Duration>) {
        let now = Instant::now();
        let limit = limit_at(timeout, self.plan.deadline, now);
        let at = limit.map(|l| (later_tokio(now, l.duration), l.by_deadline));
        self.wait = match at {
            None => Wait::Unlimited,
            Some((at, by_deadline)) => {
                match self.timer.as_mut() {
                    Some(t) => t.as_mut().reset(at),
                    None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
                }
                Wait::Armed { by_deadline }
            }
        };
    }

    /// Whether the wait in progress ran out (its timer registered otherwise).
    ///
    /// A wait that ran out gets one last look first (at most [`LAST_LOOK`]):
    /// a consumer that was away may come back to bytes that arrived while it
    /// was, but that its HTTP connection reads only now that it is asked, and
    /// that is no silent provider. The request's deadline gets no last look.
    fn timed_out(&mut self, cx: &mut Context<'_>, timeout: Option<Duration>) -> Option<bool> {
        if self.wait == Wait::Unarmed {
            self.arm(timeout);
            self.looked_last = false;
        }
        let Wait::Armed { by_deadline } = self.wait else {
            return None;
        };
        let timer = self.timer.as_mut()?;
        if timer.as_mut().poll(cx).is_pending() {
            return None;
        }
        if by_deadline || self.looked_last {
            return Some(by_deadline);
        }
        self.looked_last = true;
        let grace = timeout.map_or(LAST_LOOK, |t| t.min(LAST_LOOK));
        let at = later_tokio(Instant::now(), grace);
        timer.as_mut().reset(at);
        // Registered again: woken at the end of the last look.
        match timer.as_mut().poll(cx) {
            Poll::Pending => None,
            Poll::Ready(()) => Some(false),
        }
    }

    /// Ends the attempt: the delivery goes back to the actor with `outcome`.
    /// A leg that failed before its content while a hedge races hands the
    /// attempt to that hedge instead; with none, what it held back is
    /// delivered first (its start, its usage), as an unhedged attempt's is.
    fn end(&mut self, queue: &mut VecDeque<Item>, outcome: Outcome) -> Poll<Read> {
        let Some(outcome) = self.hand_over(outcome) else {
            return Poll::Ready(Read::Events);
        };
        if let Some(race) = self.race.take() {
            let (held, _hedges) = race.decide();
            for event in held {
                self.take(event, queue);
            }
        }
        let delivery = self.delivery.take().unwrap_or_default();
        self.spent(&delivery, &outcome, queue);
        // An actor that is gone cannot be told; its consumer then sees the
        // channel close, an error of its own.
        self.plan.report.do_send(AttemptEnded { delivery, outcome });
        Poll::Ready(Read::Ended)
    }

    /// The attempt's spend, at its end: what its server counted, else its
    /// prompt and the text it delivered estimated; delivered when its text
    /// reached the consumer. A complete stream's `Spend` goes just before its
    /// `Complete`.
    fn spent(&mut self, delivery: &Delivery, outcome: &Outcome, queue: &mut VecDeque<Item>) {
        let Some(ticket) = self.plan.ticket.take() else {
            return;
        };
        let plan = &*self.plan;
        let model = plan.original.model.model();
        let text = delivery
            .checkpoint
            .text
            .get(plan.text_start..)
            .unwrap_or("");
        let fate = match outcome {
            Outcome::Complete => Fate::Delivered,
            _ if !text.is_empty() => Fate::Delivered,
            _ => Fate::Failed,
        };
        match (delivery.attempt_counted(), outcome) {
            (Some(usage), _) => ticket.close(None, usage, false, fate),
            (None, Outcome::Failed(e)) if text.is_empty() => ticket.close_failed(billed(e)),
            (None, _) => ticket.close_estimated(estimate::text_tokens(model, text), fate),
        }
        if let (Outcome::Complete, Some(log)) = (outcome, &plan.spend) {
            insert_spend(queue, log.spend());
        }
    }

    /// `event` past the budget cap: it goes if it fits what the attempt
    /// holds; if not, it waits while the hold grows (`Err`: what the reader
    /// answers meanwhile).
    fn through_cap(
        &mut self,
        event: ProviderEvent,
        cx: &mut Context<'_>,
        queue: &mut VecDeque<Item>,
    ) -> Result<ProviderEvent, Poll<Read>> {
        let Some(cap) = self.cap.as_deref_mut() else {
            return Ok(event);
        };
        let tokens = BudgetCap::tokens(self.plan.original.model.model(), &event);
        if tokens == 0 {
            return Ok(event);
        }
        let ticket = self.plan.ticket.as_ref();
        let Some(held) = ticket.and_then(|t| t.held_output()) else {
            return Ok(event);
        };
        if cap.fits(tokens, held) == Fits::Yes {
            if cap.ahead(held) {
                if let Some(grower) = ticket.and_then(|t| t.grower()) {
                    cap.grow(grower, held, 0);
                }
            }
            return Ok(event);
        }
        if !cap.growing() {
            if let Some(grower) = ticket.and_then(|t| t.grower()) {
                cap.grow(grower, held, tokens);
            }
        }
        self.stashed = Some(event);
        Err(self
            .cap_turn(cx, queue)
            .unwrap_or(Poll::Ready(Read::Events)))
    }

    /// The cap's growth in flight, polled: granted, its hold goes back to
    /// the ticket and a waiting event goes on; refused, the stream ends at
    /// the cap. `None`: read on.
    fn cap_turn(&mut self, cx: &mut Context<'_>, queue: &mut VecDeque<Item>) -> Option<Poll<Read>> {
        let cap = self.cap.as_deref_mut()?;
        if !cap.growing() && self.stashed.is_none() {
            return None;
        }
        match cap.poll_growth(cx) {
            Poll::Pending if self.stashed.is_none() => return None,
            Poll::Pending if queue.is_empty() => return Some(Poll::Pending),
            Poll::Pending => return Some(Poll::Ready(Read::Events)),
            Poll::Ready(None) => {}
            Poll::Ready(Some(Ok(granted))) => {
                if let Some(ticket) = self.plan.ticket.as_mut() {
                    ticket.grown(granted);
                }
            }
            // Refused: a waiting delta ends the stream at the cap; a growth
            // asked ahead was only ahead.
            Poll::Ready(Some(Err(refusal))) if self.stashed.is_some() => {
                return Some(self.at_cap(queue, &refusal));
            }
            Poll::Ready(Some(Err(_))) => cap.ahead_refused = true,
        }
        let event = self.stashed.take()?;
        let event = match self.through_cap(event, cx, queue) {
            Ok(event) => event,
            Err(read) => return Some(read),
        };
        match self.take(event, queue) {
            Some(ended) => Some(self.end(queue, ended)),
            None => Some(Poll::Ready(Read::Events)),
        }
    }

    /// The budget has no room for more: the stream ends here, complete, its
    /// reply so far kept (`FinishReason::Budget`).
    fn at_cap(
        &mut self,
        queue: &mut VecDeque<Item>,
        refusal: &steer_actors::budget::Refusal,
    ) -> Poll<Read> {
        self.stashed = None;
        tracing::info!(parent: &self.plan.span, %refusal, "steer.budget: stream stopped at its cap");
        let plan = &*self.plan;
        if let Some(delivery) = self.delivery.as_deref_mut() {
            let route = plan.route.as_deref();
            delivery.complete(
                FinishReason::Budget,
                route,
                &plan.original.model,
                &mut self.scratch,
            );
            queue.extend(self.scratch.drain(..).map(Ok));
        }
        self.end(queue, Outcome::Complete)
    }

    /// One event of the attempt to the consumer's queue, through the
    /// delivery; the attempt's end, when the event ends it.
    fn take(&mut self, event: ProviderEvent, queue: &mut VecDeque<Item>) -> Option<Outcome> {
        let plan = &mut *self.plan;
        let asked = Asked {
            original: &plan.original,
            provider: plan.provider.name(),
            started: plan.started,
            route: plan.route.as_deref(),
        };
        let Some(delivery) = self.delivery.as_deref_mut() else {
            return Some(Outcome::Steer {
                category: Category::Unknown,
                message: "the stream's delivery state is missing",
            });
        };
        let step = delivery.on_event(event, &asked, &plan.span, &mut self.scratch);
        queue.extend(self.scratch.drain(..).map(Ok));
        match step {
            Step::Complete => Some(Outcome::Complete),
            Step::Diverged => Some(Outcome::Diverged),
            Step::Continue => None,
        }
    }

    /// The leader yielded the first content: the race is decided for it, its
    /// hedges dropped (their HTTP calls aborted), what it held back delivered.
    fn kept(&mut self, queue: &mut VecDeque<Item>) -> Option<Outcome> {
        let race = self.race.take()?;
        race.tell(RaceNews::Kept);
        let (held, dropped) = race.decide();
        if let Some(route) = self.plan.route.as_mut() {
            route.extend(
                dropped
                    .iter()
                    .map(|h| RouteStep::lost_race(&h.request.model)),
            );
        }
        held.into_iter().find_map(|event| self.take(event, queue))
    }

    /// Polls the hedges of a race: the first to yield content takes the
    /// attempt (the leader and every other hedge dropped, the route told they
    /// lost), and what it held back and that content are delivered.
    fn hedges(&mut self, cx: &mut Context<'_>, queue: &mut VecDeque<Item>) -> Option<Outcome> {
        let race = self.race.as_deref_mut()?;
        let turn = race.poll(cx);
        if let Some(route) = self.plan.route.as_mut() {
            route.append(&mut race.lost);
        }
        let Turn::Won(i, first) = turn else {
            return None;
        };
        let race = self.race.take()?;
        let number = race.hedges.get(i)?.number;
        race.tell(RaceNews::Won { number });
        let (_held, mut hedges) = race.decide();
        let winner = hedges.remove(i);
        if let Some(route) = self.plan.route.as_mut() {
            for lost in hedges.iter().map(|h| &h.request.model) {
                route.push(RouteStep::lost_race(lost));
            }
            route.push(RouteStep::lost_race(&self.plan.original.model));
        }
        let held = self.lead(winner);
        held.into_iter()
            .chain(std::iter::once(first))
            .find_map(|event| self.take(event, queue))
    }

    /// `racer` leads the attempt now: its call is read, its request and
    /// provider are the attempt's, its timers start afresh; returns what it
    /// held back.
    fn lead(&mut self, racer: Racer) -> Vec<ProviderEvent> {
        let Racer {
            provider,
            request,
            call,
            held,
            ticket,
            ..
        } = racer;
        // The leader's ticket, if still open, was cancelled: it lost.
        self.plan.ticket = ticket;
        self.state = call;
        self.plan.provider = provider;
        self.plan.original = request;
        self.wait = Wait::Unarmed;
        self.looked_last = false;
        held
    }

    /// The leader failed before its content with `outcome`: the first hedge
    /// still racing takes the lead (the actor told, the route's step
    /// recorded); the outcome comes back when none races.
    fn hand_over(&mut self, outcome: Outcome) -> Option<Outcome> {
        let Some(failed) = outcome.failure(self.plan.provider.name()) else {
            return Some(outcome);
        };
        let Some(race) = self.race.as_deref_mut() else {
            return Some(outcome);
        };
        race.join_sent();
        if race.hedges.is_empty() {
            return Some(outcome);
        }
        // The leader failed before its content.
        if let Some(ticket) = self.plan.ticket.take() {
            ticket.close_failed(match &outcome {
                Outcome::Failed(e) => billed(e),
                _ => true,
            });
        }
        let Some(race) = self.race.as_deref_mut() else {
            return Some(outcome);
        };
        let next = race.hedges.remove(0);
        if let Some(route) = self.plan.route.as_mut() {
            let step = RouteStep::ended(&self.plan.original.model, failed.category.as_str());
            route.push(step);
        }
        race.tell(RaceNews::Took {
            number: next.number,
            failed,
        });
        let held = self.lead(next);
        if let Some(race) = self.race.as_deref_mut() {
            race.held = held;
        }
        None
    }

    /// Reads on: `Events` once the body has nothing more ready (or a batch is
    /// queued) and the consumer has something, `Ended` when the attempt ends.
    pub fn poll(&mut self, cx: &mut Context<'_>, queue: &mut VecDeque<Item>) -> Poll<Read> {
        // A hedge's progress wakes this task too: a race is looked at first.
        if let Some(ended) = self.hedges(cx, queue) {
            return self.end(queue, ended);
        }
        // So does a budget's growth: a delta that waited on it goes first.
        if let Some(read) = self.cap_turn(cx, queue) {
            return read;
        }
        loop {
            let stream = match &mut self.state {
                Call::Opening(opening) => match opening.as_mut().poll(cx) {
                    Poll::Ready(Ok(Ok(stream))) => {
                        self.wait = Wait::Unarmed;
                        self.state = Call::Reading(stream);
                        continue;
                    }
                    Poll::Ready(Ok(Err(e))) => return self.end(queue, Outcome::Failed(e)),
                    Poll::Ready(Err(_panic)) => {
                        return self.end(
                            queue,
                            Outcome::Steer {
                                category: Category::Unknown,
                                message: "the provider panicked",
                            },
                        )
                    }
                    Poll::Pending => {
                        return match self.timed_out(cx, self.plan.headers_timeout) {
                            Some(true) => self.end(queue, Outcome::DeadlineCut),
                            Some(false) => self.end(
                                queue,
                                Outcome::Steer {
                                    category: Category::Timeout,
                                    message: "no response headers in time",
                                },
                            ),
                            None => Poll::Pending,
                        };
                    }
                },
                Call::Reading(stream) => stream,
            };
            // Each poll of the provider's stream is guarded: a panic in provider
            // code ends the attempt (keeping the events before it).
            let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                stream.poll_next_unpin(cx)
            }));
            let event = match next {
                Err(_panic) => {
                    return self.end(
                        queue,
                        Outcome::Steer {
                            category: Category::Unknown,
                            message: "the provider's stream panicked",
                        },
                    )
                }
                Ok(Poll::Ready(Some(Ok(event)))) => event,
                Ok(Poll::Ready(Some(Err(e)))) => return self.end(queue, Outcome::Failed(e)),
                Ok(Poll::Ready(None)) => {
                    // Decoders always end with Complete or an error; be safe anyway.
                    return self.end(
                        queue,
                        Outcome::Steer {
                            category: Category::StreamInterrupted,
                            message: "the stream ended without its terminal event",
                        },
                    );
                }
                Ok(Poll::Pending) => {
                    if self.too_slow(cx) {
                        return self.slow(queue);
                    }
                    let first_token = self.delivery.as_ref().is_none_or(|d| d.attempt_deltas == 0);
                    let timeout = if first_token {
                        self.plan.first_token_timeout
                    } else {
                        self.plan.idle_timeout
                    };
                    return match self.timed_out(cx, timeout) {
                        Some(true) => self.end(queue, Outcome::DeadlineCut),
                        Some(false) => self.end(
                            queue,
                            Outcome::Steer {
                                category: Category::Timeout,
                                message: if first_token {
                                    "no first token in time"
                                } else {
                                    "the stream went idle"
                                },
                            },
                        ),
                        None if queue.is_empty() => {
                            // A waiting stream holds no buffer of its own.
                            self.scratch = Vec::new();
                            *queue = VecDeque::new();
                            Poll::Pending
                        }
                        None => {
                            self.scratch = Vec::new();
                            Poll::Ready(Read::Events)
                        }
                    };
                }
            };
            self.wait = Wait::Unarmed;
            if let Some(race) = self.race.as_deref_mut() {
                if !is_content(&event) {
                    hold(&mut race.held, event);
                    continue;
                }
                // The leader's first content came first: it keeps the stream.
                if let Some(ended) = self.kept(queue) {
                    return self.end(queue, ended);
                }
            }
            let event = match self.through_cap(event, cx, queue) {
                Ok(event) => event,
                Err(read) => return read,
            };
            if let Some(ended) = self.take(event, queue) {
                return self.end(queue, ended);
            }
            if self.rate.is_some() && self.too_slow(cx) {
                return self.slow(queue);
            }
            // Events that already arrived are read on, up to a batch, before the
            // consumer gets them: no latency is added (the next one is not
            // waited for), and a body read to its waiting point frees its decode
            // buffers (a stream held open costs less).
            if queue.len() >= BATCH {
                return Poll::Ready(Read::Events);
            }
        }
    }
}

/// Puts `spend` just before the queue's `Complete` (or last, with none).
pub(crate) fn insert_spend(queue: &mut VecDeque<Item>, spend: crate::model::Spend) {
    let event = Ok(StreamEvent::Spend(Box::new(spend)));
    match queue
        .iter()
        .rposition(|i| matches!(i, Ok(StreamEvent::Complete { .. })))
    {
        Some(at) => queue.insert(at, event),
        None => queue.push_back(event),
    }
}
