//! Records: search, read (data, versions and what changed, device copies as Google sees them),
//! create and edit with the doc type's form, revoke, and mint a pre-authorized code. Changes go
//! through the same services as the admin API, so they are audited and announced to Google alike;
//! an edit names the version it was based on, so a concurrent edit is shown, not overwritten.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value as Json;
use tower_http::request_id::RequestId;
use uuid::Uuid;

use super::page::{may, notice, page, when, ConsoleError};
use super::record_form::{self, Problems, Submitted};
use super::session::Staff;
use crate::domain::admin_token::Role;
use crate::domain::credential::{CredentialRecord, CredentialStatus};
use crate::http::admin::credentials::{
    change_error, copy_status, revocation_reason, CODE_TTL_DEFAULT_SECS,
};
use crate::http::admin::provenance;
use crate::http::AppState;
use crate::mdoc::doctype::DocTypeSpec;
use crate::service::credentials::{self as service, ChangeError, NewHolderData, Update};
use crate::store::{copies, credentials, CredentialFilter};

type RequestIdExt = Option<axum::Extension<RequestId>>;

const PAGE: u32 = 50;

fn no_such_record() -> ConsoleError {
    ConsoleError::NotFound("There is no record with this id.".into())
}

async fn record(state: &AppState, raw: &str) -> Result<CredentialRecord, ConsoleError> {
    let id = Uuid::parse_str(raw).map_err(|_| no_such_record())?;
    credentials::get(&mut state.store().db(), id)
        .await?
        .ok_or_else(no_such_record)
}

fn spec<'a>(state: &'a AppState, doc_type: &str) -> Result<&'a DocTypeSpec, ConsoleError> {
    state.services.doc_types.get(doc_type).ok_or_else(|| {
        ConsoleError::BadRequest(format!(
            "The doc type {doc_type} is not configured on this server."
        ))
    })
}

/// Query of the record list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    id: Option<String>,
    status: Option<String>,
    doc_type: Option<String>,
    cursor: Option<Uuid>,
}

/// `GET /console/records` (viewer): search by id, doc type and status.
pub async fn list(
    staff: Staff,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let wanted_id = query.id.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let mut message = None;
    if let Some(id) = wanted_id {
        match Uuid::parse_str(id) {
            Ok(id)
                if credentials::get(&mut state.store().db(), id)
                    .await?
                    .is_some() =>
            {
                return Ok(Redirect::to(&format!("/console/records/{id}")).into_response())
            }
            _ => message = Some("No record has that id."),
        }
    }
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some("active") => Some(CredentialStatus::Active),
        Some("revoked") => Some(CredentialStatus::Revoked),
        Some(_) => {
            return Err(ConsoleError::BadRequest(
                "The status must be active or revoked.".into(),
            ))
        }
    };
    let doc_type = query.doc_type.clone().filter(|s| !s.is_empty());
    let filter = CredentialFilter {
        status,
        doc_type: doc_type.clone(),
        after: query.cursor,
        limit: PAGE + 1,
    };
    let mut records = credentials::list(&mut state.store().db(), &filter).await?;
    let next = (records.len() > PAGE as usize).then(|| {
        records.truncate(PAGE as usize);
        records.last().map(|r| r.credential_id)
    });
    let next_link = next.flatten().map(|cursor| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        pairs.append_pair("cursor", &cursor.to_string());
        if let Some(status) = status {
            pairs.append_pair("status", status.as_str());
        }
        if let Some(doc_type) = &doc_type {
            pairs.append_pair("docType", doc_type);
        }
        format!("/console/records?{}", pairs.finish())
    });
    let doc_types: Vec<&str> = state.services.doc_types.names().collect();
    let body = html! {
        @if let Some(message) = message { (notice(message)) }
        form.filters method="get" action="/console/records" role="search" {
            label for="id" { "Record id" }
            input #id name="id" type="search" value=[wanted_id] placeholder="0193…";
            label for="status" { "Status" }
            select #status name="status" {
                option value="" { "any" }
                @for s in ["active", "revoked"] { option value=(s) selected[status.map(|x| x.as_str()) == Some(s)] { (s) } }
            }
            label for="docType" { "Doc type" }
            select #docType name="docType" {
                option value="" { "any" }
                @for t in &doc_types { option value=(t) selected[doc_type.as_deref() == Some(*t)] { (t) } }
            }
            button type="submit" { "Search" }
        }
        @if may(&staff, Role::Operator) {
            p { a.button href="/console/records/new" { "New record" } }
        }
        table #records {
            thead { tr { th scope="col" { "Record" } th scope="col" { "Doc type" } th scope="col" { "Status" } th scope="col" { "Version" } th scope="col" { "Updated" } } }
            tbody {
                @for r in &records {
                    tr {
                        td { a href=(format!("/console/records/{}", r.credential_id)) { (r.credential_id) } }
                        td { (r.doc_type) }
                        td { span class=(format!("status {}", r.status.as_str())) { (r.status.as_str()) } }
                        td { (r.current_version_number) }
                        td { (when(r.updated_at)) }
                    }
                }
            }
        }
        @if records.is_empty() { p { "No records match." } }
        @if let Some(link) = next_link { p { a href=(link) rel="next" { "Next page" } } }
    };
    Ok(page(&staff, "Records", body))
}

