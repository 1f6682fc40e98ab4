//! Background work staff watch: notifications to Google (pending and dead, with their last error;
//! a dead one can be retried) and certificate-provisioning processes (by state, with reason and
//! last error).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;
use tower_http::request_id::RequestId;
use uuid::Uuid;

use super::page::{may, notice, page, when, ConsoleError};
use super::session::{CsrfForm, Staff};
use crate::domain::admin_token::Role;
use crate::http::admin::provenance;
use crate::http::AppState;
use crate::store::{cert_processes, outbox, CertState, JobState};

/// Query of the notifications page.
#[derive(Debug, Deserialize)]
pub struct JobsQuery {
    state: Option<String>,
    done: Option<String>,
}

/// `GET /console/notifications` (viewer): pending jobs, or those in the state asked for.
pub async fn notifications(
    staff: Staff,
    State(state): State<AppState>,
    Query(query): Query<JobsQuery>,
) -> Result<Response, ConsoleError> {
    let wanted = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("pending");
    let job_state = wanted
        .parse::<JobState>()
        .map_err(|_| ConsoleError::BadRequest("The state must be pending, done or dead.".into()))?;
    let jobs = outbox::list(&mut state.store().db(), Some(job_state), 200).await?;
    let operator = may(&staff, Role::Operator);
    let body = html! {
        @if !state.notifications_configured {
            p.warning role="status" { (crate::http::ops::NOTIFICATIONS_DISABLED) }
        }
        @if query.done.is_some() { (notice("The job is queued again and will be sent shortly.")) }
        nav.tabs aria-label="Job state" {
            @for s in ["pending", "dead", "done"] {
                a href=(format!("/console/notifications?state={s}")) aria-current=[(s == wanted).then_some("page")] { (s) }
            }
        }
        table #jobs {
            thead { tr { th scope="col" { "Job" } th scope="col" { "Kind" } th scope="col" { "Attempts" } th scope="col" { "Next attempt" } th scope="col" { "Last error" } @if operator && wanted == "dead" { th scope="col" { span.visually-hidden { "Action" } } } } }
            tbody {
                @for job in &jobs {
                    tr {
                        td { (job.outbox_id) }
                        td { (job.kind.to_string()) }
                        td { (job.attempts) }
                        td { (when(job.next_attempt_at)) }
                        td.last-error { (job.last_error.as_deref().unwrap_or("")) }
                        @if operator && wanted == "dead" {
                            td {
                                form method="post" action=(format!("/console/notifications/{}/retry", job.outbox_id)) {
                                    (staff.csrf_field())
                                    button type="submit" { "Retry" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if jobs.is_empty() { p { "No " (wanted) " notifications." } }
    };
    Ok(page(&staff, "Notifications to Google", body))
}

/// `POST /console/notifications/{id}/retry` (operator): a dead job back in the queue, audited.
pub async fn retry(
    staff: Staff,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    id: Option<axum::Extension<RequestId>>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Operator)?;
    staff.check_form(&form.csrf)?;
    let not_found = || ConsoleError::NotFound("There is no dead notification with this id.".into());
    let job = Uuid::parse_str(&raw).map_err(|_| not_found())?;
    let actor = staff.actor();
    let services = &state.services;
    if !crate::service::outbox::retry_dead(
        &services.store,
        &services.clock,
        job,
        provenance(&actor, &id),
    )
    .await?
    {
        return Err(not_found());
    }
    tracing::info!(outbox.id = %job, "dead outbox job queued again from the console");
    Ok(Redirect::to("/console/notifications?state=dead&done=1").into_response())
}

/// Query of the certificate-provisioning page.
#[derive(Debug, Deserialize)]
pub struct ProcessQuery {
    state: Option<String>,
}

/// `GET /console/certificates` (viewer): certificate-provisioning processes, newest first.
pub async fn certificates(
    staff: Staff,
    State(state): State<AppState>,
    Query(query): Query<ProcessQuery>,
) -> Result<Response, ConsoleError> {
    let wanted = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            CertState::parse(raw)
                .map_err(|_| ConsoleError::BadRequest(format!("{raw} is not a process state.")))?,
        ),
    };
    let processes = cert_processes::list(&mut state.store().db(), wanted, 200).await?;
    let body = html! {
        form.filters method="get" action="/console/certificates" {
            label for="state" { "State" }
            select #state name="state" {
                option value="" { "any" }
                @for s in ["received", "claimed", "signing", "issuing", "uploading", "failing", "done", "failed"] {
                    option value=(s) selected[wanted.map(CertState::as_str) == Some(s)] { (s) }
                }
            }
            button type="submit" { "Show" }
        }
        table #processes {
            thead { tr { th scope="col" { "Process" } th scope="col" { "Customer" } th scope="col" { "State" } th scope="col" { "Attempts" } th scope="col" { "Failure reason" } th scope="col" { "Last error" } th scope="col" { "Updated" } } }
            tbody {
                @for p in &processes {
                    tr {
                        td { (p.name) }
                        td { (p.customer_id) }
                        td { (p.state.as_str()) }
                        td { (p.attempts) }
                        td { (p.failure_message.as_deref().unwrap_or("")) }
                        td { (p.last_error.as_deref().unwrap_or("")) }
                        td { (when(p.updated_at)) }
                    }
                }
            }
        }
        @if processes.is_empty() { p { "No processes." } }
    };
    Ok(page(&staff, "Certificate provisioning", body))
}
