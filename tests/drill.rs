//! `steer drill` as a library: each scenario against the built-in
//! configuration (and a file's), over real HTTP to the mocks, reports what
//! the faults cost and that no reply lost or repeated a character.
#![cfg(feature = "mock")]

use std::time::Duration;

use steer_llm::config::Config;
use steer_llm::drill::{Drill, Scenario};

fn quick(drill: Drill) -> Drill {
    drill
        .requests(48)
        .concurrency(8)
        .spread(Duration::from_millis(600))
        .seed(7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_loses_no_character_and_says_what_the_faults_cost() {
    let report = quick(Drill::built_in().unwrap())
        .run(&Scenario::ALL)
        .await
        .unwrap();
    assert_eq!(report.scenarios.len(), Scenario::ALL.len());
    assert!(!report.interrupted);
    for s in &report.scenarios {
        if s.scenario == Scenario::RedisGone {
            // The built-in configuration shares nothing: nothing to drill.
            let why = s.skipped.as_deref().unwrap_or_default();
            assert!(why.contains("[shared]"), "{s}");
            assert_eq!(s.requests, 0);
            continue;
        }
        assert!(s.skipped.is_none(), "{s}");
        assert_eq!(s.requests, 48, "{}", s.scenario);
        assert_eq!(
            s.text.chars_lost + s.text.chars_repeated,
            0,
            "{}: {s}",
            s.scenario
        );
        assert_eq!(
            s.with_steer.succeeded + s.with_steer.failures(),
            s.requests,
            "{}: every request ends once",
            s.scenario
        );
        assert_eq!(
            s.without_steer.succeeded + s.without_steer.failures(),
            s.requests
        );
        assert!(
            s.with_steer.succeeded >= s.without_steer.succeeded,
            "{}: steer never does worse than one bare attempt: {s}",
            s.scenario
        );
        assert!(
            s.server_requests >= s.requests - s.with_steer.failures(),
            "{}",
            s.scenario
        );
    }
    let by = |sc: Scenario| report.scenarios.iter().find(|s| s.scenario == sc).unwrap();
    // An outage of the first target: failed over, nothing lost, and the
    // bare attempts would have failed.
    let outage = by(Scenario::Outage);
    assert_eq!(outage.with_steer.succeeded, 48, "{outage}");
    assert!(outage.without_steer.failures() > 0, "{outage}");
    assert!(outage.extra.failovers > 0, "{outage}");
    assert!(
        outage
            .breaker
            .iter()
            .any(|t| t.to == steer_llm::BreakerState::Open),
        "the first target's breaker opened: {outage}"
    );
    // Resets mid-stream: resumed or failed over, with the exact seam.
    let resets = by(Scenario::StreamResets);
    assert_eq!(resets.with_steer.succeeded, 48, "{resets}");
    assert!(
        resets.extra.resumptions + resets.extra.failovers > 0,
        "{resets}"
    );
    // A slow tail is latency, not failure.
    let tail = by(Scenario::SlowTail);
    assert!(tail.latency_ms.max >= 1000, "{tail}");
    // The JSON report carries its schema.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["scenarios"][0]["scenario"], "outage");
    assert!(json["scenarios"][0]["text"]["chars_lost"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_of_a_files_model_faults_that_deployment_alone() {
    let config = Config::from_toml(
        r#"
[deployments.only]
kind = "openai"

[retry]
base = "5ms"
max_delay = "20ms"
"#,
    )
    .unwrap();
    let drill = quick(Drill::of(config, "test").unwrap())
        .target("only/gpt-4o-mini")
        .unwrap();
    let report = drill.run(&[Scenario::RateLimitOverCap]).await.unwrap();
    let s = &report.scenarios[0];
    assert_eq!(report.target, "only/gpt-4o-mini");
    // One deployment and a wait far above the cap: not obeyed, not failed
    // over (there is nowhere to go): reported as the failure it is, fast.
    assert!(s.with_steer.failed.contains_key("rate_limited"), "{s}");
    assert!(s.latency_ms.max < 5_000, "{s}");
    assert_eq!(s.text.chars_lost + s.text.chars_repeated, 0, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_the_configuration_lacks_or_no_target_at_all_is_a_clear_error() {
    let err = Drill::built_in().unwrap().target("group/nope").unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    // A file with deployments and no group: the drill does not guess a model.
    let config = Config::from_toml("[deployments.only]\nkind = \"openai\"\n").unwrap();
    let err = Drill::of(config, "test")
        .unwrap()
        .run(&[Scenario::Outage])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--model"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_drill_reports_what_ran() {
    let drill = quick(Drill::built_in().unwrap());
    drill
        .stop_flag()
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let report = drill.run(&Scenario::ALL).await.unwrap();
    assert!(report.interrupted);
    assert!(report.scenarios.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_drill_strikes_the_real_endpoint_through_its_proxy() {
    // Two "real" endpoints (mocks on 127.0.0.1 standing in for providers),
    // reached by their base URLs with keys from the environment.
    let (up, other) = (
        steer_llm::mock::MockServer::builder()
            .start_background()
            .unwrap(),
        steer_llm::mock::MockServer::builder()
            .start_background()
            .unwrap(),
    );
    std::env::set_var("STEER_DRILL_TEST_KEY", steer_llm::mock::MOCK_API_KEY);
    let config = Config::from_toml(&format!(
        r#"
[deployments.up]
kind = "openai"
base_url = "{}"
api_key_env = "STEER_DRILL_TEST_KEY"

[deployments.other]
kind = "openai"
base_url = "{}"
api_key_env = "STEER_DRILL_TEST_KEY"

[groups.pair]
targets = ["up/gpt-4o-mini", "other/gpt-4o-mini"]

[retry]
base = "5ms"
max_delay = "20ms"

[breaker]
open_for = "200ms"
"#,
        up.openai_base_url(),
        other.openai_base_url()
    ))
    .unwrap();
    let drill = quick(Drill::of(config, "test").unwrap()).live(1.0).unwrap();
    let report = drill
        .run(&[Scenario::Outage, Scenario::StreamResets])
        .await
        .unwrap();
    for s in &report.scenarios {
        assert!(!s.text.checked, "live: no fault-free text");
        assert_eq!(s.with_steer.succeeded, 48, "{s}");
        assert!(s.without_steer.failures() > 0, "the proxy struck: {s}");
    }
    // The outage's 503s came from the proxy: the other target took the
    // requests the first could not answer.
    let outage = &report.scenarios[0];
    assert!(outage.extra.failovers > 0, "{outage}");
    assert!(other.request_count() > 0);
    // Every request asked for at most the live limit.
    let asked: Vec<u64> = up
        .requests()
        .iter()
        .filter_map(|r| r.body.get("max_tokens").and_then(|v| v.as_u64()))
        .collect();
    assert!(!asked.is_empty());
    assert!(asked
        .iter()
        .all(|m| *m <= u64::from(steer_llm::drill::LIVE_MAX_TOKENS)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_drill_is_capped() {
    let drill = Drill::built_in().unwrap();
    assert!(drill.clone().live(0.0).is_err(), "no spend cap");
    assert!(drill.clone().live(f64::NAN).is_err());
    assert!(drill.clone().live(-1.0).is_err());
    // Too many requests, whichever was set first (refused before anything runs).
    let too_many = drill.live(0.5).unwrap().requests(10_000);
    let err = too_many.run(&[Scenario::Outage]).await.unwrap_err();
    assert!(err.to_string().contains("at most 500"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_out_of_range_are_refused_before_anything_runs() {
    let base = || Drill::built_in().unwrap();
    for (drill, what) in [
        (base().requests(0), "--requests"),
        (base().concurrency(0), "--concurrency"),
        (base().stream_share(1.5), "--stream-share"),
        (base().stream_share(f64::NAN), "--stream-share"),
        (base().stream_share(-0.1), "--stream-share"),
        (base().spread(Duration::MAX), "--duration"),
    ] {
        let err = drill.run(&[Scenario::Outage]).await.unwrap_err();
        assert!(err.to_string().contains(what), "{what}: {err}");
    }
}
