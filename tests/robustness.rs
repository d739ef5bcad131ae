//! Property tests: random bytes and random mutations of real SSE streams and error
//! bodies never make the client panic or hang, and always end in a typed outcome.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use steer_llm::mock::render;
use steer_llm::mock::text::{self, Turn};
use steer_llm::mock::Flavour;
use steer_llm::provider::http::decode_response;
use steer_llm::wire::{anthropic, openai};
use steer_llm::{ChatRequest, FailureKind, ProviderError, ProviderEvent};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A 200 SSE response whose body arrives in the given chunks.
fn response(chunks: Vec<Vec<u8>>) -> reqwest::Response {
    let body = reqwest::Body::wrap_stream(futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
    ));
    let http = http::Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(body)
        .unwrap();
    reqwest::Response::from(http)
}

/// Runs the decoder over `chunks`; checks the stream's shape; returns text and error.
fn decode(flavour: Flavour, chunks: Vec<Vec<u8>>) -> (String, Option<ProviderError>) {
    let req = ChatRequest::new("openai/m").unwrap().user("x");
    let stream = match flavour {
        Flavour::Anthropic => decode_response(
            "anthropic",
            &req,
            response(chunks),
            anthropic::Decoder::default(),
        ),
        _ => decode_response("openai", &req, response(chunks), openai::Decoder::default()),
    };
    runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async move {
            let (events, err) = common::drain(stream).await;
            assert!(matches!(events.first(), Some(ProviderEvent::Start { .. })));
            let completed = matches!(events.last(), Some(ProviderEvent::Complete { .. }));
            // Exactly one way to end: Complete, or one error.
            assert_ne!(completed, err.is_some(), "{events:?} / {err:?}");
            (common::delta_text(&events), err)
        })
        .await
        .expect("the decoder must not hang on a finite body")
    })
}

/// Splits `bytes` at the given cut points.
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        out.push(bytes[start..p].to_vec());
        start = p;
    }
    out
}

fn real_stream(flavour: Flavour, words: usize) -> (Vec<u8>, String) {
    let turns = vec![Turn::new("user", "hello")];
    let reply = text::reply("m", &turns, None, &[], Some(words));
    let frames = render::sse_frames(flavour, "m", &reply, true, "id-1", 1);
    let bytes: Vec<u8> = frames
        .head
        .iter()
        .chain(&frames.content)
        .chain(&frames.tail)
        .flat_map(|b| b.to_vec())
        .collect();
    (bytes, reply.text())
}

fn flavour() -> impl Strategy<Value = Flavour> {
    prop_oneof![Just(Flavour::OpenAi), Just(Flavour::Anthropic)]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..20)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..80).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match m {
        Mutation::Flip(i, b) => {
            let i = i % len;
            if i < bytes.len() {
                bytes[i] ^= b | 1;
            }
        }
        Mutation::Delete(i, n) => {
            let i = i % len;
            let end = (i + n).min(bytes.len());
            bytes.drain(i.min(end)..end);
        }
        Mutation::Insert(i, b) => {
            let i = i % (bytes.len() + 1);
            bytes.splice(i..i, b.iter().copied());
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
        Mutation::Duplicate(i, n) => {
            let i = i % len;
            let end = (i + n).min(bytes.len());
            let copy = bytes[i.min(end)..end].to_vec();
            bytes.splice(end..end, copy);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_end_in_a_typed_outcome(
        flavour in flavour(),
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8),
    ) {
        let (_, err) = decode(flavour, chunks);
        // Random bytes essentially never form a complete stream.
        if let Some(err) = err {
            let _ = err.to_string();
        }
    }

    #[test]
    fn a_real_stream_decodes_the_same_however_it_is_chunked(
        flavour in flavour(),
        words in 1usize..60,
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let (bytes, text) = real_stream(flavour, words);
        let (got, err) = decode(flavour, split(&bytes, &cuts));
        prop_assert!(err.is_none(), "{err:?}");
        prop_assert_eq!(got, text);
    }

    #[test]
    fn mutated_real_streams_never_panic_or_hang(
        flavour in flavour(),
        words in 1usize..40,
        mutations in proptest::collection::vec(mutation(), 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let (mut bytes, text) = real_stream(flavour, words);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let (got, err) = decode(flavour, split(&bytes, &cuts));
        if let Some(err) = &err {
            prop_assert!(matches!(
                err.kind,
                FailureKind::Incomplete { .. } | FailureKind::Malformed { .. } | FailureKind::WrongShape { .. } | FailureKind::InBand { .. }
            ), "{err:?}");
        }
        // Whatever survived is at most as long as the real text plus what a mutation added.
        prop_assert!(got.len() <= text.len() * 2 + 200);
    }

    #[test]
    fn non_streaming_parsers_take_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = openai::parse_response(&body);
        let _ = anthropic::parse_response(&body);
    }

    #[test]
    fn error_bodies_of_any_shape_display_as_one_line(
        status in 100u16..1000,
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            any::<String>().prop_map(|s| serde_json::json!({"error": {"message": s}}).to_string().into_bytes()),
            any::<String>().prop_map(|s| serde_json::json!({"error": s, "code": 3}).to_string().into_bytes()),
        ],
    ) {
        let err = ProviderError::new(
            "p",
            "r".into(),
            FailureKind::Status { status, body: Bytes::from(body) },
        );
        let line = err.to_string();
        prop_assert!(line.starts_with("p: HTTP "));
        prop_assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        let _ = format!("{err:?}");
    }
}

/// Over real TCP: a server that answers with random bytes, valid headers or not.
#[test]
fn random_responses_over_the_wire_never_panic_or_hang() {
    use std::io::{Read, Write};
    let rt = runtime();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let cases: Vec<Vec<u8>> = (0..48)
        .map(|i| {
            let junk: Vec<u8> = (0..rng.usize(0..400)).map(|_| rng.u8(..)).collect();
            match i % 3 {
                0 => junk,
                1 => [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n".as_slice(), &junk].concat(),
                _ => [b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 10000\r\n\r\n".as_slice(), &junk].concat(),
            }
        })
        .collect();
    let server_cases = cases.clone();
    std::thread::spawn(move || {
        for (stream, case) in listener.incoming().zip(server_cases) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(&case);
        }
    });
    let providers = steer_llm::Providers::new().with(
        steer_llm::OpenAiCompatible::openai()
            .base_url(format!("http://{addr}/v1"))
            .api_key("k")
            .build()
            .unwrap(),
    );
    for (i, _) in cases.iter().enumerate() {
        let req = ChatRequest::new("openai/m").unwrap().user("x");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                match providers.stream(&req).await {
                    Ok(stream) => {
                        let (_, err) = common::drain(stream).await;
                        assert!(err.is_some(), "case {i}: random bytes cannot complete");
                    }
                    Err(e) => {
                        let _ = e.to_string();
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("case {i} hung"))
        });
    }
}
