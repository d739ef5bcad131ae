//! The shortest useful program: a reliable client, one request, one retried failure.
//!
//! `cargo run --features mock --example quickstart` — uses the real OpenAI API when `OPENAI_API_KEY`
//! is set, otherwise the embedded mock provider (which injects one overload so you
//! can see the retry).

use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::{ChatRequest, Client, Providers};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock; // keeps the embedded mock running
    let providers = if std::env::var("OPENAI_API_KEY").is_ok() {
        Providers::from_env()?
    } else {
        mock = MockServer::builder().start_background()?;
        mock.push_faults([FaultPlan::error("overloaded")]);
        println!(
            "(no OPENAI_API_KEY: using the mock provider at {})",
            mock.base_url()
        );
        mock.providers()?
    };

    let client = Client::builder().providers(providers).build()?;
    let request = ChatRequest::new("openai/gpt-4o-mini")?
        .system("You are terse.")
        .user("Name three rivers.");
    let reply = client.generate(request).await?;
    println!("{}", reply.text);

    let metrics = client.metrics().await?;
    let openai = metrics.provider("openai").map(|p| &p.metrics);
    println!(
        "attempts: {}, retries: {}",
        openai.map(|m| m.total_attempts()).unwrap_or(0),
        openai.map(|m| m.retries).unwrap_or(0)
    );
    Ok(())
}
