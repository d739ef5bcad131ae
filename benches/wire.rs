//! Hot functions of the wire layer: decoding stream events and parsing bodies.
//!
//! `cargo bench --features mock --bench wire`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use steer_llm::mock::render;
use steer_llm::mock::text::{self, Turn};
use steer_llm::mock::Flavour;
use steer_llm::wire::{anthropic, openai, StreamDecoder};

/// (event, data) pairs of a real 1,000-chunk stream, as the SSE parser yields them.
fn events(flavour: Flavour) -> Vec<(String, String)> {
    let reply = text::reply("m", &[Turn::new("user", "hi")], None, &[], Some(1000));
    let frames = render::sse_frames(flavour, "m", &reply, true, "id", 1);
    frames
        .head
        .iter()
        .chain(&frames.content)
        .chain(&frames.tail)
        .map(|b| {
            let text = std::str::from_utf8(b).unwrap_or_default();
            let mut event = String::from("message");
            let mut data = String::new();
            for line in text.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_string();
                }
            }
            (event, data)
        })
        .collect()
}

fn decode_all<D: StreamDecoder + Default>(events: &[(String, String)]) -> usize {
    let mut decoder = D::default();
    let mut out = Vec::with_capacity(8);
    let mut n = 0;
    for (event, data) in events {
        let _ = decoder.on_event(event, data, &mut out);
        n += out.len();
        out.clear();
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_1000_chunk_stream");
    group.throughput(Throughput::Elements(1000));
    let oa = events(Flavour::OpenAi);
    group.bench_function("openai", |b| b.iter(|| decode_all::<openai::Decoder>(&oa)));
    let an = events(Flavour::Anthropic);
    group.bench_function("anthropic", |b| {
        b.iter(|| decode_all::<anthropic::Decoder>(&an))
    });
    group.finish();

    let reply = text::reply("m", &[Turn::new("user", "hi")], None, &[], Some(40));
    let oa_body = render::json_body(Flavour::OpenAi, "m", &reply, "id", 1);
    let an_body = render::json_body(Flavour::Anthropic, "m", &reply, "id", 1);
    c.bench_function("parse_response/openai", |b| {
        b.iter(|| openai::parse_response(oa_body.as_bytes()))
    });
    c.bench_function("parse_response/anthropic", |b| {
        b.iter(|| anthropic::parse_response(an_body.as_bytes()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
