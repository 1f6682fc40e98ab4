//! `/admin/v1/credentials`: issuer staff create, read, list, edit and revoke credential records.
//! Edits need `If-Match` with the record's ETag (its version number), so two clerks cannot
//! overwrite each other; every change is audited and queued for Google in the same transaction.

use axum::extract::{Path, State};
use axum::http::header::{ETAG, IF_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_http::request_id::RequestId;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::{Operator, Viewer};
use super::provenance;
use crate::domain::credential::{CredentialRecord, CredentialStatus, CredentialVersion};
use crate::domain::wallet_credential as lifecycle;
use crate::error::{AdminError, AdminErrorBody};
use crate::http::json::{AdminJson, AdminQuery};
use crate::http::AppState;
use crate::service::credentials::{self as records, ChangeError, NewHolderData, Update};
use crate::store::{copies, credentials, CredentialFilter};

/// A credential record as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    credential_id: Uuid,
    doc_type: String,
    status: CredentialStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_reason: Option<String>,
    /// The credentialVersionId provisionCredential serves.
    current_version_id: Uuid,
    /// 1 for the first version; also the ETag.
    version_number: i32,
    /// `{ namespace: { element: value } }`.
    #[schema(value_type = Object)]
    holder_data: serde_json::Value,
    /// When staff last asked the holder to verify their identity again.
    #[serde(skip_serializing_if = "Option::is_none")]
    reverification_requested_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<CredentialRecord> for CredentialView {
    fn from(r: CredentialRecord) -> Self {
        Self {
            credential_id: r.credential_id,
            doc_type: r.doc_type,
            status: r.status,
            status_reason: r.status_reason,
            current_version_id: r.current_version_id,
            version_number: r.current_version_number,
            holder_data: r.holder_data,
            reverification_requested_at: r.reverification_requested_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn etag(version: i32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\""))
        .expect("a quoted number is a valid header value")
}

fn with_etag(status: StatusCode, record: CredentialRecord) -> Response {
    let tag = etag(record.current_version_number);
    let mut response = (status, AdminJson(CredentialView::from(record))).into_response();
    response.headers_mut().insert(ETAG, tag);
    response
}

fn parse_id(raw: &str) -> Result<Uuid, AdminError> {
    Uuid::parse_str(raw).map_err(|_| AdminError::NotFound("no such credential".into()))
}

pub(crate) fn change_error(error: ChangeError) -> AdminError {
    match error {
        ChangeError::NotFound => AdminError::NotFound("no such credential".into()),
        ChangeError::VersionMismatch { current } => AdminError::PreconditionFailed(format!(
            "the credential changed since it was read: it is at version {current} (ETag \"{current}\"); read it again"
        )),
        ChangeError::Illegal(illegal) => AdminError::Conflict(illegal.to_string()),
        ChangeError::Store(store) => store.into(),
    }
}

/// Body of `POST /admin/v1/credentials`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCredential {
    /// A configured doc type, e.g. `org.iso.18013.5.1.mDL`.
    #[schema(min_length = 1)]
    doc_type: String,
    /// `{ namespace: { element: value } }`, validated against the doc type.
    #[schema(value_type = Object)]
    holder_data: serde_json::Value,
}

/// `POST /admin/v1/credentials`: create a record (operator).
#[utoipa::path(
    post, path = "/credentials", tag = "admin", security(("bearer" = [])),
    request_body = CreateCredential,
    responses(
        (status = 201, body = CredentialView, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Unknown doc type or invalid holder data; the message names the element", body = AdminErrorBody),
        (status = 403, description = "Needs the operator role", body = AdminErrorBody),
    )
)]
pub async fn create_credential(
    Operator(principal): Operator,
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    AdminJson(body): AdminJson<CreateCredential>,
) -> Result<Response, AdminError> {
    records::check_holder_data(&state.services.doc_types, &body.doc_type, &body.holder_data)
        .map_err(AdminError::invalid_holder_data)?;
    let actor = principal.actor();
    let record = records::create(
        state.store(),
        &body.doc_type,
        &body.holder_data,
        provenance(&actor, &request_id),
    )
    .await?;
    tracing::info!(credential_id = %record.credential_id, doc_type = %record.doc_type, "credential created");
    let location =
        HeaderValue::from_str(&format!("/admin/v1/credentials/{}", record.credential_id))
            .expect("a UUID path is a valid header value");
    let mut response = with_etag(StatusCode::CREATED, record);
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

/// `GET /admin/v1/credentials/{credential_id}` (viewer).
#[utoipa::path(
    get, path = "/credentials/{credential_id}", tag = "admin", security(("bearer" = [])),
    params(("credential_id" = Uuid, Path)),
    responses((status = 200, body = CredentialView, headers(("ETag" = String))), (status = 404, body = AdminErrorBody))
)]
pub async fn get_credential(
    _: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let record = credentials::get(&mut state.store().db(), parse_id(&id)?)
        .await?
        .ok_or_else(|| AdminError::NotFound("no such credential".into()))?;
    Ok(with_etag(StatusCode::OK, record))
}

