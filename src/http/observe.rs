//! One access-log line and one metrics sample per request.
//!
//! The line carries method, route template, status, latency and (through the enclosing span) the
//! request id. It never carries headers, query strings or bodies: those may hold tokens or
//! personal data. Infrastructure failures add the [`ErrorDetail`] their handler attached.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::error::ErrorDetail;

/// Route label for requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// Middleware: log and measure the request.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, |path| path.as_str())
        .to_owned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .observe_request(&method, &route, status, elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    match response.extensions().get::<ErrorDetail>() {
        Some(ErrorDetail(detail)) => tracing::error!(
            http.method = %method, http.route = %route, http.status = status,
            http.latency_ms = latency_ms, error.detail = %detail, "request failed"
        ),
        None if status >= 500 => tracing::error!(
            http.method = %method, http.route = %route, http.status = status,
            http.latency_ms = latency_ms, "request failed"
        ),
        None => tracing::info!(
            http.method = %method, http.route = %route, http.status = status,
            http.latency_ms = latency_ms, "request"
        ),
    }
    response
}
