//! Every place a user calls steer from works, and cancels by drop: a task spawned
//! on a multi-thread tokio runtime, the body of a `#[tokio::main]` program, an
//! actix-web handler, and an actor. Nothing here is timed: the cost of each
//! placement is measured by `cargo bench --bench e2e` and `--bench stream`.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use actix::prelude::*;
use futures::StreamExt;
use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::runtime::{Router, StreamItem, StreamTo};
use steer_llm::{ChatRequest, Client, Generate, StreamEvent};

const MODEL: &str = "openai/gpt-4o-mini";

fn request(id: &str) -> ChatRequest {
    ChatRequest::new(MODEL)
        .unwrap()
        .user("Tell me about rivers.")
        .request_id(id)
}

/// Waits (bounded, in small steps) until the metrics show `n` cancelled requests
/// and nothing in flight or open.
async fn cancelled(client: &Client, n: u32) -> Result<(), String> {
    let want = format!(
        r#"steer_requests_total{{provider="openai",model="gpt-4o-mini",outcome="cancelled"}} {n}"#
    );
    let settled = common::eventually(|| {
        let text = client.prometheus_text();
        std::future::ready(
            text.contains(&want)
                && text.contains(r#"steer_in_flight_requests{provider="openai"} 0"#)
                && !text.contains(r#"steer_open_streams{provider="openai"} 1"#),
        )
    })
    .await;
    if settled {
        return Ok(());
    }
    Err(client.prometheus_text())
}

/// A reply and a whole stream, then a stream and a request dropped half-way.
async fn exercise(client: &Client, mock: &MockServer, tag: &str) {
    let reply = client.generate(request(&format!("{tag}-g"))).await.unwrap();
    assert_eq!(
        reply.text,
        common::expected_text(&request("x"), None),
        "{tag}"
    );
    let mut text = String::new();
    let mut s = client.stream(request(&format!("{tag}-s"))).await.unwrap();
    while let Some(e) = s.next().await {
        if let StreamEvent::TextDelta { text: t, .. } = e.unwrap() {
            text.push_str(&t);
        }
    }
    assert_eq!(text, reply.text, "{tag}");

    // Dropped after its first text: cancelled, its slot freed.
    mock.push_faults([FaultPlan::normal().with_chunk_delay(Duration::from_millis(100))]);
    let mut s = client
        .stream(request(&format!("{tag}-drop-s")))
        .await
        .unwrap();
    while let Some(e) = s.next().await {
        if matches!(e.unwrap(), StreamEvent::TextDelta { .. }) {
            break;
        }
    }
    drop(s);
    cancelled(client, 1).await.unwrap();
    // A request whose future is dropped before the reply: cancelled too.
    mock.push_faults([FaultPlan::normal().with_latency(Duration::from_secs(30))]);
    let pending = client.generate(request(&format!("{tag}-drop-g")));
    assert!(tokio::time::timeout(Duration::from_millis(50), pending)
        .await
        .is_err());
    cancelled(client, 2).await.unwrap();
}

#[test]
fn from_a_spawned_task_on_a_multi_thread_runtime() {
    let rt = common::two_worker_runtime();
    rt.block_on(async {
        let mock = MockServer::builder().start_background().unwrap();
        let client = Client::builder()
            .providers(mock.providers().unwrap())
            .build()
            .unwrap();
        tokio::spawn(async move { exercise(&client, &mock, "task").await })
            .await
            .unwrap();
    });
}

/// What `#[tokio::main]` expands to: a multi-thread runtime blocking on the body.
#[test]
fn from_a_tokio_main_body() {
    let body = async {
        let mock = MockServer::builder().start_background().unwrap();
        let client = Client::builder()
            .providers(mock.providers().unwrap())
            .build()
            .unwrap();
        exercise(&client, &mock, "main").await;
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(body);
}

#[actix_rt::test]
async fn from_an_actix_web_handler() {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .build()
        .unwrap();
    async fn handler(
        client: web::Data<Client>,
        mock: web::Data<MockServer>,
        tag: web::Path<String>,
    ) -> HttpResponse {
        exercise(&client, &mock, &tag).await;
        HttpResponse::Ok().body("done")
    }
    let (data, mock) = (web::Data::new(client.clone()), web::Data::new(mock));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(mock.clone())
            .route("/run/{tag}", web::get().to(handler))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let body = reqwest::get(format!("http://{addr}/run/web"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "done");
    handle.stop(true).await;
}

/// A user's actor: asks the router for a reply and for a stream of events.
struct Caller {
    router: Addr<Router>,
    text: String,
    done: Option<tokio::sync::oneshot::Sender<(String, String)>>,
    reply: String,
}

impl Actor for Caller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.router
            .send(Generate::new(request("actor-g")))
            .into_actor(self)
            .map(|reply, act, ctx| {
                act.reply = reply.unwrap().unwrap().text;
                let me = ctx.address().recipient::<StreamItem>();
                act.router.do_send(StreamTo {
                    request: request("actor-s"),
                    options: Default::default(),
                    recipient: me,
                });
            })
            .wait(ctx);
    }
}

impl Handler<StreamItem> for Caller {
    type Result = ();

    fn handle(&mut self, item: StreamItem, ctx: &mut Context<Self>) {
        match item.item {
            Ok(StreamEvent::TextDelta { text, .. }) => self.text.push_str(&text),
            Ok(StreamEvent::Complete { .. }) => {
                if let Some(tx) = self.done.take() {
                    let _ = tx.send((self.reply.clone(), std::mem::take(&mut self.text)));
                }
                ctx.stop();
            }
            Ok(_) => {}
            Err(e) => panic!("stream failed: {e}"),
        }
    }
}

/// A user's actor that stops after the first text of its stream.
struct Quitter {
    router: Addr<Router>,
}

impl Actor for Quitter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.router.do_send(StreamTo {
            request: request("actor-drop-s"),
            options: Default::default(),
            recipient: ctx.address().recipient(),
        });
    }
}