/// Query of `GET /admin/v1/credentials`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    /// Only records in this status.
    status: Option<CredentialStatus>,
    /// Only records of this doc type.
    #[param(min_length = 1)]
    doc_type: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// `nextCursor` of the previous page.
    cursor: Option<Uuid>,
}

/// A page of records.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialPage {
    credentials: Vec<CredentialView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<Uuid>,
}

/// `GET /admin/v1/credentials` (viewer): records in creation order, filtered, a page at a time.
#[utoipa::path(
    get, path = "/credentials", tag = "admin", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = CredentialPage), (status = 400, body = AdminErrorBody))
)]
pub async fn list_credentials(
    _: Viewer,
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<ListQuery>,
) -> Result<AdminJson<CredentialPage>, AdminError> {
    let limit = super::page_limit(query.limit, 50, 200)?;
    if query.doc_type.as_deref() == Some("") {
        return Err(AdminError::BadRequest("docType must not be empty".into()));
    }
    // One more than asked tells whether another page exists.
    let filter = CredentialFilter {
        status: query.status,
        doc_type: query.doc_type,
        after: query.cursor,
        limit: limit + 1,
    };
    let mut records = credentials::list(&mut state.store().db(), &filter).await?;
    let next_cursor = if records.len() > limit as usize {
        records.truncate(limit as usize);
        records.last().map(|r| r.credential_id)
    } else {
        None
    };
    Ok(AdminJson(CredentialPage {
        credentials: records.into_iter().map(CredentialView::from).collect(),
        next_cursor,
    }))
}

/// Body of `PATCH /admin/v1/credentials/{credential_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateCredential {
    /// The complete new holder data (it replaces the current version's).
    #[schema(value_type = Object)]
    holder_data: serde_json::Value,
}

/// The `If-Match` header of an update (428 when absent).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[expect(
    dead_code,
    reason = "documents the header in OpenAPI; the handler reads HeaderMap"
)]
pub struct IfMatch {
    /// The ETag of the version read, e.g. `"3"` (weak tags `W/"3"` match too).
    #[param(rename = "If-Match", pattern = "^(W/)?\"[0-9]+\"$")]
    if_match: Option<String>,
}

fn expected_version(headers: &HeaderMap) -> Result<i32, AdminError> {
    let value = headers
        .get(IF_MATCH)
        .ok_or(AdminError::PreconditionRequired)?;
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            AdminError::BadRequest("If-Match must be the ETag of the credential, e.g. \"3\"".into())
        })
}

