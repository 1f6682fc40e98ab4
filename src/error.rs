//! One error type per API surface, each rendered in that surface's JSON error shape.
//!
//! - [`AdminError`]: the admin REST API and the operations endpoints, as
//!   `{"error": {"code": "...", "message": "..."}}`.
//! - [`WalletError`]: the issuer-hosted Wallet API, as the spec's `ErrorResponse`
//!   (spec/wallet-api.md §3.6).
//!
//! Client mistakes are explicit variants with precise statuses and messages. Infrastructure
//! failures answer with an opaque 500/503 body; their detail rides in an [`ErrorDetail`] response
//! extension that the access log prints, so it reaches the operator and never the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::wallet::{ApiVersion, ResponseMetadata};
use crate::store::StoreError;

/// Internal detail of a failed request, for the access log only.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

/// Error body of the admin and operations surfaces.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminErrorBody {
    /// The error.
    pub error: AdminErrorDetail,
}

/// What went wrong, for programs (`code`) and people (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminErrorDetail {
    /// Stable code: unauthorized, forbidden, not_found, bad_request, payload_too_large, conflict,
    /// precondition_required, precondition_failed, unavailable or internal.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// Errors of the admin and operations surfaces.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No usable bearer token was presented.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The token's role does not allow this.
    #[error("this action needs the {0} role")]
    Forbidden(&'static str),
    /// No such route or record.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// The request body is larger than the configured limit.
    #[error("request body is larger than the configured limit (http.body_limit_bytes)")]
    PayloadTooLarge,
    /// The request conflicts with the current state of a record.
    #[error("{0}")]
    Conflict(String),
    /// A change needs `If-Match` with the version the caller read.
    #[error("this change needs an If-Match header with the credential's ETag")]
    PreconditionRequired,
    /// `If-Match` names a version that is no longer current.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The store cannot be reached right now.
    #[error("the store is unavailable")]
    Unavailable(String),
    /// A bug or an unexpected failure.
    #[error("internal error")]
    Internal(String),
}

impl AdminError {
    fn status(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            AdminError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthorized(_) => "unauthorized",
            AdminError::Forbidden(_) => "forbidden",
            AdminError::NotFound(_) => "not_found",
            AdminError::BadRequest(_) => "bad_request",
            AdminError::PayloadTooLarge => "payload_too_large",
            AdminError::Conflict(_) => "conflict",
            AdminError::PreconditionRequired => "precondition_required",
            AdminError::PreconditionFailed(_) => "precondition_failed",
            AdminError::Unavailable(_) => "unavailable",
            AdminError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => AdminError::Conflict(format!("already exists ({what})")),
            StoreError::Database(e) => AdminError::Unavailable(e.to_string()),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = AdminErrorBody {
            error: AdminErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        match &self {
            AdminError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            AdminError::Unavailable(detail) | AdminError::Internal(detail) => {
                response
                    .extensions_mut()
                    .insert(ErrorDetail(detail.clone()));
            }
            _ => {}
        }
        response
    }
}

/// The member of the ErrorResponse `result` union (spec/wallet-api.md §3.6).
#[derive(Debug, Clone, PartialEq)]
pub enum WalletErrorKind {
    /// `requestMetadata.version` is not one this server implements.
    InvalidApiVersion(InvalidApiVersion),
    /// A payload signature is invalid or by an unknown key.
    InvalidPayloadSignature,
    /// A payload could not be decrypted.
    InvalidPayloadEncryption,
    /// An identifier is unknown or unusable.
    InvalidIdentifier,
    /// A field holds a value outside what is allowed.
    InvalidFieldValue,
    /// A required field is absent.
    MissingRequiredField,
    /// A decrypted payload does not parse.
    InvalidDecryptedRequest,
    /// The caller may not do this.
    PermissionDenied,
    /// Access to the resource is forbidden.
    Forbidden,
    /// The operation is illegal in the resource's current state.
    InvalidState,
    /// Not a client mistake: Brevet failed. Rendered as a bare 500/503 with only metadata.
    Internal {
        /// Whether the failure is a passing one (store down): 503 rather than 500.
        unavailable: bool,
        /// Detail for the log.
        detail: String,
    },
}

/// An error of the issuer-hosted Wallet API, answered instead of the method's normal response.
#[derive(Debug, Clone)]
pub struct WalletError {
    /// Which ErrorResponse member.
    pub kind: WalletErrorKind,
    /// `errorDescription`: for Google's support staff; never personal data.
    pub description: String,
    /// `responseMetadata.requestId`: the request's id when it could be read.
    pub request_id: Option<String>,
}

impl WalletError {
    /// An error of `kind` described (without personal data) by `description`.
    pub fn new(kind: WalletErrorKind, description: impl Into<String>) -> Self {
        Self {
            kind,
            description: description.into(),
            request_id: None,
        }
    }

