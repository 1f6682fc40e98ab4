//! The issuer-hosted Wallet API (spec/wallet-api.md §4), under `/v1/vdc`: Google's servers call
//! these methods, each `POST /v1/vdc/<method>` with a JSON body. Errors answer with the spec's
//! `ErrorResponse` ([`crate::error::WalletError`]).

mod health;
mod request;

use axum::routing::post;
use axum::Router;

use super::AppState;
pub use request::{ApiVersion, RequestMetadata, WalletRequest};

/// Routes of the Wallet surface (nested under `/v1/vdc`).
pub fn router() -> Router<AppState> {
    Router::new().route("/healthCheck", post(health::health_check))
}
