//! The official `openai` and `anthropic` Python clients talk to the mock and parse
//! every response, errors included: the mock speaks the real wire formats.
//!
//! Needs a Python with both packages: `STEER_PYTHON`, else `target/py-venv/bin/python`
//! (`bash .ci/test` creates it).
#![cfg(feature = "mock")]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::expected_text;
use steer_llm::mock::MockServer;
use steer_llm::ChatRequest;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("STEER_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the openai and anthropic packages: run `bash .ci/test` (it creates \
         target/py-venv) or set STEER_PYTHON"
    );
    venv
}

#[test]
fn the_official_python_clients_parse_everything_the_mock_sends() {
    let mock = MockServer::builder().start_background().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/check.py");
    let output = Command::new(python())
        .arg(script)
        .env("STEER_MOCK_URL", mock.base_url())
        .output()
        .expect("run python");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python failed:\n{stderr}");
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    for (model, system) in [
        ("openai/gpt-4o-mini", true),
        ("xai/grok-3-mini", true),
        ("anthropic/claude-3-5-haiku-latest", true),
    ] {
        let mut req = ChatRequest::new(model).unwrap();
        if system {
            req = req.system("You are terse.");
        }
        req = req.user("Tell me about rivers.");
        if model.starts_with("anthropic") {
            req = req.max_tokens(1024);
        }
        let expected = expected_text(&req, None);
        let got = &out[req.model.model()];
        assert_eq!(got["text"], expected.as_str(), "{model}");
        assert_eq!(got["stream_text"], expected.as_str(), "{model}");
        assert!(got["stream_usage"].as_u64().unwrap() > 0);
        assert!(got["request_id"].as_str().unwrap().starts_with("req_"));
    }
    assert_eq!(out["openai_error"]["status"], 429);
    assert!(out["openai_in_band"]
        .as_str()
        .unwrap()
        .contains("The server had an error"));
    assert_eq!(out["anthropic_error"]["type"], "overloaded_error");
    assert_eq!(out["anthropic_in_band"], "overloaded_error");
    // Tool calls and structured output, as the official clients parsed them: the
    // arguments and the JSON satisfy the schema the script sent.
    for key in [
        "gpt-4o-mini_tools",
        "grok-3-mini_tools",
        "anthropic_tools",
        "responses_tools",
    ] {
        for field in ["arguments", "structured"] {
            let v = &out[key][field];
            assert!(v["city"].is_string(), "{key} {field}: {v}");
            assert!(
                (1..=7).contains(&v["days"].as_i64().unwrap_or(0)),
                "{key} {field}: {v}"
            );
        }
    }
    // The Responses API: the text is the mock's reply to the same conversation,
    // streamed and not; its in-band error is the rate limit's code.
    let req = ChatRequest::new("openai-responses/gpt-5-mini")
        .unwrap()
        .system("You are terse.")
        .user("Tell me about rivers.");
    let expected = expected_text(&req, None);
    assert_eq!(out["responses"]["text"], expected.as_str());
    assert_eq!(out["responses"]["stream_text"], expected.as_str());
    assert!(out["responses"]["stream_usage"].as_u64().unwrap() > 0);
    assert!(out["responses"]["request_id"]
        .as_str()
        .unwrap()
        .starts_with("req_"));
    assert_eq!(out["responses_in_band"]["code"], "rate_limit_exceeded");
    // Background mode: the text before the break and after the resume is the
    // whole reply, and its usage the fault-free stream's.
    let bg = &out["responses_background"];
    assert_eq!(bg["text"], expected.as_str());
    assert_eq!(bg["output_tokens"], out["responses"]["stream_usage"]);
    // Every request of the script reached the mock: 2 models x 2 + 2 + 2 + 2 errors,
    // then 2 models x 4 tool requests and 4 Anthropic ones, then 7 of the
    // Responses API and 5 of its background mode (a broken stream, its resume,
    // an unknown one, another broken stream and its cancel).
    // Reasoning: the thinking the streamed and the whole reply carried is the
    // mock's, its signature checked when the client sent it back, a changed
    // block refused with Anthropic's words; encrypted reasoning the same.
    let r = &out["reasoning"];
    assert!(r["thinking"]
        .as_str()
        .unwrap()
        .starts_with("The user asks: Tell me"));
    assert!(r["signature"].as_str().unwrap().starts_with("EqMock"));
    assert!(r["refused"]
        .as_str()
        .unwrap()
        .ends_with("Invalid signature in thinking block"));
    assert!(r["encrypted"].as_str().unwrap().starts_with("gAAAA"));
    let log = mock.requests();
    assert_eq!(log.len(), 40);
    let paths: Vec<&str> = log[29..].iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths[0], "/v1/responses");
    assert!(paths[1].starts_with("/v1/responses/resp_") && paths[2].ends_with('x'));
    assert!(paths[4].ends_with("/cancel"), "{paths:?}");
    assert_eq!(log[30].body["starting_after"], bg["after"]);
}
