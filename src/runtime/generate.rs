//! The `Generate` message and the router actor that answers it.

use actix::prelude::*;

use super::SteerStream;
use super::{Client, GenerateOptions};
use crate::error::Error;
use crate::model::{ChatRequest, ChatResponse, RequestId, StreamEvent};

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
        Box::pin(self.client.generate_with(msg.request, msg.options))
    }
}

/// A streamed chat request, as an actix message. The reply is the stream itself:
/// an actor can `ctx.add_stream(stream)` and handle the events as a `StreamHandler`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SteerStream, Error>")]
pub struct GenerateStream {
    /// The request.
    pub request: ChatRequest,
    /// Per-request overrides.
    pub options: GenerateOptions,
}

impl Handler<GenerateStream> for Router {
    type Result = ResponseFuture<Result<SteerStream, Error>>;

    fn handle(&mut self, msg: GenerateStream, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.client.stream_with(msg.request, msg.options))
    }
}

/// One event of a stream delivered to a [`Recipient`] by [`StreamTo`].
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StreamItem {
    /// The request it belongs to.
    pub request_id: RequestId,
    /// The event, or the error that ends the stream.
    pub item: Result<StreamEvent, Error>,
}

/// Streams a request and delivers every event to `recipient`, in order. The stream
/// ends with a `Complete` event or an error item.
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub struct StreamTo {
    /// The request.
    pub request: ChatRequest,
    /// Per-request overrides.
    pub options: GenerateOptions,
    /// Where the events go.
    pub recipient: Recipient<StreamItem>,
}

impl Handler<StreamTo> for Router {
    type Result = ResponseFuture<Result<(), Error>>;

    fn handle(&mut self, msg: StreamTo, _: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        Box::pin(async move {
            let request_id = msg.request.request_id.clone();
            let mut stream = client.stream_with(msg.request, msg.options).await?;
            actix::spawn(async move {
                while let Some(item) = futures::StreamExt::next(&mut stream).await {
                    let item = StreamItem {
                        request_id: request_id.clone(),
                        item,
                    };
                    if msg.recipient.send(item).await.is_err() {
                        break; // the recipient is gone: dropping the stream cancels it
                    }
                }
            });
            Ok(())
        })
    }
}

impl Client {
    /// Starts a [`Router`] on the current arbiter (needs a running actix System).
    pub fn router(&self) -> Addr<Router> {
        Router::new(self.clone()).start()
    }
}
