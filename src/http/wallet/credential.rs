//! Credentials on devices (spec/wallet-api.md §4.9–§4.12): the wire form of
//! `provisionCredential`, `provisionMobileSecurityObjects`, `getCredentialStatus` and
//! `notifyCredentialDeleted`. The use cases are in `service::wallet::copies`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::request::{HasMetadata, RequestMetadata, ResponseMetadata, WalletRequest};
use crate::error::{ErrorResponse, WalletError};
use crate::http::AppState;
use crate::protocol::ids::{DeviceReferenceId, ProofingId, WalletCredentialId};
use crate::protocol::wallet::{
    AuthKey, Credential, DeviceEncryptionKey, MobileSecurityObject, ProofOfProvisioning,
    UserActionRequired,
};
use crate::service::wallet::copies::{self, MsoRequest};

/// Request of `provisionCredential`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionCredentialRequest {
    request_metadata: RequestMetadata,
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    device_reference_id: String,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    credential_id: String,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    proofing_id: String,
    /// Absent only in Google's sandbox onboarding (plaintext answer, if allowed).
    #[serde(default)]
    device_encryption_key: Option<DeviceEncryptionKey>,
}

/// Response of `provisionCredential`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionCredentialResponse {
    response_metadata: ResponseMetadata,
    credential: Credential,
    credential_version_id: String,
}

/// Request of `provisionMobileSecurityObjects`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionMsosRequest {
    request_metadata: RequestMetadata,
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    device_reference_id: String,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    credential_id: String,
    /// 1 to `wallet.max_auth_keys` (default 64) certificates.
    #[schema(min_items = 1, max_items = 64)]
    auth_keys: Vec<AuthKey>,
    /// Only on the first call after (re)provisioning; absent on refreshes.
    #[serde(default)]
    proof_of_provisioning: Option<ProofOfProvisioning>,
    #[serde(default)]
    device_encryption_key: Option<DeviceEncryptionKey>,
    credential_version_id: String,
}

/// Response of `provisionMobileSecurityObjects`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionMsosResponse {
    response_metadata: ResponseMetadata,
    mobile_security_objects: Vec<MobileSecurityObject>,
}

/// Request of `getCredentialStatus` and `notifyCredentialDeleted`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialRequest {
    request_metadata: RequestMetadata,
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    device_reference_id: String,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    credential_id: String,
}

/// `CredentialStatus`: one status member, and `userActionRequired` when the holder must act.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialStatusBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_action_required: Option<UserActionRequired>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    status: serde_json::Map<String, serde_json::Value>,
}

/// Response of `getCredentialStatus`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetCredentialStatusResponse {
    response_metadata: ResponseMetadata,
    credential_status: CredentialStatusBody,
    credential_version_id: String,
}

/// Response of `notifyCredentialDeleted`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifyCredentialDeletedResponse {
    response_metadata: ResponseMetadata,
}

macro_rules! has_metadata {
    ($($t:ty),*) => {$(
        impl HasMetadata for $t {
            fn metadata(&self) -> &RequestMetadata {
                &self.request_metadata
            }
        }
    )*};
}
has_metadata!(
    ProvisionCredentialRequest,
    ProvisionMsosRequest,
    CredentialRequest
);

/// `POST /v1/vdc/provisionCredential`
#[utoipa::path(
    post,
    path = "/provisionCredential",
    tag = "wallet",
    request_body = ProvisionCredentialRequest,
    responses(
        (status = 200, description = "The credential's current version, encrypted to the device (the same credentialId again returns the current version)", body = ProvisionCredentialResponse),
        (status = 400, description = "Malformed request", body = ErrorResponse),
        (status = 401, description = "deviceEncryptionKey not signed by the device's identity key (invalidPayloadSignature)", body = ErrorResponse),
        (status = 404, description = "Unregistered device, or a proofing that is unknown, of another device or not accepted (invalidIdentifier)", body = ErrorResponse),
        (status = 409, description = "The credential is revoked or deleted, or the credentialId is bound elsewhere (invalidState)", body = ErrorResponse),
    )
)]
pub async fn provision_credential(
    State(state): State<AppState>,
    request: WalletRequest<ProvisionCredentialRequest>,
) -> Result<Json<ProvisionCredentialResponse>, WalletError> {
    let body = &request.body;
    let device = request.id(DeviceReferenceId::parse(&body.device_reference_id))?;
    let id = request.id(WalletCredentialId::parse(&body.credential_id))?;
    let proofing = request.id(ProofingId::parse(&body.proofing_id))?;
    let key = body.device_encryption_key.as_ref();
    let (credential, version) =
        request.answer(copies::provision(&state.services, &device, &id, &proofing, key).await)?;
    Ok(Json(ProvisionCredentialResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
        credential,
        credential_version_id: version.to_string(),
    }))
}

