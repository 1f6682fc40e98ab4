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
use serde_json::{json, Map, Value};

use crate::store::StoreError;

/// Internal detail of a failed request, for the access log only.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

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
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
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
    InvalidApiVersion {
        /// The version the request carried.
        request_version: Value,
        /// The version this server expects.
        expected_version: Value,
    },
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

    fn member(&self) -> (&'static str, Value, StatusCode) {
        use WalletErrorKind::*;
        let empty = || Value::Object(Map::new());
        // HTTP statuses other than invalidApiVersion's 400 are our choice ([I], docs/ASSUMPTIONS.md).
        match &self.kind {
            InvalidApiVersion {
                request_version,
                expected_version,
            } => (
                "invalidApiVersion",
                json!({ "requestVersion": request_version, "expectedVersion": expected_version }),
                StatusCode::BAD_REQUEST,
            ),
            InvalidPayloadSignature => {
                ("invalidPayloadSignature", empty(), StatusCode::UNAUTHORIZED)
            }
            InvalidPayloadEncryption => {
                ("invalidPayloadEncryption", empty(), StatusCode::BAD_REQUEST)
            }
            InvalidIdentifier => ("invalidIdentifier", empty(), StatusCode::NOT_FOUND),
            InvalidFieldValue => ("invalidFieldValue", empty(), StatusCode::BAD_REQUEST),
            MissingRequiredField => ("missingRequiredField", empty(), StatusCode::BAD_REQUEST),
            InvalidDecryptedRequest => {
                ("invalidDecryptedRequest", empty(), StatusCode::BAD_REQUEST)
            }
            PermissionDenied => ("permissionDenied", empty(), StatusCode::FORBIDDEN),
            Forbidden => ("forbidden", empty(), StatusCode::FORBIDDEN),
            InvalidState => ("invalidState", empty(), StatusCode::CONFLICT),
            Internal {
                unavailable: true, ..
            } => ("", empty(), StatusCode::SERVICE_UNAVAILABLE),
            Internal {
                unavailable: false, ..
            } => ("", empty(), StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
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
        let (member, value, status) = self.member();
        // Lets Google's support staff quote one id that an operator finds in Brevet's log.
        let issuer_error_identifier = uuid::Uuid::new_v4().to_string();
        let mut body = Map::new();
        body.insert(
            "responseMetadata".into(),
            json!({ "requestId": self.request_id.clone().unwrap_or_default() }),
        );
        body.insert(
            "errorDescription".into(),
            Value::String(self.description.clone()),
        );
        body.insert(
            "issuerErrorIdentifier".into(),
            Value::String(issuer_error_identifier.clone()),
        );
        if !member.is_empty() {
            body.insert(member.into(), value);
        }
        tracing::info!(
            wallet.error = if member.is_empty() { "internal" } else { member },
            wallet.issuer_error_identifier = %issuer_error_identifier,
            wallet.error_description = %self.description,
            "wallet request refused"
        );
        let mut response = (status, Json(Value::Object(body))).into_response();
        if let WalletErrorKind::Internal { detail, .. } = self.kind {
            response.extensions_mut().insert(ErrorDetail(detail));
        }
        response
    }
}
