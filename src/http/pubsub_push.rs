//! `POST /certprov/v1/pubsub/push`: the push-subscription side of the certificate-provisioning
//! intake (spec §6.3). Pub/Sub POSTs each message wrapped in an envelope; the process it names is
//! recorded in the store, where `brevet worker` picks it up. Any 2xx acknowledges the message, so
//! a message naming no process is answered 204 too (redelivering it would not help); a store
//! failure answers 500 so that Pub/Sub delivers it again. The subscription's push URL carries the
//! configured `certprov.pubsub.push_token` as `?token=`; without that setting the route is 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use secrecy::ExposeSecret;
use serde::Deserialize;
use subtle::ConstantTimeEq;

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
    AdminJson(envelope): AdminJson<PushEnvelope>,
) -> Result<StatusCode, AdminError> {
    let Some(expected) = &state.push_token else {
        return Err(AdminError::NotFound("no such route".to_owned()));
    };
    let presented = query.token.unwrap_or_default();
    let same: bool = presented
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into();
    if !same {
        return Err(AdminError::Forbidden("the push token is missing or wrong"));
    }
    record(&state.store, &envelope.message).await?;
    Ok(StatusCode::NO_CONTENT)
}
