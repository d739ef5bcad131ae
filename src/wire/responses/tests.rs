//! The Responses wire format against the shapes of openai-python's types.

use serde_json::json;

use super::*;
use crate::content::ImageSource;
use crate::tools::{Tool, ToolResult};

fn run(events: &[&str]) -> (Vec<ProviderEvent>, Result<Progress, DecodeError>, Decoder) {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    let mut last = Ok(Progress::Continue);
    for e in events {
        last = d.on_event("", e, &mut out);
        if last.is_err() || last == Ok(Progress::Done) {
            break;
        }
    }
    (out, last, d)
}

/// The text the events deliver, in order.
fn text_of(out: &[ProviderEvent]) -> String {
    out.iter()
        .filter_map(|e| match e {
            ProviderEvent::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn request(messages: Vec<Message>) -> ChatRequest {
    let mut req = ChatRequest::new("openai/gpt-5").expect("a model id");
    req.messages = messages;
    req
}

fn body(req: &ChatRequest) -> Value {
    serde_json::from_slice(&request_json(req, true).expect("a body")).expect("JSON")
}

#[test]
fn a_conversation_becomes_instructions_and_input_items() {
    let call = ToolCall::new("call_1", "get_weather", json!({"city": "Oslo"}));
    let mut req = request(vec![
        Message::system("Be brief."),
        Message::user_parts(vec![
            Part::text("What is this?"),
            Part::Image(ImageSource::url("https://example.com/a.png")),
        ]),
        Message::assistant_tool_calls("Looking.", vec![call]),
        Message::tool_result("call_1", "sunny"),
    ]);
    req.max_tokens = Some(64);
    req.tools = vec![Tool::new("get_weather", json!({"type": "object"})).strict(true)];
    req.tool_choice = Some(ToolChoice::Tool("get_weather".into()));
    req.response_format = Some(ResponseFormat::Json);
    let b = body(&req);
    assert_eq!(b["model"], "gpt-5");
    assert_eq!(b["instructions"], "Be brief.");
    assert_eq!(b["stream"], true);
    assert_eq!(b["max_output_tokens"], 64);
    assert!(b.get("max_tokens").is_none() && b.get("messages").is_none());
    let input = b["input"].as_array().expect("input items");
    assert_eq!(input[0]["role"], "user");
    assert_eq!(
        input[0]["content"][0],
        json!({"type": "input_text", "text": "What is this?"})
    );
    assert_eq!(input[0]["content"][1]["type"], "input_image");
    assert_eq!(input[1]["content"][0]["type"], "output_text");
    assert_eq!(
        input[2],
        json!({"type": "function_call", "call_id": "call_1", "name": "get_weather",
            "arguments": "{\"city\":\"Oslo\"}"})
    );
    assert_eq!(
        input[3],
        json!({"type": "function_call_output", "call_id": "call_1", "output": "sunny"})
    );
    assert_eq!(b["tools"][0]["name"], "get_weather");
    assert_eq!(b["tools"][0]["strict"], true);
    assert!(b["tools"][0].get("function").is_none(), "tools are flat");
    assert_eq!(
        b["tool_choice"],
        json!({"type": "function", "name": "get_weather"})
    );
    assert_eq!(b["text"], json!({"format": {"type": "json_object"}}));
}

#[test]
fn stop_sequences_are_the_clients_the_body_has_none() {
    let mut req = request(vec![Message::user("Hi")]);
    req.stop = vec!["END".into()];
    let b = body(&req);
    assert!(b.get("stop").is_none(), "{b}");
}

#[test]
fn a_stream_ends_before_its_first_stop_sequence_even_across_chunks() {
    let delta = |n: u64, text: &str| {
        format!(
            r#"{{"type":"response.output_text.delta","sequence_number":{n},"output_index":0,"content_index":0,"delta":{}}}"#,
            serde_json::Value::from(text)
        )
    };
    let mut d = Decoder::with_stops(vec!["END".into()]);
    let mut out = Vec::new();
    let events = [delta(1, "Hello E"), delta(2, "N"), delta(3, "D and more")];
    let mut last = Ok(Progress::Continue);
    for e in &events {
        last = d.on_event("", e, &mut out);
        if last != Ok(Progress::Continue) {
            break;
        }
    }
    assert_eq!(last, Ok(Progress::Done));
    assert_eq!(text_of(&out), "Hello ");
    assert!(matches!(
        out.last(),
        Some(ProviderEvent::Complete {
            finish_reason: FinishReason::Stop,
            usage: None
        })
    ));
    // Text that only began like a stop sequence is delivered at the end.
    let mut d = Decoder::with_stops(vec!["END".into()]);
    let mut out = Vec::new();
    d.on_event("", &delta(1, "so E"), &mut out).unwrap();
    let done = TEXT_STREAM[8];
    assert_eq!(d.on_event("", done, &mut out), Ok(Progress::Done));
    let texts: Vec<&str> = out
        .iter()
        .filter_map(|e| match e {
            ProviderEvent::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["so ", "E"], "{out:?}");
    // Held text passes when its text ends: before the calls after it (a
    // stream broken among the calls has delivered all of its text).
    let mut d = Decoder::with_stops(vec![". Hollow".into()]);
    let mut out = Vec::new();
    d.on_event("", &delta(1, "timber."), &mut out).unwrap();
    d.on_event("", r#"{"type":"response.output_text.done","sequence_number":2,"output_index":0,"content_index":0,"text":"timber."}"#, &mut out).unwrap();
    d.on_event("", r#"{"type":"response.output_item.added","sequence_number":3,"output_index":1,"item":{"type":"function_call","call_id":"call_1","name":"f","arguments":""}}"#, &mut out).unwrap();
    let text_then_call: Vec<&str> = out
        .iter()
        .map(|e| match e {
            ProviderEvent::TextDelta { text, .. } => text.as_str(),
            ProviderEvent::ToolCallStart { .. } => "<call>",
            _ => "",
        })
        .collect();
    assert_eq!(text_then_call, ["timber", ".", "<call>"]);
}

/// "." is whole in the text, but "é. " begins before it and might still end
/// it first: held. However the text then ends (its `done`, the next item, the
/// response's end), the held "." ends the reply there: what is before "é"
/// passes, the reply completes with `stop`, and no call after it is made.
#[test]
fn a_held_stop_sequence_ends_the_reply_however_its_text_ends() {
    let delta = r#"{"type":"response.output_text.delta","sequence_number":1,"output_index":0,"content_index":0,"delta":"a é."}"#;
    let ends = [
        r#"{"type":"response.output_text.done","sequence_number":2,"output_index":0,"content_index":0,"text":"a é."}"#,
        r#"{"type":"response.output_item.added","sequence_number":2,"output_index":1,"item":{"type":"function_call","call_id":"call_1","name":"f","arguments":""}}"#,
        TEXT_STREAM[8],
    ];
    for (i, end) in ends.into_iter().enumerate() {
        let mut d = Decoder::with_stops(vec![".".into(), "é. ".into()]);
        let mut out = Vec::new();
        assert_eq!(d.on_event("", delta, &mut out), Ok(Progress::Continue));
        assert_eq!(d.on_event("", end, &mut out), Ok(Progress::Done), "{i}");
        assert_eq!(text_of(&out), "a é", "{i}: {out:?}");
        assert!(
            !out.iter()
                .any(|e| matches!(e, ProviderEvent::ToolCallStart { .. })),
            "{i}: {out:?}"
        );
        let usage = (i == 2).then(|| crate::model::Usage::new(3, 2));
        assert!(
            matches!(
                out.last(),
                Some(ProviderEvent::Complete { finish_reason: FinishReason::Stop, usage: u }) if *u == usage
            ),
            "{i}: {out:?}"
        );
    }
}

#[test]
fn what_the_api_cannot_express_is_an_error_before_any_call() {
    let failed_tool = request(vec![Message {
        role: Role::Tool,
        content: vec![Part::ToolResult(ToolResult {
            call_id: "call_1".into(),
            content: "boom".into(),
            is_error: true,
        })],
    }]);
    assert!(request_json(&failed_tool, false)
        .unwrap_err()
        .contains("no error flag"));
}

#[test]
fn a_whole_reply_gives_text_calls_usage_and_its_finish() {
    let body = br#"{"id":"resp_1","object":"response","status":"completed","model":"gpt-5",
        "output":[{"type":"reasoning","id":"rs_1","summary":[]},
                  {"type":"message","id":"msg_1","role":"assistant","status":"completed",
                   "content":[{"type":"output_text","text":"Hi there","annotations":[]}]}],
        "usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},
                 "output_tokens":7,"output_tokens_details":{"reasoning_tokens":5},"total_tokens":17}}"#;
    let p = parse_response(body).expect("a reply");
    assert_eq!(p.text, "Hi there");
    assert_eq!(p.finish_reason, FinishReason::Stop);
    assert_eq!(p.id.as_deref(), Some("resp_1"));
    assert_eq!((p.usage.prompt_tokens, p.usage.completion_tokens), (10, 7));
    assert_eq!(p.usage.cached_prompt_tokens, Some(4));
    assert_eq!(p.usage.reasoning_tokens, Some(5));

    let calls = br#"{"id":"resp_2","object":"response","status":"completed","output":[
        {"type":"function_call","id":"fc_1","call_id":"call_9","name":"f","arguments":"{\"a\":1}","status":"completed"}]}"#;
    let p = parse_response(calls).expect("a reply");
    assert_eq!(p.finish_reason, FinishReason::ToolCalls);
    assert_eq!(p.tool_calls[0].id, "call_9", "joined by call_id, not id");
    assert_eq!(p.tool_calls[0].arguments, json!({"a": 1}));

    let cut = br#"{"id":"r","object":"response","status":"incomplete",
        "incomplete_details":{"reason":"max_output_tokens"},"output":[]}"#;
    assert_eq!(
        parse_response(cut).expect("a reply").finish_reason,
        FinishReason::Length
    );
    let refused = br#"{"id":"r","object":"response","status":"completed","output":[
        {"type":"message","role":"assistant","content":[{"type":"refusal","refusal":"I can't."}]}]}"#;
    let p = parse_response(refused).expect("a reply");
    assert_eq!(
        (p.text.as_str(), p.finish_reason),
        ("I can't.", FinishReason::ContentFilter)
    );
}

