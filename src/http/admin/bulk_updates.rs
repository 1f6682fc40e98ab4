//! `/admin/v1/credentials/bulk-updates`: staff change many records at once with one JSON merge
//! of holder-data elements (a filter or a list of ids), worked on in the background in bounded
//! batches, each changed record audited as its own version; progress is read back by id.

use axum::extract::{Path, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_http::request_id::RequestId;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Operator, Viewer};
use crate::config::{bulk_pace_allowed, MAX_BULK_RECORDS_PER_SEC, MIN_BULK_RECORDS_PER_SEC};
use crate::domain::credential::CredentialStatus;
use crate::error::{AdminError, AdminErrorBody};
use crate::http::json::AdminJson;
use crate::http::AppState;
use crate::service::bulk_updates::{self as service, Selection};
use crate::store::bulk_updates::{self as stored, BulkUpdate};

/// Most ids in one bulk update's list (a filter has no limit).
const MAX_IDS: usize = 100_000;

/// Body of `POST /admin/v1/credentials/bulk-updates`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartBulkUpdate {
    /// These records (at most 100,000); or leave out and filter.
    credential_ids: Option<Vec<Uuid>>,
    /// Every record of this doc type.
    doc_type: Option<String>,
    /// Every record in this status (a revoked record cannot change: it would fail).
    status: Option<CredentialStatus>,
    /// `{ namespace: { element: value } }`; `null` removes an element (JSON Merge Patch).
    #[schema(value_type = Object)]
    merge: serde_json::Value,
    /// Records to change per second: 0 for as fast as the store allows, else 10 to 100,000.
    /// Left out: the operator's `bulk_update.records_per_sec`. A slower pace leaves the
    /// database room for the Wallet API while the change and its notifications run.
    records_per_second: Option<u32>,
}

/// A bulk update and its progress.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkUpdateView {
    bulk_update_id: Uuid,
    /// `running` or `done`.
    state: String,
    #[schema(value_type = Object)]
    selection: serde_json::Value,
    #[schema(value_type = Object)]
    merge: serde_json::Value,
    /// Records the selection matched when it started.
    total: i32,
    /// Records handled so far.
    selected: i32,
    /// Records that got a new version (and their device copies a notification).
    changed: i32,
    /// Records the merge left as they were.
    unchanged: i32,
    /// Records that could not be changed; the first are in `problems`.
    failed: i32,
    #[schema(value_type = Vec<Object>)]
    problems: serde_json::Value,
    /// Records changed per second; 0: as fast as the store allows.
    records_per_second: i32,
    /// The token that asked.
    actor: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<BulkUpdate> for BulkUpdateView {
    fn from(b: BulkUpdate) -> Self {
        Self {
            bulk_update_id: b.bulk_update_id,
            state: b.state,
            selection: b.selection,
            merge: b.merge,
            total: b.total,
            selected: b.selected,
            changed: b.changed,
            unchanged: b.unchanged,
            failed: b.failed,
            problems: b.problems,
            records_per_second: b.records_per_sec,
            actor: b.actor,
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

fn check_merge(merge: &serde_json::Value) -> Result<(), AdminError> {
    let bad = || {
        AdminError::BadRequest(
            "merge must be an object of namespaces, each an object of elements".into(),
        )
    };
    let namespaces = merge
        .as_object()
        .filter(|m| !m.is_empty())
        .ok_or_else(bad)?;
    if namespaces.values().all(serde_json::Value::is_object) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `POST /admin/v1/credentials/bulk-updates` (operator): starts a bulk update.
#[utoipa::path(
    post, path = "/credentials/bulk-updates", tag = "admin", security(("bearer" = [])),
    request_body = StartBulkUpdate,
    responses(
        (status = 202, description = "Queued; follow its progress at Location", body = BulkUpdateView),
        (status = 400, description = "No selection, both a list and a filter, a malformed merge or a pace out of range", body = AdminErrorBody),
        (status = 403, description = "Needs the operator role", body = AdminErrorBody),
    )
)]
pub async fn start_bulk_update(
    Operator(principal): Operator,
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    AdminJson(body): AdminJson<StartBulkUpdate>,
) -> Result<Response, AdminError> {
    check_merge(&body.merge)?;
    let records_per_sec = body
        .records_per_second
        .unwrap_or(state.services.bulk_records_per_sec);
    if !bulk_pace_allowed(records_per_sec) {
        return Err(AdminError::BadRequest(format!(
            "recordsPerSecond must be 0 (as fast as the store allows) or between {MIN_BULK_RECORDS_PER_SEC} and {MAX_BULK_RECORDS_PER_SEC}"
        )));
    }
    let selection = match (body.credential_ids, body.doc_type, body.status) {
        (Some(ids), None, None) if !ids.is_empty() && ids.len() <= MAX_IDS => Selection::Ids(ids),
        (Some(_), None, None) => {
            return Err(AdminError::BadRequest(format!(
                "credentialIds must list 1 to {MAX_IDS} records"
            )))
        }
        (Some(_), _, _) => {
            return Err(AdminError::BadRequest(
                "give credentialIds or a filter (docType, status), not both".into(),
            ))
        }
        (None, None, None) => {
            return Err(AdminError::BadRequest(
                "give credentialIds, or a filter: docType and/or status".into(),
            ))
        }
        (None, doc_type, status) => {
            if let Some(doc_type) = &doc_type {
                if state.services.doc_types.get(doc_type).is_none() {
                    return Err(AdminError::BadRequest(format!(
                        "unknown doc type {doc_type:?}"
                    )));
                }
            }
            Selection::Filter { doc_type, status }
        }
    };
    let actor = principal.actor();
    let job = service::start(
        state.store(),
        &selection,
        &body.merge,
        records_per_sec,
        super::provenance(&actor, &request_id),
    )
    .await?;
    state.services.bulk_update_started.notify_one();
    let location = HeaderValue::from_str(&format!(
        "/admin/v1/credentials/bulk-updates/{}",
        job.bulk_update_id
    ))
    .expect("a UUID path is a valid header value");
    let mut response = (StatusCode::ACCEPTED, AdminJson(BulkUpdateView::from(job))).into_response();
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

/// `GET /admin/v1/credentials/bulk-updates/{bulk_update_id}` (viewer): its progress.
#[utoipa::path(
    get, path = "/credentials/bulk-updates/{bulk_update_id}", tag = "admin", security(("bearer" = [])),
    params(("bulk_update_id" = Uuid, Path)),
    responses((status = 200, body = BulkUpdateView), (status = 404, body = AdminErrorBody))
)]
pub async fn get_bulk_update(
    _: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AdminJson<BulkUpdateView>, AdminError> {
    let not_found = || AdminError::NotFound("no such bulk update".into());
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let job = stored::get(&mut state.store().db(), id)
        .await?
        .ok_or_else(not_found)?;
    Ok(AdminJson(job.into()))
}
