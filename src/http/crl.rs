//! `GET /certprov/v1/crl/{connection}` on the public listener: the newest CRL the worker signed
//! for a built-in device CA (DER, RFC 5280), the URL each of its certificates names as its CRL
//! distribution point. Relying parties fetch it without credentials.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;
use crate::error::AdminError;
use crate::store::revocations;

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/certprov/v1/crl/{connection}", get(crl))
}

async fn crl(
    State(state): State<AppState>,
    Path(connection): Path<String>,
) -> Result<Response, AdminError> {
    let unknown = || AdminError::NotFound(format!("no CRL is published for {connection:?}"));
    if !state.builtin_device_cas.contains(&connection) {
        return Err(unknown());
    }
    let crl = revocations::crl(&mut state.store().db(), &connection)
        .await?
        .ok_or_else(unknown)?;
    // Caches may keep it a few minutes: a revocation reaches the CRL within a minute anyway.
    Ok((
        [
            (header::CONTENT_TYPE, "application/pkix-crl".to_owned()),
            (header::CACHE_CONTROL, "public, max-age=300".to_owned()),
            (
                header::LAST_MODIFIED,
                crl.this_update
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
            ),
        ],
        crl.der,
    )
        .into_response())
}
