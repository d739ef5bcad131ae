//! steer against LLM servers other people wrote, from the Python package
//! registry, each started on 127.0.0.1: `llmock` (OpenAI and Anthropic wire
//! formats, scripted replies and stream faults) and `fakeai` (OpenAI-compatible,
//! a streamed tool call's id, name and arguments in separate chunks). Plain,
//! streamed and tool replies, and resumption under the servers' own faults:
//! neither server continues a prefill, so this is where "exactly once" meets a
//! world steer did not write.
//!
//! Needs the servers in the Python environment of `STEER_PYTHON`, else
//! `target/py-venv` (`bash .ci/test` installs them, pinned, from
//! tests/interop/requirements.txt).
#![cfg(feature = "interop")]

mod common;

use std::io::BufRead;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use steer_llm::{
    Anthropic, ChatRequest, Client, FinishReason, GenerateOptions, OpenAiCompatible, Providers,
    StreamEvent, Tool, ToolCall,
};

/// The reply llmock is scripted to give.
const REPLY: &str = "One two three four five six seven eight nine ten eleven twelve.";

/// A server of another's, started for a test and stopped with it.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv_bin(name: &str) -> PathBuf {
    let python = std::env::var("STEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python")
        });
    let bin = python.parent().expect("the venv's bin folder").join(name);
    assert!(
        bin.exists(),
        "no {name} in {}: run `bash .ci/test` (it installs tests/interop/requirements.txt)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Server {
    /// Starts `name` with `args` (`{port}` stands for a free port) and waits
    /// for the line uvicorn writes once it listens: no polling, no sleep.
    fn start(name: &str, args: &[&str]) -> Server {
        let port = free_port();
        let port_text = port.to_string();
        let args: Vec<&str> = args
            .iter()
            .map(|a| {
                if *a == "{port}" {
                    port_text.as_str()
                } else {
                    a
                }
            })
            .collect();
        let mut child = Command::new(venv_bin(name))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stderr = child.stderr.take().expect("its stderr");
        let (lines, ready) = std::sync::mpsc::channel();
        // Reads the server's log to its end (so that the pipe never fills),
        // passing each line on while anyone listens.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let server = Server { child, port };
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match ready.recv_timeout(left) {
                Ok(line) if line.contains("Uvicorn running on") => return server,
                Ok(_) => {}
                Err(e) => panic!("{name} did not say it listens within 60 s: {e}"),
            }
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A plain HTTP client for the test's own calls (scenarios).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client")
}

/// A client of one server under both of its wire formats' names: retries at
/// once (millisecond backoffs), its breaker out of the way of the faults.
fn client(openai_base: &str, anthropic_base: Option<&str>) -> Client {
    let mut providers = Providers::new();
    providers.register(std::sync::Arc::new(
        OpenAiCompatible::custom("openai", openai_base)
            .api_key("sk-interop")
            .build()
            .unwrap(),
    ));
    if let Some(base) = anthropic_base {
        providers.register(std::sync::Arc::new(
            Anthropic::builder()
                .base_url(base)
                .api_key("sk-interop")
                .build()
                .unwrap(),
        ));
    }
    common::fault_tolerant_client_of(providers, Duration::from_secs(2))
}

/// What a stream delivered: its text, its seams, its calls, how it finished.
#[derive(Debug, Default)]
struct Seen {
    text: String,
    resumed: usize,
    restarted: usize,
    starts: Vec<(String, String)>,
    calls: Vec<ToolCall>,
    finish: Option<FinishReason>,
}

async fn read(client: &Client, req: ChatRequest) -> Seen {
    let mut stream = client.stream(req).await.unwrap();
    let mut seen = Seen::default();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("no hang")
    {
        match event.unwrap_or_else(|e| panic!("stream failed: {e} (so far {seen:?})")) {
            StreamEvent::TextDelta { text, offset } => {
                assert_eq!(offset, seen.text.chars().count(), "offsets follow the text");
                seen.text.push_str(&text);
            }
            StreamEvent::Resumed { .. } => seen.resumed += 1,
            StreamEvent::Restarted { .. } => {
                seen.restarted += 1;
                seen.text.clear();
            }
            StreamEvent::ToolCallStart { id, name, .. } => seen.starts.push((id, name)),
            StreamEvent::ToolCall { call, .. } => seen.calls.push(call),
            StreamEvent::Complete { finish_reason, .. } => seen.finish = Some(finish_reason),
            _ => {}
        }
    }
    seen
}

fn weather_tool() -> Tool {
    Tool::new(
        "get_weather",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

/// llmock's scenario queue: replaced for each case.
async fn scenario(server: &Server, behaviors: serde_json::Value) {
    let http = http();
    let url = format!("{}/_llmock/scenario", server.url());
    http.delete(&url).send().await.unwrap();
    let resp = http
        .post(&url)
        .json(&json!({ "behaviors": behaviors }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "scenario refused: {resp:?}");
}

const MODELS: [&str; 2] = ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"];

#[test]
fn llmock_plain_streamed_tools_and_resumption_in_both_wire_formats() {
    let server = Server::start(
        "llmock",
        &[
            "serve",
            "-h",
            "127.0.0.1",
            "-p",
            "{port}",
            "--log-level",
            "info",
        ],
    );
    let rt = common::two_worker_runtime();
    rt.block_on(async {
        let client = client(
            &format!("{}/v1", server.url()),
            Some(&format!("{}/anthropic", server.url())),
        );
        let reply = json!([{"type": "reply", "text": REPLY, "times": null}]);
        for model in MODELS {
            let ask = || ChatRequest::new(model).unwrap().user("Hi");
            scenario(&server, reply.clone()).await;
            let whole = client.generate(ask()).await.unwrap();
            assert_eq!(whole.text, REPLY, "{model}");
            let seen = read(&client, ask()).await;
            assert_eq!(seen.text, REPLY, "{model} streamed");
            assert_eq!(seen.finish, Some(FinishReason::Stop), "{model}");

            // Resumption under each of llmock's stream faults, at several
            // points: llmock answers a prefill or a "continue" message afresh,
            // so the consumer must get every character once all the same.
            for kind in ["disconnect", "truncate", "malformed"] {
                for after in [1, 3, 6] {
                    scenario(
                        &server,
                        json!([
                            {"type": "stream_fault", "kind": kind, "after_chunks": after, "times": 1},
                            {"type": "reply", "text": REPLY, "times": null},
                        ]),
                    )
                    .await;
                    let seen = read(&client, ask()).await;
                    let what = format!("{model} {kind} after {after}");
                    assert_eq!(seen.text, REPLY, "{what}: {seen:?}");
                    assert_eq!(seen.finish, Some(FinishReason::Stop), "{what}");
                    // (A break in the opening events, before any text, is retried
                    // unseen.)
                    if after >= 6 {
                        assert!(seen.resumed + seen.restarted >= 1, "{what}: no seam");
                    }
                }
            }

            // A continuation that starts the reply again and then says
            // something else cannot be spliced: never appended. By default the
            // stream restarts (`Restarted`, then the reply from its start);
            // asked to, it fails with the partial text instead.
            let other = "One two three four, and then something else entirely.";
            let diverging = json!([
                {"type": "stream_fault", "kind": "disconnect", "after_chunks": 9, "times": 1},
                {"type": "reply", "text": REPLY, "times": 1},
                {"type": "reply", "text": other, "times": null},
            ]);
            scenario(&server, diverging.clone()).await;
            let seen = read(&client, ask()).await;
            assert_eq!(seen.restarted, 1, "{model}: {seen:?}");
            assert_eq!(seen.text, other, "{model}: the fresh reply whole, after Restarted");
            scenario(&server, diverging).await;
            let options =
                GenerateOptions::default().on_divergence(steer_llm::runtime::Divergence::Fail);
            let mut stream = client.stream_with(ask(), options).await.unwrap();
            let (mut text, mut failure) = (String::new(), None);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(StreamEvent::TextDelta { text: t, .. }) => text.push_str(&t),
                    Ok(StreamEvent::Restarted { .. }) => panic!("{model}: restarted"),
                    Ok(_) => {}
                    Err(e) => failure = Some(e),
                }
            }
            let failure = failure.expect("the stream fails");
            assert_eq!(
                failure.failure().map(|f| f.category),
                Some(steer_llm::Category::StreamInterrupted),
                "{model}: {failure}"
            );
            assert_eq!(failure.partial_text(), Some(text.as_str()), "{model}");
            assert!(REPLY.starts_with(&text) && !text.is_empty(), "{model}: {text:?}");

            // A tool call, whole and streamed: its id is never empty.
            let calls = json!([{"type": "reply", "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Paris"}}
            ], "times": null}]);
            scenario(&server, calls).await;
            let with_tool = || ask().tool(weather_tool());
            let whole = client.generate(with_tool()).await.unwrap();
            assert_eq!(whole.tool_calls.len(), 1, "{model}: {whole:?}");
            let call = &whole.tool_calls[0];
            assert!(!call.id.is_empty(), "{model}");
            assert_eq!(
                (call.name.as_str(), &call.arguments),
                ("get_weather", &json!({"city": "Paris"}))
            );
            let seen = read(&client, with_tool()).await;
            assert_eq!(seen.calls.len(), 1, "{model}: {seen:?}");
            assert!(!seen.calls[0].id.is_empty(), "{model}");
            assert_eq!(seen.starts, [(seen.calls[0].id.clone(), "get_weather".into())]);
            assert_eq!(seen.calls[0].arguments, json!({"city": "Paris"}));
        }
    });
}

