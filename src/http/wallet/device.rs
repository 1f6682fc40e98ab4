//! Device registration: the wire form of `getDeviceRegistrationNonce` (spec/wallet-api.md §4.4)
//! and `registerDevice` (§4.5). The use cases are in `service::wallet::devices`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::request::{HasMetadata, RequestMetadata, ResponseMetadata, WalletRequest};
use crate::error::{ErrorResponse, WalletError};
use crate::http::AppState;
use crate::protocol::ids::DeviceReferenceId;
use crate::service::wallet::devices;

/// Request of `getDeviceRegistrationNonce`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NonceRequest {
    request_metadata: RequestMetadata,
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
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
    /// 24 random bytes as 32 characters of base64url without padding.
    nonce: String,
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
    let device = request.id(DeviceReferenceId::parse(&request.body.device_reference_id))?;
    let nonce = request.answer(devices::issue_nonce(&state.services, &device).await)?;
    Ok(Json(NonceResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
        nonce,
    }))
}

/// Request of `registerDevice`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterDeviceRequest {
    request_metadata: RequestMetadata,
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    device_reference_id: String,
    /// Base64 DER certificates, leaf (the identity key with its attestation) first.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 10)]
    device_identity_certificate_chain: Vec<String>,
    /// Deprecated single-certificate form, read only when the chain is absent.
    #[serde(default)]
    device_identity_certificate: Option<String>,
}

impl HasMetadata for RegisterDeviceRequest {
    fn metadata(&self) -> &RequestMetadata {
        &self.request_metadata
    }
}

/// Response of `registerDevice`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterDeviceResponse {
    response_metadata: ResponseMetadata,
}

/// `POST /v1/vdc/registerDevice`
#[utoipa::path(
    post,
    path = "/registerDevice",
    tag = "wallet",
    request_body = RegisterDeviceRequest,
    responses(
        (status = 200, description = "The device's identity key is registered (also for a repeated registration of the same key)", body = RegisterDeviceResponse),
        (status = 400, description = "Malformed request, or an attestation that fails the checks (invalidFieldValue)", body = ErrorResponse),
        (status = 404, description = "No outstanding nonce for the deviceReferenceId (invalidIdentifier)", body = ErrorResponse),
        (status = 409, description = "The deviceReferenceId is registered with another key (invalidState)", body = ErrorResponse),
    )
)]
pub async fn register_device(
    State(state): State<AppState>,
    request: WalletRequest<RegisterDeviceRequest>,
) -> Result<Json<RegisterDeviceResponse>, WalletError> {
    let body = &request.body;
    let device = request.id(DeviceReferenceId::parse(&body.device_reference_id))?;
    // The deprecated single certificate is read only when the chain is absent.
    let chain: Vec<&str> = if body.device_identity_certificate_chain.is_empty() {
        body.device_identity_certificate
            .as_deref()
            .into_iter()
            .collect()
    } else {
        body.device_identity_certificate_chain
            .iter()
            .map(String::as_str)
            .collect()
    };
    request.answer(devices::register(&state.services, &device, &chain).await)?;
    Ok(Json(RegisterDeviceResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
    }))
}
