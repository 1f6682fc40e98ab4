//! `healthCheck` (spec/wallet-api.md §4.1): echoes `clientMessage`.

use axum::Json;
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use super::request::{HasMetadata, RequestMetadata, ResponseMetadata, WalletRequest};
use crate::error::{ErrorResponse, WalletError};

/// Request of `healthCheck`.
#[derive(Debug, Deserialize, ToSchema)]
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

/// Response of `healthCheck`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckResponse {
    response_metadata: ResponseMetadata,
    client_message: String,
}

/// `POST /v1/vdc/healthCheck`: connectivity test; echoes `clientMessage`.
#[utoipa::path(
    post,
    path = "/healthCheck",
    tag = "wallet",
    request_body = HealthCheckRequest,
    responses(
        (status = 200, description = "A healthy system", body = HealthCheckResponse),
        (status = 400, description = "Malformed request or unsupported API version", body = ErrorResponse),
    )
)]
pub async fn health_check(
    request: WalletRequest<HealthCheckRequest>,
) -> Result<Json<HealthCheckResponse>, WalletError> {
    let response_metadata = ResponseMetadata::answering(request.request_id());
    Ok(Json(HealthCheckResponse {
        response_metadata,
        client_message: request.body.client_message,
    }))
}