/// `PATCH /admin/v1/credentials/{credential_id}` (operator): new holder data as a new version.
#[utoipa::path(
    patch, path = "/credentials/{credential_id}", tag = "admin", security(("bearer" = [])),
    params(("credential_id" = Uuid, Path), IfMatch),
    request_body = UpdateCredential,
    responses(
        (status = 200, body = CredentialView, headers(("ETag" = String))),
        (status = 400, description = "Invalid holder data; the message names the element", body = AdminErrorBody),
        (status = 404, body = AdminErrorBody),
        (status = 409, description = "The record is revoked", body = AdminErrorBody),
        (status = 412, description = "Someone changed the record since it was read", body = AdminErrorBody),
        (status = 428, description = "If-Match is missing", body = AdminErrorBody),
    )
)]
pub async fn update_credential(
    Operator(principal): Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
    AdminJson(body): AdminJson<UpdateCredential>,
) -> Result<Response, AdminError> {
    let id = parse_id(&id)?;
    let expected = expected_version(&headers)?;
    let current = credentials::get(&mut state.store().db(), id)
        .await?
        .ok_or_else(|| AdminError::NotFound("no such credential".into()))?;
    records::check_holder_data(
        &state.services.doc_types,
        &current.doc_type,
        &body.holder_data,
    )
    .map_err(AdminError::invalid_holder_data)?;
    let actor = principal.actor();
    let new = NewHolderData {
        credential_id: id,
        expected_version: expected,
        holder_data: &body.holder_data,
    };
    let services = &state.services;
    match records::update(
        &services.store,
        &services.clock,
        &services.doc_types,
        new,
        provenance(&actor, &request_id),
    )
    .await
    .map_err(change_error)?
    {
        Update::Changed(record) => {
            tracing::info!(credential_id = %id, version = record.current_version_number, "credential updated");
            Ok(with_etag(StatusCode::OK, record))
        }
        Update::Unchanged(record) => {
            tracing::info!(credential_id = %id, "credential update carried the current data; nothing changed");
            Ok(with_etag(StatusCode::OK, record))
        }
    }
}

/// A version as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionView {
    credential_version_id: Uuid,
    version_number: i32,
    #[schema(value_type = Object)]
    holder_data: serde_json::Value,
    /// Admin token that wrote it.
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// Every version of a record, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    versions: Vec<VersionView>,
}

/// `GET /admin/v1/credentials/{credential_id}/versions` (viewer).
#[utoipa::path(
    get, path = "/credentials/{credential_id}/versions", tag = "admin", security(("bearer" = [])),
    params(("credential_id" = Uuid, Path)),
    responses((status = 200, body = VersionList), (status = 404, body = AdminErrorBody))
)]
pub async fn list_versions(
    _: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AdminJson<VersionList>, AdminError> {
    let versions = credentials::list_versions(&mut state.store().db(), parse_id(&id)?).await?;
    if versions.is_empty() {
        return Err(AdminError::NotFound("no such credential".into()));
    }
    let view = |v: CredentialVersion| VersionView {
        credential_version_id: v.credential_version_id,
        version_number: v.version_number,
        holder_data: v.holder_data,
        created_by: v.created_by,
        created_at: v.created_at,
    };
    Ok(AdminJson(VersionList {
        versions: versions.into_iter().map(view).collect(),
    }))
}

/// Body of `POST /admin/v1/credentials/{credential_id}/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeCredential {
    /// Why, for the record (1 to 500 characters; not shown to the holder).
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    reason: String,
}

/// A revocation's reason, trimmed: 1 to 500 characters.
pub(crate) fn revocation_reason(raw: &str) -> Result<&str, AdminError> {
    let reason = raw.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AdminError::BadRequest(
            "reason must be 1 to 500 characters".into(),
        ));
    }
    Ok(reason)
}

/// `POST /admin/v1/credentials/{credential_id}/revoke` (operator): final; Google is told.
#[utoipa::path(
    post, path = "/credentials/{credential_id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("credential_id" = Uuid, Path)),
    request_body = RevokeCredential,
    responses(
        (status = 200, body = CredentialView),
        (status = 400, body = AdminErrorBody),
        (status = 404, body = AdminErrorBody),
        (status = 409, description = "Already revoked", body = AdminErrorBody),
    )
)]
pub async fn revoke_credential(
    Operator(principal): Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    AdminJson(body): AdminJson<RevokeCredential>,
) -> Result<Response, AdminError> {
    let id = parse_id(&id)?;
    let reason = revocation_reason(&body.reason)?;
    let actor = principal.actor();
    let services = &state.services;
    let record = records::revoke(
        &services.store,
        &services.clock,
        id,
        reason,
        provenance(&actor, &request_id),
    )
    .await
    .map_err(change_error)?;
    tracing::info!(credential_id = %id, "credential revoked");
    Ok(with_etag(StatusCode::OK, record))
}

