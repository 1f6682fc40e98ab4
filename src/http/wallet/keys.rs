//! `getIdentityKey` and `getHybridEncryptionKey` (spec/wallet-api.md §4.2, §4.3): Brevet's public
//! Wallet keys as base64 DER certificates. The requests have no body (an empty JSON object is
//! accepted too); Google caches the answers.

use axum::extract::{FromRequest, Request, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ErrorResponse, WalletError, WalletErrorKind};
use crate::http::AppState;
use crate::pki::certs;
use crate::protocol::wallet as wire;
use crate::service::wallet::{internal, refuse, unavailable};

/// Response of `getIdentityKey`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetIdentityKeyResponse {
    /// Every unexpired identity certificate (two during a rotation), base64 DER.
    issuer_identity_certificate: Vec<String>,
}

/// Response of `getHybridEncryptionKey`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetHybridEncryptionKeyResponse {
    /// The active hybrid-encryption certificate, base64 DER.
    issuer_encryption_certificate: String,
}

/// A request body that must be empty (or `{}`-like: a JSON object, whose members are ignored).
pub struct EmptyBody;

impl FromRequest<AppState> for EmptyBody {
    type Rejection = WalletError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WalletError> {
        let body = super::request::read_body(request, state).await?;
        let trimmed = body.trim_ascii();
        if trimmed.is_empty() {
            return Ok(EmptyBody);
        }
        match serde_json::from_slice::<serde_json::Value>(trimmed) {
            Ok(serde_json::Value::Object(_)) => Ok(EmptyBody),
            _ => Err(refuse(
                WalletErrorKind::InvalidFieldValue,
                "the request body must be empty or a JSON object",
            )),
        }
    }
}

fn der_base64(cert: &x509_cert::Certificate) -> Result<String, WalletError> {
    Ok(wire::encode(
        &certs::to_der(cert).map_err(|e| internal(e.to_string()))?,
    ))
}

/// `POST /v1/vdc/getIdentityKey`
#[utoipa::path(
    post,
    path = "/getIdentityKey",
    tag = "wallet",
    responses(
        (status = 200, description = "The issuer's identity certificates", body = GetIdentityKeyResponse),
        (status = 400, description = "A body that is not empty or a JSON object", body = ErrorResponse),
    )
)]
pub async fn get_identity_key(
    State(state): State<AppState>,
    _body: EmptyBody,
) -> Result<Json<GetIdentityKeyResponse>, WalletError> {
    // Every loaded identity key is published, also one not yet signing: Google caches the
    // answer, so a new key is announced before it is used.
    let set = state.services.wallet.keys();
    let keys = set
        .keys
        .as_ref()
        .ok_or_else(|| unavailable("no Wallet identity key: run `brevet keys init`"))?;
    let issuer_identity_certificate = keys
        .identity
        .iter()
        .map(|k| der_base64(&k.certificate))
        .collect::<Result<_, _>>()?;
    Ok(Json(GetIdentityKeyResponse {
        issuer_identity_certificate,
    }))
}

/// `POST /v1/vdc/getHybridEncryptionKey`
#[utoipa::path(
    post,
    path = "/getHybridEncryptionKey",
    tag = "wallet",
    responses(
        (status = 200, description = "The issuer's active hybrid-encryption certificate", body = GetHybridEncryptionKeyResponse),
        (status = 400, description = "A body that is not empty or a JSON object", body = ErrorResponse),
    )
)]
pub async fn get_hybrid_encryption_key(
    State(state): State<AppState>,
    _body: EmptyBody,
) -> Result<Json<GetHybridEncryptionKeyResponse>, WalletError> {
    let set = state.services.wallet.keys();
    let key = set
        .keys
        .as_ref()
        .and_then(|k| k.active_hybrid(state.services.clock.system_time()))
        .ok_or_else(|| unavailable("no Wallet hybrid key: run `brevet keys init`"))?;
    Ok(Json(GetHybridEncryptionKeyResponse {
        issuer_encryption_certificate: der_base64(&key.certificate)?,
    }))
}
