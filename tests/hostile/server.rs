//! A hostile HTTP server on 127.0.0.1, written on raw TCP so that it can say what
//! no well-behaved server says: endless lines, endless events, trickled bodies,
//! oversized heads, redirects, 2xx bodies of the wrong shape, any header.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server answers one request.
#[derive(Clone)]
pub enum Reply {
    /// These bytes, then close.
    Bytes(Vec<u8>),
    /// `head`, then `repeat` over and over (every `pace`, if set) until the client
    /// goes away or `max` bytes are written.
    Endless {
        head: Vec<u8>,
        repeat: Vec<u8>,
        pace: Option<Duration>,
        max: u64,
    },
    /// `head`, then `body` one byte every `every`.
    Trickle {
        head: Vec<u8>,
        body: Vec<u8>,
        every: Duration,
    },
}

/// What the server decides for request number `n` (0-based), given its head.
pub type Script = Arc<dyn Fn(usize, &str) -> Reply + Send + Sync>;

/// A running hostile server.
pub struct Hostile {
    pub port: u16,
    /// Bytes written to clients so far.
    pub written: Arc<AtomicU64>,
    /// The heads of the requests received.
    pub requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hostile {
    pub async fn start(script: Script) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let written = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (w, r) = (written.clone(), requests.clone());
        let task = tokio::spawn(async move {
            let mut n = 0usize;
            while let Ok((socket, _)) = listener.accept().await {
                let (script, w, r) = (script.clone(), w.clone(), r.clone());
                let index = n;
                n += 1;
                tokio::spawn(async move { serve(socket, index, script, w, r).await });
            }
        });
        Hostile {
            port,
            written,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

async fn serve(
    mut socket: TcpStream,
    index: usize,
    script: Script,
    written: Arc<AtomicU64>,
    requests: Arc<Mutex<Vec<String>>>,
) {
    let Some(head) = read_request(&mut socket).await else {
        return;
    };
    requests.lock().push(head.clone());
    let count = |n: usize| {
        written.fetch_add(n as u64, Ordering::Relaxed);
    };
    match script(index, &head) {
        Reply::Bytes(bytes) => {
            if socket.write_all(&bytes).await.is_ok() {
                count(bytes.len());
            }
        }
        Reply::Endless {
            head,
            repeat,
            pace,
            max,
        } => {
            if socket.write_all(&head).await.is_err() {
                return;
            }
            count(head.len());
            let mut sent = 0u64;
            while sent < max {
                if socket.write_all(&repeat).await.is_err() {
                    return;
                }
                sent += repeat.len() as u64;
                count(repeat.len());
                if let Some(p) = pace {
                    tokio::time::sleep(p).await;
                }
            }
        }
        Reply::Trickle { head, body, every } => {
            if socket.write_all(&head).await.is_err() {
                return;
            }
            count(head.len());
            for b in body {
                tokio::time::sleep(every).await;
                if socket.write_all(&[b]).await.is_err() {
                    return;
                }
                count(1);
            }
        }
    }
    let _ = socket.shutdown().await;
}

/// Reads a request head and its body (by `content-length`); the head as text.
async fn read_request(socket: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut have = buf.len() - end;
    while have < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Some(head)
}

/// A response head; `extra` are more header lines (without line ends).
pub fn head(status: &str, content_type: &str, extra: &[String]) -> Vec<u8> {
    let mut h =
        format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\nconnection: close\r\n");
    for line in extra {
        h.push_str(line);
        h.push_str("\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// A whole response with a body and its length.
pub fn response(status: &str, content_type: &str, extra: &[String], body: &str) -> Vec<u8> {
    let mut lines = extra.to_vec();
    lines.push(format!("content-length: {}", body.len()));
    let mut bytes = head(status, content_type, &lines);
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// A valid OpenAI chat completion.
pub fn openai_ok() -> Vec<u8> {
    response(
        "200 OK",
        "application/json",
        &[],
        r#"{"id":"c1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
    )
}
