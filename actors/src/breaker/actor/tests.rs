use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::breaker::{CallOutcome, Rejection};

struct Collector(Arc<Mutex<Vec<TransitionEvent>>>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<TransitionEvent> for Collector {
    type Result = ();
    fn handle(&mut self, msg: TransitionEvent, _: &mut Context<Self>) {
        if let Ok(mut events) = self.0.lock() {
            events.push(msg);
        }
    }
}

#[test]
fn a_failed_breaker_is_restarted_fresh_at_the_same_address_and_says_so() {
    actix::System::new().block_on(async {
        let breaker = BreakerRef::start(
            CircuitBreaker::new("p", BreakerConfig::default()),
            &actix::Arbiter::current(),
        );
        let events = Arc::new(Mutex::new(Vec::new()));
        let collector = Collector(events.clone()).start();
        breaker
            .addr()
            .send(Subscribe {
                recipient: collector.recipient(),
                model: None,
            })
            .await
            .unwrap();
        let m: Arc<str> = Arc::from("m");
        breaker
            .addr()
            .send(ForceState {
                state: BreakerState::ForcedOpen,
                model: None,
            })
            .await
            .unwrap();
        breaker
            .addr()
            .send(Pause {
                model: m.clone(),
                wait: Duration::from_secs(30),
                from_fleet: false,
            })
            .await
            .unwrap();
        assert!(breaker.pass(&m).is_none(), "forced open: the gate says ask");

        breaker.addr().send(Crash).await.unwrap();
        // The same address answers, with fresh state.
        let status = breaker.addr().send(GetStatus::default()).await.unwrap();
        assert_eq!(status.state, BreakerState::Closed);
        assert!(status.models.iter().all(|s| s.paused_for.is_none()));
        assert!(breaker.pass(&m).is_some(), "the gate admits again");
        assert!(breaker.acquire(&m).await.unwrap().is_ok());
        tokio::task::yield_now().await;
        let seen = events.lock().unwrap().clone();
        let last = seen.last().expect("an event");
        assert_eq!(
            (last.from, last.to, &last.reason),
            (
                BreakerState::ForcedOpen,
                BreakerState::Closed,
                &TransitionReason::Restarted
            )
        );
    });
}

#[test]
fn a_wait_above_the_cap_does_not_pause_the_provider() {
    actix::System::new().block_on(async {
        let breaker = BreakerRef::start(
            CircuitBreaker::new("p", BreakerConfig::default()),
            &actix::Arbiter::current(),
        );
        let m: Arc<str> = Arc::from("m");
        let pause = |wait| Pause {
            model: m.clone(),
            wait,
            from_fleet: false,
        };
        let model_status = || GetStatus {
            model: Some("m".into()),
        };
        for wait in [
            Duration::from_secs(86_400),
            Duration::MAX,
            Duration::from_secs(61),
        ] {
            breaker.addr().send(pause(wait)).await.unwrap();
        }
        let status = breaker.addr().send(model_status()).await.unwrap();
        assert_eq!(status.paused_for, None);
        assert_eq!(status.stats.pauses_refused, 3);
        assert!(breaker.pass(&m).is_some());
        breaker
            .addr()
            .send(pause(Duration::from_secs(60)))
            .await
            .unwrap();
        let status = breaker.addr().send(model_status()).await.unwrap();
        assert!(status
            .paused_for
            .is_some_and(|d| d <= Duration::from_secs(60)));
        assert!(breaker.pass(&m).is_none());
    });
}

#[test]
fn a_pause_or_a_failing_model_stops_that_model_and_network_failures_the_endpoint() {
    use crate::failure::{Category, Failure};
    actix::System::new().block_on(async {
        let config = BreakerConfig {
            failure_threshold: 2,
            ..BreakerConfig::default()
        };
        let breaker =
            BreakerRef::start(CircuitBreaker::new("p", config), &actix::Arbiter::current());
        let (big, small): (Arc<str>, Arc<str>) = (Arc::from("gpt-4o"), Arc::from("gpt-4o-mini"));
        for m in [&big, &small] {
            // First sight of a model: the actor is asked; then its gate answers.
            breaker
                .acquire(m)
                .await
                .unwrap()
                .unwrap()
                .report(CallOutcome::Success {
                    elapsed: Duration::ZERO,
                });
        }
        let status = breaker.addr().send(GetStatus::default()).await.unwrap();
        assert_eq!(status.models.len(), 2);
        assert!(breaker.pass(&big).is_some() && breaker.pass(&small).is_some());

        // A 429 whose headers show capacity left is that call's: nothing pauses.
        let mut limited = Failure::new(Category::RateLimited, "p", "slow down");
        limited.retry_after = Some(Duration::from_secs(30));
        limited.rate_limit.requests_remaining = Some(7);
        report_failure(breaker.pass(&big), &breaker, &big, &limited, true);
        let _ = breaker.addr().send(GetStatus::default()).await;
        assert!(breaker.pass(&big).is_some(), "a call's 429 pauses nothing");

        // A 429 with a wait whose headers say nothing is left pauses one model.
        limited.rate_limit.requests_remaining = Some(0);
        report_failure(breaker.pass(&big), &breaker, &big, &limited, true);
        let _ = breaker.addr().send(GetStatus::default()).await;
        assert!(breaker.pass(&big).is_none(), "the limited model asks");
        assert!(breaker.pass(&small).is_some(), "its sibling runs on");

        // Server errors open one model's breaker.
        let boom = Failure::new(Category::ServerError, "p", "boom");
        for _ in 0..2 {
            report_failure(breaker.pass(&small), &breaker, &small, &boom, true);
        }
        let s = breaker
            .addr()
            .send(GetStatus {
                model: Some("gpt-4o-mini".into()),
            })
            .await
            .unwrap();
        assert_eq!(s.state, BreakerState::Open);
        let status = breaker.addr().send(GetStatus::default()).await.unwrap();
        assert_eq!(status.state, BreakerState::Closed, "the endpoint is fine");

        // Network failures open the endpoint: every model stops.
        let down = Failure::new(Category::Network, "p", "connection refused");
        breaker.addr().send(ResetBreaker::default()).await.unwrap();
        for _ in 0..2 {
            report_failure(breaker.pass(&small), &breaker, &small, &down, true);
        }
        let status = breaker.addr().send(GetStatus::default()).await.unwrap();
        assert_eq!(status.state, BreakerState::Open);
        assert!(status
            .models
            .iter()
            .all(|m| m.state == BreakerState::Closed));
        assert!(breaker.pass(&big).is_none() && breaker.pass(&small).is_none());
        assert!(matches!(
            breaker.acquire(&big).await.unwrap(),
            Err(Rejection::Open { .. })
        ));
    });
}
