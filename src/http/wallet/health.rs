//! `healthCheck` (spec/wallet-api.md §4.1): echoes `clientMessage`.

use axum::Json;
use serde::{Deserialize, Serialize};

use super::request::{HasMetadata, RequestMetadata, WalletRequest};
use crate::error::WalletError;

/// Request of `healthCheck`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckRequest {
    request_metadata: RequestMetadata,
    client_message: String,
}

impl HasMetadata for HealthCheckRequest {
    fn metadata(&self) -> &RequestMetadata {
        &self.request_metadata
    }
}

/// `responseMetadata` of every Wallet response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseMetadata {
    request_id: String,
}

impl ResponseMetadata {
    /// Metadata answering the request with this id.
    pub fn answering(request_id: &str) -> Self {
        Self {
            request_id: request_id.to_owned(),
        }
    }
}

/// Response of `healthCheck`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckResponse {
    response_metadata: ResponseMetadata,
    client_message: String,
}

/// `POST /v1/vdc/healthCheck`
pub async fn health_check(
    request: WalletRequest<HealthCheckRequest>,
) -> Result<Json<HealthCheckResponse>, WalletError> {
    let response_metadata = ResponseMetadata::answering(request.request_id());
    Ok(Json(HealthCheckResponse {
        response_metadata,
        client_message: request.body.client_message,
    }))
}
