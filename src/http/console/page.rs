//! The console's page frame, its error pages and small rendering helpers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::session::Staff;
use crate::domain::admin_token::Role;
use crate::error::AdminError;
use crate::store::StoreError;

/// A whole page: head, navigation for the signed-in `staff`, and `body`.
pub fn frame(staff: Option<&Staff>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Brevet console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "Brevet" }
                    @if let Some(staff) = staff {
                        nav aria-label="Sections" {
                            a href="/console/dashboard" { "Dashboard" }
                            a href="/console/records" { "Records" }
                            a href="/console/proofings" { "Proofings" }
                            a href="/console/notifications" { "Notifications" }
                            a href="/console/certificates" { "Certificates" }
                            a href="/console/audit" { "Audit log" }
                            @if staff.principal.role.allows(Role::Admin) {
                                a href="/console/tokens" { "Tokens" }
                            }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            (staff.csrf_field())
                            span.who { (staff.principal.name) " (" (staff.principal.role.as_str()) ")" }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page for `staff` as a response.
pub fn page(staff: &Staff, title: &str, body: Markup) -> Response {
    frame(Some(staff), title, body).into_response()
}

/// A time for people: UTC, to the second.
pub fn when(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A notice above a page's content.
pub fn notice(text: &str) -> Markup {
    html! { p.notice role="status" { (text) } }
}

/// Whether a role includes `required` (to show or hide buttons; the server checks again).
pub fn may(staff: &Staff, required: Role) -> bool {
    staff.principal.role.allows(required)
}

/// What a console request ends with when it cannot do what was asked: a page that says why in
/// words, with the status a browser and a test can see. Never a stack trace or a store error.
#[derive(Debug)]
pub enum ConsoleError {
    /// No session: to sign-in.
    SignedOut,
    /// The session expired, was ended or its token revoked: to sign-in, saying so.
    SessionEnded,
    /// The form's CSRF token does not belong to this session.
    StaleForm,
    /// The role does not allow it.
    Forbidden(String),
    /// No such record or page.
    NotFound(String),
    /// The request is wrong in a way the page explains.
    BadRequest(String),
    /// The record's state does not allow it, or someone else changed it.
    Conflict(String),
    /// Something failed on our side; details are in the log, under the request id.
    Internal,
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "console request failed in the store");
        ConsoleError::Internal
    }
}

impl From<AdminError> for ConsoleError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Unauthorized(_) => ConsoleError::SessionEnded,
            AdminError::Forbidden(message) => ConsoleError::Forbidden(message),
            AdminError::NotFound(message) => ConsoleError::NotFound(message),
            AdminError::Conflict(message) | AdminError::PreconditionFailed(message) => {
                ConsoleError::Conflict(message)
            }
            AdminError::BadRequest(message) | AdminError::InvalidFields { message, .. } => {
                ConsoleError::BadRequest(message)
            }
            other => {
                tracing::error!(error = %other, "console request failed");
                ConsoleError::Internal
            }
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            ConsoleError::SignedOut => return Redirect::to("/console/sign-in").into_response(),
            ConsoleError::SessionEnded => {
                return Redirect::to("/console/sign-in?ended=1").into_response()
            }
            ConsoleError::StaleForm => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was opened in an earlier session or on another page. Nothing was saved. Go back, reload the page and try again.".to_owned(),
            ),
            ConsoleError::Forbidden(message) => (StatusCode::FORBIDDEN, "Not allowed", message),
            ConsoleError::NotFound(message) => (StatusCode::NOT_FOUND, "Not found", message),
            ConsoleError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "Cannot do that", message)
            }
            ConsoleError::Conflict(message) => (StatusCode::CONFLICT, "Cannot do that now", message),
            ConsoleError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not finish this request; nothing was changed. The server's log has the details under this request's id.".to_owned(),
            ),
        };
        let body = html! {
            p.error role="alert" { (text) }
            p { a href="/console/dashboard" { "Back to the dashboard" } }
        };
        (status, frame(None, title, body)).into_response()
    }
}
