//! Device registration, first step: `getDeviceRegistrationNonce` (spec/wallet-api.md §4.4). The
//! nonce is 24 random bytes sent as a 32-character base64url string without padding, so that it
//! fits Android's 32-byte challenge limit whether Google hands the device the string or the bytes
//! it encodes ([I]); it is stored with the deviceReferenceId, and a second request replaces the
//! outstanding one. Then `registerDevice` (§4.5): the attestation chain is checked against that
//! nonce (in the forms `wallet.attestation.challenge_form` allows) and the identity key stored.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use x509_cert::der::Encode;

use super::crypto::{answer, decode_field, internal, refuse};
use super::request::{HasMetadata, RequestMetadata, ResponseMetadata, WalletRequest};
use crate::config::ChallengeForm;
use crate::error::{ErrorResponse, WalletError, WalletErrorKind};
use crate::http::AppState;
use crate::pki::{attestation, certs};

/// Random bytes of a registration nonce: 24, whose base64url form is 32 characters, the most
/// Android's attestation challenge takes.
pub const NONCE_LEN: usize = 24;
/// Longest deviceReferenceId accepted ([I]; Google's are opaque ids well below this).
pub const MAX_DEVICE_REFERENCE_ID: usize = 512;

/// Request of `getDeviceRegistrationNonce`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NonceRequest {
    request_metadata: RequestMetadata,
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    device_reference_id: String,
}

impl HasMetadata for NonceRequest {
    fn metadata(&self) -> &RequestMetadata {
        &self.request_metadata
    }
}

/// Response of `getDeviceRegistrationNonce`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NonceResponse {
    response_metadata: ResponseMetadata,
    /// 24 random bytes as 32 characters of base64url without padding.
    nonce: String,
}

/// Checks a deviceReferenceId from Google.
pub fn check_device_reference_id<T: HasMetadata>(
    request: &WalletRequest<T>,
    id: &str,
) -> Result<(), WalletError> {
    if id.trim().is_empty()
        || id.len() > MAX_DEVICE_REFERENCE_ID
        || id.chars().any(char::is_control)
    {
        return Err(request.error(
            WalletErrorKind::InvalidFieldValue,
            format!(
                "deviceReferenceId must be 1 to {MAX_DEVICE_REFERENCE_ID} printable characters"
            ),
        ));
    }
    Ok(())
}

/// `POST /v1/vdc/getDeviceRegistrationNonce`
#[utoipa::path(
    post,
    path = "/getDeviceRegistrationNonce",
    tag = "wallet",
    request_body = NonceRequest,
    responses(
        (status = 200, description = "A fresh nonce for registerDevice", body = NonceResponse),
        (status = 400, description = "Malformed request or unsupported API version", body = ErrorResponse),
    )
)]
pub async fn get_device_registration_nonce(
    State(state): State<AppState>,
    request: WalletRequest<NonceRequest>,
) -> Result<Json<NonceResponse>, WalletError> {
    let device = &request.body.device_reference_id;
    check_device_reference_id(&request, device)?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(state.nonce_ttl).unwrap_or(chrono::Duration::MAX);
    state
        .store
        .issue_registration_nonce(device, &nonce, expires_at)
        .await
        .map_err(|e| WalletError::from(e).for_request(Some(request.request_id().to_owned())))?;
    Ok(Json(NonceResponse {
        response_metadata: ResponseMetadata::answering(request.request_id()),
        nonce: URL_SAFE_NO_PAD.encode(nonce),
    }))
}

/// Request of `registerDevice`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterDeviceRequest {
    request_metadata: RequestMetadata,
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    device_reference_id: String,
    /// Base64 DER certificates, leaf (the identity key with its attestation) first.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 10)]
    device_identity_certificate_chain: Vec<String>,
    /// Deprecated single-certificate form, read only when the chain is absent.
    #[serde(default)]
    device_identity_certificate: Option<String>,
}

impl HasMetadata for RegisterDeviceRequest {
    fn metadata(&self) -> &RequestMetadata {
        &self.request_metadata
    }
}

/// Response of `registerDevice`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterDeviceResponse {
    response_metadata: ResponseMetadata,
}

/// Longest attestation chain accepted ([I]; Android's are 3 to 5 certificates).
const MAX_CHAIN: usize = 10;

