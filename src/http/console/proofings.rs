//! The proofing queue: pending proofings oldest first; one proofing's evidence as images and
//! fields (operators only: evidence is personal data, served with `Cache-Control: no-store`); and
//! the decision (approve for a record, reject for one of the spec's reasons, or challenge), after
//! which the next pending proofing opens.

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value as Json;
use tower_http::request_id::RequestId;
use uuid::Uuid;

use super::page::{may, notice, page, when, ConsoleError};
use super::session::Staff;
use crate::domain::admin_token::Role;
use crate::domain::proofing::{Challenge, ProofingRecord, ProofingStatus, RejectionReason};
use crate::http::admin::proofings::{review_error, review_of, ReviewRequest};
use crate::http::admin::provenance;
use crate::http::AppState;
use crate::protocol::ids::ProofingId;
use crate::service::proofings as service;
use crate::store::proofings as stored;

/// The spec's rejection reasons, as the Wallet API names them, with words for staff.
const REASONS: [(&str, &str); 8] = [
    ("evidenceMismatch", "The evidence does not match the record"),
    ("evidenceIncomplete", "Evidence is missing"),
    ("lowRiskScore", "The risk score is too low"),
    ("recordNotFound", "No record matches"),
    ("recordInvalid", "The matching record is not valid"),
    ("maxProvisioningsReached", "Too many devices provisioned"),
    ("riskCheckFailure", "A risk check failed"),
    ("livenessCheckFailure", "The liveness check failed"),
];

fn no_such_proofing() -> ConsoleError {
    ConsoleError::NotFound("There is no proofing with this id.".into())
}

async fn proofing(state: &AppState, raw: &str) -> Result<ProofingRecord, ConsoleError> {
    let id = ProofingId::parse(raw).map_err(|_| no_such_proofing())?;
    stored::get(&mut state.store().db(), &id)
        .await?
        .ok_or_else(no_such_proofing)
}

/// Query of the queue.
#[derive(Debug, Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    done: Option<String>,
}

/// `GET /console/proofings` (viewer): the queue, oldest first.
pub async fn queue(
    staff: Staff,
    State(state): State<AppState>,
    Query(query): Query<QueueQuery>,
) -> Result<Response, ConsoleError> {
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => Some(ProofingStatus::Pending),
        Some("any") => None,
        Some(raw) => Some(
            ProofingStatus::ALL
                .into_iter()
                .find(|s| s.as_str() == raw)
                .ok_or_else(|| {
                    ConsoleError::BadRequest(format!("{raw} is not a proofing status."))
                })?,
        ),
    };
    let proofings = stored::list(&mut state.store().db(), status, 200).await?;
    let body = html! {
        @if query.done.is_some() { (notice("Decision saved. The queue is empty.")) }
        form.filters method="get" action="/console/proofings" {
            label for="status" { "Status" }
            select #status name="status" {
                option value="any" selected[status.is_none()] { "any" }
                @for s in ProofingStatus::ALL { option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) } }
            }
            button type="submit" { "Show" }
        }
        table #proofings {
            thead { tr { th scope="col" { "Proofing" } th scope="col" { "Status" } th scope="col" { "Submitted" } th scope="col" { "Record" } } }
            tbody {
                @for p in &proofings {
                    tr {
                        td { a href=(format!("/console/proofings/{}", p.proofing_id)) { (p.proofing_id) } }
                        td { (p.status.as_str()) }
                        td { (when(p.created_at)) }
                        td { @if let Some(id) = p.credential_id { a href=(format!("/console/records/{id}")) { (id) } } }
                    }
                }
            }
        }
        @if proofings.is_empty() { p { "Nothing to show." } }
    };
    Ok(page(&staff, "Proofings", body))
}

/// What one evidence item is, for the page.
fn describe(index: usize, item: &Json, proofing_id: &str) -> Markup {
    let Some((name, value)) = item.as_object().and_then(|m| m.iter().next()) else {
        return html! { pre { (item.to_string()) } };
    };
    if let Some(sha256) = value.get("sha256").and_then(Json::as_str) {
        return html! { p { (name) ": a code the issuer handed out (SHA-256 " code { (sha256) } ")" } };
    }
    if let Some(bytes) = value
        .get("decrypted")
        .and_then(Json::as_str)
        .and_then(crate::protocol::wallet::decode)
    {
        let src = format!("/console/proofings/{proofing_id}/evidence/{index}");
        return match image_type(&bytes) {
            Some(_) => {
                html! { figure { img.evidence src=(src) alt=(format!("{name} sent by the device")); figcaption { (name) } } }
            }
            None => html! { p { (name) ": " a href=(src) { (bytes.len()) " bytes" } } },
        };
    }
    html! { p { (name) } pre { (serde_json::to_string_pretty(value).unwrap_or_default()) } }
}

fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

