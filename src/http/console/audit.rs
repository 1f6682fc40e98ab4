//! The audit log, filtered by actor, action, record and time, a page at a time; the same query
//! as `GET /admin/v1/audit`.

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::page::{page, when, ConsoleError};
use super::session::Staff;
use crate::http::admin::journal::{audit_page, AuditQuery};
use crate::http::AppState;

/// The filter form (times as a browser's datetime-local fields send them, read as UTC).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditForm {
    actor: Option<String>,
    action: Option<String>,
    target_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<Uuid>,
}

fn time(field: &str, raw: &Option<String>) -> Result<Option<DateTime<Utc>>, ConsoleError> {
    let Some(raw) = raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
        .map(|t| Some(t.and_utc()))
        .or_else(|| {
            DateTime::parse_from_rfc3339(raw)
                .ok()
                .map(|t| Some(t.to_utc()))
        })
        .ok_or_else(|| {
            ConsoleError::BadRequest(format!(
                "“{field}” must be a date and time, like 2026-01-31T09:00."
            ))
        })
}

/// `GET /console/audit` (viewer).
pub async fn list(
    staff: Staff,
    State(state): State<AppState>,
    Query(form): Query<AuditForm>,
) -> Result<Response, ConsoleError> {
    let query = AuditQuery {
        limit: Some(50),
        actor: form.actor.clone(),
        action: form.action.clone(),
        target_id: form.target_id.clone(),
        since: time("From", &form.since)?,
        until: time("Until", &form.until)?,
        cursor: form.cursor,
    };
    let (entries, next) = audit_page(&state, &query).await?;
    let next_link = next.map(|cursor| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("actor", &form.actor),
            ("action", &form.action),
            ("targetId", &form.target_id),
            ("since", &form.since),
            ("until", &form.until),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                pairs.append_pair(key, value);
            }
        }
        pairs.append_pair("cursor", &cursor.to_string());
        format!("/console/audit?{}", pairs.finish())
    });
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let body = html! {
        form.filters method="get" action="/console/audit" role="search" {
            label for="actor" { "Actor" } input #actor name="actor" value=(text(&form.actor));
            label for="action" { "Action" } input #action name="action" value=(text(&form.action)) placeholder="credential.revoke";
            label for="targetId" { "Record id" } input #targetId name="targetId" value=(text(&form.target_id));
            label for="since" { "From (UTC)" } input #since name="since" type="datetime-local" value=(text(&form.since));
            label for="until" { "Until (UTC)" } input #until name="until" type="datetime-local" value=(text(&form.until));
            button type="submit" { "Filter" }
        }
        table #audit {
            thead { tr { th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" } th scope="col" { "Record" } th scope="col" { "Request" } } }
            tbody {
                @for e in &entries {
                    tr {
                        td { (when(e.created_at)) }
                        td { (e.actor) }
                        td { (e.action) }
                        td { (e.target_kind) " " (e.target_id) }
                        td { (e.request_id.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        @if entries.is_empty() { p { "No entries match." } }
        @if let Some(link) = next_link { p { a href=(link) rel="next" { "Older entries" } } }
    };
    Ok(page(&staff, "Audit log", body))
}
