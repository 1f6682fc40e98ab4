//! The admin REST API for issuer staff, under `/admin/v1`. Every request carries an admin bearer
//! token ([`auth::Principal`]); every write is audited in the same transaction as the change.

pub mod auth;
mod bulk_updates;
pub mod cert_processes;
pub mod credentials;
pub mod journal;
pub mod proofings;
pub mod tokens;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::store::{Actor, Provenance};

/// Who made an admin request, and which request it was, for its audit entry.
pub(crate) fn provenance<'a>(
    actor: &'a Actor,
    request_id: &'a Option<axum::Extension<tower_http::request_id::RequestId>>,
) -> Provenance<'a> {
    Provenance {
        actor,
        request_id: request_id
            .as_ref()
            .and_then(|id| id.0.header_value().to_str().ok()),
    }
}

/// The page size a listing asked for (`default` when it did not), or 400 outside 1..=`max`.
pub(crate) fn page_limit(
    asked: Option<u32>,
    default: u32,
    max: u32,
) -> Result<u32, crate::error::AdminError> {
    let limit = asked.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(crate::error::AdminError::BadRequest(format!(
            "limit must be between 1 and {max}"
        )))
    }
}

/// Routes of the admin surface (nested under `/admin/v1`), with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(auth::get_whoami))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(
            credentials::list_credentials,
            credentials::create_credential
        ))
        .routes(routes!(
            credentials::get_credential,
            credentials::update_credential
        ))
        .routes(routes!(bulk_updates::start_bulk_update))
        .routes(routes!(bulk_updates::get_bulk_update))
        .routes(routes!(credentials::list_versions))
        .routes(routes!(credentials::list_devices))
        .routes(routes!(credentials::list_msos))
        .routes(routes!(credentials::revoke_credential))
        .routes(routes!(credentials::request_reverification))
        .routes(routes!(credentials::create_pre_authorized_code))
        .routes(routes!(proofings::list_proofings))
        .routes(routes!(proofings::get_proofing))
        .routes(routes!(proofings::review_proofing))
        .routes(routes!(journal::list_audit))
        .routes(routes!(journal::list_outbox))
        .routes(routes!(journal::retry_outbox_job))
        .routes(routes!(cert_processes::list_cert_processes))
        .routes(routes!(cert_processes::revoke_device_certificate))
}