    /// The same error, answering the request with this id.
    pub fn for_request(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// The response body and HTTP status. Statuses other than invalidApiVersion's 400 are our
    /// choice ([I], docs/ASSUMPTIONS.md).
    fn render(&self, issuer_error_identifier: String) -> (StatusCode, ErrorResponse) {
        use WalletErrorKind as K;
        let mut body = ErrorResponse {
            response_metadata: ResponseMetadata::answering(
                self.request_id.as_deref().unwrap_or_default(),
            ),
            error_description: self.description.clone(),
            issuer_error_identifier,
            ..ErrorResponse::default()
        };
        let empty = Some(Empty {});
        let status = match &self.kind {
            K::InvalidApiVersion(versions) => {
                body.invalid_api_version = Some(versions.clone());
                StatusCode::BAD_REQUEST
            }
            K::InvalidPayloadSignature => {
                body.invalid_payload_signature = empty;
                StatusCode::UNAUTHORIZED
            }
            K::InvalidPayloadEncryption => {
                body.invalid_payload_encryption = empty;
                StatusCode::BAD_REQUEST
            }
            K::InvalidIdentifier => {
                body.invalid_identifier = empty;
                StatusCode::NOT_FOUND
            }
            K::InvalidFieldValue => {
                body.invalid_field_value = empty;
                StatusCode::BAD_REQUEST
            }
            K::MissingRequiredField => {
                body.missing_required_field = empty;
                StatusCode::BAD_REQUEST
            }
            K::InvalidDecryptedRequest => {
                body.invalid_decrypted_request = empty;
                StatusCode::BAD_REQUEST
            }
            K::PermissionDenied => {
                body.permission_denied = empty;
                StatusCode::FORBIDDEN
            }
            K::Forbidden => {
                body.forbidden = empty;
                StatusCode::FORBIDDEN
            }
            K::InvalidState => {
                body.invalid_state = empty;
                StatusCode::CONFLICT
            }
            K::Internal {
                unavailable: true, ..
            } => StatusCode::SERVICE_UNAVAILABLE,
            K::Internal {
                unavailable: false, ..
            } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, body)
    }

    fn member_name(&self) -> &'static str {
        use WalletErrorKind as K;
        match &self.kind {
            K::InvalidApiVersion(_) => "invalidApiVersion",
            K::InvalidPayloadSignature => "invalidPayloadSignature",
            K::InvalidPayloadEncryption => "invalidPayloadEncryption",
            K::InvalidIdentifier => "invalidIdentifier",
            K::InvalidFieldValue => "invalidFieldValue",
            K::MissingRequiredField => "missingRequiredField",
            K::InvalidDecryptedRequest => "invalidDecryptedRequest",
            K::PermissionDenied => "permissionDenied",
            K::Forbidden => "forbidden",
            K::InvalidState => "invalidState",
            K::Internal { .. } => "internal",
        }
    }
}

/// `InvalidApiVersion`: the version the request carried and the one this issuer expects.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvalidApiVersion {
    /// The version the request carried.
    pub request_version: ApiVersion,
    /// The version this issuer implements.
    pub expected_version: ApiVersion,
}

/// A union member without fields, serialised as `{}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Empty {}

/// `ErrorResponse` (spec/wallet-api.md §3.6): returned instead of the method's response. Exactly one
/// of the optional members (the `result` union) is present, except on a server failure (5xx),
/// which carries none.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// Echoes the request's `requestId`.
    pub response_metadata: ResponseMetadata,
    /// For Google's support staff; never personal data.
    pub error_description: String,
    /// Brevet's id of this error, also in Brevet's log.
    pub issuer_error_identifier: String,
    /// The request's API version is unsupported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_api_version: Option<InvalidApiVersion>,
    /// A payload signature is invalid or by an unknown key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_payload_signature: Option<Empty>,
    /// A payload could not be decrypted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_payload_encryption: Option<Empty>,
    /// An identifier is unknown or unusable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_identifier: Option<Empty>,
    /// A field value is not allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_field_value: Option<Empty>,
    /// A required field is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_required_field: Option<Empty>,
    /// A decrypted payload does not parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_decrypted_request: Option<Empty>,
    /// The caller may not do this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_denied: Option<Empty>,
    /// Access to the resource is forbidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forbidden: Option<Empty>,
    /// The operation is illegal in the resource's current state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_state: Option<Empty>,
}

impl From<StoreError> for WalletError {
    fn from(error: StoreError) -> Self {
        let unavailable = matches!(error, StoreError::Database(_));
        WalletError::new(
            WalletErrorKind::Internal {
                unavailable,
                detail: error.to_string(),
            },
            "the issuer could not complete the request",
        )
    }
}

impl IntoResponse for WalletError {
    fn into_response(self) -> Response {
        // Lets Google's support staff quote one id that an operator finds in Brevet's log.
        let issuer_error_identifier = uuid::Uuid::new_v4().to_string();
        tracing::info!(
            wallet.error = self.member_name(),
            wallet.issuer_error_identifier = %issuer_error_identifier,
            wallet.error_description = %self.description,
            "wallet request refused"
        );
        let (status, body) = self.render(issuer_error_identifier);
        let mut response = (status, Json(body)).into_response();
        if let WalletErrorKind::Internal { detail, .. } = self.kind {
            response.extensions_mut().insert(ErrorDetail(detail));
        }
        response
    }
}
