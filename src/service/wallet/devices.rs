//! Device registration (spec/wallet-api.md §4.4, §4.5): a nonce for the device, then its identity
//! key, accepted only with a key attestation over that nonce.
//!
//! The nonce is 24 random bytes sent as a 32-character base64url string without padding, so that
//! it fits Android's 32-byte challenge limit whether Google hands the device the string or the
//! bytes it encodes ([I]); a second request replaces the outstanding one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use x509_cert::der::Encode;

use super::{cpu, decode_field, internal, refuse};
use crate::config::ChallengeForm;
use crate::domain::device::{self as lifecycle, Registration};
use crate::error::{WalletError, WalletErrorKind as K};
use crate::pki::{attestation, certs};
use crate::protocol::ids::DeviceReferenceId;
use crate::service::Services;
use crate::store::devices;

/// Random bytes of a registration nonce: 24, whose base64url form is 32 characters, the most
/// Android's attestation challenge takes.
pub const NONCE_LEN: usize = 24;
/// Longest attestation chain accepted ([I]; Android's are 3 to 5 certificates).
pub const MAX_CHAIN: usize = 10;

/// Issues a fresh nonce for `device` and returns it in its wire form.
pub async fn issue_nonce(s: &Services, device: &DeviceReferenceId) -> Result<String, WalletError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    devices::issue_nonce(
        &mut s.store.db(),
        device,
        &nonce,
        s.clock.after(s.nonce_ttl),
    )
    .await?;
    Ok(URL_SAFE_NO_PAD.encode(nonce))
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

/// Registers the identity key attested by `chain` (base64 DER, leaf first) for `device`. A repeat
/// with the same key is accepted without change; another key for a registered device is refused.
pub async fn register(
    s: &Services,
    device: &DeviceReferenceId,
    chain: &[&str],
) -> Result<(), WalletError> {
    // Unknown devices first: nothing of the chain is parsed for a device that asked for no nonce.
    let found = devices::get(&mut s.store.db(), device)
        .await?
        .ok_or_else(|| {
            refuse(
                K::InvalidIdentifier,
                "no registration nonce was issued for this deviceReferenceId",
            )
        })?;
    if chain.is_empty() {
        return Err(refuse(
            K::MissingRequiredField,
            "deviceIdentityCertificateChain is required",
        ));
    }
    if chain.len() > MAX_CHAIN {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("deviceIdentityCertificateChain has more than {MAX_CHAIN} certificates"),
        ));
    }
    let mut certificates = Vec::with_capacity(chain.len());
    for (index, b64) in chain.iter().enumerate() {
        let der = decode_field(&format!("deviceIdentityCertificateChain[{index}]"), b64)?;
        certificates.push(certs::from_der(&der).map_err(|_| {
            refuse(
                K::InvalidFieldValue,
                format!("deviceIdentityCertificateChain[{index}] is not a DER X.509 certificate"),
            )
        })?);
    }
    let leaf_key = certificates[0]
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| internal(e.to_string()))?;
    let conflict = |e: lifecycle::KeyConflict| refuse(K::InvalidState, e.to_string());
    match lifecycle::register(
        found.status,
        found.identity_public_key.as_deref(),
        &leaf_key,
    )
    .map_err(conflict)?
    {
        Registration::AlreadyRegistered => return Ok(()),
        Registration::Register => {}
    }
    let nonce = match (&found.registration_nonce, found.nonce_expires_at) {
        (Some(nonce), Some(expires)) if expires > s.clock.now() => nonce.clone(),
        _ => {
            return Err(refuse(
                K::InvalidIdentifier,
                "the registration nonce of this deviceReferenceId was used or has expired",
            ))
        }
    };
    let challenges = accepted_challenges(&nonce, s.wallet.settings.challenge_form);
    let (wallet, now) = (s.wallet.clone(), s.clock.system_time());
    cpu(move || {
        attestation::verify(&certificates, &challenges, &wallet.attestation, now).map_err(|e| {
            refuse(
                K::InvalidFieldValue,
                format!("device attestation refused: {e}"),
            )
        })
    })
    .await?;
    let chain_json = serde_json::Value::from(chain.to_vec());
    if devices::register(&mut s.store.db(), device, &nonce, &leaf_key, &chain_json).await? {
        return Ok(());
    }
    // Another call registered or replaced the nonce meanwhile: decide on what is there now.
    let now = devices::get(&mut s.store.db(), device).await?;
    match now.as_ref().and_then(|d| d.identity_public_key.as_deref()) {
        Some(key) if key == leaf_key => Ok(()),
        Some(_) => Err(conflict(lifecycle::KeyConflict)),
        None => Err(refuse(
            K::InvalidIdentifier,
            "the registration nonce was replaced by a newer one",
        )),
    }
}
