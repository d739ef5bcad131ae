//! Argument parsing and the two commands.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use futures::StreamExt;
use steer_llm::mock::{Behaviour, FaultPlan, MockServer};
use steer_llm::{ChatRequest, Client, ModelId, Providers, RetryPolicy, StreamEvent};

/// steer: LLM calls that survive rate limits, overloads and broken streams.
#[derive(Parser, Debug)]
#[command(name = "steer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the mock provider (OpenAI, Anthropic and xAI wire formats) until Ctrl-C.
    Mock {
        /// Port on 127.0.0.1 (default: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Fault plan for every request without its own, e.g. `mix?seed=1&server_error=20`.
        #[arg(long, value_name = "SPEC")]
        faults: Option<FaultPlan>,
        /// Fixed reply length in words (default: 12 to 48, by conversation).
        #[arg(long)]
        words: Option<usize>,
        /// Keep the latest N requests, served as JSON at `GET /mock/requests`
        /// (default: none are kept).
        #[arg(long, value_name = "N", default_value_t = 0)]
        record: usize,
        /// How it answers beyond the wire format: `standard` (as the APIs
        /// document), `split_calls` (FakeAI's tool-call chunks), `char_chunks`
        /// (mockllm's one character a chunk), `gateway` (LiteLLM's rewrites),
        /// `lingering` (a stream's body left open after its terminal event).
        /// A request may pick another with the `x-mock-behaviour` header.
        #[arg(long, value_name = "NAME", default_value = "standard")]
        behaviour: Behaviour,
    },
    /// Send one request. Uses the real provider when its key (or base URL) is set,
    /// otherwise the embedded mock provider.
    Chat {
        /// `provider/model`, e.g. `openai/gpt-4o-mini`.
        model: String,
        /// The user message.
        prompt: String,
        /// Stream the reply as it is generated.
        #[arg(long)]
        stream: bool,
        /// A system message.
        #[arg(long)]
        system: Option<String>,
        /// Token limit.
        #[arg(long)]
        max_tokens: Option<u32>,
        /// With the embedded mock: inject this fault into the first attempt, e.g.
        /// `overloaded` (retried) or `insufficient_quota` (not retried).
        #[arg(long, value_name = "SPEC")]
        mock_fault: Option<FaultPlan>,
        /// Attempts in all, retries included (default 3).
        #[arg(long, default_value_t = 3)]
        max_attempts: u32,
        /// A TOML file of deployments, model groups, retry and breaker settings;
        /// name a group as the model: `group/<name>`.
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
    /// Replay real incidents (outages, 429 storms, broken and trickling
    /// streams, ...) against your configuration on the embedded mock, and
    /// report what a user would lose. Exits 1 if any reply lost or repeated
    /// a character.
    Drill(crate::drill::DrillArgs),
}