/// `POST /v1/vdc/registerDevice`
#[utoipa::path(
    post,
    path = "/registerDevice",
    tag = "wallet",
    request_body = RegisterDeviceRequest,
    responses(
        (status = 200, description = "The device's identity key is registered (also for a repeated registration of the same key)", body = RegisterDeviceResponse),
        (status = 400, description = "Malformed request, or an attestation that fails the checks (invalidFieldValue)", body = ErrorResponse),
        (status = 404, description = "No outstanding nonce for the deviceReferenceId (invalidIdentifier)", body = ErrorResponse),
        (status = 409, description = "The deviceReferenceId is registered with another key (invalidState)", body = ErrorResponse),
    )
)]
pub async fn register_device(
    State(state): State<AppState>,
    request: WalletRequest<RegisterDeviceRequest>,
) -> Result<Json<RegisterDeviceResponse>, WalletError> {
    let request_id = request.request_id().to_owned();
    check_device_reference_id(&request, &request.body.device_reference_id)?;
    answer(&request_id, register(&state, &request.body).await)?;
    Ok(Json(RegisterDeviceResponse {
        response_metadata: ResponseMetadata::answering(&request_id),
    }))
}

/// The attestation challenges that prove the device saw `nonce`: the 32 ASCII bytes of the string
/// Brevet sent, the 24 bytes it encodes, or either (spec §4.4, [I]).
pub fn accepted_challenges(nonce: &[u8], form: ChallengeForm) -> Vec<Vec<u8>> {
    let text = URL_SAFE_NO_PAD.encode(nonce).into_bytes();
    match form {
        ChallengeForm::String => vec![text],
        ChallengeForm::Bytes => vec![nonce.to_vec()],
        ChallengeForm::Either => vec![text, nonce.to_vec()],
    }
}

async fn register(state: &AppState, body: &RegisterDeviceRequest) -> Result<(), WalletError> {
    use crate::domain::device::{self as lifecycle, DeviceStatus, Registration};
    let device_id = &body.device_reference_id;
    // Unknown devices first: nothing of the chain is parsed for a device that asked for no nonce.
    let device = state.store.get_device(device_id).await?.ok_or_else(|| {
        refuse(
            WalletErrorKind::InvalidIdentifier,
            "no registration nonce was issued for this deviceReferenceId",
        )
    })?;
    let encoded: Vec<&str> = if body.device_identity_certificate_chain.is_empty() {
        body.device_identity_certificate
            .as_deref()
            .into_iter()
            .collect()
    } else {
        body.device_identity_certificate_chain
            .iter()
            .map(String::as_str)
            .collect()
    };
    if encoded.is_empty() {
        return Err(refuse(
            WalletErrorKind::MissingRequiredField,
            "deviceIdentityCertificateChain is required",
        ));
    }
    if encoded.len() > MAX_CHAIN {
        return Err(refuse(
            WalletErrorKind::InvalidFieldValue,
            format!("deviceIdentityCertificateChain has more than {MAX_CHAIN} certificates"),
        ));
    }
    let mut chain = Vec::with_capacity(encoded.len());
    for (index, b64) in encoded.iter().enumerate() {
        let der = decode_field(&format!("deviceIdentityCertificateChain[{index}]"), b64)?;
        chain.push(certs::from_der(&der).map_err(|_| {
            refuse(
                WalletErrorKind::InvalidFieldValue,
                format!("deviceIdentityCertificateChain[{index}] is not a DER X.509 certificate"),
            )
        })?);
    }
    let leaf_key = chain[0]
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| internal(e.to_string()))?;
    let status = DeviceStatus::parse(&device.status)
        .ok_or_else(|| internal(format!("unknown device status {:?}", device.status)))?;
    let illegal = |e: lifecycle::KeyConflict| refuse(WalletErrorKind::InvalidState, e.to_string());
    match lifecycle::register(status, device.identity_public_key.as_deref(), &leaf_key)
        .map_err(illegal)?
    {
        Registration::AlreadyRegistered => return Ok(()),
        Registration::Register => {}
    }
    let nonce = match (&device.registration_nonce, device.nonce_expires_at) {
        (Some(nonce), Some(expires)) if expires > chrono::Utc::now() => nonce.clone(),
        _ => {
            return Err(refuse(
                WalletErrorKind::InvalidIdentifier,
                "the registration nonce of this deviceReferenceId was used or has expired",
            ))
        }
    };
    attestation::verify(
        &chain,
        &accepted_challenges(&nonce, state.wallet.settings.challenge_form),
        &state.wallet.attestation,
        std::time::SystemTime::now(),
    )
    .map_err(|e| {
        refuse(
            WalletErrorKind::InvalidFieldValue,
            format!("device attestation refused: {e}"),
        )
    })?;
    let chain_json = serde_json::Value::from(encoded);
    if state
        .store
        .register_device(device_id, &nonce, &leaf_key, &chain_json)
        .await?
    {
        return Ok(());
    }
    // Another call registered or replaced the nonce meanwhile: decide on what is there now.
    let now = state.store.get_device(device_id).await?;
    match now.as_ref().and_then(|d| d.identity_public_key.as_deref()) {
        Some(key) if key == leaf_key => Ok(()),
        Some(_) => Err(illegal(lifecycle::KeyConflict)),
        None => Err(refuse(
            WalletErrorKind::InvalidIdentifier,
            "the registration nonce was replaced by a newer one",
        )),
    }
}
