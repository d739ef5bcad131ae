//! Shared state through Redis over TLS with a password (`rediss://:pass@host`):
//! a `redis-server` with a TLS port only, `requirepass`, and a certificate from a CA made for the test (with the `openssl`
//! command, installed by `.ci/run`); the CA is trusted through `SSL_CERT_FILE`,
//! as a deployment would trust its own CA. A binary of its own, so that the
//! environment variable is set before any thread starts.
#![cfg(all(feature = "mock", feature = "shared-redis"))]

#[path = "shared/redis_server.rs"]
mod redis_server;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use steer_llm::mock::{FaultPlan, MockServer};
use steer_llm::shared::SharedConfig;
use steer_llm::{ChatRequest, Client, RetryPolicy};

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the openssl command (installed by .ci/run)")
        .success();
    assert!(ok, "openssl {args:?}");
}

#[test]
fn pauses_are_shared_over_tls() {
    let dir = std::env::temp_dir().join(format!("steer-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=steer test CA",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    // Before any thread starts: rustls-native-certs reads it for the trusted roots.
    std::env::set_var("SSL_CERT_FILE", dir.join("ca.crt"));

    let port = redis_server::free_port();
    let mut cmd = redis_server::command();
    cmd.current_dir(&dir)
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
        .args(["--requirepass", "s3cret-pass"]);
    let mut redis = redis_server::spawn_ready(cmd);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mock = MockServer::builder().start_background().unwrap();
        // TLS and AUTH, both from the URL.
        let url = format!("rediss://:s3cret-pass@localhost:{port}/");
        let replica = || {
            Client::builder()
                .providers(mock.providers().unwrap())
                .retry(RetryPolicy::default().max_attempts(1))
                .shared(SharedConfig::redis(&url).prefix("tls"))
                .build()
                .unwrap()
        };
        let (a, b) = (replica(), replica());
        for c in [&a, &b] {
            let mut up = false;
            for _ in 0..1_000 {
                if matches!(c.shared_status().await, Ok(Some(s)) if s.connected) {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(up, "connects over TLS: {:?}", c.shared_status().await);
        }
        mock.push_faults([FaultPlan::error("rate_limit").retry_after("30")]);
        let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
        assert!(a.generate(req).await.is_err());
        let mut paused = false;
        for _ in 0..1_000 {
            let s = b.breakers().status("openai/gpt-4o-mini").await.unwrap();
            if s.paused_for.is_some_and(|d| !d.is_zero()) {
                paused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(paused, "the pause crossed TLS");
    });
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