/// Runs the CLI and maps any failure to one line on stderr and exit code 1 (2 for usage).
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            eprintln!("steer: {}", one_line_usage_error(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("steer: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Drill(args) => crate::drill::run(args).await,
            Command::Mock {
                port,
                faults,
                words,
                record,
                behaviour,
            } => mock(port, faults, words, record, behaviour).await,
            Command::Chat {
                model,
                prompt,
                stream,
                system,
                max_tokens,
                mock_fault,
                max_attempts,
                config,
            } => {
                let opts = ChatOptions {
                    stream,
                    system,
                    max_tokens,
                    mock_fault,
                    max_attempts,
                    config,
                };
                chat(model, prompt, opts).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("steer: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Folds clap's multi-line message into one line: the error and what it names.
fn one_line_usage_error(rendered: &str) -> String {
    let mut parts = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        parts.push(line);
    }
    format!("{} (see `steer --help`)", parts.join(" "))
}

async fn mock(
    port: u16,
    faults: Option<FaultPlan>,
    words: Option<usize>,
    record: usize,
    behaviour: Behaviour,
) -> Result<(), String> {
    let mut builder = MockServer::builder()
        .port(port)
        .request_log(record)
        .behaviour(behaviour);
    if let Some(plan) = faults {
        builder = builder.default_fault(plan);
    }
    if let Some(w) = words {
        builder = builder.reply_words(w);
    }
    let server = builder
        .start()
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "steer mock provider listening on {}",
        server.base_url()
    );
    let _ = writeln!(out, "  OPENAI_BASE_URL={}", server.openai_base_url());
    let _ = writeln!(out, "  ANTHROPIC_BASE_URL={}", server.base_url());
    let _ = writeln!(out, "  XAI_BASE_URL={}", server.openai_base_url());
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    let _ = out.flush();
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    eprintln!(
        "steer mock stopped after {} requests",
        server.request_count()
    );
    Ok(())
}

/// The environment variables that select the real provider.
fn env_vars(provider: &str) -> Option<(&'static str, &'static str)> {
    match provider {
        "openai" => Some(("OPENAI_API_KEY", "OPENAI_BASE_URL")),
        "anthropic" => Some(("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")),
        "xai" => Some(("XAI_API_KEY", "XAI_BASE_URL")),
        _ => None,
    }
}

fn is_set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

struct ChatOptions {
    stream: bool,
    system: Option<String>,
    max_tokens: Option<u32>,
    mock_fault: Option<FaultPlan>,
    max_attempts: u32,
    config: Option<std::path::PathBuf>,
}

async fn chat(model: String, prompt: String, opts: ChatOptions) -> Result<(), String> {
    let ChatOptions {
        stream,
        system,
        max_tokens,
        mock_fault,
        max_attempts,
        config,
    } = opts;
    let model: ModelId = model.parse().map_err(|e| format!("{e}"))?;
    let config = match &config {
        Some(path) => Some(steer_llm::config::Config::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let configured = config.as_ref().is_some_and(|c| {
        c.deployments.contains_key(model.provider())
            || (model.provider() == "group" && c.groups.contains_key(model.model()))
    });
    // A deployment or a group of the file: real when any provider key is set.
    let (key_var, base_var) = match env_vars(model.provider()) {
        Some(vars) => vars,
        None if configured => ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"),
        None => {
            return Err(format!(
                "unknown provider {:?}; known: anthropic, openai, xai{}",
                model.provider(),
                if config.is_some() {
                    ", and the file's deployments and group/<name>"
                } else {
                    ""
                }
            ))
        }
    };
    let real = is_set(key_var) || is_set(base_var) || (configured && is_set("XAI_API_KEY"));
    let mut _mock = None; // keeps the embedded mock alive for the whole call
    let providers = if real {
        if mock_fault.is_some() {
            return Err("--mock-fault only applies to the embedded mock provider".into());
        }
        let target = if is_set(base_var) {
            std::env::var(base_var).unwrap_or_default()
        } else {
            "the public API".to_string()
        };
        eprintln!(
            "steer: using the real {} provider ({target})",
            model.provider()
        );
        Providers::from_env().map_err(|e| e.to_string())?
    } else {
        let server = MockServer::builder()
            .start_background()
            .map_err(|e| format!("cannot start the embedded mock provider: {e}"))?;
        server.push_faults(mock_fault);
        eprintln!(
            "steer: {key_var} is not set; using the embedded mock provider at {}",
            server.base_url()
        );
        let providers = server.providers().map_err(|e| e.to_string())?;
        _mock = Some(server);
        providers
    };
    let providers = match &config {
        Some(c) => c
            .deployments(providers, |_, kind| {
                let mock = _mock.as_ref()?;
                let url = kind.mock_base_url(mock);
                Some((url, steer_llm::mock::MOCK_API_KEY.to_string()))
            })
            .map_err(|e| e.to_string())?,
        None => providers,
    };
    let mut req = ChatRequest::for_model(model);
    if let Some(s) = system {
        req = req.system(s);
    }
    req = req.user(prompt);
    if let Some(n) = max_tokens {
        req = req.max_tokens(n);
    }
    // Through the reliability runtime: breaker, retries, supervision, resumption.
    let mut builder = Client::builder()
        .providers(providers)
        .retry(RetryPolicy::default().max_attempts(max_attempts))
        .arbiters(1);
    if let Some(c) = &config {
        builder = c.apply(builder).map_err(|e| e.to_string())?;
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    if stream {
        let mut events = client.stream(req).await.map_err(|e| e.to_string())?;
        let mut out = std::io::stdout();
        while let Some(event) = events.next().await {
            match event.map_err(|e| e.to_string())? {
                StreamEvent::TextDelta { text, .. } => {
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                }
                StreamEvent::Resumed {
                    attempt, offset, ..
                } => {
                    tracing::info!(attempt, offset, "stream resumed");
                    eprint!("\n[steer: stream broke; attempt {attempt} resumes at character {offset}]\n");
                }
                StreamEvent::Restarted { attempt } => {
                    eprint!("\n[steer: stream restarted, attempt {attempt}]\n");
                }
                StreamEvent::Complete {
                    finish_reason,
                    usage,
                } => {
                    let _ = writeln!(out);
                    let usage = usage
                        .map(|u| {
                            format!(
                                "{} prompt + {} completion tokens",
                                u.prompt_tokens, u.completion_tokens
                            )
                        })
                        .unwrap_or_else(|| "usage not reported".into());
                    eprintln!("steer: finished ({finish_reason:?}), {usage}");
                }
                _ => {}
            }
        }
    } else {
        let resp = client.generate(req).await.map_err(|e| e.to_string())?;
        let metrics = client.metrics().await.map_err(|e| e.to_string())?;
        let retries = metrics
            .provider(&resp.provider)
            .map(|p| p.metrics.retries)
            .unwrap_or(0);
        println!("{}", resp.text);
        if retries > 0 {
            eprintln!(
                "steer: succeeded after {retries} retr{}",
                if retries == 1 { "y" } else { "ies" }
            );
        }
        eprintln!(
            "steer: finished ({:?}), {} prompt + {} completion tokens, provider request {}",
            resp.finish_reason,
            resp.usage.prompt_tokens,
            resp.usage.completion_tokens,
            resp.provider_request_id.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}
