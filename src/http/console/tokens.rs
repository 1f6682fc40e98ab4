//! Admin tokens (admin role only): list, create (the secret shown once) and revoke. Revoking a
//! token also ends its console sessions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;
use tower_http::request_id::RequestId;

use super::page::{page, when, ConsoleError};
use super::session::{CsrfForm, Staff};
use crate::domain::admin_token::Role;
use crate::http::admin::provenance;
use crate::http::admin::tokens::{issue, withdraw};
use crate::http::AppState;

fn listing(staff: &Staff, tokens: &[crate::store::AdminToken]) -> maud::Markup {
    html! {
        table #tokens {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Created" } th scope="col" { "Revoked" } th scope="col" { span.visually-hidden { "Action" } } } }
            tbody {
                @for t in tokens {
                    tr {
                        td { (t.name) }
                        td { (t.role.as_str()) }
                        td { (when(t.created_at)) }
                        td { @if let Some(at) = t.revoked_at { (when(at)) } }
                        td {
                            @if t.revoked_at.is_none() {
                                form method="post" action=(format!("/console/tokens/{}/revoke", t.admin_token_id)) {
                                    (staff.csrf_field())
                                    button.danger type="submit" data-confirm=(format!("Revoke the token {}?", t.name)) { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "New token" }
        form.stack method="post" action="/console/tokens" {
            (staff.csrf_field())
            label for="name" { "Name (a person or a system)" }
            input #name name="name" type="text" maxlength="100" required;
            label for="role" { "Role" }
            select #role name="role" {
                option value="viewer" { "viewer: reads records, queues and the audit log" }
                option value="operator" { "operator: also changes records and decides proofings" }
                option value="admin" { "admin: also manages tokens" }
            }
            button type="submit" { "Create token" }
        }
    }
}

/// `GET /console/tokens` (admin).
pub async fn list(staff: Staff, State(state): State<AppState>) -> Result<Response, ConsoleError> {
    staff.require(Role::Admin)?;
    let tokens = crate::store::tokens::list(&mut state.store().db()).await?;
    Ok(page(&staff, "Tokens", listing(&staff, &tokens)))
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct NewToken {
    csrf: String,
    name: String,
    role: Role,
}

/// `POST /console/tokens` (admin): the new token, shown once.
pub async fn create(
    staff: Staff,
    State(state): State<AppState>,
    id: Option<axum::Extension<RequestId>>,
    Form(form): Form<NewToken>,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Admin)?;
    staff.check_form(&form.csrf)?;
    let actor = staff.actor();
    let (created, secret) = match issue(&state, &form.name, form.role, provenance(&actor, &id))
        .await
    {
        Ok(made) => made,
        Err(error) => {
            let message = error.to_string();
            let tokens = crate::store::tokens::list(&mut state.store().db()).await?;
            let body = html! {
                p.error role="alert" #token-error { "The token was not created: " (message) "." }
                (listing(&staff, &tokens))
            };
            return Ok((StatusCode::BAD_REQUEST, page(&staff, "Tokens", body)).into_response());
        }
    };
    let body = html! {
        p { "The token " strong { (created.name) } " (" (created.role.as_str()) ") is below. Copy it now: it is shown only once, and Brevet keeps only its hash." }
        p.secret #new-token { code { (secret.expose()) } }
        p { a href="/console/tokens" { "Back to tokens" } }
    };
    Ok(page(&staff, "Token created", body))
}

/// `POST /console/tokens/{id}/revoke` (admin): revoked, audited; its sessions end.
pub async fn revoke(
    staff: Staff,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    id: Option<axum::Extension<RequestId>>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    staff.require(Role::Admin)?;
    staff.check_form(&form.csrf)?;
    let actor = staff.actor();
    withdraw(&state, &raw, provenance(&actor, &id)).await?;
    Ok(Redirect::to("/console/tokens").into_response())
}
