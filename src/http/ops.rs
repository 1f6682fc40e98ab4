//! Operations endpoints: liveness, readiness and metrics. They need no token; bind the server to
//! a private address (the default is loopback) or put them behind the platform's network policy.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use crate::error::AdminError;

/// How long readiness waits for the store before calling it unavailable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Routes of the operations surface.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(get_healthz))
        .route("/readyz", get(get_readyz))
        .route("/metrics", get(get_metrics))
}

/// Liveness: the process is up and serving HTTP.
async fn get_healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store answers a query in time.
async fn get_readyz(State(state): State<AppState>) -> impl IntoResponse {
    let backend = state.store.backend().as_str();
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": backend })),
        ),
        Ok(Err(error)) => {
            tracing::warn!(store = backend, error = %error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "store": backend })),
            )
        }
        Err(_) => {
            tracing::warn!(store = backend, "readiness check timed out");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "store": backend })),
            )
        }
    }
}

/// Prometheus scrape endpoint.
async fn get_metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AdminError> {
    let body = state
        .metrics
        .encode()
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    ))
}
