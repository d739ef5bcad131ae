//! Partial responses of failed streams, kept for a bounded time so a caller can
//! fetch them by request id after the fact.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::exec::clock::now;
use serde::Serialize;

use crate::failure::Failure;

/// What a failed stream had delivered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartialResponse {
    /// steer's request id.
    pub request_id: String,
    /// The provider.
    pub provider: String,
    /// The text delivered before the failure.
    pub text: String,
    /// Attempts made.
    pub attempts: u32,
    /// The failure that ended it, if it was a failure (not a deadline).
    pub failure: Option<Failure>,
}

/// A bounded, expiring map of partial responses (plain data; the actor owns it).
#[derive(Debug)]
pub(crate) struct PartialCache {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<String, (Instant, PartialResponse)>,
    order: VecDeque<(Instant, String)>,
}

impl PartialCache {
    /// Keeps entries for `ttl`, at most `capacity` of them (oldest dropped first).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        PartialCache {
            ttl,
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, id)) = self.order.front() {
            let too_old = now.saturating_duration_since(*at) >= self.ttl;
            if too_old || self.order.len() > self.capacity {
                if self.entries.get(id).is_some_and(|(t, _)| t == at) {
                    self.entries.remove(id);
                }
                self.order.pop_front();
            } else {
                break;
            }
        }
    }

    /// Stores a partial response.
    pub fn insert(&mut self, partial: PartialResponse, now: Instant) {
        self.order.push_back((now, partial.request_id.clone()));
        self.entries
            .insert(partial.request_id.clone(), (now, partial));
        self.expire(now);
    }

    /// The partial response of `request_id`, if still kept.
    pub fn get(&mut self, request_id: &str, now: Instant) -> Option<PartialResponse> {
        self.expire(now);
        self.entries.get(request_id).map(|(_, p)| p.clone())
    }
}

/// The actor that owns the cache.
pub struct PartialStore {
    cache: PartialCache,
}

impl PartialStore {
    /// A store keeping partials for `ttl` (the reference keeps 15 minutes), at most `capacity`.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        PartialStore {
            cache: PartialCache::new(ttl, capacity),
        }
    }
}

impl Actor for PartialStore {
    type Context = Context<Self>;
}

/// Stores a partial response (one-way).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct StorePartial(pub PartialResponse);

impl Handler<StorePartial> for PartialStore {
    type Result = ();
    fn handle(&mut self, msg: StorePartial, _: &mut Context<Self>) {
        self.cache.insert(msg.0, now());
    }
}

/// Asks for the partial response of a request id.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<PartialResponse>")]
pub struct GetPartial(pub String);

impl Handler<GetPartial> for PartialStore {
    type Result = MessageResult<GetPartial>;
    fn handle(&mut self, msg: GetPartial, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.cache.get(&msg.0, now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(id: &str) -> PartialResponse {
        PartialResponse {
            request_id: id.into(),
            provider: "p".into(),
            text: "some text".into(),
            attempts: 1,
            failure: None,
        }
    }

    #[test]
    fn entries_expire_and_the_cache_is_bounded() {
        let t0 = Instant::now();
        let mut c = PartialCache::new(Duration::from_secs(900), 2);
        c.insert(partial("a"), t0);
        assert_eq!(c.get("a", t0).map(|p| p.text), Some("some text".into()));
        assert!(c.get("a", t0 + Duration::from_secs(900)).is_none());
        c.insert(partial("b"), t0);
        c.insert(partial("c"), t0);
        c.insert(partial("d"), t0);
        assert!(
            c.get("b", t0).is_none(),
            "the oldest is dropped past capacity"
        );
        assert!(c.get("c", t0).is_some() && c.get("d", t0).is_some());
    }
}
