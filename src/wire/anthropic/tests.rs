//! The Anthropic Messages wire format against the API's documented shapes.

use super::*;

/// Anthropic's usage: the cache beside the input.
fn beside(input: u64, output: u64) -> Usage {
    let mut u = Usage::new(input, output);
    u.cache = CacheAccounting::BesidePrompt;
    u
}

#[test]
fn cache_writes_by_lifetime_tier_and_place_are_read_in_both_shapes() {
    let usage = r#"{"input_tokens":10,"output_tokens":3,"cache_read_input_tokens":500,"cache_creation_input_tokens":300,"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":100},"service_tier":"batch","inference_geo":"us"}"#;
    let mut want = beside(10, 3);
    want.cached_prompt_tokens = Some(500);
    want.cache_write_tokens = Some(300);
    want.cache_write_1h_tokens = Some(100);
    want.service_tier = Some(ServiceTier::Batch);
    want.inference_geo = Some(InferenceGeo::Us);
    assert_eq!(want.input_tokens(), 810);
    let body = format!(
        r#"{{"id":"m","type":"message","role":"assistant","content":[{{"type":"text","text":"Hi"}}],"stop_reason":"end_turn","usage":{usage}}}"#
    );
    assert_eq!(parse_response(body.as_bytes()).unwrap().usage, want);
    // Streamed: the start's usage, then a delta's cumulative counts.
    let mut d = Decoder::default();
    let mut out = Vec::new();
    let start = format!(
        r#"{{"type":"message_start","message":{{"id":"m","type":"message","role":"assistant","content":[],"usage":{usage}}}}}"#
    );
    d.on_event("message_start", &start, &mut out).unwrap();
    let delta = r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#;
    d.on_event("message_delta", delta, &mut out).unwrap();
    want.completion_tokens = 9;
    want.total_tokens = 19;
    assert_eq!(out.last(), Some(&ProviderEvent::Usage(want)));
    // A tier or place of the wrong type is not a reply.
    let odd = r#"{"id":"m","type":"message","role":"assistant","content":[],"usage":{"input_tokens":1,"service_tier":7}}"#;
    assert!(parse_response(odd.as_bytes()).is_err());
}

const REFERENCE: &[(&str, &str)] = &[
    (
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-3-5-haiku-latest","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":11,"output_tokens":1}}}"#,
    ),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    ),
    ("ping", r#"{"type": "ping"}"#),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ),
    (
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":6}}"#,
    ),
    ("message_stop", r#"{"type":"message_stop"}"#),
];

#[test]
fn the_reference_stream_decodes() {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    let mut last = Progress::Continue;
    for (ev, data) in REFERENCE {
        last = d.on_event(ev, data, &mut out).unwrap();
    }
    assert_eq!(last, Progress::Done);
    assert_eq!(
        out,
        vec![
            ProviderEvent::ResponseId { id: "msg_1".into() },
            ProviderEvent::TextDelta {
                text: "Hello".into(),
                offset: 0
            },
            ProviderEvent::TextDelta {
                text: " there".into(),
                offset: 5
            },
            ProviderEvent::Usage(beside(11, 6)),
            ProviderEvent::Complete {
                finish_reason: FinishReason::Stop,
                usage: Some(beside(11, 6))
            },
        ]
    );
}

#[test]
fn a_2xx_of_the_wrong_shape_is_a_failure_never_an_empty_reply() {
    for body in [
        &b"{}"[..],
        br#"{"status":"ok"}"#,
        br#"{"type":"completion","content":[]}"#,
        b"[]",
    ] {
        assert!(
            matches!(parse_response(body), Err(DecodeError::Malformed(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let error = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    assert!(matches!(parse_response(error), Err(DecodeError::InBand(_))));
    let ok = br#"{"type":"message","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;
    assert_eq!(parse_response(ok).unwrap().text, "Hi");
}

fn feed(d: &mut Decoder, events: &[&str], out: &mut Vec<ProviderEvent>) {
    for e in events {
        let name = serde_json::from_str::<Value>(e).expect("JSON")["type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        d.on_event(&name, e, out).expect("an event");
    }
}

/// A thinking block streams as reasoning (never as text), its signature set
/// by its `signature_delta` (set, not appended), and is whole at its stop;
/// a redacted one is whole as it starts; both count in order.
#[test]
fn a_thinking_block_streams_as_reasoning_and_ends_whole_with_its_signature() {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    feed(
        &mut d,
        &[
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"EmRk"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"thinking","thinking":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"Rivers "}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"flow."}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"signature_delta","signature":"EqA"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"signature_delta","signature":"EqB"}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Yes."}}"#,
        ],
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            ProviderEvent::Reasoning {
                index: 0,
                block: Reasoning::anthropic(
                    serde_json::json!({"type": "redacted_thinking", "data": "EmRk"})
                ),
            },
            ProviderEvent::ReasoningDelta {
                index: 1,
                text: "Rivers ".into()
            },
            ProviderEvent::ReasoningDelta {
                index: 1,
                text: "flow.".into()
            },
            ProviderEvent::Reasoning {
                index: 1,
                block: Reasoning::anthropic(serde_json::json!({"type": "thinking",
                    "thinking": "Rivers flow.", "signature": "EqB"})),
            },
            ProviderEvent::TextDelta {
                text: "Yes.".into(),
                offset: 0
            },
        ]
    );
    // A block that never ends is bounded.
    let mut d = Decoder::default();
    let start = r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#;
    d.on_event("content_block_start", start, &mut out)
        .expect("start");
    let piece = "x".repeat(64 * 1024);
    let delta = serde_json::json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "thinking_delta", "thinking": piece}})
    .to_string();
    let mut failed = None;
    for _ in 0..=(MAX_THINKING / piece.len()) {
        out.clear();
        if let Err(e) = d.on_event("content_block_delta", &delta, &mut out) {
            failed = Some(e);
            break;
        }
    }
    assert!(
        matches!(failed, Some(DecodeError::Malformed(_))),
        "{failed:?}"
    );
}

