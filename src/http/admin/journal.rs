//! Read-only views for staff: the audit log and the outbox of notifications to Google.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::{Operator, Viewer};
use crate::error::{AdminError, AdminErrorBody};
use crate::http::json::{AdminJson, AdminQuery};
use crate::http::AppState;

/// Query of the audit listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditQuery {
    /// How many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Only entries by this actor (`system` or a token's name).
    pub actor: Option<String>,
    /// Only this action, e.g. `credential.revoke`.
    pub action: Option<String>,
    /// Only entries about this record (its id: a credential, proofing, token or job).
    pub target_id: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<Uuid>,
}

impl AuditQuery {
    /// The store's filter for this query (empty strings mean "any", as an empty form field does).
    pub fn filter(&self) -> crate::store::audit::AuditFilter {
        let given = |text: &Option<String>| {
            text.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        };
        crate::store::audit::AuditFilter {
            actor: given(&self.actor),
            action: given(&self.action),
            target_id: given(&self.target_id),
            since: self.since,
            until: self.until,
            before: self.cursor,
        }
    }
}

/// One page of the audit log matching `query`, newest first, and the cursor of the next page.
pub async fn audit_page(
    state: &AppState,
    query: &AuditQuery,
) -> Result<(Vec<crate::store::AuditEntry>, Option<Uuid>), AdminError> {
    let limit = super::page_limit(query.limit, 100, 500)?;
    // One more than asked tells whether another page exists.
    let mut entries =
        crate::store::audit::search(&mut state.store().db(), &query.filter(), limit + 1).await?;
    let next = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.audit_id)
    } else {
        None
    };
    Ok((entries, next))
}

/// Query of the outbox listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JournalQuery {
    /// How many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Outbox only: `pending`, `done` or `dead`.
    #[param(pattern = "^(pending|done|dead)$")]
    state: Option<String>,
}

impl JournalQuery {
    fn limit(&self) -> Result<u32, AdminError> {
        super::page_limit(self.limit, 100, 500)
    }
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    actor: String,
    admin_token_id: Option<Uuid>,
    action: String,
    target_kind: String,
    target_id: String,
    request_id: Option<String>,
    created_at: DateTime<Utc>,
}

/// Newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditList {
    entries: Vec<AuditView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<Uuid>,
}

/// `GET /admin/v1/audit` (viewer): who did what to which record, newest first, filtered, a page
/// at a time. Never holder data.
#[utoipa::path(
    get, path = "/audit", tag = "admin", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 400, body = AdminErrorBody))
)]
pub async fn list_audit(
    _: Viewer,
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<AuditQuery>,
) -> Result<AdminJson<AuditList>, AdminError> {
    let (entries, next_cursor) = audit_page(&state, &query).await?;
    Ok(AdminJson(AuditList {
        next_cursor,
        entries: entries
            .into_iter()
            .map(|e| AuditView {
                actor: e.actor,
                admin_token_id: e.admin_token_id,
                action: e.action,
                target_kind: e.target_kind,
                target_id: e.target_id,
                request_id: e.request_id,
                created_at: e.created_at,
            })
            .collect(),
    }))
}

/// One outbox job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxView {
    outbox_id: Uuid,
    kind: String,
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

/// Newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxList {
    jobs: Vec<OutboxView>,
    /// Present when notifications cannot be delivered at all (Google is not configured), so that
    /// a growing pending list is explained where it is seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<&'static str>,
}

/// `GET /admin/v1/outbox` (viewer): notifications to Google and their delivery state.
#[utoipa::path(
    get, path = "/outbox", tag = "admin", security(("bearer" = [])),
    params(JournalQuery),
    responses((status = 200, body = OutboxList), (status = 400, body = AdminErrorBody))
)]
pub async fn list_outbox(
    _: Viewer,
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<JournalQuery>,
) -> Result<AdminJson<OutboxList>, AdminError> {
    let wanted = query
        .state
        .as_deref()
        .map(str::parse::<crate::store::JobState>)
        .transpose()
        .map_err(|_| AdminError::BadRequest("state must be pending, done or dead".into()))?;
    let jobs = crate::store::outbox::list(&mut state.store().db(), wanted, query.limit()?).await?;
    Ok(AdminJson(OutboxList {
        warning: (!state.notifications_configured)
            .then_some(crate::http::ops::NOTIFICATIONS_DISABLED),
        jobs: jobs
            .into_iter()
            .map(|j| OutboxView {
                outbox_id: j.outbox_id,
                kind: j.kind.to_string(),
                payload: j.payload,
                state: j.state.to_string(),
                attempts: j.attempts,
                next_attempt_at: j.next_attempt_at,
                last_error: j.last_error,
                created_at: j.created_at,
            })
            .collect(),
    }))
}

/// `POST /admin/v1/outbox/{outbox_id}/retry` (operator): put a dead job back in the queue.
#[utoipa::path(
    post, path = "/outbox/{outbox_id}/retry", tag = "admin", security(("bearer" = [])),
    params(("outbox_id" = Uuid, Path)),
    responses(
        (status = 204, description = "The job is pending again, due now"),
        (status = 404, description = "No dead job with this id", body = AdminErrorBody),
    )
)]
pub async fn retry_outbox_job(
    Operator(principal): Operator,
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    request_id: Option<axum::Extension<tower_http::request_id::RequestId>>,
) -> Result<axum::http::StatusCode, AdminError> {
    let not_found = || AdminError::NotFound("no dead outbox job with this id".into());
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let actor = principal.actor();
    let by = super::provenance(&actor, &request_id);
    let services = &state.services;
    if crate::service::outbox::retry_dead(&services.store, &services.clock, id, by).await? {
        tracing::info!(outbox.id = %id, "dead outbox job queued again");
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
