//! The `steer` binary: its main job against the embedded mock, and one-line errors.
#![cfg(feature = "cli")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn steer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_steer"))
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("XAI_API_KEY")
        .env_remove("XAI_BASE_URL")
        .output()
        .expect("run steer")
}

/// Sends `child` a Ctrl-C (SIGINT).
fn interrupt(child: &std::process::Child) {
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn chat_uses_the_embedded_mock_without_a_key_and_says_so() {
    // The last two live on the Responses API: codex from the start, o3-pro
    // after OpenAI's 400 on Chat Completions.
    for model in [
        "openai/gpt-4o-mini",
        "anthropic/claude-3-5-haiku-latest",
        "xai/grok-3-mini",
        "openai/gpt-5-codex",
        "openai/o3-pro",
    ] {
        let out = steer(&["chat", model, "Tell me about rivers."]);
        assert!(out.status.success(), "{model}: {}", stderr(&out));
        assert!(stderr(&out).contains("using the embedded mock provider"));
        assert!(!out.stdout.is_empty());
    }
    let out = steer(&[
        "chat",
        "openai/gpt-4o-mini",
        "hi",
        "--stream",
        "--mock-fault",
        "reset?after=3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("resumes at character"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn errors_are_one_readable_line_with_a_non_zero_exit() {
    let cases: [(&[&str], i32, &str); 3] = [
        (
            &["chat", "nope/model", "hi"],
            1,
            "unknown provider \"nope\"",
        ),
        (&["chat", "openai/gpt-4o-mini"], 2, "PROMPT"),
        (&["chat", "gpt-4o-mini", "hi"], 1, "invalid model id"),
    ];
    for (args, code, needle) in cases {
        let out = steer(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // An unreachable base URL (a port nothing listens on).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_steer"))
        .args(["chat", "openai/gpt-4o-mini", "hi", "--max-attempts", "1"])
        .env("OPENAI_API_KEY", "sk-test-not-shown")
        .env("OPENAI_BASE_URL", format!("http://127.0.0.1:{port}/v1"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("steer: error:") && err.contains("network"),
        "{err}"
    );
    assert!(!err.contains("sk-test-not-shown"), "the key leaked: {err}");
}

#[test]
fn mock_prints_its_base_url_and_stops_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_steer"))
        .args(["mock", "--faults", "overloaded"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.split_whitespace().last().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    // It answers with the default fault.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth("k")
            .json(&serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 503);
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "a clean stop: {:?}", out.status);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped after 1 requests"));
}

#[test]
fn hostile_waits_and_token_limits_from_the_issue_reproductions_hold() {
    // A wait no provider means: one readable error, no panic, no 24-hour pause.
    for wait in ["1e19", "10000000000000000000", "86400"] {
        let fault = format!("rate_limit?retry_after={wait}");
        let out = steer(&["chat", "openai/gpt-4o-mini", "hi", "--mock-fault", &fault]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{wait}: {err}");
        assert!(!err.contains("panicked"), "{wait}: {err}");
        assert!(err.contains("above the cap"), "{wait}: {err}");
    }
    // A stream resumed after its last allowed token adds nothing.
    let chat = [
        "chat",
        "openai/gpt-4o-mini",
        "Tell me about rivers",
        "--stream",
    ];
    let plain = steer(&[&chat[..], &["--max-tokens", "10"]].concat());
    let broken = steer(
        &[
            &chat[..],
            &["--max-tokens", "10", "--mock-fault", "reset?after=99"],
        ]
        .concat(),
    );
    assert!(
        plain.status.success() && broken.status.success(),
        "{}",
        stderr(&broken)
    );
    assert_eq!(
        String::from_utf8_lossy(&broken.stdout),
        String::from_utf8_lossy(&plain.stdout)
    );
}

#[test]
fn a_deployment_of_the_config_file_calls_the_api_it_names() {
    let dir = std::env::temp_dir().join(format!("steer-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("steer.toml");
    std::fs::write(
        &file,
        "[deployments.r]\nkind = \"openai\"\napi = \"responses\"\n\n\
         [deployments.c]\nkind = \"openai\"\napi = \"chat\"\n",
    )
    .unwrap();
    let config = file.to_string_lossy().into_owned();
    // o3-pro answers only on the Responses API: through `r` it answers, streamed;
    // through `c`, which is told to call Chat Completions alone, it is OpenAI's 400.
    let out = steer(&["chat", "r/o3-pro", "hi", "--stream", "--config", &config]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.is_empty());
    let out = steer(&["chat", "c/o3-pro", "hi", "--config", &config]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("only supported in v1/responses"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chat_reads_groups_and_deployments_from_a_config_file() {
    let dir = std::env::temp_dir().join(format!("steer-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("steer.toml");
    std::fs::write(
        &good,
        r#"
[deployments.backup]
kind = "anthropic"
api_key_env = "BACKUP_ANTHROPIC_KEY"

[groups.fast]
targets = ["openai/gpt-4o-mini", "backup/claude-3-5-haiku-latest"]

[breaker]
failure_threshold = 5
open_for = "30s"
"#,
    )
    .unwrap();
    // The first target is overloaded and has one attempt: the group's next target,
    // a deployment of the file, answers.
    let config = good.to_string_lossy().into_owned();
    let out = steer(&[
        "chat",
        "group/fast",
        "hi",
        "--config",
        &config,
        "--max-attempts",
        "1",
        "--mock-fault",
        "overloaded",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.is_empty());
    // A typo is an error naming the line and the key.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[groups.fast]\ntargets = [\"openai/gpt-4o-mini\"]\nselecton = \"weighted\"\n",
    )
    .unwrap();
    let bad = bad.to_string_lossy().into_owned();
    let out = steer(&["chat", "group/fast", "hi", "--config", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("line 3") && err.contains("selecton"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn drill_prints_a_json_report_of_the_scenarios_it_ran() {
    let out = steer(&[
        "drill",
        "--scenario",
        "outage,stream_resets",
        "--requests",
        "30",
        "--duration",
        "300ms",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["schema"], 1);
    let names: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["outage", "stream_resets"]);
    for s in report["scenarios"].as_array().unwrap() {
        assert_eq!(s["requests"], 30);
        assert_eq!(s["text"]["chars_lost"], 0);
        assert_eq!(s["text"]["chars_repeated"], 0);
    }
}

#[test]
fn drill_refuses_an_unknown_scenario_naming_the_catalogue() {
    let out = steer(&["drill", "--scenario", "meteor"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("meteor") && err.contains("outage"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn drill_prints_one_screen_per_scenario() {
    let out = steer(&[
        "drill",
        "--scenario",
        "overloaded_bursts",
        "--requests",
        "20",
        "--duration",
        "200ms",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("== overloaded_bursts"), "{text}");
    assert!(text.contains("without steer"), "{text}");
    assert!(
        text.contains("characters lost or repeated, all scenarios: 0"),
        "{text}"
    );
    assert!(text.lines().count() < 24, "{text}");
}

#[test]
fn drill_live_runs_only_named_scenarios_against_named_endpoints() {
    for args in [
        &["drill", "--live"][..],
        &[
            "drill",
            "--live",
            "--scenario",
            "all",
            "--model",
            "openai/gpt-4o-mini",
        ][..],
        &["drill", "--live", "--scenario", "outage"][..],
        &["drill", "--max-usd", "1", "--scenario", "outage"][..],
    ] {
        let out = steer(args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn drill_stops_on_ctrl_c_and_prints_what_ran() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_steer"))
        .args([
            "drill",
            "--scenario",
            "outage,stream_resets",
            "--requests",
            "400",
            "--duration",
            "20s",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Off a terminal, it says when each scenario starts.
    let mut line = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("scenario 1/2: outage"), "{line}");
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "a clean stop: {:?}", out.status);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["interrupted"], true);
    let ran = report["scenarios"].as_array().unwrap();
    assert_eq!(ran.len(), 1, "the second scenario never started");
    assert!(ran[0]["requests"].as_u64().unwrap() < 400, "stopped early");
}

#[test]
fn drill_refuses_a_duration_that_would_overflow_the_clock() {
    for d in ["18446744073709551615s", "99999999999m", "61m", "5h"] {
        let out = steer(&["drill", "--scenario", "outage", "--duration", d]);
        assert_eq!(out.status.code(), Some(2), "{d}");
        assert_eq!(stderr(&out).lines().count(), 1, "{d}");
    }
}
