//! `/admin/v1/proofings`: issuer staff review the proofings Google submits (proofUser): list
//! them, read one with its evidence, approve it for a credential record, reject it for one of the
//! spec's reasons, challenge the user, or revoke an acceptance. Each decision is audited and
//! announced to Google (notifyProofingStatusUpdateAvailable) in the same transaction.

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_http::request_id::RequestId;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::{Operator, Viewer};
use crate::domain::proofing::{
    wire_status, Challenge, ProofingRecord, ProofingStatus, RejectionReason, Review,
};
use crate::error::{AdminError, AdminErrorBody};
use crate::http::json::{AdminJson, AdminQuery};
use crate::http::AppState;
use crate::protocol::ids::ProofingId;
use crate::service::proofings::{self, ReviewError};
use crate::store::proofings as stored;

fn no_such_proofing() -> AdminError {
    AdminError::NotFound("no such proofing".into())
}

/// A proofing as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProofingView {
    proofing_id: String,
    device_reference_id: String,
    status: ProofingStatus,
    /// The ProofingStatus union as getProofingStatus answers it.
    #[schema(value_type = Object)]
    wire_status: serde_json::Value,
    /// The record the proofing was approved for.
    credential_id: Option<Uuid>,
    /// Only when one proofing is read: the evidence as Google sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    evidence: Option<serde_json::Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ProofingView {
    fn of(record: ProofingRecord, with_evidence: bool) -> Self {
        Self {
            wire_status: wire_status(record.status, record.status_detail.as_ref()),
            proofing_id: record.proofing_id,
            device_reference_id: record.device_reference_id,
            status: record.status,
            credential_id: record.credential_id,
            evidence: with_evidence.then_some(record.evidence),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// Query of `GET /admin/v1/proofings`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProofingQuery {
    /// Only proofings in this status (e.g. `pending` for the review queue).
    status: Option<ProofingStatus>,
    /// How many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProofingList {
    proofings: Vec<ProofingView>,
}

/// `GET /admin/v1/proofings` (viewer): the review queue, oldest first, without evidence.
#[utoipa::path(
    get, path = "/proofings", tag = "admin", security(("bearer" = [])),
    params(ProofingQuery),
    responses((status = 200, body = ProofingList), (status = 400, body = AdminErrorBody))
)]
pub async fn list_proofings(
    _: Viewer,
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<ProofingQuery>,
) -> Result<AdminJson<ProofingList>, AdminError> {
    let limit = super::page_limit(query.limit, 100, 500)?;
    let records = stored::list(&mut state.store().db(), query.status, limit).await?;
    Ok(AdminJson(ProofingList {
        proofings: records
            .into_iter()
            .map(|r| ProofingView::of(r, false))
            .collect(),
    }))
}

/// `GET /admin/v1/proofings/{proofing_id}` (operator, since evidence holds personal data).
#[utoipa::path(
    get, path = "/proofings/{proofing_id}", tag = "admin", security(("bearer" = [])),
    params(("proofing_id" = String, Path)),
    responses((status = 200, body = ProofingView), (status = 404, body = AdminErrorBody))
)]
pub async fn get_proofing(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AdminJson<ProofingView>, AdminError> {
    let id = ProofingId::parse(&id).map_err(|_| no_such_proofing())?;
    let record = stored::get(&mut state.store().db(), &id)
        .await?
        .ok_or_else(no_such_proofing)?;
    Ok(AdminJson(ProofingView::of(record, true)))
}

/// Body of `POST /admin/v1/proofings/{proofing_id}/review`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "decision",
    deny_unknown_fields
)]
pub enum ReviewRequest {
    /// Accept the evidence for an active credential record.
    Approve {
        /// The record provisionCredential will serve for this proofing.
        #[serde(rename = "credentialId")]
        credential_id: Uuid,
    },
    /// Refuse, for one of the spec's reasons.
    Reject {
        /// The reason Google shows.
        reason: RejectionReason,
    },
    /// Ask the user for more.
    Challenge {
        /// What the user must do.
        challenge: Challenge,
    },
    /// Withdraw an acceptance. (A struct variant, so that unknown fields are refused.)
    Revoke {},
}

/// `POST /admin/v1/proofings/{proofing_id}/review` (operator): approve, reject, challenge or revoke.
#[utoipa::path(
    post, path = "/proofings/{proofing_id}/review", tag = "admin", security(("bearer" = [])),
    params(("proofing_id" = String, Path)),
    request_body = ReviewRequest,
    responses(
        (status = 200, body = ProofingView),
        (status = 400, description = "Malformed decision", body = AdminErrorBody),
        (status = 404, description = "No such proofing, or no such credential to approve it for", body = AdminErrorBody),
        (status = 409, description = "The proofing's status does not allow this decision, or the credential is not active", body = AdminErrorBody),
    )
)]
pub async fn review_proofing(
    Operator(principal): Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    AdminJson(body): AdminJson<ReviewRequest>,
) -> Result<AdminJson<ProofingView>, AdminError> {
    let (review, credential_id) = review_of(body)?;
    let actor = principal.actor();
    let by = super::provenance(&actor, &request_id);
    let id = ProofingId::parse(&id).map_err(|_| no_such_proofing())?;
    let services = &state.services;
    let record = proofings::review(
        &services.store,
        &services.clock,
        &id,
        &review,
        credential_id,
        by,
    )
    .await
    .map_err(review_error)?;
    tracing::info!(proofing.status = %record.status, "proofing reviewed");
    Ok(AdminJson(ProofingView::of(record, false)))
}

/// The decision a review request asks for, and the record an approval binds.
pub(crate) fn review_of(body: ReviewRequest) -> Result<(Review, Option<Uuid>), AdminError> {
    Ok(match body {
        ReviewRequest::Approve { credential_id } => (Review::Approve, Some(credential_id)),
        ReviewRequest::Reject { reason } => (Review::Reject(reason), None),
        ReviewRequest::Challenge { challenge } => {
            if let Challenge::IssuerUrlVisit { url } = &challenge {
                if !url.starts_with("https://") {
                    return Err(AdminError::BadRequest(
                        "the challenge URL must be https".into(),
                    ));
                }
            }
            (Review::Challenge(challenge), None)
        }
        ReviewRequest::Revoke {} => (Review::Revoke, None),
    })
}

/// A review that could not be made, as the admin API answers it.
pub(crate) fn review_error(error: ReviewError) -> AdminError {
    match error {
        ReviewError::NotFound => no_such_proofing(),
        ReviewError::NoSuchCredential => AdminError::NotFound(error.to_string()),
        ReviewError::CredentialNotActive | ReviewError::Illegal(_) => {
            AdminError::Conflict(error.to_string())
        }
        ReviewError::Store(store) => store.into(),
    }
}