#[test]
fn claude_thinks_adaptively_from_4_6_and_by_budget_before() {
    for m in [
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-opus-4-7",
        "claude-sonnet-5",
        "claude-haiku-5-1",
    ] {
        assert!(thinks_adaptively(m), "{m}");
    }
    for m in [
        "claude-3-7-sonnet-latest",
        "claude-3-5-haiku-latest",
        "claude-sonnet-4-5",
        "claude-opus-4-20250514",
        "claude-sonnet-4-5-20250929",
        "gpt-4o",
    ] {
        assert!(!thinks_adaptively(m), "{m}");
    }
}

#[test]
fn a_whole_reply_keeps_its_thinking_blocks_as_sent() {
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"thinking","thinking":"Hm.","signature":"EqX"},{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":4,"output_tokens":5}}"#;
    let parsed = parse_response(body).expect("a reply");
    assert_eq!(parsed.text, "Hi");
    assert_eq!(parsed.reasoning.len(), 1);
    assert_eq!(parsed.reasoning[0].block["signature"], "EqX");
    // Sent back first in its turn, unchanged; another family's is dropped.
    let openai = Reasoning::openai_responses(
        serde_json::json!({"type": "reasoning", "encrypted_content": "gAAAA"}),
    );
    let req = ChatRequest::new("anthropic/claude-sonnet-4-5")
        .expect("model")
        .user("hi")
        .message(crate::model::Message::new(
            Role::Assistant,
            vec![
                Part::Reasoning(openai),
                Part::Reasoning(parsed.reasoning[0].clone()),
                Part::Text("Hi".into()),
            ],
        ))
        .user("more");
    let body: Value =
        serde_json::from_slice(&request_json(&req, false).expect("a body")).expect("JSON");
    let turn = &body["messages"][1]["content"];
    assert_eq!(turn.as_array().map(Vec::len), Some(2));
    assert_eq!(turn[0], parsed.reasoning[0].block);
    assert_eq!(turn[1]["type"], "text");
}

#[test]
fn unknown_events_and_delta_types_are_ignored() {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    d.on_event("brand_new", r#"{"type":"brand_new","x":1}"#, &mut out)
        .unwrap();
    d.on_event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#,
        &mut out,
    )
    .unwrap();
    d.on_event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"hm"}}"#,
        &mut out,
    )
    .unwrap();
    assert!(out.is_empty());
}

#[test]
fn an_error_event_is_in_band_whatever_its_body() {
    let mut d = Decoder::default();
    let body =
        r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#;
    assert_eq!(
        d.on_event("error", body, &mut Vec::new()),
        Err(DecodeError::InBand(body.to_string()))
    );
    // Without the event line, the data's type still says it.
    let mut d = Decoder::default();
    assert_eq!(
        d.on_event("", body, &mut Vec::new()),
        Err(DecodeError::InBand(body.to_string()))
    );
}

#[test]
fn system_messages_move_to_the_system_field() {
    let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .system("Be brief.")
        .user("Hi")
        .assistant("Hello");
    let body = serde_json::to_value(RequestBody::new(&req, true).unwrap()).unwrap();
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["messages"].as_array().unwrap().len(), 2);
    assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(body["stream"], true);
}

#[test]
fn non_streaming_body_joins_text_blocks() {
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku-latest","content":[{"type":"text","text":"Hi"},{"type":"tool_use","id":"t","name":"f","input":{}},{"type":"text","text":" there"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":4,"output_tokens":2}}"#;
    let p = parse_response(body).unwrap();
    assert_eq!(p.text, "Hi there");
    assert_eq!(p.finish_reason, FinishReason::Length);
    assert_eq!(p.usage, beside(4, 2));
}
