//! Property tests of the classifier: arbitrary headers, bodies and messages never
//! panic and always give a category, and its answers stay consistent.
#![cfg(feature = "mock")]

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use proptest::prelude::*;
use steer_llm::classify::{classify_at, classify_text};
use steer_llm::{Category, FailureKind, ProviderError, RequestId};

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[a-z_ ]{0,20}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("error"),
            Just("type"),
            Just("code"),
            Just("message"),
            Just("rate_limit_error"),
            Just("insufficient_quota"),
            Just("overloaded_error"),
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::vec(
                (
                    prop_oneof![
                        Just("error".to_string()),
                        Just("type".to_string()),
                        Just("code".to_string()),
                        Just("message".to_string()),
                        "[a-z]{1,8}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| serde_json::Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        json().prop_map(|v| v.to_string().into_bytes()),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("retry-after".to_string()),
        Just("retry-after-ms".to_string()),
        Just("x-should-retry".to_string()),
        Just("x-ratelimit-reset-tokens".to_string()),
        Just("x-ratelimit-remaining-requests".to_string()),
        Just("anthropic-ratelimit-requests-reset".to_string()),
        Just("anthropic-ratelimit-tokens-remaining".to_string()),
        "[a-z-]{1,20}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        Just("inf".to_string()),
        Just("NaN".to_string()),
        Just("1e999".to_string()),
        Just("Wed, 21 Oct 2099 07:28:00 GMT".to_string()),
        Just("2999-01-01T00:00:00Z".to_string()),
        Just("99999999999h".to_string()),
    ]
}

fn kind() -> impl Strategy<Value = FailureKind> {
    prop_oneof![
        (0u16..1000, body()).prop_map(|(status, b)| FailureKind::Status {
            status,
            body: Bytes::from(b)
        }),
        body().prop_map(|b| FailureKind::InBand {
            body: String::from_utf8_lossy(&b).into_owned()
        }),
        any::<usize>().prop_map(|events| FailureKind::Incomplete { events }),
        ".{0,40}".prop_map(|message| FailureKind::Malformed { message }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn anything_classifies_without_panicking(
        kind in kind(),
        headers in proptest::collection::vec((header_name(), header_value()), 0..8),
        content_started in any::<bool>(),
        now_secs in 0u64..5_000_000_000,
    ) {
        let mut err = ProviderError::new("p", RequestId::from("r"), kind);
        err.content_started = content_started;
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(&v)) {
                err.headers.append(k, v);
            }
        }
        let f = classify_at(&err, SystemTime::UNIX_EPOCH + Duration::from_secs(now_secs));
        prop_assert!(Category::ALL.contains(&f.category));
        prop_assert_eq!(f.affects_health, f.category.affects_health());
        if let Some(wait) = f.retry_after {
            prop_assert!(wait > Duration::ZERO);
        }
        if err.headers.get("x-should-retry").is_none() {
            prop_assert_eq!(f.retryable, f.category.retryable_by_default());
        }
        prop_assert!(!f.message.contains('\n'));
    }

    #[test]
    fn any_message_classifies(message in ".{0,200}") {
        let f = classify_text("p", &message);
        prop_assert!(Category::ALL.contains(&f.category));
        prop_assert_eq!(f.retryable, f.category.retryable_by_default());
    }
}
