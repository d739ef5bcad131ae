//! One replica of a service that shares its breakers' state through Redis: the
//! multi-process test (`tests/shared.rs`) runs three of these against one mock
//! and one `redis-server`.
//!
//! `STEER_REDIS_URL`, `STEER_MOCK_BASE` (the mock's OpenAI base URL, ending in
//! `/v1`) and `STEER_PREFIX` set it up. It prints `ready` once Redis answers, then
//! answers one line per command on stdin:
//! - `ask <provider/model>`: `ok`, or `err <kind>` (see `Error::kind`);
//! - `paused <provider/model>`: `yes` or `no`.

use std::io::BufRead;
use std::time::Duration;

use steer_llm::mock::MOCK_API_KEY;
use steer_llm::shared::SharedConfig;
use steer_llm::{ChatRequest, Client, GenerateOptions, OpenAiCompatible, Providers, RetryPolicy};

fn var(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let providers = Providers::new().with(
        OpenAiCompatible::openai()
            .base_url(var("STEER_MOCK_BASE")?)
            .api_key(MOCK_API_KEY)
            .build()?,
    );
    let client = Client::builder()
        .providers(providers)
        .retry(RetryPolicy::default().max_attempts(1))
        .shared(
            SharedConfig::redis(&var("STEER_REDIS_URL")?)
                .prefix(&var("STEER_PREFIX")?)
                .backstop(Duration::from_millis(100)),
        )
        .build()?;
    while !matches!(client.shared_status().await?, Some(s) if s.connected) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("ready");
    // Commands come from a blocking reader thread.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // A paused model fails at once rather than waiting out the pause.
    let impatient = GenerateOptions::default()
        .retry(RetryPolicy::never().max_server_wait(Duration::from_millis(1)));
    while let Some(line) = rx.recv().await {
        let answer = match line.split_once(' ') {
            Some(("ask", model)) => {
                let req = ChatRequest::new(model)?.user("Tell me about rivers.");
                match client.generate_with(req, impatient.clone()).await {
                    Ok(_) => "ok".to_string(),
                    Err(e) => format!("err {}", e.kind()),
                }
            }
            Some(("paused", model)) => {
                let paused = client
                    .breakers()
                    .status(model)
                    .await?
                    .paused_for
                    .is_some_and(|d| !d.is_zero());
                if paused { "yes" } else { "no" }.to_string()
            }
            _ => format!("unknown command {line:?}"),
        };
        println!("{answer}");
    }
    Ok(())
}