#[test]
fn a_failed_or_unfinished_response_or_a_body_of_the_wrong_shape_is_never_a_reply() {
    let failed = br#"{"id":"r","object":"response","status":"failed",
        "error":{"code":"server_error","message":"The model failed."},"output":[]}"#;
    let Err(DecodeError::InBand(carried)) = parse_response(failed) else {
        panic!("a failed response is its error")
    };
    assert_eq!(
        crate::classify::body::parse(carried.as_bytes())
            .code
            .as_deref(),
        Some("server_error")
    );
    let queued = br#"{"id":"r","object":"response","status":"queued","output":[]}"#;
    assert!(matches!(
        parse_response(queued),
        Err(DecodeError::Malformed(_))
    ));
    for wrong in [
        &b"{}"[..],
        br#"{"object":"list","data":[]}"#,
        br#"{"choices":[{"message":{"content":"hi"}}]}"#,
        b"[]",
        b"null",
    ] {
        assert!(
            matches!(parse_response(wrong), Err(DecodeError::Malformed(_))),
            "{}",
            String::from_utf8_lossy(wrong)
        );
    }
    let error = br#"{"error":{"message":"overloaded","type":"server_error"}}"#;
    assert!(matches!(parse_response(error), Err(DecodeError::InBand(_))));
}

