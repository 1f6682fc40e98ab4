//! `GET /admin/v1/cert-processes`: what the certificate-provisioning adapter did, for operators
//! (state, the serial issued, the reason sent to the device, the last transient error). The
//! process snapshot (device serials, user emails) is not shown.

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Operator, Viewer};
use crate::error::{AdminError, AdminErrorBody};
use crate::http::json::{AdminJson, AdminQuery};
use crate::http::AppState;
use crate::store::{CertProcess, CertState};

/// Query of the listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CertProcessQuery {
    /// How many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Only this state: `received`, `claimed`, `signing`, `issuing`, `uploading`, `failing`,
    /// `done`, `failed` or `skipped`.
    #[param(
        pattern = "^(received|claimed|signing|issuing|uploading|failing|done|failed|skipped)$"
    )]
    state: Option<String>,
}

/// One process.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertProcessView {
    /// `customers/{customer}/certificateProvisioningProcesses/{id}`.
    name: String,
    state: String,
    /// Failed tries of the current step.
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    certificate_serial: Option<String>,
    /// The reason sent with setFailure (shown on the device).
    failure_message: Option<String>,
    /// Why the last try did not advance, or why the process was skipped.
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertProcessList {
    processes: Vec<CertProcessView>,
}

impl From<CertProcess> for CertProcessView {
    fn from(p: CertProcess) -> Self {
        Self {
            name: p.name,
            state: p.state.as_str().to_owned(),
            attempts: p.attempts,
            next_attempt_at: p.next_attempt_at,
            certificate_serial: p.certificate_serial,
            failure_message: p.failure_message,
            last_error: p.last_error,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// `GET /admin/v1/cert-processes` (viewer): Chrome certificate-provisioning processes.
#[utoipa::path(
    get, path = "/cert-processes", tag = "admin", security(("bearer" = [])),
    params(CertProcessQuery),
    responses((status = 200, body = CertProcessList), (status = 400, body = AdminErrorBody))
)]
pub async fn list_cert_processes(
    _: Viewer,
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<CertProcessQuery>,
) -> Result<AdminJson<CertProcessList>, AdminError> {
    let limit = super::page_limit(query.limit, 100, 500)?;
    let wanted = query
        .state
        .as_deref()
        .map(|s| {
            CertState::parse(s).map_err(|_| {
                AdminError::BadRequest(format!("state {s:?} is not a certificate process state"))
            })
        })
        .transpose()?;
    let processes =
        crate::store::cert_processes::list(&mut state.store().db(), wanted, limit).await?;
    Ok(AdminJson(CertProcessList {
        processes: processes.into_iter().map(CertProcessView::from).collect(),
    }))
}

/// Body of `POST /admin/v1/device-certificates/{serial}/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeDeviceCertificate {
    /// RFC 5280 CRLReason: `unspecified` (the default), `keyCompromise`, `affiliationChanged`,
    /// `superseded`, `cessationOfOperation` or `privilegeWithdrawn`.
    #[schema(
        pattern = "^(unspecified|keyCompromise|affiliationChanged|superseded|cessationOfOperation|privilegeWithdrawn)$"
    )]
    reason: Option<String>,
}

/// A revoked device certificate.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRevocationView {
    /// Serial number, upper-case hex.
    serial: String,
    /// The built-in CA connection that issued it.
    ca_connection: String,
    reason: String,
    /// When it was first revoked (revoking again changes nothing).
    revoked_at: DateTime<Utc>,
}

/// `POST /admin/v1/device-certificates/{serial}/revoke` (operator): revokes a certificate a
/// built-in device CA issued; the worker lists it in that CA's next CRL, within a minute.
#[utoipa::path(
    post, path = "/device-certificates/{serial}/revoke", tag = "admin", security(("bearer" = [])),
    params(("serial" = String, Path, pattern = "^[0-9A-Fa-f]{2,64}$", description = "Serial number, hex")),
    request_body = RevokeDeviceCertificate,
    responses(
        (status = 200, body = DeviceRevocationView),
        (status = 400, body = AdminErrorBody),
        (status = 404, description = "No process holds a certificate with this serial", body = AdminErrorBody),
        (status = 409, description = "Not issued by a built-in CA", body = AdminErrorBody),
    )
)]
pub async fn revoke_device_certificate(
    Operator(principal): Operator,
    State(state): State<AppState>,
    Path(serial): Path<String>,
    request_id: Option<axum::Extension<tower_http::request_id::RequestId>>,
    AdminJson(body): AdminJson<RevokeDeviceCertificate>,
) -> Result<AdminJson<DeviceRevocationView>, AdminError> {
    use crate::service::device_certs::{self, RevokeError};
    if serial.len() < 2 || serial.len() > 64 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AdminError::BadRequest(
            "serial must be 2 to 64 hexadecimal digits".into(),
        ));
    }
    let reason = body.reason.as_deref().unwrap_or("unspecified");
    if device_certs::crl_reason(reason).is_none() {
        return Err(AdminError::BadRequest(format!(
            "reason {reason:?} is not one of {}",
            device_certs::REASONS.map(|(name, _)| name).join(", ")
        )));
    }
    let actor = principal.actor();
    let builtin = &state.builtin_device_cas;
    let (revocation, new) = device_certs::revoke(
        &state.services.store,
        &state.services.clock,
        &serial,
        reason,
        |connection| builtin.iter().any(|b| b.as_str() == connection),
        super::provenance(&actor, &request_id),
    )
    .await
    .map_err(|e| match e {
        RevokeError::Unknown(_) => AdminError::NotFound(e.to_string()),
        RevokeError::NotBuiltin { .. } => AdminError::Conflict(e.to_string()),
        RevokeError::Store(e) => e.into(),
    })?;
    if new {
        tracing::info!(serial = %revocation.serial, ca = %revocation.ca_connection, reason = %revocation.reason, "device certificate revoked");
    }
    Ok(AdminJson(DeviceRevocationView {
        serial: revocation.serial,
        ca_connection: revocation.ca_connection,
        reason: revocation.reason,
        revoked_at: revocation.revoked_at,
    }))
}
