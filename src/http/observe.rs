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

/// The method label: one of a fixed set, so that no client can add series by inventing methods.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: log and measure the request.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
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
        .observe_request(method, &route, status, elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    match response.extensions().get::<ErrorDetail>() {
        Some(ErrorDetail(detail)) => tracing::error!(
            http.method = %method, http.route = %route, http.status = status,
            http.latency_ms = latency_ms, error.detail = %crate::error::bounded(detail),
            "request failed"
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