/// Where a record form posts, what it carries besides the data, and its button.
struct Target<'a> {
    action: &'a str,
    hidden: (&'a str, String),
    submit: &'a str,
}

/// The record form. It does not ask the browser to validate: the server's checks, in words next
/// to each field, are the ones that count.
fn record_form(
    staff: &Staff,
    spec: &DocTypeSpec,
    target: Target<'_>,
    values: &BTreeMap<String, String>,
    problems: &Problems,
    images: &[String],
) -> Markup {
    let (name, value) = &target.hidden;
    html! {
        form.record method="post" action=(target.action) enctype="multipart/form-data" novalidate {
            (staff.csrf_field())
            input type="hidden" name=(name) value=(value);
            (record_form::fieldsets(spec, values, problems, images))
            button type="submit" { (target.submit) }
        }
    }
}

/// Holder data read from the form and validated as the admin API validates it, or every problem
/// (unreadable fields and refused elements) by field.
fn checked_holder_data(
    state: &AppState,
    spec: &DocTypeSpec,
    submitted: &Submitted,
    existing: Option<&Json>,
) -> Result<Json, Problems> {
    let holder = record_form::holder_data(spec, submitted, existing)?;
    service::check_holder_data(&state.services.doc_types, &spec.doc_type, &holder).map_err(
        |errors| {
            let mut problems = Problems::default();
            problems.add_validation(errors);
            problems
        },
    )?;
    Ok(holder)
}

/// Query of the new-record form.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewQuery {
    doc_type: Option<String>,
}

/// `GET /console/records/new` (operator): the doc type's form, empty.
pub async fn new_form(
    staff: Staff,
    State(state): State<AppState>,
    Query(query): Query<NewQuery>,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Operator)?;
    let doc_type = query
        .doc_type
        .unwrap_or_else(|| crate::mdoc::doctype::MDL_DOC_TYPE.to_owned());
    let spec = spec(&state, &doc_type)?;
    let body = new_page(&staff, &state, spec, &BTreeMap::new(), &Problems::default());
    Ok(page(&staff, "New record", body))
}

fn new_page(
    staff: &Staff,
    state: &AppState,
    spec: &DocTypeSpec,
    values: &BTreeMap<String, String>,
    problems: &Problems,
) -> Markup {
    let names: Vec<&str> = state.services.doc_types.names().collect();
    html! {
        @if names.len() > 1 {
            form.filters method="get" action="/console/records/new" {
                label for="docType" { "Doc type" }
                select #docType name="docType" {
                    @for t in &names { option value=(t) selected[*t == spec.doc_type] { (t) } }
                }
                button type="submit" { "Switch" }
            }
        }
        p { "Doc type: " code { (spec.doc_type) } }
        (record_form(staff, spec, Target { action: "/console/records", hidden: ("docType", spec.doc_type.clone()), submit: "Create record" }, values, problems, &[]))
    }
}

