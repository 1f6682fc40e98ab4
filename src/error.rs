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

use crate::protocol::wallet::{ApiVersion, ResponseMetadata};
use crate::store::StoreError;

/// Internal detail of a failed request, for the access log only.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

/// Longest error description, in characters, that a response or a log line carries. Parsers'
/// messages may quote the caller's input; a fixed bound keeps a 100 KB field out of the logs.
pub const MAX_DESCRIPTION_CHARS: usize = 240;

/// `text`, cut to [`MAX_DESCRIPTION_CHARS`] characters (an ellipsis marks a cut).
pub fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// Seconds a client should wait before retrying a request that met a passing condition.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Error body of the admin and operations surfaces.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminErrorBody {
    /// The error.
    pub error: AdminErrorDetail,
}

/// What went wrong, for programs (`code`) and people (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminErrorDetail {
    /// Stable code: unauthorized, forbidden, not_found, bad_request, payload_too_large,
    /// unsupported_media_type, method_not_allowed, conflict, precondition_required,
    /// precondition_failed, timeout, unavailable or internal.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Each field at fault with what is wrong with it, when the request named several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
}

/// One field of a request and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field, e.g. `org.iso.18013.5.1/portrait`.
    pub field: String,
    /// What is wrong, in words a person understands.
    pub problem: String,
}

/// Errors of the admin and operations surfaces.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No usable bearer token was presented.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The caller may not do this (a token's role, an unauthenticated push); the message says why.
    #[error("{0}")]
    Forbidden(String),
    /// No such route or record.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// Fields of the request are invalid; each is named with its problem.
    #[error("{message}")]
    InvalidFields {
        /// All problems in one sentence.
        message: String,
        /// Each field at fault.
        fields: Vec<FieldProblem>,
    },
    /// The request body is larger than the configured limit.
    #[error("request body is larger than the configured limit (http.body_limit_bytes)")]
    PayloadTooLarge,
    /// The body is not JSON (Content-Type).
    #[error("expected a request body with Content-Type: application/json")]
    UnsupportedMediaType,
    /// The route exists, not with this method.
    #[error("this route does not accept the {0} method")]
    MethodNotAllowed(String),
    /// The request took longer than `http.request_timeout_secs`.
    #[error("the request took longer than the server allows (http.request_timeout_secs)")]
    Timeout,
    /// The request conflicts with the current state of a record.
    #[error("{0}")]
    Conflict(String),
    /// A change needs `If-Match` with the version the caller read.
    #[error("this change needs an If-Match header with the credential's ETag")]
    PreconditionRequired,
    /// `If-Match` names a version that is no longer current.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The store cannot be reached right now, or the change lost a race; retry.
    #[error("the store is busy or unavailable; retry shortly")]
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
            AdminError::BadRequest(_) | AdminError::InvalidFields { .. } => StatusCode::BAD_REQUEST,
            AdminError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AdminError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::Timeout => StatusCode::REQUEST_TIMEOUT,
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
            AdminError::BadRequest(_) | AdminError::InvalidFields { .. } => "bad_request",
            AdminError::PayloadTooLarge => "payload_too_large",
            AdminError::UnsupportedMediaType => "unsupported_media_type",
            AdminError::MethodNotAllowed(_) => "method_not_allowed",
            AdminError::Timeout => "timeout",
            AdminError::Conflict(_) => "conflict",
            AdminError::PreconditionRequired => "precondition_required",
            AdminError::PreconditionFailed(_) => "precondition_failed",
            AdminError::Unavailable(_) => "unavailable",
            AdminError::Internal(_) => "internal",
        }
    }
}

impl AdminError {
    /// Holder data refused, every element named.
    pub fn invalid_holder_data(errors: crate::mdoc::doctype::ElementErrors) -> Self {
        let fields = errors
            .0
            .iter()
            .map(|e| FieldProblem {
                field: e.field().unwrap_or_else(|| "holderData".into()),
                problem: bounded(&e.problem()),
            })
            .collect();
        AdminError::InvalidFields {
            message: errors.to_string(),
            fields,
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => AdminError::Conflict(format!("already exists ({what})")),
            // A row named in the request went away meanwhile (nothing is deleted by design, so
            // this is a race with a future feature or a bug; either way not the caller's fault
            // to retry blindly).
            StoreError::Missing(what) => {
                AdminError::Conflict(format!("refers to a record that does not exist ({what})"))
            }
            StoreError::Busy(e) => AdminError::Unavailable(e.to_string()),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        let fields = match &self {
            AdminError::InvalidFields { fields, .. } => fields.clone(),
            _ => Vec::new(),
        };
        let body = AdminErrorBody {
            error: AdminErrorDetail {
                code: self.code().to_owned(),
                message: bounded(&self.to_string()),
                fields,
            },
        };
        let mut response = (status, Json(body)).into_response();
        match &self {
            AdminError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            AdminError::Unavailable(detail) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
                response
                    .extensions_mut()
                    .insert(ErrorDetail(detail.clone()));
            }
            AdminError::Internal(detail) => {
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
    /// A passing condition the caller cannot fix (write contention, the store or a key
    /// unavailable, a document signer being replaced): HTTP 503 with no union member and
    /// `Retry-After`, so that Google retries (spec §3.6).
    Unavailable {
        /// Seconds to wait, when known.
        retry_after: Option<u64>,
        /// Detail for the log.
        detail: String,
    },
    /// A fault in Brevet: HTTP 500 with no union member.
    Internal {
        /// Detail for the log.
        detail: String,
    },
    /// Not the API's business at all: no such method (404), a method other than POST (405), a
    /// body too large (413) or not JSON (415), a request that took too long (408). Answered as an
    /// ErrorResponse without a union member, with this status.
    Transport(StatusCode),
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
            description: bounded(&description.into()),
            request_id: None,
        }
    }

    /// A passing failure (503, `Retry-After`): Google should send the request again.
    pub fn unavailable(detail: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(
            WalletErrorKind::Unavailable {
                retry_after: Some(RETRY_AFTER_SECS),
                detail: detail.into(),
            },
            description,
        )
    }

    /// A fault in Brevet (500).
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            WalletErrorKind::Internal {
                detail: detail.into(),
            },
            "the issuer could not complete the request",
        )
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
            K::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            K::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            K::Transport(status) => *status,
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
            K::Unavailable { .. } => "unavailable",
            K::Internal { .. } => "internal",
            K::Transport(_) => "transport",
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
        match error {
            // A uniqueness race between two retries of Google's is as passing as contention.
            StoreError::Busy(_) | StoreError::Conflict(_) => {
                WalletError::unavailable(error.to_string(), "the issuer is busy; retry the request")
            }
            other => WalletError::internal(other.to_string()),
        }
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
        match self.kind {
            WalletErrorKind::Unavailable {
                retry_after,
                detail,
            } => {
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response.extensions_mut().insert(ErrorDetail(detail));
            }
            WalletErrorKind::Internal { detail } => {
                response.extensions_mut().insert(ErrorDetail(detail));
            }
            _ => {}
        }
        response
    }
}
