//! Requests whose actors run in their callers' futures (plain tokio: `InPlace`,
//! with `OwnWakes`), spawned across a multi-thread runtime's two workers, under
//! faults the mock injects per request: every call ends exactly once, with the
//! exact text or the typed error its fault calls for, and the client's books
//! balance after (nothing in flight, every request counted once by outcome).
//! Nothing is timed.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use futures::StreamExt;
use proptest::prelude::*;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::{Category, ChatRequest, Client, Error, StreamEvent};

const MODEL: &str = "openai/gpt-4o-mini";

/// A fault for one request's first attempt; the retry (if any) is served normally.
#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// 500: retried.
    ServerError,
    /// 503: retried.
    Unavailable,
    /// The connection reset before the reply: retried.
    Reset,
    /// 400: not retried, the caller's error.
    InvalidRequest,
}

impl Fault {
    fn plan(self) -> Option<FaultPlan> {
        match self {
            Fault::None => None,
            Fault::ServerError => Some(FaultPlan::error("server_error")),
            Fault::Unavailable => Some(FaultPlan::status(503)),
            Fault::Reset => Some(FaultPlan::reset(0)),
            Fault::InvalidRequest => Some(FaultPlan::error("invalid_request")),
        }
    }

    fn fails(self) -> bool {
        matches!(self, Fault::InvalidRequest)
    }
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => Just(Fault::None),
        1 => Just(Fault::ServerError),
        1 => Just(Fault::Unavailable),
        1 => Just(Fault::Reset),
        1 => Just(Fault::InvalidRequest),
    ]
}

/// One call's text, or its error.
async fn call(client: Client, req: ChatRequest, stream: bool) -> Result<String, Error> {
    if !stream {
        return client.generate(req).await.map(|r| r.text);
    }
    let mut s = client.stream(req).await?;
    let mut text = String::new();
    while let Some(e) = s.next().await {
        if let StreamEvent::TextDelta { text: t, .. } = e? {
            text.push_str(&t);
        }
    }
    Ok(text)
}

/// The value of `steer_requests_total` for `outcome` (0 when absent).
fn requests(metrics: &str, outcome: &str) -> u64 {
    let key = format!(
        r#"steer_requests_total{{provider="openai",model="gpt-4o-mini",outcome="{outcome}"}} "#
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn in_place_requests_across_workers_end_once_under_faults(
        calls in proptest::collection::vec((fault(), any::<bool>()), 4..24),
    ) {
        let rt = common::two_worker_runtime();
        rt.block_on(async {
            let mock = MockServer::builder().start_background().unwrap();
            let client = common::fault_tolerant_client(&mock);
            let tasks: Vec<_> = calls
                .iter()
                .enumerate()
                .map(|(i, (fault, stream))| {
                    let id = format!("prop-{i}");
                    if let Some(plan) = fault.plan() {
                        mock.script_key(&id, [plan]);
                    }
                    let req = ChatRequest::new(MODEL)
                        .unwrap()
                        .user("Tell me about rivers.")
                        .request_id(id.as_str());
                    tokio::spawn(call(client.clone(), req, *stream))
                })
                .collect();
            let want = common::expected_text(
                &ChatRequest::new(MODEL).unwrap().user("Tell me about rivers."),
                None,
            );
            // One bound for all: a lost wake-up hangs a call, and fails here.
            let ended = tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(tasks))
                .await
                .expect("every call ends");
            let mut failed = 0;
            for (ended, (fault, stream)) in ended.into_iter().zip(&calls) {
                match ended.expect("no call panics") {
                    Ok(text) => {
                        assert!(!fault.fails(), "{fault:?} (stream {stream}) succeeded");
                        assert_eq!(text, want, "{fault:?} (stream {stream}): the text, once");
                    }
                    Err(Error::Failed(f)) => {
                        assert!(fault.fails(), "{fault:?} (stream {stream}) failed: {f:?}");
                        assert_eq!(f.failure.category, Category::InvalidRequest, "{f:?}");
                        assert_eq!(f.failure.status, Some(400), "{f:?}");
                        assert_eq!(f.attempts, 1, "a caller's error is not retried: {f:?}");
                        failed += 1;
                    }
                    Err(other) => panic!("{fault:?} (stream {stream}): {other:?}"),
                }
            }
            // The books: every call counted once, by outcome; nothing in flight.
            let total = calls.len() as u64;
            let mut metrics = client.prometheus_text();
            for _ in 0..500 {
                if metrics.contains(r#"steer_in_flight_requests{provider="openai"} 0"#)
                    && requests(&metrics, "success") + failed == total
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                metrics = client.prometheus_text();
            }
            assert!(
                metrics.contains(r#"steer_in_flight_requests{provider="openai"} 0"#),
                "{metrics}"
            );
            assert_eq!(requests(&metrics, "success"), total - failed, "{metrics}");
            assert_eq!(requests(&metrics, "invalid_request"), failed, "{metrics}");
        });
    }
}
