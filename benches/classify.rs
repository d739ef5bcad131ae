//! Classification cost: a typical OpenAI 429 with its headers, and an Anthropic
//! in-band overload. `cargo bench --bench classify`

use std::time::SystemTime;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use steer_llm::classify::classify_at;
use steer_llm::{FailureKind, ProviderError, RequestId};

fn openai_429() -> ProviderError {
    let mut e = ProviderError::new(
        "openai",
        RequestId::from("bench"),
        FailureKind::Status {
            status: 429,
            body: Bytes::from_static(br#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again in 1s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#),
        },
    );
    for (k, v) in [
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "1s"),
        ("x-ratelimit-limit-tokens", "150000"),
        ("x-ratelimit-remaining-tokens", "149984"),
        ("x-ratelimit-reset-tokens", "6m0s"),
        ("x-request-id", "req_abc123"),
        ("retry-after", "1"),
        ("content-type", "application/json"),
    ] {
        e.headers
            .insert(k, v.parse().unwrap_or_else(|_| unreachable!()));
    }
    e.provider_request_id = Some("req_abc123".into());
    e
}

fn anthropic_in_band() -> ProviderError {
    let mut e = ProviderError::new(
        "anthropic",
        RequestId::from("bench"),
        FailureKind::InBand {
            body: r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#
                .into(),
        },
    );
    e.content_started = true;
    e
}

fn bench(c: &mut Criterion) {
    let now = SystemTime::now();
    let e = openai_429();
    c.bench_function("classify/openai_429_with_headers", |b| {
        b.iter(|| classify_at(std::hint::black_box(&e), now))
    });
    let e = anthropic_in_band();
    c.bench_function("classify/anthropic_in_band_overload", |b| {
        b.iter(|| classify_at(std::hint::black_box(&e), now))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