#[test]
fn fakeai_plain_streamed_and_a_tool_call_whose_id_and_name_come_apart() {
    let server = Server::start(
        "fakeai",
        &[
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--response-delay",
            "0",
            "--no-random-delay",
        ],
    );
    let rt = common::two_worker_runtime();
    rt.block_on(async {
        let client = client(&format!("{}/v1", server.url()), None);
        let ask = || {
            ChatRequest::new("openai/gpt-4o-mini")
                .unwrap()
                .user("Tell me about rivers.")
        };
        let whole = client.generate(ask()).await.unwrap();
        assert!(!whole.text.is_empty());
        let seen = read(&client, ask()).await;
        assert!(!seen.text.is_empty(), "{seen:?}");
        assert!(seen.finish.is_some());

        // FakeAI streams a call's id with `"function": null`, then its name
        // with `"id": null`, then its arguments: the call keeps its id.
        let with_tool = || {
            ChatRequest::new("openai/gpt-4o-mini")
                .unwrap()
                .user("What is the weather in Oslo?")
                .tool(weather_tool())
                .tool_choice(steer_llm::ToolChoice::Required)
        };
        let seen = read(&client, with_tool()).await;
        assert_eq!(seen.calls.len(), 1, "{seen:?}");
        let call = &seen.calls[0];
        assert!(
            call.id.starts_with("call_") && call.id.len() > 5,
            "{call:?}"
        );
        assert_eq!(seen.starts, [(call.id.clone(), "get_weather".to_string())]);
        assert!(call.arguments.get("city").is_some(), "{call:?}");
        let whole = client.generate(with_tool()).await.unwrap();
        assert!(
            whole.tool_calls.iter().all(|c| !c.id.is_empty()),
            "{whole:?}"
        );
    });
}
