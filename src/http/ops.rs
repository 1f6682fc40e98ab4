//! Operations endpoints: liveness, readiness and metrics. They need no token; bind the server to
//! a private address (the default is loopback) or put them behind the platform's network policy.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::error::AdminError;

/// How long readiness waits for the store before calling it unavailable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Routes of the operations surface.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_healthz))
        .routes(routes!(get_readyz))
        .routes(routes!(get_metrics))
}

/// Body of `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` (live), `ready` or `unavailable`.
    status: &'static str,
    /// The store in use (`sqlite` or `postgres`); readiness only.
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<&'static str>,
    /// `development` or `production`; readiness only.
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
    /// What an operator should know about this process (development mode, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<&'static str>,
}

impl Status {
    fn readiness(status: &'static str, state: &AppState) -> Self {
        let (mode, warnings) = if state.development {
            (
                "development",
                vec!["development mode: the simulator's attestation root is trusted and development keys may be in use; never issue real credentials"],
            )
        } else {
            ("production", Vec::new())
        };
        Self {
            status,
            store: Some(state.store().backend().as_str()),
            mode: Some(mode),
            warnings,
        }
    }
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Status)))]
async fn get_healthz() -> Json<Status> {
    Json(Status {
        status: "ok",
        store: None,
        mode: None,
        warnings: Vec::new(),
    })
}

/// Readiness: the store answers a query in time.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses((status = 200, body = Status), (status = 503, description = "The store does not answer", body = Status))
)]
async fn get_readyz(State(state): State<AppState>) -> (StatusCode, Json<Status>) {
    let store = Some(state.store().backend().as_str());
    let failure = match tokio::time::timeout(READY_TIMEOUT, state.store().ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, Json(Status::readiness("ready", &state))),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {READY_TIMEOUT:?}"),
    };
    tracing::warn!(store = ?store, error = %failure, "readiness check failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Status::readiness("unavailable", &state)),
    )
}

/// Prometheus scrape endpoint (OpenMetrics text).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String))
)]
async fn get_metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AdminError> {
    match crate::store::outbox::count_by_state(&mut state.store().db()).await {
        Ok(counts) => state.metrics.set_outbox_counts(&counts),
        // Scrapes still answer when the store is down; the gauges keep their last values.
        Err(error) => tracing::warn!(%error, "cannot read outbox counts for metrics"),
    }
    match crate::store::cert_processes::count_by_state(&mut state.store().db()).await {
        Ok(counts) => state.metrics.set_cert_process_counts(&counts),
        Err(error) => tracing::warn!(%error, "cannot read certificate process counts for metrics"),
    }
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
