//! The issuer-hosted Wallet API (spec/wallet-api.md §4), under `/v1/vdc`: Google's servers call
//! these methods, each `POST /v1/vdc/<method>` with a JSON body. Errors answer with the spec's
//! `ErrorResponse` ([`crate::error::WalletError`]).

mod device;
mod health;
mod request;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
pub use request::{ApiVersion, RequestMetadata, ResponseMetadata, WalletRequest};

/// Routes of the Wallet surface (nested under `/v1/vdc`), with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::health_check))
        .routes(routes!(device::get_device_registration_nonce))
}