/// `POST /console/records` (operator): creates a record from the form, or shows the form again
/// with each problem next to its field (nothing saved).
pub async fn create(
    staff: Staff,
    State(state): State<AppState>,
    id: RequestIdExt,
    multipart: Multipart,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Operator)?;
    let submitted = Submitted::read(multipart).await?;
    staff.check_form(submitted.field("csrf"))?;
    let spec = spec(&state, submitted.field("docType"))?;
    let holder = match checked_holder_data(&state, spec, &submitted, None) {
        Ok(holder) => holder,
        Err(problems) => {
            let body = new_page(&staff, &state, spec, &submitted.text, &problems);
            return Ok((StatusCode::BAD_REQUEST, page(&staff, "New record", body)).into_response());
        }
    };
    let actor = staff.actor();
    let record = service::create(
        state.store(),
        &spec.doc_type,
        &holder,
        provenance(&actor, &id),
    )
    .await?;
    tracing::info!(credential_id = %record.credential_id, "credential created in the console");
    Ok(Redirect::to(&format!(
        "/console/records/{}?done=created",
        record.credential_id
    ))
    .into_response())
}

/// Query of a record's page: what was just done, to say so.
#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    done: Option<String>,
}

fn shown_value(value: &Json) -> Markup {
    let image = value
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .and_then(|bytes| {
            let kind = if bytes.starts_with(&[0xff, 0xd8]) {
                "image/jpeg"
            } else if bytes.starts_with(b"\x89PNG") {
                "image/png"
            } else {
                return None;
            };
            Some(format!("data:{kind};base64,{}", STANDARD.encode(&bytes)))
        });
    match (image, value) {
        (Some(src), _) => html! { img.portrait src=(src) alt="image held in the record"; },
        (None, Json::String(s)) if s.len() > 200 => {
            html! { (format!("{} bytes of data", s.len() * 3 / 4)) }
        }
        (None, Json::String(s)) => html! { (s) },
        (None, other) => html! { code { (other.to_string()) } },
    }
}

/// Element paths whose value differs between two versions.
fn changed(before: &Json, after: &Json) -> Vec<String> {
    let mut names = BTreeSet::new();
    for holder in [before, after] {
        for (ns, elements) in holder.as_object().into_iter().flatten() {
            for id in elements.as_object().into_iter().flatten().map(|(k, _)| k) {
                names.insert((ns.clone(), id.clone()));
            }
        }
    }
    names
        .into_iter()
        .filter(|(ns, id)| {
            before.get(ns).and_then(|e| e.get(id)) != after.get(ns).and_then(|e| e.get(id))
        })
        .map(|(_, id)| id)
        .collect()
}

