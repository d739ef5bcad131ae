//! Where the actors run: arbiters in the caller's actix System, or a System of
//! steer's own on a background thread.

use actix::{Arbiter, ArbiterHandle, System};

use crate::error::{ConfigError, Error};

/// The arbiters a client's actors run on, and what to stop when it goes.
pub(crate) struct Arbiters {
    pub handles: Vec<ArbiterHandle>,
    owned: Vec<ArbiterHandle>,
    background: Option<(System, Option<std::thread::JoinHandle<()>>)>,
}

impl Arbiters {
    /// `count` arbiters: 0 means the current arbiter (needs a running System).
    pub fn new(count: usize) -> Result<Self, Error> {
        if System::try_current().is_some() {
            if count == 0 {
                return Ok(Arbiters {
                    handles: vec![Arbiter::current()],
                    owned: Vec::new(),
                    background: None,
                });
            }
            let handles: Vec<ArbiterHandle> = (0..count).map(|_| Arbiter::new().handle()).collect();
            return Ok(Arbiters {
                owned: handles.clone(),
                handles,
                background: None,
            });
        }
        if count == 0 {
            return Err(ConfigError::setting(
                "arbiters(0)",
                "it runs on the current arbiter and needs a running actix System",
            ));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("steer-system".into())
            .spawn(move || {
                let system = System::new();
                let handles: Vec<ArbiterHandle> =
                    (0..count).map(|_| Arbiter::new().handle()).collect();
                let _ = tx.send((System::current(), handles));
                let _ = system.run();
            })
            .map_err(|e| ConfigError::start(format!("cannot start steer's actor system: {e}")))?;
        let (system, handles) = rx
            .recv()
            .map_err(|_| ConfigError::start("steer's actor system did not start"))?;
        Ok(Arbiters {
            owned: handles.clone(),
            handles,
            background: Some((system, Some(thread))),
        })
    }
}

impl Drop for Arbiters {
    fn drop(&mut self) {
        for a in &self.owned {
            a.stop();
        }
        if let Some((system, thread)) = &mut self.background {
            system.stop();
            if let Some(t) = thread.take() {
                // Do not block a runtime thread on the join: the system stops by itself.
                if tokio::runtime::Handle::try_current().is_err() {
                    let _ = t.join();
                }
            }
        }
    }
}
