//! The admin REST API for issuer staff, under `/admin/v1`. Every request carries an admin bearer
//! token ([`auth::Principal`]); every write is audited in the same transaction as the change.

pub mod auth;
mod tokens;

use axum::routing::get;
use axum::Router;

use super::AppState;

/// Routes of the admin surface (nested under `/admin/v1`).
pub fn router() -> Router<AppState> {
    Router::new().route("/whoami", get(auth::get_whoami)).route(
        "/tokens",
        get(tokens::list_tokens).post(tokens::create_token),
    )
}
