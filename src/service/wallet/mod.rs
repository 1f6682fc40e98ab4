//! The Wallet API's use cases (spec/wallet-api.md §4), called by the handlers in
//! `http::wallet` with ids already checked. They answer in the API's own error type, since every
//! refusal they decide is one of its error kinds.

pub mod context;
pub mod copies;
pub mod devices;
pub mod e2ee;
pub mod proofing;

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;

pub use context::{hpke_context, DocumentSignerKey, KeySet, WalletContext, WalletSettings};

use crate::error::{WalletError, WalletErrorKind as K};
use crate::protocol::ids::DeviceReferenceId;
use crate::protocol::wallet as wire;
use crate::store::{Device, Store};

/// A refusal of the caller's request (the handler adds the request id).
pub fn refuse(kind: K, description: impl Into<String>) -> WalletError {
    WalletError::new(kind, description)
}

/// A fault in Brevet (a bug, a damaged store): logged, answered 500.
pub fn internal(detail: impl Into<String>) -> WalletError {
    WalletError::internal(detail)
}

/// A passing server-side condition (a key not yet available, a signer failing): logged,
/// answered 503 with `Retry-After`.
pub fn unavailable(detail: impl Into<String>) -> WalletError {
    WalletError::unavailable(
        detail,
        "the issuer cannot complete this request right now; retry",
    )
}

/// Base64 field `name`, decoded.
pub fn decode_field(name: &str, raw: &str) -> Result<Vec<u8>, WalletError> {
    wire::decode(raw).ok_or_else(|| refuse(K::InvalidFieldValue, format!("{name} is not base64")))
}

/// The registered identity key of a device; `invalidIdentifier` when it has none.
pub fn identity_key(device: Option<&Device>) -> Result<VerifyingKey, WalletError> {
    let spki = device
        .and_then(|d| d.identity_public_key.as_deref())
        .ok_or_else(|| {
            refuse(
                K::InvalidIdentifier,
                "deviceReferenceId is not a registered device",
            )
        })?;
    VerifyingKey::from_public_key_der(spki)
        .map_err(|e| internal(format!("stored identity key unreadable: {e}")))
}

/// The identity key of the registered device `device`.
pub async fn registered_key(
    store: &Store,
    device: &DeviceReferenceId,
) -> Result<VerifyingKey, WalletError> {
    identity_key(
        crate::store::devices::get(&mut store.db(), device)
            .await?
            .as_ref(),
    )
}

/// Runs Wallet crypto on the blocking pool; a task that dies is Brevet's fault.
pub async fn cpu<T, F>(work: F) -> Result<T, WalletError>
where
    F: FnOnce() -> Result<T, WalletError> + Send + 'static,
    T: Send + 'static,
{
    super::cpu(work)
        .await
        .map_err(|e| internal(e.to_string()))?
}
