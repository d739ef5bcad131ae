//! One reqwest client per tokio runtime that calls a provider.
//!
//! A reqwest client's pooled connections are tasks of the runtime that opened
//! them. Used from another runtime, every byte of a reply crosses threads to reach
//! its caller (a wake-up of a parked thread each time), and the connection dies
//! with the runtime that owns it: an actix-web worker that stops takes the
//! connections it opened with it, and an idle current-thread runtime stalls the
//! requests of others that reuse them. So steer's default client is one per
//! runtime, made on first use there; a request uses the one of the runtime it runs
//! on. A client the caller gives ([`http_client`](crate::OpenAiCompatible)) is
//! used everywhere as given.

use std::time::Duration;

use parking_lot::RwLock;
use tokio::runtime::{Handle, Id};

use super::http::default_http_client;
use crate::error::Error;

/// At most this many runtimes keep a client of their own; past it the oldest
/// entry is replaced (a runtime's id may be reused once it ended, and the
/// connections of an ended runtime are closed anyway).
const MAX_RUNTIMES: usize = 64;

/// The HTTP clients of one endpoint.
pub(crate) enum HttpClients {
    /// The caller's client, used from every runtime.
    Given(reqwest::Client),
    /// steer's default client, one per runtime.
    PerRuntime(PerRuntime),
}

/// steer's default clients, by runtime.
pub(crate) struct PerRuntime {
    connect_timeout: Duration,
    /// For a caller outside any tokio runtime (its connections then live on the
    /// runtime that first drives them).
    outside: reqwest::Client,
    by_runtime: RwLock<Vec<(Id, reqwest::Client)>>,
}

impl HttpClients {
    /// The caller's client, or steer's default clients made with `connect_timeout`.
    pub fn new(given: Option<reqwest::Client>, connect_timeout: Duration) -> Result<Self, Error> {
        Ok(match given {
            Some(c) => HttpClients::Given(c),
            None => HttpClients::PerRuntime(PerRuntime {
                connect_timeout,
                outside: default_http_client(connect_timeout)?,
                by_runtime: RwLock::new(Vec::new()),
            }),
        })
    }

    /// The client for a request made on the current runtime.
    pub fn current(&self) -> reqwest::Client {
        match self {
            HttpClients::Given(c) => c.clone(),
            HttpClients::PerRuntime(p) => p.current(),
        }
    }

    /// How many runtimes have a client of their own (for tests).
    #[cfg(test)]
    fn runtimes(&self) -> usize {
        match self {
            HttpClients::Given(_) => 0,
            HttpClients::PerRuntime(p) => p.by_runtime.read().len(),
        }
    }
}

impl PerRuntime {
    fn current(&self) -> reqwest::Client {
        let Ok(handle) = Handle::try_current() else {
            return self.outside.clone();
        };
        let id = handle.id();
        if let Some((_, c)) = self.by_runtime.read().iter().find(|(i, _)| *i == id) {
            return c.clone();
        }
        // The settings were valid when `outside` was built with them; should a
        // build fail now, the shared client still works.
        let Ok(made) = default_http_client(self.connect_timeout) else {
            return self.outside.clone();
        };
        let mut all = self.by_runtime.write();
        if let Some((_, c)) = all.iter().find(|(i, _)| *i == id) {
            return c.clone();
        }
        if all.len() >= MAX_RUNTIMES {
            all.remove(0);
        }
        all.push((id, made.clone()));
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn each_runtime_gets_its_own_client_and_keeps_it() {
        let clients = HttpClients::new(None, Duration::from_secs(1)).expect("clients");
        let (a, b) = (runtime(), runtime());
        a.block_on(async { clients.current() });
        a.block_on(async { clients.current() });
        assert_eq!(
            clients.runtimes(),
            1,
            "a second call on one runtime reuses its client"
        );
        b.block_on(async { clients.current() });
        assert_eq!(clients.runtimes(), 2);
        // Outside any runtime: the shared client, nothing added.
        clients.current();
        assert_eq!(clients.runtimes(), 2);
    }

    #[test]
    fn the_number_of_runtimes_kept_is_bounded() {
        let clients = HttpClients::new(None, Duration::from_secs(1)).expect("clients");
        // Runtimes kept alive at once, so that none of their ids is reused.
        let all: Vec<_> = (0..MAX_RUNTIMES + 3).map(|_| runtime()).collect();
        for rt in &all {
            rt.block_on(async { clients.current() });
        }
        assert_eq!(clients.runtimes(), MAX_RUNTIMES);
    }

    #[test]
    fn a_given_client_is_used_everywhere() {
        let clients = HttpClients::new(Some(reqwest::Client::new()), Duration::from_secs(1))
            .expect("clients");
        runtime().block_on(async { clients.current() });
        assert_eq!(clients.runtimes(), 0);
    }
}