/// A device copy as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    /// Google's credentialId for this copy.
    wallet_credential_id: String,
    device_reference_id: String,
    /// provisionPending, active, revoked or deleted.
    status: String,
    provisioned_version_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// The device copies of a record.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    devices: Vec<DeviceView>,
}

/// `GET /admin/v1/credentials/{credential_id}/devices` (viewer): the Wallet copies of a record.
#[utoipa::path(
    get, path = "/credentials/{credential_id}/devices", tag = "admin", security(("bearer" = [])),
    params(("credential_id" = Uuid, Path)),
    responses((status = 200, body = DeviceList), (status = 404, body = AdminErrorBody))
)]
pub async fn list_devices(
    _: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AdminJson<DeviceList>, AdminError> {
    let record = credentials::get(&mut state.store().db(), parse_id(&id)?)
        .await?
        .ok_or_else(|| AdminError::NotFound("no such credential".into()))?;
    let copies = copies::list(&mut state.store().db(), record.credential_id).await?;
    let devices = copies
        .into_iter()
        .map(|c| DeviceView {
            status: copy_status(&record, &c).to_owned(),
            wallet_credential_id: c.wallet_credential_id,
            device_reference_id: c.device_reference_id,
            provisioned_version_id: c.provisioned_version_id,
            created_at: c.created_at,
        })
        .collect();
    Ok(AdminJson(DeviceList { devices }))
}

/// What Google sees for `copy` on getCredentialStatus, derived as the Wallet API derives it.
pub(crate) fn copy_status(record: &CredentialRecord, copy: &copies::WalletCopy) -> &'static str {
    let lifecycle_record = lifecycle::Record {
        revoked: record.status == CredentialStatus::Revoked,
        current: record.current_version_id,
    };
    lifecycle::status(&copy.state(), &lifecycle_record).as_str()
}

/// An issued MSO as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MsoView {
    mso_issuance_id: Uuid,
    credential_version_id: Uuid,
    version_number: i32,
    device_reference_id: String,
    /// Hex SHA-256 of the device auth key.
    auth_key_sha256: String,
    ds_key_id: String,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    issued_at: DateTime<Utc>,
}

/// MSOs issued for a record, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MsoList {
    msos: Vec<MsoView>,
}