impl Handler<StreamItem> for Quitter {
    type Result = ();

    fn handle(&mut self, item: StreamItem, ctx: &mut Context<Self>) {
        if matches!(item.item, Ok(StreamEvent::TextDelta { .. })) {
            ctx.stop();
        }
    }
}

#[actix_rt::test]
async fn from_an_actor() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .arbiters(1)
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    Caller {
        router: client.router(),
        text: String::new(),
        done: Some(tx),
        reply: String::new(),
    }
    .start();
    let (reply, streamed) = rx.await.unwrap();
    assert_eq!(reply, common::expected_text(&request("x"), None));
    assert_eq!(streamed, reply);

    // An actor that goes away mid-stream: its stream is cancelled.
    mock.push_faults([FaultPlan::normal().with_chunk_delay(Duration::from_millis(100))]);
    Quitter {
        router: client.router(),
    }
    .start();
    cancelled(&client, 1).await.unwrap();
}

/// The text of a whole stream read on the current runtime.
async fn stream_text(client: &Client, id: &str) -> Result<String, steer_llm::Error> {
    let mut text = String::new();
    let mut s = client.stream(request(id)).await?;
    while let Some(e) = s.next().await {
        if let StreamEvent::TextDelta { text: t, .. } = e? {
            text.push_str(&t);
        }
    }
    Ok(text)
}

/// A stream's HTTP call runs on the runtime that reads it, with a connection of
/// that runtime's own: runtimes that sit idle (a current-thread runtime nobody
/// drives) or end after reading leave nothing that stalls or breaks the streams
/// of the others, with retries off so that a broken connection would show.
#[test]
fn runtimes_that_sit_idle_or_end_do_not_hold_up_the_others() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .retry(steer_llm::RetryPolicy::never())
        .build()
        .unwrap();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let want = common::expected_text(&request("x"), None);
    let idle = runtime();
    for i in 0..3 {
        let text = idle.block_on(stream_text(&client, &format!("idle-{i}")));
        assert_eq!(text.unwrap(), want);
    }
    // `idle` is kept, undriven; another runtime ends after each stream.
    for i in 0..3 {
        let ended = runtime();
        let text = ended.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(20),
                stream_text(&client, &format!("e-{i}")),
            )
            .await
        });
        assert_eq!(text.expect("not stalled").unwrap(), want);
        drop(ended);
    }
    // And a multi-thread runtime's spawned tasks, after both.
    let multi = tokio::runtime::Runtime::new().unwrap();
    let texts = multi.block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    tokio::time::timeout(
                        Duration::from_secs(20),
                        stream_text(&client, &format!("m-{i}")),
                    )
                    .await
                })
            })
            .collect();
        futures::future::join_all(tasks).await
    });
    for t in texts {
        assert_eq!(t.unwrap().expect("not stalled").unwrap(), want);
    }
    drop(idle);
}

/// The stream is read by the task that polls it: a stream that is never polled
/// sends nothing, and one dropped unpolled is counted cancelled with its slot
/// freed.
#[actix_rt::test]
async fn a_stream_is_read_by_the_task_that_polls_it() {
    let mock = MockServer::builder().start_background().unwrap();
    let client = Client::builder()
        .providers(mock.providers().unwrap())
        .build()
        .unwrap();
    let s = client.stream(request("unpolled")).await.unwrap();
    // The actor has handed the first attempt over; nothing reads it yet.
    client.breakers().status("openai").await.unwrap();
    assert_eq!(
        mock.request_count(),
        0,
        "no HTTP call before the first poll"
    );
    drop(s);
    cancelled(&client, 1).await.unwrap();
    assert_eq!(mock.request_count(), 0);
    // Polled, it runs.
    let text = stream_text(&client, "polled").await.unwrap();
    assert_eq!(text, common::expected_text(&request("x"), None));
    assert_eq!(mock.request_count(), 1);
}

/// A request's actor runs in the caller's own future: the provider is called on
/// the thread that awaits `generate` (a current-thread tokio runtime here, so one
/// thread), never on steer's arbiters; its success reports, gathered by a relay
/// that is a task of that runtime, reach the breaker before `status` answers.
#[test]
fn a_request_runs_on_the_callers_thread_and_its_reports_reach_the_breaker() {
    use std::sync::{Arc, Mutex};
    use steer_llm::provider::EventStream;
    use steer_llm::{ChatResponse, Provider, ProviderError, Providers};

    struct Where(Arc<Mutex<Vec<std::thread::ThreadId>>>);

    #[steer_llm::async_trait]
    impl Provider for Where {
        fn name(&self) -> &str {
            "here"
        }
        async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
            self.0.lock().unwrap().push(std::thread::current().id());
            Ok(common::ok_reply(req, "here"))
        }
        async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
            let resp = self.generate(req).await?;
            Ok(steer_llm::provider::stream_from_response(resp))
        }
    }

    let seen = Arc::new(Mutex::new(Vec::new()));
    let client = Client::builder()
        .providers(Providers::new().with(Where(seen.clone())))
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let caller = std::thread::current().id();
    let status = rt.block_on(async {
        for i in 0..20 {
            let req = ChatRequest::new("here/m").unwrap().user("hi");
            let reply = client.generate(req).await.unwrap();
            assert_eq!(reply.text, "ok", "request {i}");
        }
        client.breakers().status("here/m").await.unwrap()
    });
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 20);
    assert!(seen.iter().all(|t| *t == caller), "{seen:?} vs {caller:?}");
    assert_eq!(status.stats.successes, 20, "{status:?}");
}
