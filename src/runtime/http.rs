//! The operator endpoint: `GET /metrics` (Prometheus text) and `GET /reliability`
//! (JSON), to mount in a service or serve on a port of its own.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Client;

async fn metrics(State(client): State<Client>) -> Response {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        client.prometheus_text(),
    )
        .into_response()
}

/// The content type of [`Client::prometheus_text`]: Prometheus text, version 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn reliability(State(client): State<Client>) -> Response {
    match client.metrics().await {
        Ok(snapshot) => axum::Json(snapshot).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The endpoint as an axum router, to nest into a service's own.
pub fn router(client: Client) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/reliability", get(reliability))
        .with_state(client)
}

/// Serves the endpoint on `addr` (e.g. `127.0.0.1:9090`) until the returned task is
/// dropped or aborted; returns the bound address.
pub async fn serve(
    client: Client,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(client);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}