/// `GET /console/proofings/{id}` (operator: the evidence is personal data).
pub async fn show(
    staff: Staff,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Operator).map_err(|_| {
        ConsoleError::Forbidden("Evidence is shown only to operators and administrators.".into())
    })?;
    let proofing = proofing(&state, &raw).await?;
    let id = &proofing.proofing_id;
    let action = format!("/console/proofings/{id}/decide");
    let open = matches!(
        proofing.status,
        ProofingStatus::Pending | ProofingStatus::Challenged
    );
    let body = html! {
        dl.facts {
            dt { "Proofing" } dd { (id) }
            dt { "Status" } dd #proofing-status { (proofing.status.as_str()) }
            dt { "Device" } dd { (proofing.device_reference_id) }
            dt { "Submitted" } dd { (when(proofing.created_at)) }
            @if let Some(record) = proofing.credential_id { dt { "Record" } dd { a href=(format!("/console/records/{record}")) { (record) } } }
        }
        h2 { "Evidence" }
        div.evidence {
            @for (index, item) in proofing.evidence.as_array().into_iter().flatten().enumerate() {
                (describe(index, item, id))
            }
        }
        @if open && may(&staff, Role::Operator) {
            h2 { "Decision" }
            div.decisions {
                form.stack method="post" action=(action) {
                    (staff.csrf_field())
                    input type="hidden" name="decision" value="approve";
                    label for="credentialId" { "Approve for record (id)" }
                    input #credentialId name="credentialId" type="text" required;
                    button type="submit" { "Approve" }
                }
                form.stack method="post" action=(action) {
                    (staff.csrf_field())
                    input type="hidden" name="decision" value="reject";
                    label for="reason" { "Reject because" }
                    select #reason name="reason" required {
                        @for (value, words) in REASONS { option value=(value) { (words) } }
                    }
                    button.danger type="submit" { "Reject" }
                }
                form.stack method="post" action=(action) {
                    (staff.csrf_field())
                    input type="hidden" name="decision" value="challenge";
                    label for="challenge" { "Ask the holder to" }
                    select #challenge name="challenge" {
                        option value="additionalTimeRequired" { "wait: the issuer needs more time" }
                        option value="physicalLocationVisit" { "visit an office" }
                        option value="issuerUrlVisit" { "visit a web page (give its https address)" }
                    }
                    label for="url" { "Web page (for a visit)" }
                    input #url name="url" type="url" placeholder="https://";
                    button type="submit" { "Challenge" }
                }
            }
        }
    };
    Ok(page(&staff, "Proofing", body))
}

/// `GET /console/proofings/{id}/evidence/{index}` (operator): one evidence item's bytes, never
/// cached.
pub async fn evidence(
    staff: Staff,
    State(state): State<AppState>,
    Path((raw, index)): Path<(String, usize)>,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Operator).map_err(|_| {
        ConsoleError::Forbidden("Evidence is shown only to operators and administrators.".into())
    })?;
    let proofing = proofing(&state, &raw).await?;
    let bytes = proofing
        .evidence
        .get(index)
        .and_then(Json::as_object)
        .and_then(|m| m.values().next())
        .and_then(|v| v.get("decrypted"))
        .and_then(Json::as_str)
        .and_then(crate::protocol::wallet::decode)
        .ok_or_else(|| {
            ConsoleError::NotFound("This proofing has no such evidence image.".into())
        })?;
    let content_type = image_type(&bytes).unwrap_or("application/octet-stream");
    let disposition = if content_type == "application/octet-stream" {
        "attachment"
    } else {
        "inline"
    };
    Ok((
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-store"),
            (CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// A decision form.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionForm {
    csrf: String,
    decision: String,
    credential_id: Option<String>,
    reason: Option<String>,
    challenge: Option<String>,
    url: Option<String>,
}

fn request_of(form: &DecisionForm) -> Result<ReviewRequest, ConsoleError> {
    let text = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(match form.decision.as_str() {
        "approve" => ReviewRequest::Approve {
            credential_id: Uuid::parse_str(&text(&form.credential_id)).map_err(|_| {
                ConsoleError::BadRequest("Give the id of the record to approve the proofing for (as shown on its page). Nothing was changed.".into())
            })?,
        },
        "reject" => ReviewRequest::Reject {
            reason: serde_json::from_value::<RejectionReason>(Json::String(text(&form.reason)))
                .map_err(|_| ConsoleError::BadRequest("Choose one of the reasons offered. Nothing was changed.".into()))?,
        },
        "challenge" => ReviewRequest::Challenge {
            challenge: match text(&form.challenge).as_str() {
                "additionalTimeRequired" => Challenge::AdditionalTimeRequired,
                "physicalLocationVisit" => Challenge::PhysicalLocationVisit,
                "issuerUrlVisit" => Challenge::IssuerUrlVisit { url: text(&form.url) },
                _ => return Err(ConsoleError::BadRequest("Choose one of the challenges offered. Nothing was changed.".into())),
            },
        },
        _ => return Err(ConsoleError::BadRequest("Unknown decision. Nothing was changed.".into())),
    })
}

/// `POST /console/proofings/{id}/decide` (operator): the decision, audited and announced to
/// Google; then the next pending proofing.
pub async fn decide(
    staff: Staff,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    id: Option<axum::Extension<RequestId>>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Operator)?;
    staff.check_form(&form.csrf)?;
    let proofing_id = ProofingId::parse(&raw).map_err(|_| no_such_proofing())?;
    let (review, credential_id) = review_of(request_of(&form)?)?;
    let actor = staff.actor();
    let services = &state.services;
    let record = service::review(
        &services.store,
        &services.clock,
        &proofing_id,
        &review,
        credential_id,
        provenance(&actor, &id),
    )
    .await
    .map_err(review_error)?;
    tracing::info!(proofing.status = %record.status, "proofing reviewed in the console");
    let next = stored::list(&mut state.store().db(), Some(ProofingStatus::Pending), 1).await?;
    Ok(match next.first() {
        Some(next) => Redirect::to(&format!("/console/proofings/{}", next.proofing_id)),
        None => Redirect::to("/console/proofings?done=1"),
    }
    .into_response())
}
