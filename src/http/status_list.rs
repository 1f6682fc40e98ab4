//! `GET /status-lists/{n}` on the public listener: the newest Token Status List of list `n`
//! (docs/STATUS_LIST.md), the `uri` every MSO on it names. Verifiers fetch it without
//! credentials, from any origin, and may cache it for its `ttl`; every replica serves the same
//! bytes (the token is in the store).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;
use crate::error::AdminError;
use crate::mdoc::status_list::MEDIA_TYPE;
use crate::store::status_lists;

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/status-lists/{list}", get(status_list))
}

async fn status_list(
    State(state): State<AppState>,
    Path(list): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    let unknown = || AdminError::NotFound(format!("no status list {list:?}"));
    let list_id: i64 = list.parse().map_err(|_| unknown())?;
    let Some(published) = status_lists::token(&mut state.store().db(), list_id).await? else {
        return Err(unknown());
    };
    let cors = (
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    let Some(published) = published else {
        // A list is published within a second of its first entry; say so rather than 404.
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::RETRY_AFTER, HeaderValue::from_static("1")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                cors,
            ],
            format!("status list {list_id} is being published; retry in a second\n"),
        )
            .into_response());
    };
    // Caches keep it no longer than the token's ttl, and never past its exp.
    let ttl = state.status_list_ttl_secs;
    let left = (published.expires_at - state.services.clock.now())
        .num_seconds()
        .max(0);
    let max_age = ttl.min(u64::try_from(left).unwrap_or(0));
    let etag = HeaderValue::from_str(&published.etag)
        .map_err(|e| AdminError::Internal(format!("stored ETag: {e}")))?;
    let common = [
        (header::ETAG, etag),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={max_age}"))
                .map_err(|e| AdminError::Internal(e.to_string()))?,
        ),
        cors,
    ];
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == published.etag || tag.trim() == "*");
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))],
        published.token,
    )
        .into_response())
}
