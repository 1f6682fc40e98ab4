//! The issuer-hosted Wallet API (spec/wallet-api.md §4), under `/v1/vdc`: Google's servers call
//! these methods, each `POST /v1/vdc/<method>` with a JSON body. Errors answer with the spec's
//! `ErrorResponse` ([`crate::error::WalletError`]).

mod credential;
mod device;
mod health;
mod keys;
mod proofing;
mod request;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
pub use request::{ApiVersion, RequestMetadata, ResponseMetadata, WalletRequest};

/// Routes of the Wallet surface (nested under `/v1/vdc`), with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::health_check))
        .routes(routes!(keys::get_identity_key))
        .routes(routes!(keys::get_hybrid_encryption_key))
        .routes(routes!(device::get_device_registration_nonce))
        .routes(routes!(device::register_device))
        .routes(routes!(proofing::proof_user))
        .routes(routes!(proofing::get_proofing_status))
        .routes(routes!(proofing::cancel_proofing))
        .routes(routes!(credential::provision_credential))
        .routes(routes!(credential::provision_mobile_security_objects))
        .routes(routes!(credential::get_credential_status))
        .routes(routes!(credential::notify_credential_deleted))
}
