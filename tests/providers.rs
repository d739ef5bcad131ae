//! Every provider through the real HTTP path against the mock: success,
//! streaming, request shape, prefill continuation.
#![cfg(feature = "mock")]

mod common;

use common::{delta_text, drain, expected_text, request, MODELS};
use steer_llm::mock::{FaultPlan, MockServer, MOCK_API_KEY};
use steer_llm::{
    Anthropic, ChatRequest, Error, FinishReason, OpenAiCompatible, Prefill, Provider,
    ProviderEvent, Providers,
};

#[tokio::test]
async fn generate_returns_the_mock_reply_for_every_provider() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        let req = request(model).request_id(format!("gen-{model}"));
        let resp = providers.generate(&req).await.unwrap();
        assert_eq!(resp.text, expected_text(&req, None), "{model}");
        assert_eq!(resp.finish_reason, FinishReason::Stop);
        assert_eq!(resp.provider, req.model.provider());
        assert_eq!(resp.model, req.model.model());
        assert_eq!(resp.request_id, req.request_id);
        assert!(resp.usage.completion_tokens > 0);
        assert_eq!(
            resp.usage.total_tokens,
            resp.usage.prompt_tokens + resp.usage.completion_tokens
        );
        let provider_id = resp.provider_request_id.expect("provider request id");
        assert!(provider_id.starts_with("req_"), "{provider_id}");
    }
    assert_eq!(mock.requests().len(), MODELS.len());
}

#[tokio::test]
async fn stream_yields_start_deltas_usage_and_complete_for_every_provider() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        let req = request(model);
        let (events, err) = drain(providers.stream(&req).await.unwrap()).await;
        assert!(err.is_none(), "{model}: {err:?}");
        assert!(
            matches!(&events[0], ProviderEvent::Start { provider, request_id, provider_request_id: Some(_), .. }
                if provider == req.model.provider() && *request_id == req.request_id),
            "{model}: {:?}",
            events[0]
        );
        let text = delta_text(&events);
        assert_eq!(text, expected_text(&req, None), "{model}");
        let chunks = events
            .iter()
            .filter(|e| matches!(e, ProviderEvent::TextDelta { .. }))
            .count() as u64;
        let tokens = steer_llm::mock::text::count_tokens(req.model.model(), &text);
        assert!(chunks < tokens, "{model}: several tokens a chunk");
        match events.last() {
            Some(ProviderEvent::Complete {
                finish_reason: FinishReason::Stop,
                usage: Some(usage),
            }) => assert_eq!(usage.completion_tokens, tokens, "{model}"),
            other => panic!("{model}: last event {other:?}"),
        }
        assert!(events.iter().any(|e| matches!(e, ProviderEvent::Usage(_))));
    }
}

#[tokio::test]
async fn requests_carry_the_real_headers_and_body_of_each_api() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        let req = request(model)
            .max_tokens(7)
            .temperature(0.5)
            .stop("END")
            .request_id("shape-1");
        drain(providers.stream(&req).await.unwrap()).await;
    }
    let log = mock.requests();
    let (openai, anthropic, xai) = (&log[0], &log[1], &log[2]);
    for r in [openai, xai] {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {MOCK_API_KEY}").as_str())
        );
        assert_eq!(r.body["messages"][0]["role"], "system");
        assert_eq!(r.body["max_tokens"], 7);
        assert_eq!(r.body["stop"][0], "END");
        assert_eq!(r.body["stream"], true);
        assert_eq!(r.body["stream_options"]["include_usage"], true);
    }
    assert_eq!(xai.body["model"], "grok-3-mini");
    assert_eq!(anthropic.path, "/v1/messages");
    assert_eq!(anthropic.header("x-api-key"), Some(MOCK_API_KEY));
    assert_eq!(anthropic.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(anthropic.body["system"], "You are terse.");
    assert_eq!(anthropic.body["messages"][0]["role"], "user");
    assert_eq!(anthropic.body["stop_sequences"][0], "END");
    for r in &log {
        assert_eq!(r.header("x-client-request-id"), Some("shape-1"));
        assert!(r.is_stream());
    }
    // The recorded request's Debug never shows the key.
    assert!(!format!("{log:?}").contains(MOCK_API_KEY));
}

