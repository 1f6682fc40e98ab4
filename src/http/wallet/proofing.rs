//! Proofing (spec/wallet-api.md §4.6–§4.8): `proofUser` records evidence for issuer staff to
//! review, `getProofingStatus` reports the decision, `cancelProofing` withdraws a proofing.
//!
//! Evidence encrypted to Brevet's hybrid key is opened and its device signature checked before it
//! is stored; evidence of a kind Brevet does not know is stored as received (spec §4.6).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::crypto::{answer, identity_key, internal, open_from_device, refuse};
use super::device::check_device_reference_id;
use super::request::{HasMetadata, RequestMetadata, ResponseMetadata, WalletRequest};
use crate::domain::credential::CredentialStatus;
use crate::domain::proofing::{self, wire_status, ProofingRecord, ProofingStatus, Review};
use crate::error::{ErrorResponse, WalletError, WalletErrorKind as K};
use crate::http::AppState;
use crate::protocol::wallet::{self as wire, EncryptedData};
use crate::store::{Actor, ProofingInsert, Provenance, ReviewError};

/// Longest proofingId accepted ([I]; Google's are UUIDs).
const MAX_PROOFING_ID: usize = 256;
/// Most evidence items in one proofUser ([I]).
const MAX_EVIDENCE: usize = 16;

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

fn check_proofing_id(id: &str) -> Result<(), WalletError> {
    if id.trim().is_empty() || id.len() > MAX_PROOFING_ID || id.chars().any(char::is_control) {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("proofingId must be 1 to {MAX_PROOFING_ID} printable characters"),
        ));
    }
    Ok(())
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
    let request_id = request.request_id().to_owned();
    check_device_reference_id(&request, &request.body.device_reference_id)?;
    answer(&request_id, record(&state, &request.body).await)?;
    Ok(Json(ProofUserResponse {
        response_metadata: ResponseMetadata::answering(&request_id),
        proofing_id: request.body.proofing_id,
    }))
}

async fn record(state: &AppState, body: &ProofUserRequest) -> Result<(), WalletError> {
    check_proofing_id(&body.proofing_id)?;
    let device = state.store.get_device(&body.device_reference_id).await?;
    let identity = identity_key(device.as_ref())?;
    if body.evidence.is_empty() || body.evidence.len() > MAX_EVIDENCE {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("evidence must hold 1 to {MAX_EVIDENCE} items"),
        ));
    }
    let mut stored = Vec::with_capacity(body.evidence.len() + 1);
    for (index, item) in body.evidence.iter().enumerate() {
        stored.push(open_evidence(state, &identity, index, item)?);
    }
    if let Some(context) = &body.reverification_context {
        stored.push(serde_json::json!({ "reverificationContext": context }));
    }
    match state
        .store
        .record_proofing(
            &body.proofing_id,
            &body.device_reference_id,
            &Value::Array(stored),
        )
        .await?
    {
        ProofingInsert::Created(_) | ProofingInsert::Existing(_) => {}
        ProofingInsert::OtherDevice => {
            return Err(refuse(
                K::InvalidState,
                "this proofingId belongs to another deviceReferenceId",
            ))
        }
    }
    redeem_code(state, body).await
}

/// A `preAuthorizedCode` staff handed out accepts the proofing at once for the code's record
/// (issuer-initiated provisioning). An unknown, used or expired code leaves the proofing pending
/// for staff, who see the evidence; the code itself is never logged.
async fn redeem_code(state: &AppState, body: &ProofUserRequest) -> Result<(), WalletError> {
    use sha2::Digest;
    let Some(code) = body
        .evidence
        .iter()
        .find_map(|item| item.get(wire::PRE_AUTHORIZED_CODE)?.as_str())
    else {
        return Ok(());
    };
    let hash: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
    let Some(record_id) = state
        .store
        .redeem_pre_authorized_code(&hash, &body.proofing_id)
        .await?
    else {
        tracing::info!(proofing_id = %body.proofing_id, "pre-authorized code not valid; the proofing waits for review");
        return Ok(());
    };
    let active = state
        .store
        .get_credential(record_id)
        .await?
        .is_some_and(|r| r.status == CredentialStatus::Active);
    if !active {
        tracing::info!(proofing_id = %body.proofing_id, "pre-authorized code of a revoked credential; the proofing waits for review");
        return Ok(());
    }
    let system = Actor::System;
    let by = Provenance {
        actor: &system,
        request_id: None,
    };
    match state
        .store
        .review_proofing(&body.proofing_id, &Review::Approve, Some(record_id), by)
        .await
    {
        Ok(_) => {
            tracing::info!(proofing_id = %body.proofing_id, credential_id = %record_id, "proofing accepted with a pre-authorized code");
            Ok(())
        }
        // A retry of a proofUser that was already accepted.
        Err(ReviewError::Illegal(_)) => Ok(()),
        Err(ReviewError::NotFound) => Err(internal("the proofing just recorded is gone")),
        Err(ReviewError::Store(e)) => Err(e.into()),
    }
}

