//! Spend budgets over real HTTP against the mock: an attempt that does not fit
//! is never sent, and its request fails saying which budget and what it had;
//! budgets stop retries and hedges; a group moves past a deployment whose own
//! budget is spent.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use common::{quick_builder, within};
use steer_llm::budget::{Budget, Scope};
use steer_llm::cost::estimate;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::GenerateOptions;
use steer_llm::{Category, ChatRequest, Error};

fn ask(id: &str) -> ChatRequest {
    ChatRequest::new("anthropic/claude-3-5-haiku-latest")
        .unwrap()
        .user("tell me about rivers")
        .max_tokens(40)
        .request_id(id)
}

fn budget_error(e: &Error) -> &steer_llm::budget::Refusal {
    assert_eq!(e.kind(), "budget_exceeded", "{e}");
    e.budget_refusal().expect("the refusal is in the error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_budget_refuses_what_does_not_fit_and_says_what_was_spent() {
    let mock = MockServer::builder().start_background().unwrap();
    let limit = 300;
    let client = quick_builder(mock.providers().unwrap(), 1)
        .spend_budget(Scope::Client, Budget::tokens(limit))
        .build()
        .unwrap();
    let (mut spent, mut replies) = (0, 0);
    let mut refused = None;
    for i in 0..20 {
        match within(client.generate(ask(&format!("b{i}")))).await {
            Ok(reply) => {
                let u = reply.usage;
                spent += u.input_tokens() + u.completion_tokens;
                replies += 1;
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("the budget ran out");
    let r = budget_error(&e);
    assert_eq!((r.account.scope.as_str(), r.limit), ("client", limit));
    // What the ledger counts is what the replies spent; nothing was sent
    // for the refused request, and the spend never passed the budget.
    assert_eq!(r.spent, spent);
    assert_eq!(r.reserved, 0);
    assert!(r.asked > r.remaining(), "{r:?}");
    assert!(spent <= limit);
    assert!(replies > 0);
    assert_eq!(
        mock.requests().len(),
        replies,
        "the refused one was not sent"
    );
    assert!(e.to_string().contains("budget"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_own_budget_stops_its_retries() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = quick_builder(mock.providers().unwrap(), 5).build().unwrap();
    let req = ask("own");
    let prompt = estimate::prompt_tokens(&req);
    // Room for one attempt (its prompt and 40 outputs), not two: the cut
    // reply spent its prompt, and the retry does not fit.
    let opts = GenerateOptions::default().budget(Budget::tokens(prompt + 40 + prompt / 2));
    mock.script_key("own", [FaultPlan::reset(0)]);
    let e = within(client.generate_with(req, opts)).await.unwrap_err();
    let r = budget_error(&e);
    assert_eq!(r.account.scope, "request");
    assert_eq!(r.spent, prompt, "the cut attempt's prompt, estimated");
    assert_eq!(mock.requests().len(), 1, "the retry was never sent");
    let Error::Failed(f) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(f.failure.category, Category::BudgetExceeded);
    assert!(!f.failure.retryable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_moves_past_a_deployment_whose_budget_is_spent_and_stops_at_a_shared_one() {
    let mocks = [(); 2].map(|_| MockServer::builder().start_background().unwrap());
    let providers = steer_llm::Providers::new()
        .with(common::deployment("a", &mocks[0]))
        .with(common::deployment("b", &mocks[1]));
    let group = steer_llm::runtime::group::Group::new(["a/gpt-4o-mini", "b/gpt-4o-mini"]).unwrap();
    let client = quick_builder(providers, 1)
        .group("g", group)
        .spend_budget(Scope::Deployment("a".into()), Budget::tokens(1))
        .spend_budget(Scope::Group("g".into()), Budget::tokens(10_000))
        .build()
        .unwrap();
    let req = ChatRequest::new("group/g")
        .unwrap()
        .user("hi")
        .max_tokens(20);
    let reply = within(client.generate(req.clone())).await.unwrap();
    assert_eq!(reply.provider, "b");
    assert_eq!(reply.route[0].outcome, "budget_exceeded");
    assert_eq!(mocks[0].request_count(), 0, "nothing sent past a's budget");
    // The group's own budget holds for every target: it stops the route.
    let client = quick_builder(
        steer_llm::Providers::new()
            .with(common::deployment("a", &mocks[0]))
            .with(common::deployment("b", &mocks[1])),
        1,
    )
    .group(
        "g",
        steer_llm::runtime::group::Group::new(["a/gpt-4o-mini", "b/gpt-4o-mini"]).unwrap(),
    )
    .spend_budget(Scope::Group("g".into()), Budget::tokens(1))
    .build()
    .unwrap();
    let e = within(client.generate(req)).await.unwrap_err();
    assert_eq!(budget_error(&e).account.scope, "group:g");
    assert_eq!(
        mocks[1].request_count(),
        1,
        "only the first reply's request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedge_that_does_not_fit_is_not_sent() {
    let mocks = [(); 2].map(|_| MockServer::builder().start_background().unwrap());
    let providers = steer_llm::Providers::new()
        .with(common::deployment("slow", &mocks[0]))
        .with(common::deployment("quick", &mocks[1]));
    let hedge = steer_llm::route::hedge::Hedge {
        max_share_percent: 100,
        ..steer_llm::route::hedge::Hedge::after(Duration::from_millis(20))
    };
    let group = steer_llm::runtime::group::Group::new(["slow/gpt-4o-mini", "quick/gpt-4o-mini"])
        .unwrap()
        .hedge(hedge);
    let client = quick_builder(providers, 1)
        .group("g", group)
        .spend_budget(Scope::Deployment("quick".into()), Budget::tokens(1))
        .build()
        .unwrap();
    mocks[0].set_default_fault(Some(
        FaultPlan::normal().with_latency(Duration::from_millis(150)),
    ));
    let req = ChatRequest::new("group/g")
        .unwrap()
        .user("hi")
        .max_tokens(20);
    let reply = within(client.generate(req)).await.unwrap();
    assert_eq!(reply.provider, "slow");
    assert_eq!(
        mocks[1].request_count(),
        0,
        "the hedge was refused, not sent"
    );
    assert!(reply
        .spend
        .attempts
        .iter()
        .all(|a| a.target.starts_with("slow/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stops_at_its_cap_with_its_reply_so_far_and_the_next_is_refused() {
    let mock = MockServer::builder()
        .reply_words(200)
        .start_background()
        .unwrap();
    let req = |n: u32| {
        ChatRequest::new("anthropic/claude-3-5-haiku-latest")
            .unwrap()
            .user("tell me about rivers")
            .max_tokens(n)
    };
    let prompt = estimate::prompt_tokens(&req(1));
    let limit = prompt + 5 + 30;
    let client = quick_builder(mock.providers().unwrap(), 1)
        .spend_budget(Scope::EveryKey, Budget::tokens(limit))
        .build()
        .unwrap();
    // Short replies teach the model's expected size (a hold of 5).
    for _ in 0..3 {
        within(client.generate(req(5))).await.unwrap();
    }
    let keyed = GenerateOptions::default().budget_key("tenant-a");
    let stream = within(client.stream_with(req(400), keyed.clone()))
        .await
        .unwrap();
    let seen = common::read_stream(stream).await.unwrap();
    assert_eq!(seen.finish, Some(steer_llm::FinishReason::Budget));
    let whole = common::expected_text(&req(400), Some(200));
    assert!(
        whole.starts_with(&seen.text) && seen.text.len() < whole.len(),
        "a prefix: {:?}",
        seen.text
    );
    let spend = seen.spend.expect("its spend");
    let delivered = estimate::text_tokens("claude-3-5-haiku-latest", &seen.text);
    assert!(delivered <= 35, "{delivered} outputs delivered");
    assert!(spend.attempts[0].estimated);
    // The tenant's budget is spent to within a chunk: the next is refused,
    // and what it says was spent is the stream's.
    let e = within(client.stream_with(req(400), keyed)).await;
    let e = match e {
        Err(e) => e,
        Ok(s) => common::all_events(s).await.1.expect("refused"),
    };
    let r = budget_error(&e);
    assert_eq!(r.account.scope, "key:tenant-a");
    assert!(r.spent <= limit, "{r:?}");
    assert!(r.spent >= limit - 10, "the budget was usable: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_that_does_not_fit_is_not_sent_and_the_partial_is_kept() {
    let mock = MockServer::builder().start_background().unwrap();
    let client =
        common::fault_tolerant_client_of(mock.providers().unwrap(), Duration::from_millis(150));
    let req = ask("cut-then-refused");
    let prompt = estimate::prompt_tokens(&req);
    // Room for the first attempt (its prompt and 40 outputs), not for the
    // continuation besides what the cut one spent.
    let opts = GenerateOptions::default().budget(Budget::tokens(prompt + 45));
    mock.script_key("cut-then-refused", [FaultPlan::reset(3)]);
    let stream = within(client.stream_with(req, opts)).await.unwrap();
    let (events, error) = common::all_events(stream).await;
    let e = error.expect("the continuation was refused");
    assert_eq!(budget_error(&e).account.scope, "request");
    let delivered: String = events
        .iter()
        .filter_map(|e| match e {
            steer_llm::StreamEvent::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(!delivered.is_empty());
    assert_eq!(e.partial_text(), Some(delivered.as_str()));
    assert_eq!(mock.requests().len(), 1, "the continuation was never sent");
    let spend = e.spend().expect("the error says what was spent");
    assert_eq!(spend.count, 1);
    assert!(spend.attempts[0].estimated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_budget_key_is_refused_cleanly_and_extreme_limits_hold() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = quick_builder(mock.providers().unwrap(), 1)
        .spend_budget(Scope::EveryKey, Budget::tokens(u64::MAX))
        .spend_budget(Scope::Client, Budget::usd(1e12).unwrap())
        .build()
        .unwrap();
    let long = "k".repeat(100_000);
    let opts = GenerateOptions::default().budget_key(long.as_str());
    let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
    let e = within(client.generate_with(req.clone(), opts))
        .await
        .unwrap_err();
    assert!(budget_error(&e).account.scope.contains("longer than"));
    assert!(e.to_string().len() < 2_000, "the key is not echoed whole");
    assert_eq!(mock.request_count(), 0);
    // The longest key allowed, and limits at the top of their range, pass.
    let key = "k".repeat(steer_llm::budget::MAX_KEY);
    let opts = GenerateOptions::default().budget_key(key.as_str());
    let reply = within(client.generate_with(req, opts)).await.unwrap();
    assert!(!reply.text.is_empty());
    let b = client
        .budget_balance(&Scope::EveryKey, Some(key.as_str()))
        .await;
    assert_eq!(b[0].limit, u64::MAX);
    assert!(b[0].spent > 0 && b[0].reserved == 0);
}