#[tokio::test]
async fn max_tokens_reports_length() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        let req = request(model).max_tokens(3);
        let resp = providers.generate(&req).await.unwrap();
        assert_eq!(resp.finish_reason, FinishReason::Length, "{model}");
        assert_eq!(resp.usage.completion_tokens, 3);
        assert_eq!(resp.text, expected_text(&req, None));
    }
}

#[tokio::test]
async fn a_prefill_is_continued_only_where_the_server_continues_one() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    for model in MODELS {
        let whole = providers.generate(&request(model)).await.unwrap().text;
        // Cut after the third word, trimming the trailing space (Anthropic rejects it).
        let cut: usize = whole.split_inclusive(' ').take(3).map(str::len).sum();
        let prefix = whole[..cut].trim_end();
        let req = request(model).assistant(prefix);
        let (events, err) = drain(providers.stream(&req).await.unwrap()).await;
        assert!(err.is_none(), "{model}: {err:?}");
        let got = delta_text(&events);
        if model.starts_with("anthropic/") {
            assert_eq!(format!("{prefix}{got}"), whole, "{model}: continued");
        } else {
            // OpenAI and xAI document no continuation: a finished turn,
            // answered afresh (the mock starts the reply again).
            assert_eq!(got, whole, "{model}: answered afresh");
        }
    }
    // An OpenAI-compatible server that continues a prefill when told to, as
    // DeepSeek and Mistral (`prefix: true`) or vLLM (`continue_final_message`).
    for prefill in [Prefill::PrefixFlag, Prefill::ContinueFinalMessage] {
        let server = OpenAiCompatible::custom("openai", &mock.openai_base_url())
            .api_key(MOCK_API_KEY)
            .prefill(prefill)
            .build()
            .unwrap();
        let whole = server
            .generate(&request("openai/gpt-4o-mini"))
            .await
            .unwrap()
            .text;
        let cut: usize = whole.split_inclusive(' ').take(3).map(str::len).sum();
        let prefix = whole[..cut].trim_end();
        mock.clear_requests();
        let req = request("openai/gpt-4o-mini").assistant(prefix);
        let (events, err) = drain(server.stream(&req).await.unwrap()).await;
        assert!(err.is_none(), "{prefill:?}: {err:?}");
        assert_eq!(
            format!("{prefix}{}", delta_text(&events)),
            whole,
            "{prefill:?}"
        );
        let body = &mock.requests()[0].body;
        match prefill {
            Prefill::PrefixFlag => {
                assert_eq!(body["messages"][2]["prefix"], true);
                assert!(body.get("continue_final_message").is_none());
            }
            _ => {
                assert_eq!(body["continue_final_message"], true);
                assert_eq!(body["add_generation_prompt"], false);
                assert!(body["messages"][2].get("prefix").is_none());
            }
        }
    }
}