/// `POST /v1/vdc/provisionMobileSecurityObjects`
#[utoipa::path(
    post,
    path = "/provisionMobileSecurityObjects",
    tag = "wallet",
    request_body = ProvisionMsosRequest,
    responses(
        (status = 200, description = "One MSO (Android static auth data) per auth key, each encrypted to the device", body = ProvisionMsosResponse),
        (status = 400, description = "Malformed request, auth keys or proofs (invalidFieldValue)", body = ErrorResponse),
        (status = 401, description = "A proof or auth key not signed by the device's identity key (invalidPayloadSignature)", body = ErrorResponse),
        (status = 404, description = "Unregistered device, or no such credential on it (invalidIdentifier)", body = ErrorResponse),
        (status = 409, description = "Stale credentialVersionId, revoked or deleted credential, refresh before any proof of provisioning (invalidState)", body = ErrorResponse),
    )
)]
pub async fn provision_mobile_security_objects(
    State(state): State<AppState>,
    request: WalletRequest<ProvisionMsosRequest>,
) -> Result<Json<ProvisionMsosResponse>, WalletError> {
    let body = &request.body;
    let device = request.id(DeviceReferenceId::parse(&body.device_reference_id))?;
    let id = request.id(WalletCredentialId::parse(&body.credential_id))?;
    let asked = MsoRequest {
        device: &device,
        id: &id,
        credential_version_id: &body.credential_version_id,
        auth_keys: &body.auth_keys,
        proof_of_provisioning: body.proof_of_provisioning.as_ref(),
        device_encryption_key: body.device_encryption_key.as_ref(),
    };
    let mobile_security_objects = request.answer(copies::certify(&state.services, asked).await)?;
    state.metrics.count_msos(mobile_security_objects.len());
    Ok(Json(ProvisionMsosResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
        mobile_security_objects,
    }))
}

/// `POST /v1/vdc/getCredentialStatus`
#[utoipa::path(
    post,
    path = "/getCredentialStatus",
    tag = "wallet",
    request_body = CredentialRequest,
    responses(
        (status = 200, description = "The copy's status and the credential's current version", body = GetCredentialStatusResponse),
        (status = 400, description = "Malformed request or unsupported API version", body = ErrorResponse),
        (status = 404, description = "No such credential on this device (invalidIdentifier)", body = ErrorResponse),
    )
)]
pub async fn get_credential_status(
    State(state): State<AppState>,
    request: WalletRequest<CredentialRequest>,
) -> Result<Json<GetCredentialStatusResponse>, WalletError> {
    let device = request.id(DeviceReferenceId::parse(&request.body.device_reference_id))?;
    let id = request.id(WalletCredentialId::parse(&request.body.credential_id))?;
    let report = request.answer(copies::status(&state.services, &device, &id).await)?;
    let mut member = serde_json::Map::new();
    member.insert(report.status.as_str().to_owned(), serde_json::json!({}));
    Ok(Json(GetCredentialStatusResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
        credential_status: CredentialStatusBody {
            user_action_required: report.user_action_required,
            status: member,
        },
        credential_version_id: report.current_version_id.to_string(),
    }))
}

/// `POST /v1/vdc/notifyCredentialDeleted`
#[utoipa::path(
    post,
    path = "/notifyCredentialDeleted",
    tag = "wallet",
    request_body = CredentialRequest,
    responses(
        (status = 200, description = "The deletion is recorded (also when it already was)", body = NotifyCredentialDeletedResponse),
        (status = 400, description = "Malformed request or unsupported API version", body = ErrorResponse),
        (status = 404, description = "No such credential on this device (invalidIdentifier)", body = ErrorResponse),
    )
)]
pub async fn notify_credential_deleted(
    State(state): State<AppState>,
    request: WalletRequest<CredentialRequest>,
) -> Result<Json<NotifyCredentialDeletedResponse>, WalletError> {
    let device = request.id(DeviceReferenceId::parse(&request.body.device_reference_id))?;
    let id = request.id(WalletCredentialId::parse(&request.body.credential_id))?;
    request.answer(copies::delete(&state.services, &device, &id).await)?;
    Ok(Json(NotifyCredentialDeletedResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
    }))
}
