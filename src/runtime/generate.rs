//! The `Generate` message and the router actor that answers it.

use actix::prelude::*;

use super::{Client, GenerateOptions};
use crate::error::Error;
use crate::model::{ChatRequest, ChatResponse};

/// A chat request, as an actix message: send it to a [`Router`] from any actor.
///
/// ```no_run
/// # async fn run(router: actix::Addr<steer_llm::runtime::Router>) {
/// use steer_llm::{runtime::Generate, ChatRequest};
/// let req = ChatRequest::new("anthropic/claude-3-5-haiku-latest").unwrap().user("Hi");
/// let reply = router.send(Generate::new(req)).await;
/// # let _ = reply; }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<ChatResponse, Error>")]
pub struct Generate {
    /// The request; its model's provider picks the provider.
    pub request: ChatRequest,
    /// Per-request overrides.
    pub options: GenerateOptions,
}

impl Generate {
    /// A `Generate` with the client's settings.
    pub fn new(request: ChatRequest) -> Self {
        Generate {
            request,
            options: GenerateOptions::default(),
        }
    }

    /// A `Generate` with overrides.
    pub fn with_options(request: ChatRequest, options: GenerateOptions) -> Self {
        Generate { request, options }
    }
}

/// Resolves `provider/model` and runs each `Generate` as a supervised request.
///
/// The request runs to its end even if the sender stops waiting for the reply;
/// to cancel, use [`Client::generate`] and drop its future.
pub struct Router {
    client: Client,
}

impl Router {
    /// A router over `client`'s providers.
    pub fn new(client: Client) -> Self {
        Router { client }
    }
}

impl Actor for Router {
    type Context = Context<Self>;
}

impl Handler<Generate> for Router {
    type Result = ResponseFuture<Result<ChatResponse, Error>>;

    fn handle(&mut self, msg: Generate, _: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        Box::pin(async move { client.generate_with(msg.request, msg.options).await })
    }
}

impl Client {
    /// Starts a [`Router`] on the current arbiter (needs a running actix System).
    pub fn router(&self) -> Addr<Router> {
        Router::new(self.clone()).start()
    }
}