/// `GET /console/records/{id}` (viewer).
pub async fn show(
    staff: Staff,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, ConsoleError> {
    let record = record(&state, &raw).await?;
    let mut db = state.store().db();
    let versions = credentials::list_versions(&mut db, record.credential_id).await?;
    let copies = copies::list(&mut db, record.credential_id).await?;
    let done = match query.done.as_deref() {
        Some("created") => Some("Record created."),
        Some("updated") => Some("Saved as a new version; every device copy will be told."),
        Some("unchanged") => {
            Some("Nothing changed: the data equals the current version, so no version was written.")
        }
        Some("revoked") => Some("Record revoked; every device copy will be told."),
        _ => None,
    };
    let operator = may(&staff, Role::Operator);
    let active = record.status == CredentialStatus::Active;
    let body = html! {
        @if let Some(done) = done { (notice(done)) }
        dl.facts {
            dt { "Record" } dd #record-id { (record.credential_id) }
            dt { "Doc type" } dd { (record.doc_type) }
            dt { "Status" } dd #record-status { span class=(format!("status {}", record.status.as_str())) { (record.status.as_str()) } }
            @if let Some(reason) = &record.status_reason { dt { "Reason" } dd { (reason) } }
            dt { "Version" } dd #record-version { (record.current_version_number) }
            dt { "Updated" } dd { (when(record.updated_at)) }
        }
        @if operator && active {
            div.actions {
                a.button href=(format!("/console/records/{}/edit", record.credential_id)) { "Edit" }
                form method="post" action=(format!("/console/records/{}/code", record.credential_id)) {
                    (staff.csrf_field())
                    button type="submit" { "Mint a pre-authorized code" }
                }
            }
        }
        h2 { "Device copies" }
        table #copies {
            thead { tr { th scope="col" { "Google's credential id" } th scope="col" { "Device" } th scope="col" { "Status Google sees" } th scope="col" { "Since" } } }
            tbody {
                @for copy in &copies {
                    tr {
                        td { (copy.wallet_credential_id) }
                        td { (copy.device_reference_id) }
                        td.copy-status { (copy_status(&record, copy)) }
                        td { (when(copy.created_at)) }
                    }
                }
            }
        }
        @if copies.is_empty() { p { "No device holds this record yet." } }
        h2 { "Holder data" }
        @for (ns, elements) in record.holder_data.as_object().into_iter().flatten() {
            table.data {
                caption { (ns) }
                tbody {
                    @for (id, value) in elements.as_object().into_iter().flatten() {
                        tr { th scope="row" { (id) } td data-element=(id) { (shown_value(value)) } }
                    }
                }
            }
        }
        h2 { "Versions" }
        ol #versions reversed {
            @for (i, version) in versions.iter().enumerate().rev() {
                li {
                    "Version " (version.version_number) ", " (when(version.created_at))
                    @if i > 0 {
                        @let names = changed(&versions[i - 1].holder_data, &version.holder_data);
                        ": changed " (names.join(", "))
                    } @else { ": created" }
                }
            }
        }
        @if operator && active {
            h2 { "Revoke" }
            form.stack method="post" action=(format!("/console/records/{}/revoke", record.credential_id)) {
                (staff.csrf_field())
                label for="reason" { "Reason (kept in the record, not shown to the holder)" }
                input #reason name="reason" type="text" maxlength="500" required;
                button.danger type="submit" data-confirm="Revoke this record? This cannot be undone." { "Revoke record" }
            }
        }
    };
    Ok(page(
        &staff,
        &format!("Record {}", record.credential_id),
        body,
    ))
}

fn edit_page(
    staff: &Staff,
    spec: &DocTypeSpec,
    record: &CredentialRecord,
    version: i32,
    values: &BTreeMap<String, String>,
    problems: &Problems,
) -> Markup {
    let images = record_form::images_of(spec, &record.holder_data);
    let action = format!("/console/records/{}", record.credential_id);
    html! {
        p { "Editing version " (version) ". Saving writes a new version and tells every device copy." }
        (record_form(staff, spec, Target { action: &action, hidden: ("version", version.to_string()), submit: "Save" }, values, problems, &images))
    }
}

/// `GET /console/records/{id}/edit` (operator).
pub async fn edit_form(
    staff: Staff,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Operator)?;
    let record = record(&state, &raw).await?;
    let spec = spec(&state, &record.doc_type)?;
    let values = record_form::values_of(spec, &record.holder_data);
    let body = edit_page(
        &staff,
        spec,
        &record,
        record.current_version_number,
        &values,
        &Problems::default(),
    );
    Ok(page(&staff, "Edit record", body))
}

