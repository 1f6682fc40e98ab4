//! End-to-end encryption as the Wallet API does it (spec/wallet-api.md §3.3, §3.4, §8.3): check a
//! device's ephemeral key against its identity key, encrypt to it and sign with Brevet's identity
//! key; open what a device encrypted to Brevet's hybrid key and check the device's signature.
//! Everything here is CPU work: callers run it through `service::cpu`.

use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};

use super::context::WalletContext;
use super::{decode_field, internal, refuse, unavailable};
use crate::error::{WalletError, WalletErrorKind as K};
use crate::mdoc::android::{self, ProofError};
use crate::pki::hpke;
use crate::protocol::wallet::{
    self as wire, DeviceEncryptionKey, EncryptedData, MAX_ENCRYPTED_VALUE,
};

fn proof_error(what: &str, error: ProofError) -> WalletError {
    match error {
        ProofError::BadSignature => refuse(
            K::InvalidPayloadSignature,
            format!("{what}: the signature does not verify with the device's identity key"),
        ),
        ProofError::Malformed(detail) | ProofError::Mismatch(detail) => {
            refuse(K::InvalidFieldValue, format!("{what}: {detail}"))
        }
    }
}

/// Checks `key`'s ProofOfOwnership (challenge SHA-256 of the public key) for `doc_type`, and
/// returns the 65-byte public key to encrypt to.
pub fn device_encryption_key(
    context: &WalletContext,
    identity: &VerifyingKey,
    doc_type: &str,
    key: &DeviceEncryptionKey,
) -> Result<Vec<u8>, WalletError> {
    let public = decode_field("deviceEncryptionKey.publicKey", &key.public_key)?;
    if public.len() != 65 || public[0] != 0x04 || p256::PublicKey::from_sec1_bytes(&public).is_err()
    {
        return Err(refuse(
            K::InvalidFieldValue,
            "deviceEncryptionKey.publicKey is not an uncompressed point on P-256",
        ));
    }
    if key.key_id.is_empty() || key.key_id.len() > 256 {
        return Err(refuse(
            K::InvalidFieldValue,
            "deviceEncryptionKey.keyId must be 1 to 256 characters",
        ));
    }
    let signature = decode_field("deviceEncryptionKey.signature", &key.signature)?;
    let proof = android::verify_ownership(&signature, identity, &Sha256::digest(&public))
        .map_err(|e| proof_error("deviceEncryptionKey.signature", e))?;
    check_proof_doc_type(context, "deviceEncryptionKey.signature", &proof, doc_type)?;
    Ok(public)
}

fn check_proof_doc_type(
    context: &WalletContext,
    what: &str,
    proof: &android::Ownership,
    doc_type: &str,
) -> Result<(), WalletError> {
    if proof.doc_type != doc_type {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("{what}: the proof is for another doc type than {doc_type}"),
        ));
    }
    if proof.test_credential && !context.settings.accept_test_credentials {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("{what}: test credentials are not accepted"),
        ));
    }
    Ok(())
}

/// Encrypts `plaintext` to a device key and signs SHA-256(plaintext ‖ device key) with the
/// active identity key.
pub fn seal_for_device(
    context: &WalletContext,
    recipient: &[u8],
    recipient_key_id: &str,
    hpke_context: &str,
    plaintext: &[u8],
) -> Result<EncryptedData, WalletError> {
    let set = context.keys();
    let identity = set
        .keys
        .as_ref()
        .and_then(|k| k.active_identity(std::time::SystemTime::now()))
        .ok_or_else(|| unavailable("no Wallet identity key: run `brevet keys init`"))?;
    let sealed = hpke::seal(
        recipient,
        context.settings.hpke_context(hpke_context),
        plaintext,
    )
    .map_err(|e| internal(format!("HPKE seal: {e}")))?;
    if sealed.ciphertext.len() > MAX_ENCRYPTED_VALUE {
        return Err(internal(format!(
            "encrypted value of {} bytes exceeds the API's 65536",
            sealed.ciphertext.len()
        )));
    }
    let digest = android::sha256_concat(plaintext, recipient);
    let signature = android::sign1(digest.to_vec(), identity.signer.as_ref())
        .map_err(|e| unavailable(format!("identity signature: {e}")))?;
    Ok(EncryptedData {
        encrypted_value: wire::encode(&sealed.ciphertext),
        encapsulated_key: wire::encode(&sealed.encapsulated_key),
        signature: wire::encode(&signature),
        recipient_key_id: recipient_key_id.to_owned(),
    })
}

/// Opens evidence a device encrypted to one of Brevet's hybrid keys and checks the device's
/// ProofOfOwnership over SHA-256(plaintext ‖ hybrid public key). Returns the plaintext.
pub fn open_from_device(
    context: &WalletContext,
    identity: &VerifyingKey,
    member: &str,
    hpke_context: &str,
    data: &EncryptedData,
) -> Result<Vec<u8>, WalletError> {
    let set = context.keys();
    let keys = set
        .keys
        .as_ref()
        .ok_or_else(|| unavailable("no Wallet hybrid key: run `brevet keys init`"))?;
    let hybrid = keys
        .hybrid_by_serial(&data.recipient_key_id)
        .ok_or_else(|| {
            refuse(
                K::InvalidPayloadEncryption,
                format!("{member}: recipientKeyId names no hybrid key of this issuer"),
            )
        })?;
    let ciphertext = decode_field(&format!("{member}.encryptedValue"), &data.encrypted_value)?;
    if ciphertext.len() > MAX_ENCRYPTED_VALUE {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("{member}.encryptedValue is larger than 65536 bytes"),
        ));
    }
    let enc = decode_field(&format!("{member}.encapsulatedKey"), &data.encapsulated_key)?;
    let plaintext = hybrid
        .key
        .open(
            context.settings.hpke_context(hpke_context),
            &enc,
            &ciphertext,
        )
        .map_err(|e| match e {
            // The token holding the key failed: Brevet's fault, retried by Google.
            crate::pki::hpke::HpkeError::Unavailable(why) => {
                unavailable(format!("{member}: {why}"))
            }
            e => refuse(K::InvalidPayloadEncryption, format!("{member}: {e}")),
        })?;
    let signature = decode_field(&format!("{member}.signature"), &data.signature)?;
    let challenge = android::sha256_concat(&plaintext, &hybrid.key.public_bytes());
    let proof = android::verify_ownership(&signature, identity, &challenge)
        .map_err(|e| proof_error(&format!("{member}.signature"), e))?;
    if proof.test_credential && !context.settings.accept_test_credentials {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("{member}.signature: test credentials are not accepted"),
        ));
    }
    Ok(plaintext)
}

/// Turns a proof failure into the API's error (for PMSO's proofs).
pub fn proof_refusal(what: &str, error: ProofError) -> WalletError {
    proof_error(what, error)
}
