//! Random requests (content parts, tool calls and results, tools, tool choices,
//! output formats) through each wire format and back, read by the mock as the
//! real API would: nothing is lost that the format can express, and what it
//! cannot express is refused before any HTTP call.
#![cfg(feature = "mock")]

use proptest::prelude::*;
use serde_json::{json, Value};
use steer_llm::mock::request::{read, MockRequest};
use steer_llm::mock::Flavour;
use steer_llm::wire;
use steer_llm::{
    ChatRequest, ImageSource, Message, Part, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    ToolResult,
};

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "alpha",
        "beta",
        "gamma",
        "日本",
        "x y",
        "",
        "{\"a\":1}",
    ])
    .prop_map(str::to_string)
}

fn image() -> impl Strategy<Value = ImageSource> {
    prop_oneof![
        4 => Just(ImageSource::url("https://example.com/a.png")),
        4 => Just(ImageSource::base64("image/png", "iVBORw0KGgo=")),
        1 => Just(ImageSource::url("file:///etc/passwd")),
        1 => Just(ImageSource::base64("image/bmp", "AAAA")),
    ]
}

fn call() -> impl Strategy<Value = ToolCall> {
    (
        prop::sample::select(vec!["get_weather", "lookup"]),
        0u8..5,
        prop_oneof![
            6 => Just(json!({"city": "Oslo"})),
            2 => Just(json!({})),
            1 => Just(json!([1, 2])),
        ],
        any::<bool>(),
    )
        .prop_map(|(name, n, args, raw)| {
            if raw && n == 0 {
                ToolCall::from_text(format!("call_{n}"), name, "{not json")
            } else {
                ToolCall::new(format!("call_{n}"), name, args)
            }
        })
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        6 => word().prop_map(Part::Text),
        2 => image().prop_map(Part::Image),
        2 => call().prop_map(Part::ToolCall),
        2 => (word(), any::<bool>()).prop_map(|(c, e)| Part::ToolResult(ToolResult {
            is_error: e && c.len() % 2 == 0, call_id: "call_1".into(), content: c,
        })),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop::sample::select(vec![Role::System, Role::User, Role::Assistant, Role::Tool]),
        prop::collection::vec(part(), 1..4),
    )
        .prop_map(|(role, parts)| Message::new(role, parts))
}

fn tool() -> impl Strategy<Value = Tool> {
    (
        prop::sample::select(vec!["get_weather", "lookup", "bad name!"]),
        any::<bool>(),
    )
        .prop_map(|(name, strict)| {
            Tool::new(
                name,
                json!({"type": "object", "properties": {"city": {"type": "string"}}}),
            )
            .description("d")
            .strict(strict)
        })
}

fn request() -> impl Strategy<Value = ChatRequest> {
    (
        prop::collection::vec(message(), 1..6),
        prop::collection::vec(tool(), 0..3),
        prop::option::of(prop_oneof![
            Just(ToolChoice::Auto),
            Just(ToolChoice::None),
            Just(ToolChoice::Required),
            Just(ToolChoice::Tool("lookup".into())),
        ]),
        prop::option::of(any::<bool>()),
        prop::option::of(prop_oneof![
            Just(ResponseFormat::Json),
            Just(ResponseFormat::JsonSchema {
                name: "out".into(),
                schema: json!({"type": "object"}),
                strict: true
            }),
        ]),
    )
        .prop_map(|(messages, tools, choice, parallel, format)| {
            let mut req = ChatRequest::new("p/m").unwrap();
            req.messages = messages;
            req.tools = tools;
            req.tool_choice = choice;
            req.parallel_tool_calls = parallel;
            req.response_format = format;
            req.max_tokens = Some(100);
            req
        })
}

/// Whether `flavour` can express `req`: the oracle the translation must agree with.
fn expressible(flavour: Flavour, req: &ChatRequest) -> bool {
    let anthropic = flavour == Flavour::Anthropic;
    let mut names: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
    if names.iter().any(|n| n.contains(' ')) {
        return false;
    }
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return false;
    }
    match &req.tool_choice {
        Some(ToolChoice::Required) if req.tools.is_empty() => return false,
        Some(ToolChoice::Tool(n)) if !req.tools.iter().any(|t| &t.name == n) => return false,
        _ => {}
    }
    if anthropic && req.response_format == Some(ResponseFormat::Json) {
        return false;
    }
    req.messages.iter().all(|m| {
        m.content.iter().all(|p| match (m.role, p) {
            (_, Part::Image(src)) if src.validate().is_err() => false,
            (Role::System, Part::Text(_)) => true,
            (Role::User, Part::Text(_) | Part::Image(_)) => true,
            (Role::Assistant, Part::Text(_)) => true,
            (Role::Assistant, Part::ToolCall(c)) => {
                !anthropic || (c.unparsed.is_none() && c.arguments.is_object())
            }
            (Role::Tool, Part::ToolResult(r)) => anthropic || !r.is_error,
            _ => false,
        })
    })
}

