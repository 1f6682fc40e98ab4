//! The worker's own ops listener (`worker.ops_listen`): `/healthz` (the store answers) and
//! `/metrics` (the certificate-provisioning adapter's, with process counts read from the store).
//! Plain HTTP for a scraper and a kubelet on the pod network; nothing here takes input.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::certprov::metrics::AdapterMetrics;
use crate::store::SharedStore;

#[derive(Clone)]
struct Ops {
    store: SharedStore,
    metrics: Arc<AdapterMetrics>,
}

/// Binds `address`; the returned future serves until `stop`. Binding first lets the caller fail
/// at start, naming the address, rather than later.
pub async fn bind(
    address: SocketAddr,
    store: SharedStore,
    metrics: Arc<AdapterMetrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tracing::info!(address = %bound, "worker ops endpoint listening (/healthz, /metrics)");
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(scrape))
        .with_state(Ops { store, metrics });
    Ok(async move {
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %error, "worker ops endpoint failed");
        }
    })
}

async fn healthz(State(ops): State<Ops>) -> Response {
    match ops.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "worker health check: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

async fn scrape(State(ops): State<Ops>) -> Response {
    match ops.metrics.encode(&ops.store).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "worker metrics: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}
