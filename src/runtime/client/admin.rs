//! Operating a client: its breakers, behind one handle ([`Breakers`]:
//! subscribe, status, force, reset), its metrics (the snapshot, the Prometheus
//! text, the shared state), and failed streams' partial text.

use super::*;

impl Client {
    /// The targets group `group` has ejected from its rotation as outliers,
    /// each with how long it stays out (empty for a group that ejects none,
    /// or does not eject outliers).
    pub fn ejected(&self, group: &str) -> Vec<(crate::model::ModelId, Duration)> {
        let Some(g) = self.inner.groups.get(group) else {
            return Vec::new();
        };
        g.targets
            .iter()
            .filter_map(|t| {
                let left = self.inner.targets.ejected_for(group, &t.target)?;
                Some((t.target.clone(), left))
            })
            .collect()
    }

    /// Sends `recipient` every later ejection of a target from a group's
    /// rotation, and every return (nothing when no group ejects outliers).
    pub fn subscribe_ejections(&self, recipient: actix::Recipient<super::super::EjectionEvent>) {
        if let Some(o) = &self.inner.outliers {
            o.do_send(super::super::outlier_actor::SubscribeEjections(recipient));
        }
    }

    /// Where deployment `provider`'s adaptive concurrency limit stands (its
    /// limit now, calls running, calls waiting); `None` when it has none.
    /// With a limit per model, `"provider/model"` names a model's (a model
    /// not called yet shows the limit the models past the bound share).
    pub async fn limit_status(
        &self,
        provider: &str,
    ) -> Result<Option<steer_actors::limit::LimitStatus>, Error> {
        // `provider`, or `provider/model` for a model's own limit.
        let (name, model) = provider.split_once('/').unwrap_or((provider, ""));
        let Some(limiters) = self.handle(name)?.actors.limiters.as_ref() else {
            return Ok(None);
        };
        let limiter = limiters.current(model);
        limiter
            .send(steer_actors::limit::GetLimit)
            .await
            .map(Some)
            .map_err(|e| Error::Internal(format!("concurrency limiter of {provider}: {e}")))
    }

    /// The client's circuit breakers, one per provider (and per model within
    /// it): their status, their transitions, and an operator's overrides.
    ///
    /// ```
    /// # #[actix_rt::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use steer_llm::{BreakerState, Client};
    /// # let mock = steer_llm::mock::MockServer::start().await?;
    /// # let client = Client::builder().providers(mock.providers()?).build()?;
    /// client.breakers().force("openai", BreakerState::ForcedOpen)?;
    /// assert_eq!(client.breakers().status("openai").await?.state, BreakerState::ForcedOpen);
    /// client.breakers().reset("openai")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn breakers(&self) -> Breakers<'_> {
        Breakers { client: self }
    }

    /// The partial response of a failed stream, by request id, kept for 15 minutes
    /// (at most 10,000 of them).
    pub async fn partial(&self, request_id: &RequestId) -> Option<PartialResponse> {
        self.inner
            .partials
            .send(GetPartial(request_id.to_string()))
            .await
            .ok()
            .flatten()
    }

    /// The client's metric families (latency histograms, counters, gauges), to
    /// add to a service's own `prometheus_client` registry with
    /// [`Meters::register`].
    pub fn meters(&self) -> &Meters {
        &self.inner.meters
    }

    /// The client's metrics in the Prometheus text format (what `GET /metrics`
    /// serves).
    pub fn prometheus_text(&self) -> String {
        self.inner.meters.encode()
    }

    /// The state of the pauses shared with other replicas; `None` when sharing is off.
    #[cfg(feature = "shared-redis")]
    pub async fn shared_status(&self) -> Result<Option<crate::shared::redis::SharedStatus>, Error> {
        match &self.inner.shared {
            Some(addr) => addr
                .send(crate::shared::redis::GetSharedStatus)
                .await
                .map(Some)
                .map_err(|e| Error::Internal(format!("shared state: {e}"))),
            None => Ok(None),
        }
    }

    /// Every provider's breaker status and counters, and every group's
    /// ejected targets.
    pub async fn metrics(&self) -> Result<MetricsSnapshot, Error> {
        let mut providers = Vec::new();
        for (name, h) in &self.inner.handles {
            h.actors.flush_reports().await;
            let breaker = h
                .breaker()
                .send(GetStatus::default())
                .await
                .map_err(|e| Error::Internal(format!("breaker of {name}: {e}")))?;
            let metrics = h
                .actors
                .coordinator
                .send(GetMetrics)
                .await
                .map_err(|e| Error::Internal(format!("coordinator of {name}: {e}")))?;
            providers.push(ProviderReport {
                provider: name.clone(),
                breaker,
                metrics,
            });
        }
        let groups = self
            .inner
            .groups
            .keys()
            .map(|group| crate::runtime::GroupReport {
                group: group.clone(),
                ejected: self
                    .ejected(group)
                    .into_iter()
                    .map(|(target, left)| crate::runtime::EjectedTarget {
                        target: target.to_string(),
                        back_in_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
                    })
                    .collect(),
            })
            .collect();
        Ok(MetricsSnapshot { providers, groups })
    }
}

