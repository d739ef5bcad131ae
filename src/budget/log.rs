//! The spend of one request as its attempts run: each attempt opens a
//! [`Ticket`] when it starts and closes it with its usage when it ends; a
//! ticket dropped open (its attempt cancelled: a hedge that lost, a caller
//! gone) closes itself as cancelled, its prompt estimated. Every attempt a
//! request runs (its retries, a group's legs, hedges) writes to the same log,
//! which the request's reply carries at its end, and the client's metrics
//! count as each attempt closes.

use std::sync::Arc;

use parking_lot::Mutex;
use steer_actors::telemetry::meters::{Meters, SpendSample, TargetMeters};

use crate::cost::{estimate, priced, Fate, PriceTable, Spend};
use crate::error::{FailureKind, ProviderError, TransportKind};
use crate::model::{ChatRequest, ChatResponse, Usage};

/// One request's spend, shared by its attempts. Cloning shares it.
///
/// One allocation a request, and one reference count: every attempt's
/// ticket holds a clone, and each clone, lock and allocation is on every
/// request's path (`--bench overhead`: the log's share of steer's per-request
/// cost, 0.4-0.8 µs of 2.7, was its four reference counts and three locks a
/// step). One lock a step now: an attempt is taken from the open ones and
/// recorded under one hold of it, so that a request that reads its spend
/// after cancelling what is open never misses an attempt that closed on
/// another thread meanwhile (taken, not yet recorded).
#[derive(Clone)]
pub struct SpendLog {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<LogState>,
    pricing: Arc<Pricing>,
}

/// What a client's spend logs price and count attempts with, built once and
/// shared by every request's log (one reference count a request, not one for
/// each part).
pub(crate) struct Pricing {
    prices: Arc<PriceTable>,
    meters: Option<Meters>,
    /// The client's budgets, when it has any: replies teach them their
    /// model's output sizes.
    budgets: Option<Arc<super::gate::BudgetGate>>,
}

impl Pricing {
    /// Attempts priced by `prices`, counted in `meters` (if any), teaching
    /// `budgets` (if any) the output sizes of their replies.
    pub(crate) fn new(
        prices: Arc<PriceTable>,
        meters: Option<Meters>,
        budgets: Option<Arc<super::gate::BudgetGate>>,
    ) -> Self {
        Pricing {
            prices,
            meters,
            budgets,
        }
    }
}

impl std::fmt::Debug for SpendLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendLog").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct LogState {
    spend: Spend,
    /// Attempts started and not ended.
    open: Open,
    /// Attempts closed as cancelled while their tickets live on: what each
    /// spent (tokens, cost), for its hold to settle on when it drops.
    closed: Vec<(u64, u64, Option<crate::cost::Usd>)>,
    next: u64,
}

struct OpenAttempt {
    id: u64,
    request: Arc<ChatRequest>,
    /// Its target's metric series, when whoever opened it had them resolved
    /// (a request actor does, once a request): not looked up again.
    target: Option<TargetMeters>,
}

/// The attempts open: the first in place (most requests make one attempt at
/// a time, and a vector would allocate for it), any more beside it.
#[derive(Default)]
struct Open {
    first: Option<OpenAttempt>,
    more: Vec<OpenAttempt>,
}

impl Open {
    fn push(&mut self, attempt: OpenAttempt) {
        match self.first {
            None => self.first = Some(attempt),
            Some(_) => self.more.push(attempt),
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_empty()
    }

    /// Attempt `id`, taken out, if it is open.
    fn take(&mut self, id: u64) -> Option<OpenAttempt> {
        if self.first.as_ref().is_some_and(|a| a.id == id) {
            return self.first.take();
        }
        let i = self.more.iter().position(|a| a.id == id)?;
        Some(self.more.swap_remove(i))
    }

    /// Every open attempt, in the order they opened.
    fn in_order(self) -> impl Iterator<Item = OpenAttempt> {
        self.first.into_iter().chain(self.more)
    }
}

/// An attempt's place in its request's [`SpendLog`], from its start to its
/// end. Dropped open, it closes as cancelled.
#[must_use = "a ticket dropped at once records a cancelled attempt"]
pub struct Ticket {
    log: SpendLog,
    id: u64,
    /// What the attempt reserved of the client's budgets, settled with it.
    hold: Option<super::gate::Hold>,
    /// Closed by its attempt (recorded, or found cancelled already): its
    /// drop has nothing left to do but settle a hold still held.
    closed: bool,
}

impl SpendLog {
    /// An empty log, priced by `prices`, counted in `meters` (if any).
    pub fn new(prices: Arc<PriceTable>, meters: Option<Meters>) -> Self {
        Self::priced_by(Arc::new(Pricing::new(prices, meters, None)))
    }

