//! `POST /certprov/v1/pubsub/push`: the push-subscription side of the certificate-provisioning
//! intake (spec §6.3). Pub/Sub POSTs each message wrapped in an envelope; the process it names is
//! recorded in the store, where `brevet worker` picks it up. Any 2xx acknowledges the message, so
//! a message naming no process is answered 204 too (redelivering it would not help); a store
//! failure answers 500 so that Pub/Sub delivers it again. Requests are authenticated by Google's
//! OIDC token (`certprov.pubsub.push_audience`) and/or a `?token=` secret in the push URL
//! (`certprov.pubsub.push_token`); with neither configured the route is 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use super::json::{AdminJson, AdminQuery};
use super::AppState;
use crate::certprov::pubsub::record;
use crate::certprov::wire::PushEnvelope;
use crate::error::AdminError;

#[derive(Deserialize)]
struct PushQuery {
    token: Option<String>,
}

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/certprov/v1/pubsub/push", post(push_message))
}

async fn push_message(
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<PushQuery>,
    headers: axum::http::HeaderMap,
    AdminJson(envelope): AdminJson<PushEnvelope>,
) -> Result<StatusCode, AdminError> {
    let Some(auth) = &state.push_auth else {
        return Err(AdminError::NotFound("no such route".to_owned()));
    };
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Err(refused) = auth.check(query.token.as_deref(), bearer).await {
        tracing::warn!(reason = %refused, "Pub/Sub push refused");
        return Err(AdminError::Forbidden(
            "the push request is not authenticated".into(),
        ));
    }
    record(
        &state.services.store,
        &state.services.clock,
        &envelope.message,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
