//! The staff console: server-rendered HTML under `/console/` on the admin listener, for the staff
//! tasks of the admin API (records, proofing review, notifications, certificate provisioning,
//! audit log, tokens). It signs in with an admin token and acts through the same services, role
//! rules and audit log as the REST API; see docs/CONSOLE.md.
//!
//! Every page is rendered by [`maud`] (escaped by default) and sent with a strict
//! Content-Security-Policy (scripts and styles only from `/console/assets/`, which are embedded in
//! the binary), `Cache-Control: no-store` (pages hold personal data) and no referrer.

mod audit;
mod dashboard;
mod page;
mod proofings;
mod record_form;
mod records;
mod session;
mod tokens;
mod work;

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::time::Duration;

use super::AppState;
use crate::config::Config;

pub use session::SESSION_COOKIE;

/// The console's settings, from `[console]` and the listener's transport.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Whether `/console/` is served.
    pub enabled: bool,
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Whether cookies are marked `Secure`: the browser reaches the console over TLS (ours, or
    /// the proxy's in front of a plaintext listener).
    pub secure_cookies: bool,
}

impl Settings {
    /// The settings `config` asks for.
    pub fn from_config(config: &Config) -> Self {
        Self {
            enabled: config.console.enabled,
            session_ttl: Duration::from_secs(config.console.session_ttl_secs),
            secure_cookies: config.tls.is_some() || config.http.allow_plaintext,
        }
    }
}

/// Scripts and styles only from our own assets; images also as `data:` (portraits in records);
/// forms post only to us; never framed.
const POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, nested under `/console`.
pub fn router() -> Router<AppState> {
    let console = Router::new()
        .route("/", get(|| async { Redirect::to("/console/dashboard") }))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/dashboard", get(dashboard::show))
        .route("/records", get(records::list).post(records::create))
        .route("/records/new", get(records::new_form))
        .route("/records/{id}", get(records::show).post(records::update))
        .route("/records/{id}/edit", get(records::edit_form))
        .route("/records/{id}/revoke", post(records::revoke))
        .route("/records/{id}/code", post(records::mint_code))
        .route("/proofings", get(proofings::queue))
        .route("/proofings/{id}", get(proofings::show))
        .route("/proofings/{id}/decide", post(proofings::decide))
        .route("/proofings/{id}/evidence/{index}", get(proofings::evidence))
        .route("/notifications", get(work::notifications))
        .route("/notifications/{id}/retry", post(work::retry))
        .route("/certificates", get(work::certificates))
        .route("/audit", get(audit::list))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/console.js", get(script))
        .fallback(|| async { page::ConsoleError::NotFound("There is no such page.".into()) });
    Router::new()
        .nest("/console", console)
        .layer(axum::middleware::from_fn(protect))
}

async fn protect(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}