    /// An empty log, priced and counted as `pricing` says (a client's).
    pub(crate) fn priced_by(pricing: Arc<Pricing>) -> Self {
        SpendLog {
            shared: Arc::new(Shared {
                state: Mutex::new(LogState::default()),
                pricing,
            }),
        }
    }

    /// An attempt of `request` starts (at the deployment its model names).
    pub fn open(&self, request: Arc<ChatRequest>) -> Ticket {
        self.open_at(request, None)
    }

    /// [`SpendLog::open`], its spend counted in `target`, the metric series of
    /// the request's deployment and model, resolved already (else looked up
    /// when it ends).
    pub(crate) fn open_at(
        &self,
        request: Arc<ChatRequest>,
        target: Option<TargetMeters>,
    ) -> Ticket {
        let mut state = self.shared.state.lock();
        let id = state.next;
        state.next = state.next.wrapping_add(1);
        state.open.push(OpenAttempt {
            id,
            request,
            target,
        });
        Ticket {
            log: self.clone(),
            id,
            hold: None,
            closed: false,
        }
    }

    /// Closes every attempt still open as cancelled: the request has its
    /// reply (or its error), and what still runs lost.
    pub fn cancel_open(&self) {
        let mut state = self.shared.state.lock();
        self.shared.cancel_open(&mut state);
    }

    /// The request's end: what is open closes as cancelled
    /// ([`SpendLog::cancel_open`]), then its spend is taken out
    /// ([`SpendLog::take_spend`]), under one lock of the log.
    pub fn finish(&self) -> Spend {
        let mut state = self.shared.state.lock();
        if !state.open.is_empty() {
            self.shared.cancel_open(&mut state);
        }
        std::mem::take(&mut state.spend)
    }

    /// The reply starts again from its beginning: what was delivered so far
    /// is wasted ([`Spend::repeat_delivered`]).
    pub fn repeat_delivered(&self) {
        self.shared.state.lock().spend.repeat_delivered();
    }

    /// What the request spent so far.
    pub fn spend(&self) -> Spend {
        self.shared.state.lock().spend.clone()
    }

    /// What the request spent, taken out of the log (its end: nothing more
    /// is recorded that the reply should carry).
    pub fn take_spend(&self) -> Spend {
        std::mem::take(&mut self.shared.state.lock().spend)
    }

    /// What attempt `id`, closed as cancelled by [`SpendLog::cancel_open`],
    /// spent.
    fn closed(&self, id: u64) -> Option<(u64, Option<crate::cost::Usd>)> {
        let mut state = self.shared.state.lock();
        let i = state.closed.iter().position(|c| c.0 == id)?;
        let (_, tokens, cost) = state.closed.swap_remove(i);
        Some((tokens, cost))
    }
}

impl Shared {
    /// Closes every attempt open in `state` (its lock held) as cancelled.
    fn cancel_open(&self, state: &mut LogState) {
        for attempt in std::mem::take(&mut state.open).in_order() {
            let usage = cancelled_usage(&attempt.request);
            let spend = self.settle(&attempt, None, usage, true, Fate::Cancelled, None);
            if state.closed.len() < crate::cost::MAX_LISTED {
                state
                    .closed
                    .push((attempt.id, usage.input_tokens(), spend.cost));
            }
            state.spend.push(spend);
        }
    }