/// The event sequence of a streamed text reply, as openai-python types it.
const TEXT_STREAM: &[&str] = &[
    r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_7","object":"response","status":"in_progress","output":[]}}"#,
    r#"{"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_7","object":"response","status":"in_progress","output":[]}}"#,
    r#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"type":"message","id":"msg_1","role":"assistant","status":"in_progress","content":[]}}"#,
    r#"{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}"#,
    r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"日本"}"#,
    r#"{"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" is"}"#,
    r#"{"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"日本 is"}"#,
    r#"{"type":"response.output_item.done","sequence_number":7,"output_index":0,"item":{"type":"message","id":"msg_1","role":"assistant","status":"completed","content":[]}}"#,
    r#"{"type":"response.completed","sequence_number":8,"response":{"id":"resp_7","object":"response","status":"completed","output":[],"usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}}"#,
];

#[test]
fn a_text_stream_gives_its_id_deltas_at_character_offsets_usage_and_completion() {
    let (out, last, d) = run(TEXT_STREAM);
    assert_eq!(last, Ok(Progress::Done));
    assert_eq!(
        out,
        vec![
            ProviderEvent::ResponseId {
                id: "resp_7".into()
            },
            ProviderEvent::TextDelta {
                text: "日本".into(),
                offset: 0
            },
            ProviderEvent::TextDelta {
                text: " is".into(),
                offset: 2
            },
            ProviderEvent::Usage(Usage::new(3, 2)),
            ProviderEvent::Complete {
                finish_reason: FinishReason::Stop,
                usage: Some(Usage::new(3, 2))
            },
        ]
    );
    assert_eq!(d.last_sequence_number(), Some(8));
}