/// A client's circuit breakers ([`Client::breakers`]). A target is a provider
/// (`"openai"`: its endpoint and every model) or one model (`"openai/gpt-4o"`).
#[derive(Clone, Copy)]
pub struct Breakers<'a> {
    client: &'a Client,
}

impl std::fmt::Debug for Breakers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.client.inner.handles.keys())
            .finish()
    }
}

impl Breakers<'_> {
    /// Subscribes `recipient` to the breaker transitions of `target`: a provider
    /// (`"openai"`: its endpoint and every model) or one model (`"openai/gpt-4o"`).
    pub fn subscribe(
        &self,
        target: &str,
        recipient: actix::Recipient<TransitionEvent>,
    ) -> Result<(), Error> {
        let target = Target::parse(target);
        self.client
            .handle(&target.provider)?
            .breaker()
            .do_send(Subscribe {
                recipient,
                model: target.model,
            });
        Ok(())
    }

    /// Subscribes `recipient` to the breaker transitions of every provider.
    pub fn subscribe_all(&self, recipient: actix::Recipient<TransitionEvent>) {
        for h in self.client.inner.handles.values() {
            h.breaker().do_send(Subscribe {
                recipient: recipient.clone(),
                model: None,
            });
        }
    }

    /// The breaker status of `target`: a provider (its endpoint, with each model's
    /// status in `models`) or one model (`"openai/gpt-4o"`).
    pub async fn status(&self, target: &str) -> Result<BreakerStatus, Error> {
        let t = Target::parse(target);
        let handle = self.client.handle(&t.provider)?;
        handle.actors.flush_reports().await;
        handle
            .breaker()
            .send(GetStatus { model: t.model })
            .await
            .map_err(|e| Error::Internal(format!("breaker of {target}: {e}")))
    }

    /// Forces the breaker of `target` into `state` (`ForcedOpen`, `Disabled`,
    /// `Closed`): a provider's endpoint (every model) or one model. One-way: it
    /// takes effect when the breaker handles it; a [`Breakers::status`] awaited after
    /// it sees it done.
    pub fn force(&self, target: &str, state: BreakerState) -> Result<(), Error> {
        let t = Target::parse(target);
        self.client
            .handle(&t.provider)?
            .breaker()
            .do_send(ForceState {
                state,
                model: t.model,
            });
        Ok(())
    }

    /// Resets the breaker of `target` to closed with empty counters: a provider
    /// (its endpoint and every model) or one model. One-way, like [`Breakers::force`].
    pub fn reset(&self, target: &str) -> Result<(), Error> {
        let t = Target::parse(target);
        self.client
            .handle(&t.provider)?
            .breaker()
            .do_send(ResetBreaker { model: t.model });
        Ok(())
    }
}