    /// The spend of `attempt`, for its caller to add to the log under the
    /// same hold of its lock that took the attempt from the open ones (whoever
    /// takes the spend next finds it): priced as `answered`, the model that
    /// answered, if it said; counted under the request's model; its budget
    /// hold settled.
    fn settle(
        &self,
        attempt: &OpenAttempt,
        answered: Option<&str>,
        usage: Usage,
        estimated: bool,
        fate: Fate,
        hold: Option<super::gate::Hold>,
    ) -> crate::cost::AttemptSpend {
        let request = &attempt.request;
        let (deployment, model) = (request.model.provider(), request.model.model());
        let priced_as = answered.unwrap_or(model);
        let pricing = &*self.pricing;
        let spend = priced(
            &pricing.prices,
            deployment,
            priced_as,
            usage,
            estimated,
            fate,
        );
        let cost = spend.cost;
        let tokens = usage.input_tokens().saturating_add(usage.completion_tokens);
        if let Some(hold) = hold {
            hold.settle(tokens, cost);
        }
        if let (Some(budgets), Fate::Delivered, false) = (&pricing.budgets, fate, estimated) {
            budgets.outputs.record(model, usage.completion_tokens);
        }
        if let Some(meters) = &pricing.meters {
            let sample = SpendSample {
                outcome: fate.label(),
                dollars: cost.map(|c| c.dollars()),
                tokens,
                estimated,
            };
            match &attempt.target {
                Some(target) => meters.spend_at(target, sample),
                None => meters.spend_at(&meters.find_target(deployment, model), sample),
            }
        }
        spend
    }
}

impl Ticket {
    /// The attempt ended with `usage` (as the server counted it, or
    /// `estimated`): its output is in the reply or not, as `fate` says.
    /// `model` is the model that answered (priced as such).
    pub fn close(mut self, model: Option<&str>, usage: Usage, estimated: bool, fate: Fate) {
        self.end(model, estimated, fate, |_| usage);
    }

    /// The attempt ended with no usage from its server: its prompt is
    /// estimated, and `output_tokens` (what it delivered, estimated) added.
    pub fn close_estimated(mut self, output_tokens: u64, fate: Fate) {
        self.end(None, true, fate, |request| {
            Usage::new(estimate::prompt_tokens(request), output_tokens)
        });
    }

    /// Records the attempt's end, once: under one lock of the log, if it is
    /// still open (`cancel_open` may have closed it meanwhile), its usage
    /// (`usage` of its request) priced and its hold settled on it.
    fn end(
        &mut self,
        model: Option<&str>,
        estimated: bool,
        fate: Fate,
        usage: impl FnOnce(&ChatRequest) -> Usage,
    ) {
        self.closed = true;
        let shared = &*self.log.shared;
        let mut state = shared.state.lock();
        if let Some(open) = state.open.take(self.id) {
            let usage = usage(&open.request);
            let hold = self.hold.take();
            let spend = shared.settle(&open, model, usage, estimated, fate, hold);
            state.spend.push(spend);
        }
    }

    /// The attempt is not sent after all (its budget had no room): it is
    /// not an attempt, and records nothing.
    pub fn withdraw(mut self) {
        self.closed = true;
        let _ = self.log.shared.state.lock().open.take(self.id);
    }

    /// The attempt holds `hold` of the client's budgets: settled when it
    /// ends, on what it spent.
    pub(crate) fn hold(&mut self, hold: super::gate::Hold) {
        self.hold = Some(hold);
    }

    /// The outputs the attempt's hold holds, if it has one.
    pub(crate) fn held_output(&self) -> Option<u64> {
        self.hold.as_ref().map(|h| h.output)
    }

    /// What grows the attempt's hold, if it has one.
    pub(crate) fn grower(&self) -> Option<super::gate::Grower> {
        self.hold.as_ref().map(|h| h.grower())
    }

    /// A growth of the attempt's hold granted `outputs` more.
    pub(crate) fn grown(&mut self, outputs: u64) {
        if let Some(hold) = self.hold.as_mut() {
            hold.add_output(outputs);
        }
    }

    /// The attempt failed before any output: its prompt estimated if its
    /// server `billed` it, else nothing.
    pub fn close_failed(self, billed: bool) {
        if billed {
            self.close_estimated(0, Fate::Failed)
        } else {
            self.close_unbilled()
        }
    }

