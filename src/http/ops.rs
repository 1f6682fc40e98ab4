//! Operations endpoints: liveness, readiness and metrics. They need no token; bind the server to
//! a private address (the default is loopback) or put them behind the platform's network policy.

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
use crate::readiness::CheckResult;

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
    /// Each readiness check in order; readiness only. Ready means every one passed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checks: Vec<CheckResult>,
    /// What an operator should know about this process (development mode, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<&'static str>,
}

/// Said on `/readyz` while notifications have nowhere to go.
pub const NOTIFICATIONS_DISABLED: &str = "google.base_url is unset: notifications to Google are queued but not delivered until it is configured";

impl Status {
    fn readiness(checks: Vec<CheckResult>, state: &AppState) -> Self {
        let mut warnings = Vec::new();
        let mode = if state.development {
            warnings.push("development mode: the simulator's attestation root is trusted and development keys may be in use; never issue real credentials");
            "development"
        } else {
            "production"
        };
        if !state.notifications_configured {
            warnings.push(NOTIFICATIONS_DISABLED);
        }
        Self {
            status: if checks.iter().all(|c| c.ok) {
                "ready"
            } else {
                "unavailable"
            },
            store: Some(state.store().backend().as_str()),
            mode: Some(mode),
            checks,
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
        checks: Vec::new(),
        warnings: Vec::new(),
    })
}

/// Readiness: every check passes (store reachable, migrations current, keys loaded, and any a
/// component adds).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses((status = 200, body = Status), (status = 503, description = "A check failed; `checks` says which and why", body = Status))
)]
async fn get_readyz(State(state): State<AppState>) -> (StatusCode, Json<Status>) {
    let checks = crate::readiness::run(&state.probes()).await;
    for failed in checks.iter().filter(|c| !c.ok) {
        tracing::warn!(check = failed.name, error = %failed.detail, "readiness check failed");
    }
    let status = Status::readiness(checks, &state);
    let code = if status.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(status))
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
    match crate::store::outbox::backlog(&mut state.store().db()).await {
        Ok(backlog) => state
            .metrics
            .set_outbox_backlog(&backlog, state.services.clock.now()),
        Err(error) => tracing::warn!(%error, "cannot read the outbox backlog for metrics"),
    }
    state
        .metrics
        .set_notifications_configured(state.notifications_configured);
    state.metrics.set_certificate_expiry(
        &state.certificates_in_use(),
        state.services.clock.system_time(),
    );
    match crate::store::status_lists::list(&mut state.store().db()).await {
        Ok(lists) => state
            .metrics
            .set_status_lists(&lists, state.services.clock.now()),
        Err(error) => tracing::warn!(%error, "cannot read the status lists for metrics"),
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