#[tokio::test]
async fn anthropic_rejects_trailing_whitespace_and_prefill_on_4_6_models() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    let req = request("anthropic/claude-3-5-haiku-latest").assistant("Partial ");
    let Error::Provider(err) = providers.generate(&req).await.unwrap_err() else {
        panic!("expected a provider error")
    };
    assert_eq!(err.status(), Some(400));
    assert!(err
        .body_text()
        .unwrap()
        .contains("final assistant content cannot end with trailing whitespace"));

    let req = request("anthropic/claude-opus-4-6").assistant("Partial");
    let Error::Provider(err) = providers.generate(&req).await.unwrap_err() else {
        panic!("expected a provider error")
    };
    assert_eq!(err.status(), Some(400));
    let body: serde_json::Value = serde_json::from_str(&err.body_text().unwrap()).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(
        body["error"]["message"],
        "This model does not support assistant message prefill. The conversation must end with a user message."
    );
    // Without the prefill the same model answers.
    assert!(providers
        .generate(&request("anthropic/claude-opus-4-6"))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_custom_openai_compatible_provider_is_resolved_by_its_name() {
    let mock = MockServer::start().await.unwrap();
    let local = OpenAiCompatible::custom("local", &mock.openai_base_url())
        .api_key("k")
        .build()
        .unwrap();
    let providers = Providers::new().with(local);
    let req = ChatRequest::new("local/llama-3-8b").unwrap().user("hi");
    let resp = providers.generate(&req).await.unwrap();
    assert_eq!(resp.provider, "local");
    assert_eq!(resp.text, expected_text(&req, None));
    match providers
        .generate(&ChatRequest::new("openai/gpt-4o").unwrap().user("hi"))
        .await
    {
        Err(Error::UnknownProvider { name, known }) => {
            assert_eq!(name, "openai");
            assert_eq!(known, vec!["local".to_string()]);
        }
        other => panic!("expected UnknownProvider, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_key_gets_the_providers_401() {
    let mock = MockServer::start().await.unwrap();
    let no_key = Anthropic::builder()
        .base_url(mock.base_url())
        .build()
        .unwrap();
    let err = no_key
        .generate(&request("anthropic/claude-3-5-haiku-latest"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.body_text().unwrap().contains("authentication_error"));
}

#[test]
fn keys_never_show_in_debug_output() {
    let key = "sk-very-secret-1234";
    let p = OpenAiCompatible::openai().api_key(key).build().unwrap();
    let a = Anthropic::builder().api_key(key).build().unwrap();
    let builder = OpenAiCompatible::xai().api_key(key);
    let both = steer_llm::provider::OpenAiApis::new(
        p.clone(),
        steer_llm::provider::OpenAiResponses::openai()
            .api_key(key)
            .build()
            .unwrap(),
    )
    .unwrap();
    for text in [
        format!("{both:?}"),
        format!("{p:?}"),
        format!("{a:?}"),
        format!("{builder:?}"),
        format!("{:?}", Providers::new().with(p.clone())),
    ] {
        assert!(!text.contains(key), "{text}");
    }
}

#[test]
fn invalid_configuration_is_a_typed_error() {
    for (result, needle) in [
        (
            OpenAiCompatible::custom("x", "not a url").build().err(),
            "is not a URL",
        ),
        (
            OpenAiCompatible::custom("x", "ftp://host/v1").build().err(),
            "must be http or https",
        ),
        (
            OpenAiCompatible::openai().api_key("bad\nkey").build().err(),
            "characters an HTTP header cannot carry",
        ),
    ] {
        match result {
            // Typed: where it is wrong (the endpoint) and which deployment.
            Some(Error::Config(e @ steer_llm::ConfigError::Endpoint { .. })) => {
                let message = e.to_string();
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("expected a config error with {needle:?}, got {other:?}"),
        }
    }
    // A config error never echoes the key.
    let e = OpenAiCompatible::openai()
        .api_key("sk-secret\n")
        .build()
        .unwrap_err();
    assert!(!e.to_string().contains("sk-secret"));
}

#[tokio::test]
async fn the_mock_keeps_only_the_latest_requests() {
    let mock = MockServer::builder().request_log(3).start().await.unwrap();
    let providers = mock.providers().unwrap();
    for i in 0..7 {
        let req = request("openai/gpt-4o-mini").user(format!("turn {i}"));
        providers.generate(&req).await.unwrap();
    }
    let kept = mock.requests();
    assert_eq!(kept.len(), 3, "a ring of the configured size");
    assert_eq!(mock.request_count(), 7, "every request is still counted");
    let last = kept.last().unwrap().last_message().unwrap().1;
    assert_eq!(last, "turn 6");
    let listed: serde_json::Value = reqwest::get(format!("{}/mock/requests", mock.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(3));
    assert_eq!(listed[2]["last_message"]["content"], "turn 6");
    let off = MockServer::builder().request_log(0).start().await.unwrap();
    off.providers()
        .unwrap()
        .generate(&request("openai/gpt-4o-mini"))
        .await
        .unwrap();
    assert!(off.requests().is_empty());
}

#[tokio::test]
async fn a_model_that_lives_only_on_the_responses_api_is_moved_there_once_and_remembered() {
    let mock = MockServer::start().await.unwrap();
    let providers = mock.providers().unwrap();
    let paths = || -> Vec<String> { mock.requests().iter().map(|r| r.path.clone()).collect() };
    // OpenAI answers o3-pro on Chat Completions with its 400: the attempt moves.
    let req = request("openai/o3-pro");
    let reply = providers.generate(&req).await.unwrap();
    assert_eq!(reply.text, expected_text(&req, None));
    assert_eq!(paths(), ["/v1/chat/completions", "/v1/responses"]);
    // Remembered: straight to the Responses API, streamed too.
    mock.clear_requests();
    let req = request("openai/o3-pro");
    let (events, err) = drain(providers.stream(&req).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(delta_text(&events), expected_text(&req, None));
    assert_eq!(paths(), ["/v1/responses"]);
    // Codex models go there from the start; the others stay on Chat Completions.
    mock.clear_requests();
    providers
        .generate(&request("openai/gpt-5-codex"))
        .await
        .unwrap();
    providers
        .generate(&request("openai/gpt-4o-mini"))
        .await
        .unwrap();
    assert_eq!(paths(), ["/v1/responses", "/v1/chat/completions"]);
    // A server that says nothing of the kind is not moved: its 400 stays its error.
    mock.clear_requests();
    mock.push_faults([FaultPlan::error("invalid_request")]);
    let err = providers.generate(&request("openai/gpt-4o")).await;
    assert!(matches!(err, Err(Error::Provider(e)) if e.status() == Some(400)));
    assert_eq!(paths(), ["/v1/chat/completions"]);
}

#[tokio::test]
async fn azure_takes_its_key_in_api_key_at_its_v1_base_for_both_apis() {
    let mock = MockServer::start().await.unwrap();
    let base = mock.openai_base_url();
    let chat = OpenAiCompatible::azure("https://contoso.openai.azure.com")
        .base_url(base.as_str())
        .api_key(MOCK_API_KEY)
        .build()
        .unwrap();
    let responses = steer_llm::provider::OpenAiResponses::azure("https://contoso.openai.azure.com")
        .base_url(base.as_str())
        .api_key(MOCK_API_KEY)
        .build()
        .unwrap();
    let providers =
        Providers::new().with(steer_llm::provider::OpenAiApis::new(chat, responses).unwrap());
    // A deployment's name is the model; codex goes to the Responses API.
    for (model, path) in [
        ("azure/my-gpt-4o", "/v1/chat/completions"),
        ("azure/my-gpt-5-codex", "/v1/responses"),
    ] {
        mock.clear_requests();
        let req = request(model);
        let reply = providers.generate(&req).await.unwrap();
        assert_eq!(reply.text, expected_text(&req, None), "{model}");
        let log = mock.requests();
        assert_eq!(log[0].path, path, "{model}");
        let header = |name: &str| {
            log[0]
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("api-key").as_deref(), Some(MOCK_API_KEY), "{model}");
        assert_eq!(
            header("authorization"),
            None,
            "{model}: the key travels once"
        );
    }
    // Without a key header the mock refuses, as Azure does.
    let keyless = OpenAiCompatible::azure("https://contoso.openai.azure.com")
        .base_url(base.as_str())
        .build()
        .unwrap();
    let err = Providers::new()
        .with(keyless)
        .generate(&request("azure/my-gpt-4o"))
        .await;
    assert!(matches!(err, Err(Error::Provider(e)) if e.status() == Some(401)));
}