/// `POST /console/records/{id}` (operator): saves the edit as a new version if the record is
/// still at the version the form was opened on; otherwise says who won and saves nothing.
pub async fn update(
    staff: Staff,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    id: RequestIdExt,
    multipart: Multipart,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Operator)?;
    let submitted = Submitted::read(multipart).await?;
    staff.check_form(submitted.field("csrf"))?;
    let record = record(&state, &raw).await?;
    let spec = spec(&state, &record.doc_type)?;
    let version: i32 = submitted.field("version").parse().map_err(|_| {
        ConsoleError::BadRequest(
            "The form does not say which version it edits; open the record and edit again.".into(),
        )
    })?;
    let services = &state.services;
    let holder = match checked_holder_data(&state, spec, &submitted, Some(&record.holder_data)) {
        Ok(holder) => holder,
        Err(problems) => {
            let body = edit_page(&staff, spec, &record, version, &submitted.text, &problems);
            return Ok((StatusCode::BAD_REQUEST, page(&staff, "Edit record", body)).into_response());
        }
    };
    let actor = staff.actor();
    let change = NewHolderData {
        credential_id: record.credential_id,
        expected_version: version,
        holder_data: &holder,
    };
    let done = match service::update(
        &services.store,
        &services.clock,
        &services.doc_types,
        change,
        provenance(&actor, &id),
    )
    .await
    {
        Ok(Update::Changed(_)) => "updated",
        Ok(Update::Unchanged(_)) => "unchanged",
        Err(ChangeError::VersionMismatch { current }) => {
            let body = html! {
                div.error role="alert" #conflict {
                    p { "Someone else saved this record (it is now at version " (current) ") while you were editing version " (version) ". Your changes were not saved." }
                    p { a href=(format!("/console/records/{}", record.credential_id)) { "Open the current version" } " and make your change again." }
                }
            };
            return Ok((StatusCode::CONFLICT, page(&staff, "Edit conflict", body)).into_response());
        }
        Err(other) => return Err(change_error(other).into()),
    };
    Ok(Redirect::to(&format!(
        "/console/records/{}?done={done}",
        record.credential_id
    ))
    .into_response())
}

/// The revoke form.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    csrf: String,
    reason: String,
}

/// `POST /console/records/{id}/revoke` (operator): final.
pub async fn revoke(
    staff: Staff,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    id: RequestIdExt,
    Form(form): Form<RevokeForm>,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Operator)?;
    staff.check_form(&form.csrf)?;
    let record = record(&state, &raw).await?;
    let reason = revocation_reason(&form.reason).map_err(|_| {
        ConsoleError::BadRequest(
            "Give a reason for the revocation (1 to 500 characters). Nothing was changed.".into(),
        )
    })?;
    let actor = staff.actor();
    let services = &state.services;
    service::revoke(
        &services.store,
        &services.clock,
        record.credential_id,
        reason,
        provenance(&actor, &id),
    )
    .await
    .map_err(change_error)?;
    Ok(Redirect::to(&format!(
        "/console/records/{}?done=revoked",
        record.credential_id
    ))
    .into_response())
}

/// `POST /console/records/{id}/code` (operator): a pre-authorized code, shown once.
pub async fn mint_code(
    staff: Staff,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    id: RequestIdExt,
    Form(form): Form<super::session::CsrfForm>,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Operator)?;
    staff.check_form(&form.csrf)?;
    let record = record(&state, &raw).await?;
    let actor = staff.actor();
    let services = &state.services;
    let code = service::create_pre_authorized_code(
        &services.store,
        &services.clock,
        record.credential_id,
        std::time::Duration::from_secs(CODE_TTL_DEFAULT_SECS),
        provenance(&actor, &id),
    )
    .await
    .map_err(change_error)?;
    let body = html! {
        p { "Give this code to the holder of record " (record.credential_id) ". It is shown only now; Brevet keeps only its hash." }
        p.secret #code { code { (code.code) } }
        p { "Usable once, until " (when(code.expires_at)) "." }
        p { a href=(format!("/console/records/{}", record.credential_id)) { "Back to the record" } }
    };
    Ok(page(&staff, "Pre-authorized code", body))
}
