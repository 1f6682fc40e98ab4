//! `GET /admin/v1/cert-processes`: what the certificate-provisioning adapter did, for operators
//! (state, the serial issued, the reason sent to the device, the last transient error). The
//! process snapshot (device serials, user emails) is not shown.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Viewer;
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
