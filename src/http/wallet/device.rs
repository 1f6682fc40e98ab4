//! Device registration, first step: `getDeviceRegistrationNonce` (spec/wallet-api.md §4.4). The
//! nonce (32 random bytes, the Android IdentityCredential challenge limit) is stored with the
//! deviceReferenceId; a second request replaces the outstanding one.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::request::{HasMetadata, RequestMetadata, ResponseMetadata, WalletRequest};
use crate::error::{ErrorResponse, WalletError, WalletErrorKind};
use crate::http::AppState;

/// Bytes of a registration nonce (the most Android's attestation challenge takes).
pub const NONCE_LEN: usize = 32;
/// Longest deviceReferenceId accepted ([I]; Google's are opaque ids well below this).
pub const MAX_DEVICE_REFERENCE_ID: usize = 512;

/// Request of `getDeviceRegistrationNonce`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NonceRequest {
    request_metadata: RequestMetadata,
    device_reference_id: String,
}

impl HasMetadata for NonceRequest {
    fn metadata(&self) -> &RequestMetadata {
        &self.request_metadata
    }
}

/// Response of `getDeviceRegistrationNonce`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NonceResponse {
    response_metadata: ResponseMetadata,
    /// Base64 of 32 random bytes.
    nonce: String,
}

/// Checks a deviceReferenceId from Google.
pub fn check_device_reference_id<T: HasMetadata>(
    request: &WalletRequest<T>,
    id: &str,
) -> Result<(), WalletError> {
    if id.trim().is_empty()
        || id.len() > MAX_DEVICE_REFERENCE_ID
        || id.chars().any(char::is_control)
    {
        return Err(request.error(
            WalletErrorKind::InvalidFieldValue,
            format!(
                "deviceReferenceId must be 1 to {MAX_DEVICE_REFERENCE_ID} printable characters"
            ),
        ));
    }
    Ok(())
}

/// `POST /v1/vdc/getDeviceRegistrationNonce`
#[utoipa::path(
    post,
    path = "/getDeviceRegistrationNonce",
    tag = "wallet",
    request_body = NonceRequest,
    responses(
        (status = 200, description = "A fresh nonce for registerDevice", body = NonceResponse),
        (status = 400, description = "Malformed request or unsupported API version", body = ErrorResponse),
    )
)]
pub async fn get_device_registration_nonce(
    State(state): State<AppState>,
    request: WalletRequest<NonceRequest>,
) -> Result<Json<NonceResponse>, WalletError> {
    let device = &request.body.device_reference_id;
    check_device_reference_id(&request, device)?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(state.nonce_ttl).unwrap_or(chrono::Duration::MAX);
    state
        .store
        .issue_registration_nonce(device, &nonce, expires_at)
        .await
        .map_err(|e| WalletError::from(e).for_request(Some(request.request_id().to_owned())))?;
    Ok(Json(NonceResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
        nonce: STANDARD.encode(nonce),
    }))
}