    /// The attempt ended without reaching the server's model (refused with
    /// an error status, or never connected): nothing billed.
    pub fn close_unbilled(self) {
        self.close(None, Usage::default(), false, Fate::Failed);
    }
}

/// What an attempt cancelled before its end is counted to have used: its
/// prompt, estimated.
fn cancelled_usage(request: &ChatRequest) -> Usage {
    Usage::new(estimate::prompt_tokens(request), 0)
}

/// Whether a failed attempt reached the model, and is billed: an error status
/// is not (the server refused it), nor a connection that never opened; a
/// reply cut, timed out, malformed or of the wrong shape is (the model ran).
pub fn billed(error: &ProviderError) -> bool {
    match &error.kind {
        FailureKind::Status { .. } | FailureKind::Budget { .. } | FailureKind::Invalid { .. } => {
            false
        }
        FailureKind::Transport { kind, .. } => !matches!(
            kind,
            TransportKind::Connect
                | TransportKind::Dns
                | TransportKind::Tls
                | TransportKind::ConnectTimeout
        ),
        _ => true,
    }
}

/// Closes a non-streaming attempt's ticket with its result: a reply's usage
/// (estimated from its text when the server sent none), a billed failure's
/// estimated prompt, an unbilled one's nothing.
pub fn close_reply(ticket: Ticket, result: &Result<ChatResponse, ProviderError>) {
    close_result(ticket, result.as_ref());
}

/// [`close_reply`] over a result lent (a reply already boxed, where the
/// attempt keeps it).
pub(crate) fn close_result(ticket: Ticket, result: Result<&ChatResponse, &ProviderError>) {
    match result {
        Ok(reply) if reply.usage == Usage::default() => {
            let output = estimate::text_tokens(&reply.model, &reply.text);
            ticket.close_estimated(output, Fate::Delivered)
        }
        Ok(reply) => ticket.close(Some(&reply.model), reply.usage, false, Fate::Delivered),
        Err(e) if billed(e) => ticket.close_estimated(0, Fate::Failed),
        Err(_) => ticket.close_unbilled(),
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(hold) = self.hold.take() {
            // Closed already as cancelled: the hold settles on that spend.
            if let Some((tokens, cost)) = self.log.closed(self.id) {
                return hold.settle(tokens, cost);
            }
            self.hold = Some(hold);
        }
        if !self.closed {
            self.end(None, true, Fate::Cancelled, cancelled_usage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> SpendLog {
        SpendLog::new(Arc::new(PriceTable::defaults()), Some(Meters::new()))
    }

    fn request() -> Arc<ChatRequest> {
        Arc::new(
            ChatRequest::new("openai/gpt-4o-mini")
                .unwrap()
                .user("one two three"),
        )
    }

    #[test]
    fn attempts_close_with_their_usage_and_dropped_ones_as_cancelled() {
        let log = log();
        let failed = log.open(request());
        let won = log.open(request());
        let lost = log.open(request());
        failed.close_unbilled();
        won.close(
            Some("gpt-4o-mini-2024-07-18"),
            Usage::new(10, 20),
            false,
            Fate::Delivered,
        );
        drop(lost);
        let spend = log.spend();
        assert_eq!(spend.count, 3);
        let fates: Vec<Fate> = spend.attempts.iter().map(|a| a.fate).collect();
        assert_eq!(fates, [Fate::Failed, Fate::Delivered, Fate::Cancelled]);
        // 10 in at 0.15, 20 out at 0.60 a million.
        assert_eq!(spend.delivered().nanos(), 1_500 + 12_000);
        let cancelled = &spend.attempts[2];
        assert!(cancelled.estimated && cancelled.usage.prompt_tokens > 0);
        assert!(spend.wasted().nanos() > 0 && !spend.unpriced());
    }

    #[test]
    fn an_attempt_dropped_beside_cancel_open_is_in_the_spend_read_after_it() {
        // A hedge that lost drops its ticket on its own thread while its
        // request cancels what is open and reads its spend: either way the
        // attempt is counted, once.
        for _ in 0..2_000 {
            let log = log();
            let ticket = log.open(request());
            let dropper = std::thread::spawn(move || drop(ticket));
            log.cancel_open();
            let spend = log.take_spend();
            dropper.join().unwrap();
            let late = log.take_spend().count;
            assert_eq!(spend.count + late, 1, "counted once");
            assert_eq!(spend.count, 1, "in the spend read after cancel_open");
        }
    }

    #[test]
    fn hedges_open_and_close_in_any_order_each_counted_once() {
        // Three open (the first in place, two beside it), the first closes, a
        // fourth opens in its place, the middle ones close out of order: the
        // last one open is the one cancelled, and each attempt counts once.
        let log = log();
        let a = log.open(request());
        let b = log.open(request());
        let c = log.open(request());
        a.close(None, Usage::new(1, 1), false, Fate::Delivered);
        let d = log.open(request());
        c.close_unbilled();
        b.close_estimated(2, Fate::Failed);
        let spend = log.finish();
        let fates: Vec<Fate> = spend.attempts.iter().map(|a| a.fate).collect();
        assert_eq!(
            fates,
            [Fate::Delivered, Fate::Failed, Fate::Failed, Fate::Cancelled]
        );
        // The cancelled one's own end, later, adds nothing.
        d.close(None, Usage::new(5, 5), false, Fate::Delivered);
        assert_eq!(log.finish().count, 0);
    }

    #[test]
    fn finish_cancels_what_is_open_and_takes_the_spend_once() {
        let log = log();
        let done = log.open(request());
        let still = log.open(request());
        done.close(None, Usage::new(10, 20), false, Fate::Delivered);
        let spend = log.finish();
        let fates: Vec<Fate> = spend.attempts.iter().map(|a| a.fate).collect();
        assert_eq!(fates, [Fate::Delivered, Fate::Cancelled]);
        // Taken: nothing is left, and the cancelled one's own end adds none.
        drop(still);
        assert_eq!(log.finish().count, 0);
        // Nothing open: the spend alone.
        log.open(request()).close_unbilled();
        assert_eq!(log.finish().count, 1);
    }

    #[test]
    fn cancel_open_closes_what_still_runs_once() {
        let log = log();
        let still = log.open(request());
        log.cancel_open();
        // Its own close later records nothing more.
        still.close(None, Usage::new(1, 1), false, Fate::Delivered);
        let spend = log.spend();
        assert_eq!(spend.count, 1);
        assert_eq!(spend.attempts[0].fate, Fate::Cancelled);
    }

    #[test]
    fn an_attempt_opened_with_its_series_counts_there_without_a_lookup() {
        // A request actor hands its attempts the series it resolved once; the
        // log counts in them (here another target's, to tell them apart) and
        // looks up the request's own only for an attempt opened without.
        let meters = Meters::new();
        let log = SpendLog::new(Arc::new(PriceTable::defaults()), Some(meters.clone()));
        let given = meters.target_meters("resolved", "once");
        log.open_at(request(), Some(given)).close(
            None,
            Usage::new(1_000_000, 0),
            false,
            Fate::Delivered,
        );
        log.open(request()).close_estimated(0, Fate::Failed);
        let text = meters.encode();
        assert!(text.contains(
            r#"steer_spend_usd_total{provider="resolved",model="once",outcome="delivered"} 0.15"#
        ), "{text}");
        assert!(
            text.contains(
                r#"steer_spend_usd_total{provider="openai",model="gpt-4o-mini",outcome="wasted"}"#
            ),
            "{text}"
        );
        assert!(!text.contains(r#"provider="openai",model="gpt-4o-mini",outcome="delivered""#));
    }

    #[test]
    fn the_metrics_count_delivered_and_wasted_apart() {
        let meters = Meters::new();
        let log = SpendLog::new(Arc::new(PriceTable::defaults()), Some(meters.clone()));
        log.open(request())
            .close(None, Usage::new(1_000_000, 0), false, Fate::Delivered);
        let unpriced = Arc::new(ChatRequest::new("local/llama").unwrap().user("hi"));
        log.open(unpriced).close_estimated(3, Fate::Failed);
        let text = meters.encode();
        assert!(text.contains(
            r#"steer_spend_usd_total{provider="openai",model="gpt-4o-mini",outcome="delivered"} 0.15"#
        ), "{text}");
        assert!(text.contains(r#"steer_unpriced_attempts_total{provider="local",model="llama"} 1"#));
        assert!(text.contains(
            r#"steer_spend_tokens_total{provider="local",model="llama",outcome="wasted",estimated="true"}"#
        ));
    }
}
