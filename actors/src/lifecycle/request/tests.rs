//! The request actor under a real actix System.

use std::time::Duration;

use super::*;
use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::retry::{BudgetConfig, GetMetrics, RetryCoordinator, RetryPolicy};
use crate::telemetry::meters::Meters;

fn spec() -> RequestSpec {
    RequestSpec {
        request_id: "r".into(),
        provider: "p".into(),
        model: "m".into(),
        attempt_timeout: None,
        deadline: None,
        policy: None,
        use_breaker: true,
        max_pause_wait: Duration::from_secs(1),
        wait_elsewhere: false,
        may_queue: true,
        priority: 0,
    }
}

/// `Cancel` ends a request whose attempt is in flight: the attempt's future
/// is dropped (its HTTP call aborted), the caller's reply channel closes, and
/// the coordinator counts one cancelled attempt and one cancelled request
/// (the attempts still add up to the calls the provider saw).
#[test]
fn cancel_drops_the_attempt_in_flight_and_counts_it_cancelled() {
    actix::System::new().block_on(async {
        let arbiter = actix::Arbiter::current();
        let actors = ProviderActors::start(
            &arbiter,
            CircuitBreaker::new("p", BreakerConfig::default()),
            RetryCoordinator::new(RetryPolicy::default(), BudgetConfig::default(), 1),
            Meters::new(),
        );
        let (started_tx, started) = oneshot::channel::<()>();
        let (dropped_tx, dropped) = oneshot::channel::<()>();
        let mut started_tx = Some(started_tx);
        let mut dropped_tx = Some(dropped_tx);
        let attempt = move |_: u32, _: &TargetMeters| {
            let (started, dropped) = (started_tx.take(), dropped_tx.take());
            async move {
                // Tells the test when it is dropped unfinished.
                struct OnDrop(Option<oneshot::Sender<()>>);
                impl Drop for OnDrop {
                    fn drop(&mut self) {
                        if let Some(tx) = self.0.take() {
                            let _ = tx.send(());
                        }
                    }
                }
                let _guard = OnDrop(dropped);
                if let Some(tx) = started {
                    let _ = tx.send(());
                }
                std::future::pending::<Result<(), AttemptError<()>>>().await
            }
        };
        let (reply, answer) = oneshot::channel();
        let span = tracing::Span::none();
        let actor = RequestActor::new(spec(), actors.clone(), attempt, reply, None, span);
        let addr = actor.start();
        started.await.expect("the attempt starts");
        addr.send(Cancel).await.expect("the actor answers Cancel");
        dropped.await.expect("the attempt in flight is dropped");
        assert!(answer.await.is_err(), "no reply: the caller went away");
        let mut metrics = actors.coordinator.send(GetMetrics).await.unwrap();
        for _ in 0..200 {
            if metrics.cancelled == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            metrics = actors.coordinator.send(GetMetrics).await.unwrap();
        }
        assert_eq!(metrics.cancelled, 1, "{metrics:?}");
        assert_eq!(metrics.attempts.get("cancelled"), Some(&1), "{metrics:?}");
        assert_eq!(metrics.total_attempts(), 1, "{metrics:?}");
    });
}
