//! Proofing: the wire form of `proofUser`, `getProofingStatus` and `cancelProofing`
//! (spec/wallet-api.md §4.6–§4.8). The use cases are in `service::wallet::proofing`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::request::{HasMetadata, RequestMetadata, ResponseMetadata, WalletRequest};
use crate::domain::proofing::wire_status;
use crate::error::{ErrorResponse, WalletError};
use crate::http::AppState;
use crate::protocol::ids::{DeviceReferenceId, ProofingId};
use crate::service::wallet::proofing;

/// Request of `proofUser`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProofUserRequest {
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
    proofing_id: String,
    /// `ProofingEvidence` items: each an object with one member naming the kind of evidence.
    #[schema(value_type = Vec<Object>, min_items = 1, max_items = 16)]
    evidence: Vec<Value>,
    /// Present when the holder re-proofs an existing credential ([I] fields).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    reverification_context: Option<Value>,
}

impl HasMetadata for ProofUserRequest {
    fn metadata(&self) -> &RequestMetadata {
        &self.request_metadata
    }
}

/// Response of `proofUser`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProofUserResponse {
    response_metadata: ResponseMetadata,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    proofing_id: String,
}

/// Request of `getProofingStatus` and `cancelProofing`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProofingRequest {
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
    proofing_id: String,
}

impl HasMetadata for ProofingRequest {
    fn metadata(&self) -> &RequestMetadata {
        &self.request_metadata
    }
}

/// Response of `getProofingStatus`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetProofingStatusResponse {
    response_metadata: ResponseMetadata,
    /// One member: pending, accepted, rejected, challenged, canceled, revoked or expired.
    #[schema(value_type = Object)]
    proofing_status: Value,
}

/// Response of `cancelProofing`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelProofingResponse {
    response_metadata: ResponseMetadata,
}

/// `POST /v1/vdc/proofUser`
#[utoipa::path(
    post,
    path = "/proofUser",
    tag = "wallet",
    request_body = ProofUserRequest,
    responses(
        (status = 200, description = "The proofing is being processed (also for a repeated proofingId of the same device)", body = ProofUserResponse),
        (status = 400, description = "Malformed request or evidence; evidence that cannot be decrypted (invalidPayloadEncryption)", body = ErrorResponse),
        (status = 401, description = "Evidence whose device signature does not verify (invalidPayloadSignature)", body = ErrorResponse),
        (status = 404, description = "The device is not registered (invalidIdentifier)", body = ErrorResponse),
        (status = 409, description = "The proofingId belongs to another device (invalidState)", body = ErrorResponse),
    )
)]
pub async fn proof_user(
    State(state): State<AppState>,
    request: WalletRequest<ProofUserRequest>,
) -> Result<Json<ProofUserResponse>, WalletError> {
    let body = &request.body;
    let device = request.id(DeviceReferenceId::parse(&body.device_reference_id))?;
    let id = request.id(ProofingId::parse(&body.proofing_id))?;
    let context = body.reverification_context.as_ref();
    request
        .answer(proofing::record(&state.services, &device, &id, &body.evidence, context).await)?;
    Ok(Json(ProofUserResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
        proofing_id: id.to_string(),
    }))
}

/// `POST /v1/vdc/getProofingStatus`
#[utoipa::path(
    post,
    path = "/getProofingStatus",
    tag = "wallet",
    request_body = ProofingRequest,
    responses(
        (status = 200, description = "The proofing's status", body = GetProofingStatusResponse),
        (status = 400, description = "Malformed request or unsupported API version", body = ErrorResponse),
        (status = 404, description = "No such proofing for this device (invalidIdentifier)", body = ErrorResponse),
    )
)]
pub async fn get_proofing_status(
    State(state): State<AppState>,
    request: WalletRequest<ProofingRequest>,
) -> Result<Json<GetProofingStatusResponse>, WalletError> {
    let device = request.id(DeviceReferenceId::parse(&request.body.device_reference_id))?;
    let id = request.id(ProofingId::parse(&request.body.proofing_id))?;
    let found = request.answer(proofing::of_device(&state.services, &device, &id).await)?;
    Ok(Json(GetProofingStatusResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
        proofing_status: wire_status(found.status, found.status_detail.as_ref()),
    }))
}

/// `POST /v1/vdc/cancelProofing`
#[utoipa::path(
    post,
    path = "/cancelProofing",
    tag = "wallet",
    request_body = ProofingRequest,
    responses(
        (status = 200, description = "The proofing is canceled (also when it already was)", body = CancelProofingResponse),
        (status = 400, description = "Malformed request or unsupported API version", body = ErrorResponse),
        (status = 404, description = "No such proofing for this device (invalidIdentifier)", body = ErrorResponse),
        (status = 409, description = "The proofing is neither pending, challenged nor canceled (invalidState)", body = ErrorResponse),
    )
)]
pub async fn cancel_proofing(
    State(state): State<AppState>,
    request: WalletRequest<ProofingRequest>,
) -> Result<Json<CancelProofingResponse>, WalletError> {
    let device = request.id(DeviceReferenceId::parse(&request.body.device_reference_id))?;
    let id = request.id(ProofingId::parse(&request.body.proofing_id))?;
    request.answer(proofing::cancel(&state.services, &device, &id).await)?;
    Ok(Json(CancelProofingResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
    }))
}
