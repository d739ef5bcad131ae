use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

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
            .send(Subscribe(collector.recipient()))
            .await
            .unwrap();
        breaker
            .addr()
            .send(ForceState(BreakerState::ForcedOpen))
            .await
            .unwrap();
        breaker
            .addr()
            .send(Pause(Duration::from_secs(30)))
            .await
            .unwrap();
        assert!(breaker.pass().is_none(), "forced open: the gate says ask");

        breaker.addr().send(Crash).await.unwrap();
        // The same address answers, with fresh state.
        let status = breaker.addr().send(GetStatus).await.unwrap();
        assert_eq!(status.state, BreakerState::Closed);
        assert_eq!(status.paused_for, None);
        assert!(breaker.pass().is_some(), "the gate admits again");
        assert!(breaker.acquire().await.unwrap().is_ok());
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
        for wait in [
            Duration::from_secs(86_400),
            Duration::MAX,
            Duration::from_secs(61),
        ] {
            breaker.addr().send(Pause(wait)).await.unwrap();
        }
        let status = breaker.addr().send(GetStatus).await.unwrap();
        assert_eq!(status.paused_for, None);
        assert_eq!(status.stats.pauses_refused, 3);
        assert!(breaker.pass().is_some());
        breaker
            .addr()
            .send(Pause(Duration::from_secs(60)))
            .await
            .unwrap();
        let status = breaker.addr().send(GetStatus).await.unwrap();
        assert!(status
            .paused_for
            .is_some_and(|d| d <= Duration::from_secs(60)));
        assert!(breaker.pass().is_none());
    });
}
