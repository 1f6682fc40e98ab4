//! Reading Wallet API requests: JSON bodies with `requestMetadata` (spec/wallet-api.md §3.1), the
//! API-version check, and errors that echo the request's `requestId` whenever it could be read.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{InvalidApiVersion, WalletError, WalletErrorKind};
use crate::http::AppState;
pub use crate::protocol::wallet::{ApiVersion, RequestMetadata, ResponseMetadata};

/// A Wallet request body that carries `requestMetadata`.
pub trait HasMetadata {
    /// The request's metadata.
    fn metadata(&self) -> &RequestMetadata;
}

/// A parsed Wallet request whose API version was accepted.
#[derive(Debug)]
pub struct WalletRequest<T> {
    /// The request body.
    pub body: T,
}

impl<T: HasMetadata> WalletRequest<T> {
    /// The `requestId` to echo in `responseMetadata`.
    pub fn request_id(&self) -> &str {
        &self.body.metadata().request_id
    }

    /// An identifier of the request, checked (`invalidFieldValue` when it is not one).
    pub fn id<I>(
        &self,
        parsed: Result<I, crate::protocol::ids::InvalidId>,
    ) -> Result<I, WalletError> {
        parsed.map_err(|e| self.error(WalletErrorKind::InvalidFieldValue, e.to_string()))
    }

    /// An error answering this request.
    pub fn error(&self, kind: WalletErrorKind, description: impl Into<String>) -> WalletError {
        WalletError::new(kind, description).for_request(Some(self.request_id().to_owned()))
    }

    /// `result` with this request's id on its error.
    pub fn answer<R>(&self, result: Result<R, WalletError>) -> Result<R, WalletError> {
        result.map_err(|e| {
            if e.request_id.is_none() {
                e.for_request(Some(self.request_id().to_owned()))
            } else {
                e
            }
        })
    }
}

impl<T> FromRequest<AppState> for WalletRequest<T>
where
    T: DeserializeOwned + HasMetadata,
{
    type Rejection = WalletError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WalletError> {
        let bytes = read_body(request, state).await?;
        // First only the envelope (no tree of the whole body is built): the version is checked
        // before the rest, since a caller on another version may well send another shape.
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Data => "is not a JSON object",
                _ => "is not valid JSON",
            };
            WalletError::new(
                WalletErrorKind::InvalidFieldValue,
                format!("request body {what}: {e}"),
            )
        })?;
        let metadata = envelope.request_metadata.unwrap_or(Value::Null);
        let request_id = metadata
            .get("requestId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(version) = metadata.get("version") {
            check_version(version, &state.wallet_versions)
                .map_err(|e| e.for_request(request_id.clone()))?;
        }
        if let (Some(expected), Some(Value::String(issuer))) =
            (state.wallet_issuer_id.as_deref(), metadata.get("issuerId"))
        {
            if issuer != expected {
                return Err(WalletError::new(
                    WalletErrorKind::PermissionDenied,
                    "requestMetadata.issuerId is not this issuer's id",
                )
                .for_request(request_id));
            }
        }
        let body: T = serde_json::from_slice(&bytes).map_err(|e| {
            let message = e.to_string();
            let kind = if message.starts_with("missing field") {
                WalletErrorKind::MissingRequiredField
            } else {
                WalletErrorKind::InvalidFieldValue
            };
            WalletError::new(kind, format!("invalid request body: {message}"))
                .for_request(request_id.clone())
        })?;
        Ok(Self { body })
    }
}

/// The body of a Wallet request: a 415 ErrorResponse when it says it is not JSON, a 413 past the
/// size limit, a 400 when it cannot be read. (A body without Content-Type is read as JSON.)
pub async fn read_body(request: Request, state: &AppState) -> Result<Bytes, WalletError> {
    if let Some(content_type) = request.headers().get(axum::http::header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" {
            return Err(WalletError::new(
                WalletErrorKind::Transport(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE),
                "Wallet API requests are JSON (Content-Type: application/json)",
            ));
        }
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            let status = rejection.status();
            let kind = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                WalletErrorKind::Transport(status)
            } else {
                WalletErrorKind::InvalidFieldValue
            };
            WalletError::new(
                kind,
                format!("unreadable request body: {}", rejection.body_text()),
            )
        })
}

/// The part of any Wallet request read before the rest: `requestMetadata`, loosely typed so that
/// a malformed one is reported by the full parse, naming its field.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "requestMetadata")]
    request_metadata: Option<Value>,
}

fn check_version(version: &Value, accepted: &[ApiVersion]) -> Result<(), WalletError> {
    let parsed: ApiVersion = serde_json::from_value(version.clone()).map_err(|e| {
        WalletError::new(
            WalletErrorKind::InvalidFieldValue,
            format!("requestMetadata.version: {e}"),
        )
    })?;
    if accepted.contains(&parsed) {
        return Ok(());
    }
    let expected = accepted
        .last()
        .copied()
        .unwrap_or(ApiVersion { major: 0, minor: 1 });
    Err(WalletError::new(
        WalletErrorKind::InvalidApiVersion(InvalidApiVersion {
            request_version: parsed,
            expected_version: expected,
        }),
        format!(
            "API version {}.{} is not supported; this issuer implements {}.{}",
            parsed.major, parsed.minor, expected.major, expected.minor
        ),
    ))
}