/// A request as both sides can compare it: system text joined; consecutive tool
/// messages as one; adjacent text parts as one; an assistant turn as its text and
/// its calls (a format orders them its own way).
fn canonical(messages: &[Message]) -> (String, Vec<(Role, Vec<Part>)>) {
    let system: Vec<String> = messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.text())
        .collect();
    let mut out: Vec<(Role, Vec<Part>)> = Vec::new();
    for m in messages.iter().filter(|m| m.role != Role::System) {
        let mut parts: Vec<Part> = Vec::new();
        let ordered: Vec<Part> = if m.role == Role::Assistant {
            let text = m.text();
            let mut v: Vec<Part> = Vec::new();
            if !text.is_empty() {
                v.push(Part::Text(text));
            }
            v.extend(
                m.content
                    .iter()
                    .filter(|p| matches!(p, Part::ToolCall(_)))
                    .cloned(),
            );
            v
        } else {
            m.content.clone()
        };
        for p in ordered {
            match (parts.last_mut(), p) {
                (Some(Part::Text(a)), Part::Text(b)) => a.push_str(&b),
                (_, p) => parts.push(p),
            }
        }
        match out.last_mut() {
            Some((Role::Tool, previous)) if m.role == Role::Tool => previous.extend(parts),
            _ => out.push((m.role, parts)),
        }
    }
    (system.join("\n\n"), out)
}

fn check(flavour: Flavour, req: &ChatRequest) -> Result<(), TestCaseError> {
    let translated = match flavour {
        Flavour::Anthropic => wire::anthropic::request_json(req, false),
        _ => wire::openai::request_json(req, false, false, steer_llm::Prefill::None),
    };
    let can = expressible(flavour, req);
    let bytes = match translated {
        Err(e) => {
            prop_assert!(
                !can,
                "{flavour:?} refused what it can express: {e}\n{req:?}"
            );
            return Ok(());
        }
        Ok(bytes) => bytes,
    };
    prop_assert!(can, "{flavour:?} sent what it cannot express:\n{req:?}");
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let back: MockRequest = match read(flavour, &body) {
        Ok(r) => r,
        // The API's own rules: a conversation of nothing but a system prompt.
        Err(e) if req.messages.iter().all(|m| m.role == Role::System) => {
            prop_assert!(e.contains("messages"), "{e}");
            return Ok(());
        }
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "{flavour:?} sent what it cannot read: {e}\n{body}"
            )))
        }
    };
    prop_assert_eq!(
        canonical(&back.messages),
        canonical(&req.messages),
        "{:?}\n{}",
        flavour,
        body
    );
    prop_assert_eq!(&back.tools, &req.tools);
    let parallel = |p: Option<bool>, tools: bool| tools.then(|| p.unwrap_or(true));
    if req.tool_choice != Some(ToolChoice::None) {
        prop_assert_eq!(
            parallel(back.parallel_tool_calls, !back.tools.is_empty()),
            parallel(req.parallel_tool_calls, !req.tools.is_empty())
        );
    }
    let choice = |c: &Option<ToolChoice>| c.clone().filter(|c| *c != ToolChoice::Auto);
    if req.parallel_tool_calls != Some(false) || req.tools.is_empty() {
        prop_assert_eq!(choice(&back.tool_choice), choice(&req.tool_choice));
    }
    let schema = |f: &Option<ResponseFormat>| match f {
        Some(ResponseFormat::JsonSchema { schema, .. }) => Some(Some(schema.clone())),
        Some(ResponseFormat::Json) => Some(None),
        None => None,
    };
    prop_assert_eq!(schema(&back.response_format), schema(&req.response_format));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn requests_survive_every_wire_format_or_are_refused(req in request()) {
        for flavour in [Flavour::OpenAi, Flavour::Anthropic] {
            check(flavour, &req)?;
        }
    }
}
