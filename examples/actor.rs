//! A user's actor sends `Generate` to steer's router and handles the reply.
//!
//! `cargo run --features mock --example actor`

use actix::prelude::*;
use steer_llm::mock::MockServer;
use steer_llm::runtime::Router;
use steer_llm::{ChatRequest, ChatResponse, Client, Error, Generate};

/// An actor of the user's service that needs a summary.
struct Summarizer {
    router: Addr<Router>,
}

impl Actor for Summarizer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let request = ChatRequest::new("anthropic/claude-3-5-haiku-latest")
            .expect("a valid model id")
            .user("Summarise the life of a river in one line.");
        self.router
            .send(Generate::new(request))
            .into_actor(self)
            .map(|reply, act, ctx| {
                act.on_reply(reply.unwrap_or_else(|e| Err(Error::Internal(e.to_string()))));
                ctx.stop();
            })
            .wait(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        System::current().stop();
    }
}

impl Summarizer {
    fn on_reply(&self, reply: Result<ChatResponse, Error>) {
        match reply {
            Ok(r) => println!(
                "{} ({} tokens, {:?})",
                r.text, r.usage.total_tokens, r.finish_reason
            ),
            Err(e) => eprintln!("summary failed: {e}"),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let system = System::new();
    let mock = MockServer::builder().start_background()?;
    let providers = mock.providers()?;
    system.block_on(async {
        // Inside the System: the client puts its actors on arbiters of this System.
        let client = Client::builder().providers(providers).arbiters(1).build()?;
        Summarizer {
            router: client.router(),
        }
        .start();
        Ok::<_, steer_llm::Error>(())
    })?;
    system.run()?;
    Ok(())
}
