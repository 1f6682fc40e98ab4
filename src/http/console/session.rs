//! Signing in to the console: an admin token buys a session kept in the store (so any replica
//! serves it), named by an HttpOnly, SameSite=Strict cookie (Secure under TLS). Every form carries
//! the session's CSRF token; the sign-in form, which has no session yet, carries one bound to a
//! short-lived cookie of its own. A session ends at its expiry, at sign-out, or when its token is
//! revoked (the lookup requires the token unrevoked).

use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use maud::{html, Markup};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_http::request_id::RequestId;

use super::page::{frame, ConsoleError};
use crate::domain::admin_token::{Role, TokenHash};
use crate::http::admin::auth::Principal;
use crate::http::AppState;
use crate::store::console_sessions::{self, NewSession};
use crate::store::{audit, Actor};

/// The session cookie.
pub const SESSION_COOKIE: &str = "brevet_console";
/// The sign-in form's own CSRF cookie.
const SIGN_IN_COOKIE: &str = "brevet_console_sign_in";

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.console.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are base64url")
}

/// A signed-in member of staff: the token's principal and the session's form token.
#[derive(Debug, Clone)]
pub struct Staff {
    /// Who, with the token's role.
    pub principal: Principal,
    csrf: String,
    session_hash: String,
}

impl Staff {
    /// The hidden field every form of this session carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_form(&self, presented: &str) -> Result<(), ConsoleError> {
        if same(presented, &self.csrf) {
            Ok(())
        } else {
            tracing::warn!(admin.token = %self.principal.name, "console form refused: CSRF token does not match the session");
            Err(ConsoleError::StaleForm)
        }
    }

    /// Refuses unless the role includes `required`, in the words of the admin API.
    pub fn require(&self, required: Role) -> Result<(), ConsoleError> {
        self.principal.require(required).map_err(Into::into)
    }

    /// This member of staff as the author of an audited change.
    pub fn actor(&self) -> Actor {
        self.principal.actor()
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        let value = cookie(&parts.headers, SESSION_COOKIE).ok_or(ConsoleError::SignedOut)?;
        let session_hash = hash(&value);
        let now = state.services.clock.now();
        let session = console_sessions::live(&mut state.store().db(), &session_hash, now)
            .await?
            .ok_or(ConsoleError::SessionEnded)?;
        Ok(Staff {
            principal: Principal {
                token_id: session.admin_token_id,
                name: session.name,
                role: session.role,
            },
            csrf: session.csrf_token,
            session_hash,
        })
    }
}

/// Query of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    ended: Option<String>,
}

fn sign_in_form(csrf: &str, message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.error role="alert" #sign-in-error { (message) }
        }
        form.stack method="post" action="/console/sign-in" {
            input type="hidden" name="csrf" value=(csrf);
            label for="token" { "Admin token" }
            input #token type="password" name="token" autocomplete="off" required autofocus;
            p.hint { "The token an administrator gave you (`brevet admin tokens create`). It is never shown again or stored in your browser." }
            button type="submit" { "Sign in" }
        }
    }
}

fn sign_in_response(state: &AppState, status: StatusCode, message: Option<&str>) -> Response {
    let csrf = random_token();
    let mut response =
        (status, frame(None, "Sign in", sign_in_form(&csrf, message))).into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, set_cookie(state, SIGN_IN_COOKIE, &csrf, 3600));
    response
}

/// `GET /console/sign-in`.
pub async fn sign_in_page(
    State(state): State<AppState>,
    Query(query): Query<SignInQuery>,
) -> Response {
    let message = query
        .ended
        .is_some()
        .then_some("Your session has ended. Sign in again to continue.");
    sign_in_response(&state, StatusCode::OK, message)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    csrf: String,
    token: String,
}

/// `POST /console/sign-in`: checks the token, starts a session, audited.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Option<axum::Extension<RequestId>>,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&form.csrf, &expected) {
        return Ok(sign_in_response(
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form had expired. Nothing was sent; please sign in again."),
        ));
    }
    let presented = form.token.trim();
    let token = if presented.is_empty() {
        None
    } else {
        crate::service::tokens::authenticate(state.store(), &TokenHash::of(presented)).await?
    };
    let Some(token) = token else {
        tracing::info!("console sign-in refused: unknown or revoked token");
        return Ok(sign_in_response(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("That token is not valid: it is unknown or has been revoked."),
        ));
    };
    let value = random_token();
    let ttl = state.console.session_ttl;
    let new = NewSession {
        session_hash: &hash(&value),
        admin_token_id: token.admin_token_id,
        csrf_token: &random_token(),
        expires_at: state.services.clock.after(ttl),
    };
    let actor = Actor::Token {
        admin_token_id: token.admin_token_id,
        name: token.name.clone(),
    };
    let by = crate::http::admin::provenance(&actor, &id);
    let mut tx = state.store().begin().await?;
    console_sessions::insert(&mut tx, &new).await?;
    console_sessions::purge_expired(&mut tx, state.services.clock.now()).await?;
    audit::insert(
        &mut tx,
        &by.entry("console.sign_in", "admin_token", token.admin_token_id),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(admin.token = %token.name, "console session started");
    let mut response = Redirect::to("/console/dashboard").into_response();
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &value, ttl.as_secs()),
    );
    headers.append(SET_COOKIE, set_cookie(&state, SIGN_IN_COOKIE, "", 0));
    Ok(response)
}

/// A form that carries only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    pub csrf: String,
}

/// `POST /console/sign-out`: ends the session, audited.
pub async fn sign_out(
    State(state): State<AppState>,
    staff: Staff,
    id: Option<axum::Extension<RequestId>>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    staff.check_form(&form.csrf)?;
    let actor = staff.actor();
    let by = crate::http::admin::provenance(&actor, &id);
    let mut tx = state.store().begin().await?;
    console_sessions::delete(&mut tx, &staff.session_hash).await?;
    audit::insert(
        &mut tx,
        &by.entry("console.sign_out", "admin_token", staff.principal.token_id),
    )
    .await?;
    tx.commit().await?;
    let mut response = Redirect::to("/console/sign-in").into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", 0));
    Ok(response)
}
