//! Tool calls, structured output, images and extra parameters through the real
//! HTTP path against the mock, for all three providers; and tool calls streamed
//! under faults, delivered whole exactly once.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::SteerStream;
use steer_llm::{
    ChatRequest, Client, Error, FinishReason, ImageSource, Message, Part, StreamEvent, Tool,
    ToolCall, ToolChoice,
};

const MODELS: [&str; 3] = [
    "openai/gpt-4o-mini",
    "anthropic/claude-3-5-haiku-latest",
    "xai/grok-3-mini",
];

fn weather() -> Tool {
    Tool::new(
        "get_weather",
        json!({"type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                           "days": {"type": "integer", "minimum": 1, "maximum": 7}},
            "required": ["city", "unit", "days"]}),
    )
    .description("The forecast for a city")
}

fn time_tool() -> Tool {
    Tool::new(
        "get_time",
        json!({"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}),
    )
}

fn client(mock: &MockServer) -> Client {
    common::fault_tolerant_client(mock)
}

fn satisfies_weather(args: &Value) {
    assert!(args["city"].is_string(), "{args}");
    assert_eq!(args["unit"], "celsius", "{args}");
    assert!((1..=7).contains(&args["days"].as_i64().unwrap()), "{args}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_and_its_result_over_two_turns() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        let first = ChatRequest::new(model)
            .unwrap()
            .user("What's the weather in Oslo?")
            .tool(weather())
            .tool_choice(ToolChoice::Required);
        let reply = client.generate(first.clone()).await.unwrap();
        assert_eq!(reply.finish_reason, FinishReason::ToolCalls, "{model}");
        assert_eq!(reply.tool_calls.len(), 1, "{model}");
        let call = &reply.tool_calls[0];
        assert_eq!(call.name, "get_weather");
        assert!(!call.id.is_empty());
        satisfies_weather(&call.arguments);
        // The typed helper reads the same arguments.
        #[derive(serde::Deserialize)]
        struct Args {
            city: String,
            days: u8,
        }
        let typed: Args = call.parse().unwrap();
        assert!(!typed.city.is_empty() && typed.days >= 1);

        let second = first
            .clone()
            .tool_choice(ToolChoice::Auto)
            .message(Message::assistant_tool_calls(
                reply.text.clone(),
                reply.tool_calls.clone(),
            ))
            .message(Message::tool_result(&call.id, r#"{"forecast":"rain"}"#));
        let answer = client.generate(second).await.unwrap();
        assert_eq!(answer.finish_reason, FinishReason::Stop, "{model}");
        assert!(answer.tool_calls.is_empty());
        assert!(!answer.text.is_empty());
    }
    // The history reached the mock in each provider's own shape.
    let log = mock.requests();
    let openai_second = &log[1].body["messages"];
    assert_eq!(
        openai_second[1]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(openai_second[2]["role"], "tool");
    let anthropic_second = &log[3].body["messages"];
    assert_eq!(
        anthropic_second[1]["content"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["type"],
        "tool_use"
    );
    assert_eq!(anthropic_second[2]["content"][0]["type"], "tool_result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_tool_calls_and_the_switch_that_forbids_them() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        let req = ChatRequest::new(model)
            .unwrap()
            .user("Use get_weather for Oslo and get_time for its zone.")
            .tool(weather())
            .tool(time_tool());
        let both = client.generate(req.clone()).await.unwrap();
        let names: Vec<&str> = both.tool_calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["get_weather", "get_time"], "{model}");
        assert_ne!(both.tool_calls[0].id, both.tool_calls[1].id);
        let one = client
            .generate(req.parallel_tool_calls(false))
            .await
            .unwrap();
        assert_eq!(one.tool_calls.len(), 1, "{model}");
        // No call without a reason to call.
        let none = ChatRequest::new(model)
            .unwrap()
            .user("Hello")
            .tool(weather());
        assert!(client.generate(none).await.unwrap().tool_calls.is_empty());
    }
}

#[derive(Debug, serde::Deserialize, PartialEq)]
struct City {
    name: String,
    population: u64,
    coastal: bool,
    tags: Vec<String>,
}

fn city_schema() -> Value {
    json!({"type": "object",
        "properties": {"name": {"type": "string"}, "population": {"type": "integer", "minimum": 1000},
                       "coastal": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "population", "coastal", "tags"], "additionalProperties": false})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_output_parses_into_a_struct_for_every_provider() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        let req = ChatRequest::new(model)
            .unwrap()
            .user("Describe a city.")
            .json_schema("city", city_schema());
        let reply = client.generate(req.clone()).await.unwrap();
        let city: City = reply.parse().unwrap_or_else(|e| panic!("{model}: {e}"));
        assert!(city.population >= 1000 && !city.tags.is_empty(), "{model}");
        // Streamed, the same JSON.
        let streamed = collect(client.stream(req).await.unwrap()).await;
        assert_eq!(streamed.text, reply.text, "{model}");
    }
    let log = mock.requests();
    assert_eq!(log[0].body["response_format"]["type"], "json_schema");
    assert_eq!(
        log[2].body["output_config"]["format"]["type"],
        "json_schema"
    );
    // Plain JSON mode where the provider has it; a clear error where it has not.
    let json = client
        .generate(
            ChatRequest::new("openai/gpt-4o-mini")
                .unwrap()
                .user("x")
                .json_mode(),
        )
        .await
        .unwrap();
    assert!(json.json().unwrap().is_object());
    let sent = mock.request_count();
    let err = client
        .generate(
            ChatRequest::new("anthropic/claude-3-5-haiku-latest")
                .unwrap()
                .user("x")
                .json_mode(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
    assert_eq!(mock.request_count(), sent, "nothing was sent");
    // A reply that is not the JSON asked for is a typed error.
    let text = client
        .generate(ChatRequest::new("openai/gpt-4o-mini").unwrap().user("x"))
        .await
        .unwrap();
    assert!(text.parse::<City>().is_err() && text.json().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_sent_and_counted_and_bad_ones_refused_before_sending() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        let plain = ChatRequest::new(model).unwrap().user("What is this?");
        let with_images = ChatRequest::new(model)
            .unwrap()
            .message(Message::user_parts(vec![
                Part::text("What is this?"),
                Part::image(ImageSource::url("https://example.com/cat.png")),
                Part::image(ImageSource::base64("image/png", "iVBORw0KGgo=")),
            ]));
        let a = client.generate(plain).await.unwrap();
        // Usage details where the provider reports them (the mock reports zeros).
        assert_eq!(a.usage.cached_prompt_tokens, Some(0), "{model}");
        let reasoning = if model.starts_with("anthropic") {
            None
        } else {
            Some(0)
        };
        assert_eq!(a.usage.reasoning_tokens, reasoning, "{model}");
        let b = client.generate(with_images).await.unwrap();
        assert_eq!(
            b.usage.prompt_tokens,
            a.usage.prompt_tokens + 2 * 85,
            "{model}"
        );
    }
    let log = mock.requests();
    assert_eq!(
        log[1].body["messages"][0]["content"][2]["image_url"]["url"],
        "data:image/png;base64,iVBORw0KGgo="
    );
    assert_eq!(
        log[3].body["messages"][0]["content"][2]["source"]["type"],
        "base64"
    );
    let sent = mock.request_count();
    for bad in [
        ImageSource::url("ftp://example.com/cat.png"),
        ImageSource::base64("image/tiff", "AAAA"),
        ImageSource::base64("image/png", "not base64!"),
    ] {
        let req = ChatRequest::new("openai/gpt-4o-mini")
            .unwrap()
            .message(Message::user_parts(vec![Part::image(bad)]));
        assert!(matches!(
            client.generate(req).await,
            Err(Error::InvalidRequest { .. })
        ));
    }
    // An image where the format has no place for one.
    let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .message(Message::new(
            steer_llm::Role::Assistant,
            vec![Part::image(ImageSource::url("https://example.com/a.png"))],
        ));
    assert!(matches!(
        client.generate(req).await,
        Err(Error::InvalidRequest { .. })
    ));
    assert_eq!(mock.request_count(), sent, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_body_fields_and_headers_arrive_as_given() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        let req = ChatRequest::new(model)
            .unwrap()
            .user("hi")
            .extra_body("seed", json!(7))
            .extra_body("metadata", json!({"user_id": "u-1"}))
            .extra_body("temperature", json!(0.25))
            .temperature(0.9)
            .extra_header("x-trace-id", "trace-42");
        client.generate(req).await.unwrap();
    }
    for r in mock.requests() {
        assert_eq!(r.body["seed"], 7);
        assert_eq!(r.body["metadata"]["user_id"], "u-1");
        assert_eq!(
            r.body["temperature"], 0.25,
            "an extra field wins over steer's own"
        );
        assert_eq!(r.header("x-trace-id"), Some("trace-42"));
    }
    let bad = ChatRequest::new("openai/gpt-4o-mini")
        .unwrap()
        .user("hi")
        .extra_header("bad header", "x");
    assert!(matches!(
        client.generate(bad).await,
        Err(Error::InvalidRequest { .. })
    ));
}

/// What a consumer assembles from a stream.
#[derive(Debug, Default)]
struct Collected {
    text: String,
    /// Complete calls by index, in arrival order.
    calls: Vec<(usize, ToolCall)>,
    /// Argument text streamed per index (reset by a discard).
    streamed_args: std::collections::BTreeMap<usize, String>,
    discarded: Vec<usize>,
    order: Vec<&'static str>,
    error: Option<Error>,
    finish: Option<FinishReason>,
}

async fn collect(mut stream: SteerStream) -> Collected {
    let mut c = Collected::default();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("no hang");
        match next {
            None => break,
            Some(Err(e)) => {
                c.error = Some(e);
                break;
            }
            Some(Ok(StreamEvent::TextDelta { text, offset })) => {
                assert_eq!(offset, c.text.chars().count());
                c.text.push_str(&text);
                c.order.push("text");
            }
            Some(Ok(StreamEvent::ToolCallStart { index, .. })) => {
                c.streamed_args.insert(index, String::new());
                c.order.push("call");
            }
            Some(Ok(StreamEvent::ToolCallDelta { index, arguments })) => c
                .streamed_args
                .entry(index)
                .or_default()
                .push_str(&arguments),
            Some(Ok(StreamEvent::ToolCallDiscarded { index })) => {
                c.discarded.push(index);
                c.streamed_args.remove(&index);
            }
            Some(Ok(StreamEvent::ToolCall { index, call })) => c.calls.push((index, call)),
            Some(Ok(StreamEvent::Complete { finish_reason, .. })) => c.finish = Some(finish_reason),
            Some(Ok(_)) => {}
        }
    }
    c
}

fn two_calls(model: &str, id: &str) -> ChatRequest {
    ChatRequest::new(model)
        .unwrap()
        .user("Use get_weather for Oslo and get_time for its zone.")
        .tool(weather())
        .tool(time_tool())
        .request_id(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_tool_calls_arrive_in_order_and_whole() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        let req = two_calls(model, &format!("stream-{model}"));
        let whole = client.generate(req.clone()).await.unwrap();
        let got = collect(client.stream(req).await.unwrap()).await;
        assert!(got.error.is_none(), "{model}: {:?}", got.error);
        assert_eq!(got.text, whole.text);
        assert_eq!(got.finish, Some(FinishReason::ToolCalls));
        let first_call = got.order.iter().position(|o| *o == "call").unwrap();
        assert!(
            got.order[..first_call].iter().all(|o| *o == "text"),
            "text first"
        );
        assert_eq!(got.calls.len(), 2);
        for (i, (index, call)) in got.calls.iter().enumerate() {
            assert_eq!(*index, i);
            assert!(call.same_as(&whole.tool_calls[i]), "{model}: {call:?}");
            assert_eq!(call.id, whole.tool_calls[i].id);
            assert_eq!(got.streamed_args[index], call.arguments_text());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_anywhere_in_a_tool_call_delivers_every_call_whole_exactly_once() {
    let mock = MockServer::builder()
        .stall_limit(Duration::from_secs(2))
        .record_requests(false)
        .start_background()
        .unwrap();
    let client = client(&mock);
    let mut case = 0;
    let mut discards = 0;
    for model in MODELS {
        let reference = collect(client.stream(two_calls(model, "ref")).await.unwrap()).await;
        let events = reference.text.len() + 40; // more than the content events
        type Fault = fn(usize) -> FaultPlan;
        let faults: [(&str, Fault, usize); 3] = [
            ("reset", FaultPlan::reset, 1),
            ("in-band", |n| FaultPlan::stream_error("server_error", n), 1),
            // A stall costs an idle timeout: every third point.
            ("stall", FaultPlan::stall, 3),
        ];
        for (name, fault, step) in faults {
            for after in (1..events.min(30)).step_by(step) {
                case += 1;
                let id = format!("fault-{case}");
                mock.script_key(&id, [fault(after)]);
                let got = collect(client.stream(two_calls(model, &id)).await.unwrap()).await;
                let what = format!("{model} {name} after {after}");
                assert!(got.error.is_none(), "{what}: {:?}", got.error);
                assert_eq!(got.text, reference.text, "{what}: text exactly once");
                let indices: Vec<usize> = got.calls.iter().map(|(i, _)| *i).collect();
                assert_eq!(indices, [0, 1], "{what}: each call once, in order");
                for (i, (_, call)) in got.calls.iter().enumerate() {
                    assert!(call.same_as(&reference.calls[i].1), "{what}: {call:?}");
                    // What survived of the streamed arguments is the whole call.
                    assert_eq!(got.streamed_args[&i], call.arguments_text(), "{what}");
                }
                for d in &got.discarded {
                    assert!(
                        indices.contains(d),
                        "{what}: a discarded call is made again"
                    );
                }
                discards += got.discarded.len();
            }
        }
    }
    // The fault points did strike in the middle of calls' arguments.
    assert!(
        discards >= 6,
        "only {discards} calls were cut in the middle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_carries_tools_choice_format_and_extra_parameters() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        let id = format!("carry-{model}");
        let req = two_calls(model, &id)
            .tool_choice(ToolChoice::Auto)
            .parallel_tool_calls(true)
            .extra_body("seed", json!(11))
            .extra_header("x-trace-id", "t-1");
        mock.clear_requests();
        // Inside the first call's arguments.
        mock.script_key(&id, [FaultPlan::reset(6)]);
        let got = collect(client.stream(req).await.unwrap()).await;
        assert!(
            got.error.is_none() && got.calls.len() == 2,
            "{model}: {got:?}"
        );
        let log = mock.requests();
        assert_eq!(log.len(), 2, "{model}");
        let (first, second) = (&log[0].body, &log[1].body);
        for key in ["tools", "tool_choice", "seed"] {
            assert_eq!(first[key], second[key], "{model}: {key} carried");
        }
        assert_eq!(log[1].header("x-trace-id"), Some("t-1"));
        // In the continuation's wire format: the continue message quotes what was made.
        let (role, text) = log[1].last_message().unwrap();
        assert_eq!(role, "user");
        assert!(
            steer_llm::continue_message::read_quoted(&text).is_some(),
            "{model}: {text}"
        );
    }
}

/// Found by the stream property: the text used every allowed token and the break
/// came right after it; the tool calls that follow the text must still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_after_the_last_text_token_still_delivers_the_calls_that_follow() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = client(&mock);
    for model in MODELS {
        let id = format!("budget-calls-{model}");
        // The limit is the preamble's tokens, as the mock counts them.
        let unlimited = client
            .generate(two_calls(model, "oracle-unlimited"))
            .await
            .unwrap();
        let name = model.split_once('/').map_or(model, |(_, m)| m);
        let preamble = steer_llm::mock::text::count_tokens(name, &unlimited.text);
        let req = two_calls(model, &id).max_tokens(preamble as u32);
        let whole = client
            .generate(req.clone().request_id("oracle"))
            .await
            .unwrap();
        assert_eq!(
            whole.tool_calls.len(),
            2,
            "{model}: the preamble fits in {preamble} tokens"
        );
        // The break comes right after the preamble's last chunk.
        let streamed = collect(
            client
                .stream(req.clone().request_id("oracle-stream"))
                .await
                .unwrap(),
        )
        .await;
        let text_chunks = streamed.order.iter().filter(|o| **o == "text").count();
        mock.script_key(&id, [FaultPlan::reset(text_chunks)]);
        let got = collect(client.stream(req).await.unwrap()).await;
        assert!(got.error.is_none(), "{model}: {:?}", got.error);
        assert_eq!(got.text, whole.text, "{model}");
        assert_eq!(got.calls.len(), 2, "{model}");
        assert_eq!(got.finish, Some(FinishReason::ToolCalls), "{model}");
    }
}
