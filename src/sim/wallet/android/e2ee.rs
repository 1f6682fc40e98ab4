//! The device's end of the Wallet API's end-to-end encryption (spec/wallet-api.md §8.2–§8.3), on
//! the `hpke` crate: RFC 9180 base mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
//! The server seals with its own RFC 9180 composition over ring; pyhpke checks both.

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::DhP256HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use p256::ecdsa::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::identity_credential::{open_sign1, proof_of_ownership, sha256_concat};
use super::x509;
use crate::protocol::wallet::{self as wire, DeviceEncryptionKey, EncryptedData};

type Kem = DhP256HkdfSha256;

/// Where the context strings go: HPKE `info` or AEAD `aad` ([I], configurable on the server).
#[derive(Debug, Clone)]
pub struct Contexts {
    /// Context of the credential payload.
    pub credential: String,
    /// Context of each MSO.
    pub mobile_security_object: String,
    /// Whether contexts go into the AEAD's additional data instead of HPKE's info.
    pub in_aad: bool,
}

impl Default for Contexts {
    fn default() -> Self {
        Self {
            credential: wire::CREDENTIAL_CONTEXT.into(),
            mobile_security_object: wire::MOBILE_SECURITY_OBJECT_CONTEXT.into(),
            in_aad: false,
        }
    }
}

impl Contexts {
    fn split<'a>(&self, context: &'a str) -> (&'a [u8], &'a [u8]) {
        if self.in_aad {
            (b"", context.as_bytes())
        } else {
            (context.as_bytes(), b"")
        }
    }
}

/// An ephemeral key generated for one request.
pub struct EphemeralKey {
    private: <Kem as hpke::Kem>::PrivateKey,
    public: Vec<u8>,
    /// As sent to the issuer.
    pub wire: DeviceEncryptionKey,
}

impl EphemeralKey {
    /// A fresh key with its ProofOfOwnership (challenge SHA-256 of the public key) by the
    /// CredentialKey.
    pub fn new(credential_key: &SigningKey, doc_type: &str) -> Self {
        let (private, public) = Kem::gen_keypair(&mut rand::rngs::OsRng);
        let public = public.to_bytes().to_vec();
        let proof = proof_of_ownership(credential_key, doc_type, &Sha256::digest(&public));
        let key_id = hex::encode_upper(&Sha256::digest(&public)[..8]);
        Self {
            wire: DeviceEncryptionKey {
                public_key: wire::encode(&public),
                signature: wire::encode(&proof),
                key_id,
            },
            private,
            public,
        }
    }

    /// Opens what the issuer encrypted to this key: checks recipientKeyId, decrypts, and checks
    /// the issuer's COSE_Sign1 over SHA-256(plaintext ‖ our public key) against every identity
    /// certificate Google relayed.
    pub fn open(
        &self,
        contexts: &Contexts,
        context: &str,
        data: &EncryptedData,
        identity_certificates: &[Certificate],
    ) -> Result<Vec<u8>, String> {
        if data.recipient_key_id != self.wire.key_id {
            return Err("recipientKeyId is not the keyId of our encryption key".into());
        }
        let field =
            |name: &str, raw: &str| wire::decode(raw).ok_or(format!("{name} is not base64"));
        let ciphertext = field("encryptedValue", &data.encrypted_value)?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&field(
            "encapsulatedKey",
            &data.encapsulated_key,
        )?)
        .map_err(|_| "encapsulatedKey is not a P-256 point")?;
        let (info, aad) = contexts.split(context);
        let plaintext = hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.private,
            &enc,
            info,
            &ciphertext,
            aad,
        )
        .map_err(|_| format!("cannot decrypt the {context} payload"))?;
        let signature = field("signature", &data.signature)?;
        let expected = sha256_concat(&plaintext, &self.public);
        let signed_by_issuer = identity_certificates.iter().any(|cert| {
            x509::p256_key(cert)
                .ok()
                .and_then(|key| open_sign1(&signature, &key).ok())
                .is_some_and(|payload| payload == expected)
        });
        if !signed_by_issuer {
            return Err(
                "the issuer's signature does not verify with any identity certificate".into(),
            );
        }
        Ok(plaintext)
    }
}

/// Encrypts evidence to the issuer's hybrid certificate, with the device's ProofOfOwnership over
/// SHA-256(plaintext ‖ issuer public key); recipientKeyId is the certificate's serial number in
/// upper-case hex.
pub fn seal_to_issuer(
    credential_key: &SigningKey,
    doc_type: &str,
    hybrid: &Certificate,
    contexts: &Contexts,
    context: &str,
    plaintext: &[u8],
) -> Result<EncryptedData, String> {
    let key: VerifyingKey = x509::p256_key(hybrid)?;
    let point = key.to_encoded_point(false).as_bytes().to_vec();
    let public = <Kem as hpke::Kem>::PublicKey::from_bytes(&point)
        .map_err(|_| "the hybrid key is not a P-256 point")?;
    let (info, aad) = contexts.split(context);
    let (enc, ciphertext) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &public,
        info,
        plaintext,
        aad,
        &mut rand::rngs::OsRng,
    )
    .map_err(|e| format!("HPKE seal: {e}"))?;
    let proof = proof_of_ownership(credential_key, doc_type, &sha256_concat(plaintext, &point));
    Ok(EncryptedData {
        encrypted_value: wire::encode(&ciphertext),
        encapsulated_key: wire::encode(&enc.to_bytes()),
        signature: wire::encode(&proof),
        recipient_key_id: hex::encode_upper(hybrid.tbs_certificate.serial_number.as_bytes()),
    })
}
