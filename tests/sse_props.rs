//! steer's bounded SSE framer against the crate it replaced: on any valid stream,
//! cut into any chunks, both yield the same events; and on hostile streams it
//! stays bounded and linear.
#![cfg(feature = "mock")]

use futures::StreamExt;
use proptest::prelude::*;
use steer_llm::wire::sse::{SseDecoder, SseError, SseEvent};

fn value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "b", " ", ":", "{", "}", "\"", "é", "日本", "🙂", "[DONE]", "x y", "\t",
        ]),
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => value().prop_map(|v| format!("data: {v}")),
        1 => value().prop_map(|v| format!("data:{v}")),
        1 => Just("data".to_string()),
        2 => value().prop_map(|v| format!("event: {v}")),
        1 => value().prop_map(|v| format!("id: {v}")),
        1 => Just("retry: 100".to_string()),
        1 => value().prop_map(|v| format!(":{v}")),
        1 => value().prop_map(|v| format!("other: {v}")),
    ]
}

fn terminator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["\n", "\r\n", "\r"])
}

/// A valid stream: events of lines, each event ended by a blank line; the very
/// last terminator is `\n` (a lone `\r` at the end of a body is ambiguous). With
/// `bom`, it starts with a byte order mark, which the crate cannot take (it
/// panics, slicing inside the mark): those streams are checked against the same
/// stream without the mark, framed by the crate.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop::collection::vec(
            (
                prop::collection::vec((line(), terminator()), 0..5),
                terminator(),
            ),
            0..8,
        ),
    )
        .prop_map(|(bom, events)| {
            let mut s = String::new();
            if bom {
                s.push('\u{feff}');
            }
            for (lines, end) in events {
                for (l, t) in lines {
                    s.push_str(&l);
                    s.push_str(t);
                }
                s.push_str(end);
            }
            if s.ends_with('\r') {
                s.push('\n');
            }
            s.into_bytes()
        })
}

fn chunked(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(bytes[start..p].to_vec());
        start = p;
    }
    out.push(bytes[start..].to_vec());
    out
}

fn ours(chunks: &[Vec<u8>]) -> Vec<(String, String)> {
    let mut d = SseDecoder::new(1 << 20);
    let mut out: Vec<SseEvent> = Vec::new();
    for c in chunks {
        d.push(c, &mut out).expect("valid input");
    }
    out.into_iter().map(|e| (e.event, e.data)).collect()
}

fn theirs(chunks: &[Vec<u8>]) -> Vec<(String, String)> {
    use eventsource_stream::Eventsource;
    let body = futures::stream::iter(
        chunks
            .iter()
            .cloned()
            .map(Ok::<_, std::convert::Infallible>),
    );
    futures::executor::block_on(
        body.eventsource()
            .map(|e| {
                let e = e.expect("valid input");
                (e.event, e.data)
            })
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn steer_frames_valid_sse_as_the_crate_does(bytes in stream(), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let chunks = chunked(&bytes, &cuts);
        let bom = "\u{feff}".as_bytes();
        let without_bom = bytes.strip_prefix(bom).unwrap_or(&bytes);
        let reference = theirs(&chunked(without_bom, &cuts));
        prop_assert_eq!(ours(&chunks), reference);
    }

    #[test]
    fn no_input_grows_it_past_its_limit(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..40), limit in 1usize..2000) {
        let mut d = SseDecoder::new(limit);
        let mut out = Vec::new();
        for c in &chunks {
            match d.push(c, &mut out) {
                Ok(()) => {}
                Err(SseError::TooLarge { limit: l }) => { prop_assert_eq!(l, limit); break; }
                Err(SseError::Utf8) => break,
            }
        }
        for e in &out {
            prop_assert!(e.data.len() + e.event.len() <= limit);
        }
    }
}

#[test]
fn a_ten_megabyte_line_is_refused_at_the_limit() {
    // 10 MB of one `data:` line in 16 KiB chunks, limit 1 MiB: refused as soon as
    // the limit is passed, not after buffering the rest.
    let mut d = SseDecoder::new(1 << 20);
    let mut out = Vec::new();
    let chunk = vec![b'x'; 16 * 1024];
    d.push(b"data: ", &mut out).unwrap();
    let mut fed = 0usize;
    let mut refused = false;
    for _ in 0..640 {
        fed += chunk.len();
        if d.push(&chunk, &mut out).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "a line past the limit is refused");
    assert!(
        fed <= (1 << 20) + chunk.len(),
        "refused at the limit, fed {fed}"
    );
    assert!(out.is_empty());

    // Under a large limit, the same 10 MB line is framed in one pass.
    let mut d = SseDecoder::new(16 << 20);
    d.push(b"data: ", &mut out).unwrap();
    for _ in 0..640 {
        d.push(&chunk, &mut out).unwrap();
    }
    d.push(b"\n\n", &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data.len(), 640 * chunk.len());
}
