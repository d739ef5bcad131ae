//! OpenAI's Responses API through steer: a model that lives only there reached
//! by its name on the usual `openai` provider, a stream of the Responses API
//! resumed after a reset with every character once (client-side, then in
//! background mode on the server, nothing generated again), and a stop sequence
//! the API does not have, applied by steer.
//!
//! `cargo run --features mock --example responses` — uses the real OpenAI API when
//! `OPENAI_API_KEY` is set, otherwise the embedded mock provider (which resets the
//! stream once).

use futures::StreamExt;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::provider::OpenAiResponses;
use steer_llm::{ChatRequest, Client, Providers, ResumedBy, StreamEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock; // keeps the embedded mock running
    let providers = if std::env::var("OPENAI_API_KEY").is_ok() {
        // `openai` chooses its API by model; `openai-responses` is the Responses API alone.
        Providers::from_env()?.with(OpenAiResponses::openai().name("openai-responses").build()?)
    } else {
        mock = MockServer::builder().start_background()?;
        mock.script_key("responses-stream", [FaultPlan::reset(4)]);
        mock.script_key("background-stream", [FaultPlan::reset(4)]);
        println!(
            "(no OPENAI_API_KEY: using the mock provider at {})",
            mock.base_url()
        );
        mock.providers()?
    };
    let client = Client::builder().providers(providers).build()?;

    // 1. A codex model answers only on the Responses API: `openai` sends it there.
    let ask = |model: &str| -> Result<ChatRequest, steer_llm::Error> {
        Ok(ChatRequest::new(model)?
            .system("You are terse.")
            .user("Tell me about rivers."))
    };
    let reply = client.generate(ask("openai/gpt-5-codex")?).await?;
    println!("gpt-5-codex: {}", reply.text);

    // 2. A stream of the Responses API, broken once: resumed, every character once.
    let whole = client
        .generate(ask("openai-responses/gpt-5-mini")?)
        .await?
        .text;
    let mut stream = client
        .stream(ask("openai-responses/gpt-5-mini")?.request_id("responses-stream"))
        .await?;
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::TextDelta { text: t, .. } => text.push_str(&t),
            StreamEvent::Resumed { offset, .. } => println!("(resumed at character {offset})"),
            _ => {}
        }
    }
    assert_eq!(text, whole, "the resumed stream is the reply, once");
    println!("streamed: {text}");

    // 3. The same in background mode: the server keeps the response, and the
    //    broken stream resumes there after the last event read.
    let mut stream = client
        .stream(
            ask("openai-responses/gpt-5-mini")?
                .request_id("background-stream")
                .in_background(true),
        )
        .await?;
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::TextDelta { text: t, .. } => text.push_str(&t),
            StreamEvent::Resumed { offset, by, .. } => {
                let how = if by == ResumedBy::Server {
                    "on the server"
                } else {
                    "client-side"
                };
                println!("(resumed {how} at character {offset})")
            }
            StreamEvent::Complete { usage, .. } => println!("usage: {usage:?}"),
            _ => {}
        }
    }
    assert_eq!(text, whole, "the resumed stream is the reply, once");

    // 4. The Responses API has no stop sequences: steer ends the reply before one.
    let stop = whole
        .split_whitespace()
        .nth(3)
        .unwrap_or("river")
        .to_string();
    let cut = client
        .generate(ask("openai-responses/gpt-5-mini")?.stop(stop.clone()))
        .await?;
    assert!(!cut.text.contains(&stop));
    println!(
        "stopped before {stop:?}: {} ({:?})",
        cut.text, cut.finish_reason
    );
    Ok(())
}