/// One evidence item as stored: encrypted members opened (plaintext in base64), others as sent.
fn open_evidence(
    state: &AppState,
    identity: &p256::ecdsa::VerifyingKey,
    index: usize,
    item: &Value,
) -> Result<Value, WalletError> {
    let member = match item.as_object() {
        Some(map) if map.len() == 1 => map.iter().next(),
        _ => None,
    };
    let Some((name, value)) = member else {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("evidence[{index}] must be an object with exactly one member"),
        ));
    };
    if name == wire::PRE_AUTHORIZED_CODE {
        let Some(code) = value.as_str() else {
            return Err(refuse(
                K::InvalidFieldValue,
                format!("evidence[{index}].preAuthorizedCode must be a string"),
            ));
        };
        // Stored as its hash: a code is a bearer secret until it is used.
        use sha2::Digest;
        return Ok(
            serde_json::json!({ name: { "sha256": hex::encode(sha2::Sha256::digest(code.as_bytes())) } }),
        );
    }
    let Some(context) = wire::evidence_context(name) else {
        return Ok(item.clone());
    };
    let data: EncryptedData = serde_json::from_value(value.clone()).map_err(|e| {
        refuse(
            K::InvalidFieldValue,
            format!("evidence[{index}].{name} is not EncryptedData: {e}"),
        )
    })?;
    let plaintext = open_from_device(
        &state.wallet,
        identity,
        &format!("evidence[{index}].{name}"),
        context,
        &data,
    )?;
    let mut opened = Map::new();
    opened.insert(
        name.clone(),
        serde_json::json!({ "decrypted": wire::encode(&plaintext), "recipientKeyId": data.recipient_key_id }),
    );
    Ok(Value::Object(opened))
}

async fn proofing_of_device(
    state: &AppState,
    body: &ProofingRequest,
) -> Result<ProofingRecord, WalletError> {
    check_proofing_id(&body.proofing_id)?;
    match state.store.get_proofing(&body.proofing_id).await? {
        Some(p) if p.device_reference_id == body.device_reference_id => Ok(p),
        _ => Err(refuse(
            K::InvalidIdentifier,
            "no proofing with this proofingId for this deviceReferenceId",
        )),
    }
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
    let request_id = request.request_id().to_owned();
    check_device_reference_id(&request, &request.body.device_reference_id)?;
    let proofing = answer(&request_id, proofing_of_device(&state, &request.body).await)?;
    Ok(Json(GetProofingStatusResponse {
        response_metadata: ResponseMetadata::answering(&request_id),
        proofing_status: wire_status(proofing.status, proofing.status_detail.as_ref()),
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
    let request_id = request.request_id().to_owned();
    check_device_reference_id(&request, &request.body.device_reference_id)?;
    answer(&request_id, cancel(&state, &request.body).await)?;
    Ok(Json(CancelProofingResponse {
        response_metadata: ResponseMetadata::answering(&request_id),
    }))
}

async fn cancel(state: &AppState, body: &ProofingRequest) -> Result<(), WalletError> {
    // A staff decision may land between the read and the write: then decide again.
    for _ in 0..3 {
        let current = proofing_of_device(state, body).await?;
        let next =
            proofing::cancel(current.status).map_err(|e| refuse(K::InvalidState, e.to_string()))?;
        if current.status == next
            || state
                .store
                .set_proofing_status(&body.proofing_id, current.status, ProofingStatus::Canceled)
                .await?
        {
            return Ok(());
        }
    }
    Err(refuse(
        K::InvalidState,
        "the proofing is changing; try again",
    ))
}
