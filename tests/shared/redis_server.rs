//! A real `redis-server` of a test's (or the bench's) own, on 127.0.0.1: the
//! binary is `STEER_REDIS_SERVER`, default `redis-server` (Debian's package,
//! installed by `.ci/test`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A free port of 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `redis-server` without persistence, listening on 127.0.0.1 only; callers add
/// the ports.
pub fn command() -> Command {
    let binary = std::env::var("STEER_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let mut cmd = Command::new(binary);
    cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    cmd
}

/// Starts `cmd` and returns once the server says it accepts connections: it
/// logs `Ready to accept connections` when it listens, so nothing polls or
/// sleeps. Its log is drained on a thread of its own afterwards, so that it
/// never blocks on a full pipe.
pub fn spawn_ready(mut cmd: Command) -> Child {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?} (installed by .ci/test): {e}"));
    let log = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(log).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("Ready to accept connections"));
    assert!(ready, "redis-server ended before it was ready: {cmd:?}");
    std::thread::spawn(move || lines.for_each(drop));
    child
}