#[test]
fn a_streamed_call_arrives_named_then_its_arguments_then_whole() {
    let (out, last, _) = run(&[
        r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_8","object":"response","status":"in_progress","output":[]}}"#,
        r#"{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"","status":"in_progress"}}"#,
        r#"{"type":"response.function_call_arguments.delta","sequence_number":2,"item_id":"fc_1","output_index":0,"delta":"{\"city\":"}"#,
        r#"{"type":"response.function_call_arguments.delta","sequence_number":3,"item_id":"fc_1","output_index":0,"delta":"\"Oslo\"}"}"#,
        r#"{"type":"response.function_call_arguments.done","sequence_number":4,"item_id":"fc_1","output_index":0,"arguments":"{\"city\":\"Oslo\"}"}"#,
        r#"{"type":"response.output_item.done","sequence_number":5,"output_index":0,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Oslo\"}","status":"completed"}}"#,
        r#"{"type":"response.completed","sequence_number":6,"response":{"id":"resp_8","object":"response","status":"completed","output":[]}}"#,
    ]);
    assert_eq!(last, Ok(Progress::Done));
    assert!(
        matches!(&out[1], ProviderEvent::ToolCallStart { index: 0, id, name }
        if id == "call_1" && name == "get_weather")
    );
    let call = out
        .iter()
        .find_map(|e| match e {
            ProviderEvent::ToolCall { call, .. } => Some(call),
            _ => None,
        })
        .expect("a whole call");
    assert_eq!(call.arguments, json!({"city": "Oslo"}));
    assert!(matches!(
        out.last(),
        Some(ProviderEvent::Complete {
            finish_reason: FinishReason::ToolCalls,
            usage: None
        })
    ));
}

#[test]
fn created_is_no_success_an_error_after_it_is_in_band() {
    let error = r#"{"type":"error","code":"insufficient_quota","message":"You exceeded your current quota.","param":null,"sequence_number":1}"#;
    let (out, last, _) = run(&[TEXT_STREAM[0], error]);
    assert_eq!(last, Err(DecodeError::InBand(error.to_string())));
    assert!(!out
        .iter()
        .any(|e| matches!(e, ProviderEvent::Complete { .. })));
    let failed = r#"{"type":"response.failed","sequence_number":2,"response":{"id":"resp_7","object":"response","status":"failed","error":{"code":"server_error","message":"An error occurred while processing your request."},"output":[]}}"#;
    let (_, last, _) = run(&[TEXT_STREAM[0], failed]);
    let Err(DecodeError::InBand(carried)) = last else {
        panic!("{last:?}")
    };
    // The classifier reads `error.code`: the failure is handed over in that shape.
    let info = crate::classify::body::parse(carried.as_bytes());
    assert_eq!(info.code.as_deref(), Some("server_error"));
}

#[test]
fn an_incomplete_response_ends_the_stream_with_its_reason() {
    let incomplete = r#"{"type":"response.incomplete","sequence_number":3,"response":{"id":"r","object":"response","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]}}"#;
    let (out, last, _) = run(&[TEXT_STREAM[0], TEXT_STREAM[4], incomplete]);
    assert_eq!(last, Ok(Progress::Done));
    assert!(matches!(
        out.last(),
        Some(ProviderEvent::Complete {
            finish_reason: FinishReason::Length,
            ..
        })
    ));
}

#[test]
fn done_without_a_terminal_event_is_malformed_after_one_it_is_accepted() {
    let (_, last, _) = run(&[TEXT_STREAM[0], TEXT_STREAM[4], "[DONE]"]);
    assert!(matches!(last, Err(DecodeError::Malformed(_))));
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for e in TEXT_STREAM {
        let _ = d.on_event("", e, &mut out);
    }
    assert_eq!(d.on_event("", "[DONE]", &mut out), Ok(Progress::Done));
}