/// `GET /admin/v1/credentials/{credential_id}/msos` (viewer): the latest 500 MSOs issued for it.
#[utoipa::path(
    get, path = "/credentials/{credential_id}/msos", tag = "admin", security(("bearer" = [])),
    params(("credential_id" = Uuid, Path)),
    responses((status = 200, body = MsoList), (status = 404, body = AdminErrorBody))
)]
pub async fn list_msos(
    _: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AdminJson<MsoList>, AdminError> {
    let id = existing(&state, &id).await?;
    let issued = copies::list_msos(&mut state.store().db(), id, 500).await?;
    let msos = issued
        .into_iter()
        .map(|m| MsoView {
            mso_issuance_id: m.mso_issuance_id,
            credential_version_id: m.credential_version_id,
            version_number: m.version_number,
            device_reference_id: m.device_reference_id,
            auth_key_sha256: hex::encode(m.auth_key_sha256),
            ds_key_id: m.ds_key_id,
            valid_from: m.valid_from,
            valid_until: m.valid_until,
            issued_at: m.created_at,
        })
        .collect();
    Ok(AdminJson(MsoList { msos }))
}

/// The id of an existing record, or 404.
async fn existing(state: &AppState, raw: &str) -> Result<Uuid, AdminError> {
    let id = parse_id(raw)?;
    match credentials::get(&mut state.store().db(), id).await? {
        Some(_) => Ok(id),
        None => Err(AdminError::NotFound("no such credential".into())),
    }
}

/// `POST /admin/v1/credentials/{credential_id}/request-reverification` (operator): ask the holder
/// to prove their identity again; every device copy is notified and Google shows the holder the
/// action to take (userActionRequired) on its next getCredentialStatus.
#[utoipa::path(
    post, path = "/credentials/{credential_id}/request-reverification", tag = "admin", security(("bearer" = [])),
    params(("credential_id" = Uuid, Path)),
    responses(
        (status = 200, body = CredentialView),
        (status = 404, body = AdminErrorBody),
        (status = 409, description = "The record is revoked", body = AdminErrorBody),
    )
)]
pub async fn request_reverification(
    Operator(principal): Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Result<Response, AdminError> {
    let id = parse_id(&id)?;
    let actor = principal.actor();
    let services = &state.services;
    let record = records::request_reverification(
        &services.store,
        &services.clock,
        id,
        provenance(&actor, &request_id),
    )
    .await
    .map_err(change_error)?;
    tracing::info!(credential_id = %id, "reverification requested");
    Ok(with_etag(StatusCode::OK, record))
}

/// Default and longest lifetime of a pre-authorized code ([I]).
pub(crate) const CODE_TTL_DEFAULT_SECS: u64 = 7 * 86_400;
const CODE_TTL_MAX_SECS: u64 = 30 * 86_400;

/// Body of `POST /admin/v1/credentials/{credential_id}/pre-authorized-codes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePreAuthorizedCode {
    /// Seconds the code stays usable: default 7 days, at most 30.
    #[schema(minimum = 1, maximum = 2592000)]
    #[serde(default, deserialize_with = "crate::http::json::whole_number")]
    ttl_secs: Option<u64>,
}

/// A new pre-authorized code: shown once, only its hash is kept.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreAuthorizedCodeView {
    /// The code to hand the holder (it reaches Brevet as proofUser's `preAuthorizedCode` evidence).
    code: String,
    /// When it stops being usable.
    expires_at: DateTime<Utc>,
}

/// `POST /admin/v1/credentials/{credential_id}/pre-authorized-codes` (operator): a one-time code
/// for the holder of an active record; a proofUser carrying it is accepted for this record
/// without review (issuer-initiated provisioning).
#[utoipa::path(
    post, path = "/credentials/{credential_id}/pre-authorized-codes", tag = "admin", security(("bearer" = [])),
    params(("credential_id" = Uuid, Path)),
    request_body = CreatePreAuthorizedCode,
    responses(
        (status = 201, body = PreAuthorizedCodeView),
        (status = 400, body = AdminErrorBody),
        (status = 404, body = AdminErrorBody),
        (status = 409, description = "The record is revoked", body = AdminErrorBody),
    )
)]
pub async fn create_pre_authorized_code(
    Operator(principal): Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    AdminJson(body): AdminJson<CreatePreAuthorizedCode>,
) -> Result<Response, AdminError> {
    let id = parse_id(&id)?;
    let ttl = body.ttl_secs.unwrap_or(CODE_TTL_DEFAULT_SECS);
    if ttl == 0 || ttl > CODE_TTL_MAX_SECS {
        return Err(AdminError::BadRequest(format!(
            "ttlSecs must be 1 to {CODE_TTL_MAX_SECS}"
        )));
    }
    let actor = principal.actor();
    let services = &state.services;
    let records::PreAuthorizedCode { code, expires_at } = records::create_pre_authorized_code(
        &services.store,
        &services.clock,
        id,
        std::time::Duration::from_secs(ttl),
        provenance(&actor, &request_id),
    )
    .await
    .map_err(change_error)?;
    tracing::info!(credential_id = %id, "pre-authorized code created");
    Ok((
        StatusCode::CREATED,
        AdminJson(PreAuthorizedCodeView { code, expires_at }),
    )
        .into_response())
}
