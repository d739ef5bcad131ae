//! An agent's loop: the model calls a tool, the program runs it, the result goes
//! back, the model answers; then a reply in a JSON schema, parsed into a struct.
//! The stream survives a connection reset in the middle of the tool call's
//! arguments: the call arrives whole, once.
//!
//! `cargo run --features mock --example tools` — uses the real OpenAI API when `OPENAI_API_KEY` is
//! set, otherwise the embedded mock provider (which calls the tool the prompt
//! names, and resets the stream once).

use futures::StreamExt;
use serde_json::json;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::{ChatRequest, Client, Message, Providers, StreamEvent, Tool, ToolChoice};

#[derive(serde::Deserialize)]
struct Forecast {
    city: String,
    days: u8,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock; // keeps the embedded mock running
    let providers = if std::env::var("OPENAI_API_KEY").is_ok() {
        Providers::from_env()?
    } else {
        mock = MockServer::builder().start_background()?;
        // The stream below breaks after 6 events: inside the call's arguments.
        mock.script_key("agent-stream", [FaultPlan::reset(6)]);
        println!(
            "(no OPENAI_API_KEY: using the mock provider at {})",
            mock.base_url()
        );
        mock.providers()?
    };
    let client = Client::builder().providers(providers).build()?;

    let weather = Tool::new(
        "get_weather",
        json!({"type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
            "required": ["city", "days"]}),
    )
    .description("The forecast for a city");
    let ask = ChatRequest::new("openai/gpt-4o-mini")?
        .user("Use get_weather: what's the weather in Oslo this week?")
        .tool(weather)
        .tool_choice(ToolChoice::Auto);

    // 1. The model calls the tool (streamed: the call arrives whole).
    let mut stream = client
        .stream(ask.clone().request_id("agent-stream"))
        .await?;
    let (mut text, mut calls) = (String::new(), Vec::new());
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::TextDelta { text: t, .. } => text.push_str(&t),
            StreamEvent::ToolCall { call, .. } => calls.push(call),
            StreamEvent::Resumed { .. } => println!("(the stream broke and was resumed)"),
            _ => {}
        }
    }
    let call = calls.first().ok_or("the model called no tool")?;
    println!("tool call: {}({})", call.name, call.arguments);
    if calls.len() != 1 {
        return Err(format!("{} calls arrived, expected one", calls.len()).into());
    }

    // 2. The program runs the tool and sends the result back.
    let result = json!({"forecast": "rain, then sun", "city": call.arguments["city"]});
    let answer = client
        .generate(
            ask.clone()
                .message(Message::assistant_tool_calls(text, calls.clone()))
                .message(Message::tool_result(&call.id, result.to_string())),
        )
        .await?;
    println!("answer: {}", answer.text);

    // 3. Structured output, parsed into a struct.
    let schema = json!({"type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "days"], "additionalProperties": false});
    let reply = client
        .generate(
            ChatRequest::new("openai/gpt-4o-mini")?
                .user("Give the city and the number of days as JSON.")
                .json_schema("forecast", schema),
        )
        .await?;
    let forecast: Forecast = reply.parse()?;
    println!("structured: {} for {} days", forecast.city, forecast.days);
    Ok(())
}