#[test]
fn unknown_events_are_ignored_and_events_without_a_type_are_malformed() {
    let (out, last, _) = run(&[
        r#"{"type":"response.reasoning_summary_text.delta","sequence_number":1,"delta":"thinking"}"#,
        r#"{"type":"response.web_search_call.searching","sequence_number":2}"#,
        r#"{"type":"response.future_event_of_2027","sequence_number":3,"delta":"x"}"#,
    ]);
    assert_eq!(last, Ok(Progress::Continue));
    assert!(out.is_empty(), "{out:?}");
    let (_, last, _) = run(&[r#"{"sequence_number":1,"delta":"x"}"#]);
    assert!(matches!(last, Err(DecodeError::Malformed(_))));
    // A gateway's error line has no type: it is the error it carries.
    let gateway = r#"{"error": {"message": "litellm.InternalServerError: AnthropicError - Overloaded", "type": null, "param": null, "code": "500"}}"#;
    let (_, last, _) = run(&[TEXT_STREAM[0], gateway]);
    assert_eq!(last, Err(DecodeError::InBand(gateway.to_string())));
    let (_, last, _) = run(&[r#"{"type":"response.output_text.delta","delta":"#]);
    assert!(matches!(last, Err(DecodeError::Malformed(_))));
}

fn points(out: &[ProviderEvent]) -> Vec<u64> {
    out.iter()
        .filter_map(|e| match e {
            ProviderEvent::Resumable(p) => Some(p.after),
            _ => None,
        })
        .collect()
}

const BG_CREATED: &str = r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_bg","object":"response","status":"queued","background":true}}"#;

fn text_delta(n: u64, text: &str) -> String {
    json!({"type": "response.output_text.delta", "sequence_number": n, "output_index": 0,
        "content_index": 0, "delta": text})
    .to_string()
}

#[test]
fn a_background_stream_reports_a_resume_point_where_nothing_is_held_and_no_call_is_open() {
    // Not in background mode: no point at all.
    let plain = r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","background":false}}"#;
    let (out, _, _) = run(&[plain, &text_delta(1, "Hi")]);
    assert!(points(&out).is_empty());
    // Each event ends at a point; a call's events do not until it is done.
    let added = r#"{"type":"response.output_item.added","sequence_number":3,"output_index":1,"item":{"type":"function_call","call_id":"call_1","name":"f","arguments":""}}"#;
    let args = r#"{"type":"response.function_call_arguments.delta","sequence_number":4,"output_index":1,"delta":"{}"}"#;
    let done = r#"{"type":"response.output_item.done","sequence_number":5,"output_index":1,"item":{"type":"function_call","call_id":"call_1","name":"f","arguments":"{}"}}"#;
    let (out, _, _) = run(&[
        BG_CREATED,
        &text_delta(1, "Hi"),
        &text_delta(2, " there"),
        added,
        args,
        done,
    ]);
    assert_eq!(points(&out), vec![0, 1, 2, 5]);
    let last = out.iter().rev().find_map(|e| match e {
        ProviderEvent::Resumable(p) => Some(p.clone()),
        _ => None,
    });
    let last = last.expect("a point");
    assert_eq!((last.response_id.as_str(), last.calls), ("resp_bg", 1));
    // Text held because it may begin a stop sequence is no point.
    let mut d = Decoder::with_stops(vec!["END".into()]);
    let mut out = Vec::new();
    for e in [
        BG_CREATED.to_string(),
        text_delta(1, "Hi E"),
        text_delta(2, "x"),
    ] {
        d.on_event("", &e, &mut out).expect("an event");
    }
    assert_eq!(points(&out), vec![0, 2], "not after the held \"E\"");
}

#[test]
fn a_resumed_decoder_skips_what_a_server_sends_again_and_numbers_calls_on() {
    let point = crate::model::ResumePoint {
        response_id: "resp_bg".into(),
        after: 2,
        calls: 1,
        reasoning: 0,
        refusal: false,
    };
    let mut d = Decoder::resuming(Vec::new(), &point);
    let mut out = Vec::new();
    // A server that ignores `starting_after` and replays from the start.
    for e in [
        BG_CREATED.to_string(),
        text_delta(1, "Hi"),
        text_delta(2, " there"),
        text_delta(3, "!"),
    ] {
        d.on_event("", &e, &mut out).expect("an event");
    }
    let texts: Vec<&str> = out
        .iter()
        .filter_map(|e| match e {
            ProviderEvent::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec!["!"]);
    assert!(!out
        .iter()
        .any(|e| matches!(e, ProviderEvent::ResponseId { .. })));
    let added = r#"{"type":"response.output_item.added","sequence_number":4,"output_index":2,"item":{"type":"function_call","call_id":"call_2","name":"g","arguments":""}}"#;
    d.on_event("", added, &mut out).expect("an event");
    assert!(out
        .iter()
        .any(|e| matches!(e, ProviderEvent::ToolCallStart { index: 1, .. })));
    // An error is never a replay, whatever its number.
    let error = r#"{"type":"error","code":"server_error","message":"boom","sequence_number":0}"#;
    assert!(matches!(
        d.on_event("", error, &mut out),
        Err(DecodeError::InBand(_))
    ));
}

#[test]
fn a_background_stream_cut_at_a_stop_sequence_says_its_response_runs_on() {
    let mut d = Decoder::with_stops(vec!["END".into()]);
    let mut out = Vec::new();
    d.on_event("", BG_CREATED, &mut out).expect("an event");
    let progress = d.on_event("", &text_delta(1, "Hi END more"), &mut out);
    assert_eq!(progress.expect("an event"), Progress::Done);
    let n = out.len();
    assert!(
        matches!(&out[n - 2], ProviderEvent::LeftRunning { response_id } if response_id == "resp_bg")
    );
    assert!(matches!(
        &out[n - 1],
        ProviderEvent::Complete {
            finish_reason: FinishReason::Stop,
            ..
        }
    ));
}

#[test]
fn a_background_request_asks_for_it_only_when_it_streams() {
    let req = request(vec![Message::user("hi")]).in_background(true);
    assert_eq!(body(&req)["background"], true);
    let whole: Value =
        serde_json::from_slice(&request_json(&req, false).expect("a body")).expect("JSON");
    assert!(whole.get("background").is_none());
    assert!(body(&request(vec![Message::user("hi")]))
        .get("background")
        .is_none());
}

#[test]
fn a_reasoning_item_streams_its_summary_as_reasoning_and_ends_whole_and_goes_back_first() {
    let item = json!({"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAAe",
        "summary": [{"type": "summary_text", "text": "Think."}]});
    let added = json!({"type": "response.output_item.added", "sequence_number": 1,
        "output_index": 0, "item": {"type": "reasoning", "id": "rs_1", "summary": []}})
    .to_string();
    let delta = json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 2,
        "output_index": 0, "summary_index": 0, "delta": "Think."})
    .to_string();
    let done = json!({"type": "response.output_item.done", "sequence_number": 3,
        "output_index": 0, "item": item})
    .to_string();
    let (out, _, _) = run(&[&added, &delta, &done, &text_delta(4, "Hi")]);
    assert_eq!(
        out,
        vec![
            ProviderEvent::ReasoningDelta {
                index: 0,
                text: "Think.".into()
            },
            ProviderEvent::Reasoning {
                index: 0,
                block: crate::reasoning::Reasoning::openai_responses(item.clone())
            },
            ProviderEvent::TextDelta {
                text: "Hi".into(),
                offset: 0
            },
        ]
    );
    // In the history: before the turn's message and calls, unchanged; an
    // Anthropic block never goes.
    let thinking = crate::reasoning::Reasoning::anthropic(
        json!({"type": "thinking", "thinking": "x", "signature": "EqX"}),
    );
    let turn = Message::new(
        Role::Assistant,
        vec![
            Part::Text("Hi".into()),
            Part::Reasoning(thinking),
            Part::Reasoning(crate::reasoning::Reasoning::openai_responses(item.clone())),
        ],
    );
    let input = &body(&request(vec![
        Message::user("hi"),
        turn,
        Message::user("more"),
    ]))["input"];
    assert_eq!(input.as_array().map(Vec::len), Some(4));
    assert_eq!(input[1], item);
    assert_eq!(input[2]["role"], "assistant");
}

#[test]
fn store_and_reasoning_are_sent_as_the_request_says() {
    let plain = body(&request(vec![Message::user("hi")]));
    for field in ["store", "reasoning", "include"] {
        assert!(plain.get(field).is_none(), "{field}");
    }
    let req = request(vec![Message::user("hi")])
        .store(false)
        .reasoning(crate::reasoning::Effort::High);
    let b = body(&req);
    assert_eq!(b["store"], false);
    assert_eq!(b["reasoning"], json!({"effort": "high", "summary": "auto"}));
    assert_eq!(b["include"], json!(["reasoning.encrypted_content"]));
    // An extra body field of the same name wins.
    let b = body(&req.extra_body("reasoning", json!({"effort": "minimal"})));
    assert_eq!(b["reasoning"], json!({"effort": "minimal"}));
}
