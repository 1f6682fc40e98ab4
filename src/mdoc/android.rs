//! The device side's CBOR structures as Brevet reads them (spec/wallet-api.md §8.4–§8.9), and the
//! credential payload Brevet delivers (§8.7, [I]):
//!
//! - proofs: untagged COSE_Sign1 (ES256, protected `{1: -7}`) by the device identity key over
//!   `["ProofOfOwnership", docType, challenge, testCredential]` or
//!   `["ProofOfProvisioning", docType, [profiles], {ns: [{name, value, accessControlProfiles}]},
//!   testCredential]`;
//! - auth-key certificates signed by the identity key, carrying in extension
//!   1.3.6.1.4.1.11129.2.1.26 an `extnValue` whose OCTET STRING content *is* the CBOR of
//!   `["ProofOfBinding", SHA-256(ProofOfProvisioning)]` (one wrap: Android's
//!   `IdentityCredentialSupport.cpp` and identity-credential's `Util.getPopSha256FromAuthKeyCert`);
//! - the credential payload `{"docType": tstr, "nameSpaces": {ns: {element: value}}}`.
//!
//! Only the server's direction lives here (verify proofs, write the payload). The simulator's
//! device builds its side from Android's definitions in `sim::wallet::android`, and the tests
//! check one against the other and both against Python implementations.

use ciborium::Value;
use coset::{iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder};
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};
use x509_cert::der::oid::ObjectIdentifier;

use super::cbor::{as_bytes, as_map, as_text, from_slice, required, to_vec, CborError};
use super::cose;
use super::doctype::{ElementError, ElementValues};
use crate::pki::certs;
use crate::pki::{Signer, SignerError};

use crate::protocol::android as ids;

/// OID of the ProofOfBinding extension of auth-key certificates.
pub const PROOF_OF_BINDING_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap(ids::PROOF_OF_BINDING_OID);

/// Why a device proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Not a COSE_Sign1, or not the structure expected.
    #[error("{0}")]
    Malformed(String),
    /// The signature does not verify with the device identity key.
    #[error("the signature does not verify with the device's identity key")]
    BadSignature,
    /// Well-formed and signed, but saying something else than expected.
    #[error("{0}")]
    Mismatch(String),
}

impl From<CborError> for ProofError {
    fn from(error: CborError) -> Self {
        ProofError::Malformed(error.0)
    }
}

fn malformed(what: impl Into<String>) -> ProofError {
    ProofError::Malformed(what.into())
}

/// An untagged ES256 COSE_Sign1 over `payload`, as Android's proofs and Brevet's
/// `EncryptedData.signature` are.
pub fn sign1(payload: Vec<u8>, signer: &dyn Signer) -> Result<Vec<u8>, SignerError> {
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .build();
    let unsigned = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .build();
    let signature = signer.sign(&cose::to_be_signed(&unsigned))?;
    Ok(cose::to_vec(&cose::attach_signature(unsigned, &signature)))
}

/// Checks an ES256 COSE_Sign1 with `key` and returns its payload.
pub fn open_sign1(bytes: &[u8], key: &VerifyingKey) -> Result<Vec<u8>, ProofError> {
    let sign1 = CoseSign1::from_slice(bytes)
        .or_else(|_| {
            // Tolerate the tagged form (18).
            let value = from_slice(bytes, "COSE_Sign1").map_err(|_| ())?;
            cose::parse(&value).map_err(|_| ())
        })
        .map_err(|_| malformed("not a COSE_Sign1"))?;
    if !cose::is_es256(&sign1) {
        return Err(malformed(format!(
            "COSE_Sign1 algorithm is {}, not ES256",
            cose::algorithm_name(&sign1)
        )));
    }
    if !cose::signature_verifies(&sign1, key) {
        return Err(ProofError::BadSignature);
    }
    sign1
        .payload
        .ok_or_else(|| malformed("COSE_Sign1 has no payload"))
}

fn array<'a>(value: &'a Value, tag: &str, len: usize) -> Result<&'a [Value], ProofError> {
    let Value::Array(items) = value else {
        return Err(malformed(format!("{tag} must be an array of {len}")));
    };
    if items.first() != Some(&Value::Text(tag.into())) {
        return Err(malformed(format!("not a {tag}")));
    }
    if items.len() != len {
        return Err(malformed(format!("{tag} must be an array of {len}")));
    }
    Ok(items)
}

fn as_bool(value: &Value, place: &str) -> Result<bool, ProofError> {
    match value {
        Value::Bool(b) => Ok(*b),
        _ => Err(malformed(format!("{place} must be a boolean"))),
    }
}

/// What a verified ProofOfOwnership says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// The doc type of the credential the identity key belongs to.
    pub doc_type: String,
    /// The testCredential flag.
    pub test_credential: bool,
}

/// Verifies a ProofOfOwnership COSE_Sign1 by `key` for `challenge`.
pub fn verify_ownership(
    bytes: &[u8],
    key: &VerifyingKey,
    challenge: &[u8],
) -> Result<Ownership, ProofError> {
    let payload = open_sign1(bytes, key)?;
    let value = from_slice(&payload, "ProofOfOwnership")?;
    let items = array(&value, ids::PROOF_OF_OWNERSHIP, 4)?;
    if as_bytes(&items[2], "ProofOfOwnership challenge")? != challenge {
        return Err(ProofError::Mismatch(
            "ProofOfOwnership challenge is not the SHA-256 of the signed key or data".into(),
        ));
    }
    Ok(Ownership {
        doc_type: as_text(&items[1], "ProofOfOwnership docType")?.to_owned(),
        test_credential: as_bool(&items[3], "ProofOfOwnership testCredential")?,
    })
}

/// A verified ProofOfProvisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// SHA-256 of the payload: what auth-key ProofOfBinding extensions must carry.
    pub sha256: [u8; 32],
    /// The testCredential flag.
    pub test_credential: bool,
}

/// Verifies a ProofOfProvisioning COSE_Sign1: signed by `key`, for `expected`'s doc type, and
/// holding exactly `expected`'s elements with CBOR-equal values.
pub fn verify_provisioning(
    bytes: &[u8],
    key: &VerifyingKey,
    expected: &ElementValues,
) -> Result<Provisioned, ProofError> {
    let payload = open_sign1(bytes, key)?;
    let value = from_slice(&payload, "ProofOfProvisioning")?;
    let items = array(&value, ids::PROOF_OF_PROVISIONING, 5)?;
    if as_text(&items[1], "ProofOfProvisioning docType")? != expected.doc_type {
        return Err(ProofError::Mismatch(format!(
            "ProofOfProvisioning is for another doc type than {}",
            expected.doc_type
        )));
    }
    let mut provisioned: Vec<(String, String, Value)> = Vec::new();
    for (ns, entries) in as_map(&items[3], "ProvisionedData")? {
        let ns = as_text(ns, "ProvisionedData namespace")?;
        let Value::Array(entries) = entries else {
            return Err(malformed(format!("ProvisionedData {ns} must be an array")));
        };
        for entry in entries {
            let entry = as_map(entry, "ProvisionedData entry")?;
            let name = as_text(required(entry, "name", "entry")?, "entry name")?;
            let value = required(entry, "value", "entry")?;
            provisioned.push((ns.to_owned(), name.to_owned(), value.clone()));
        }
    }
    let mut wanted: Vec<(String, String, Value)> = expected
        .namespaces
        .iter()
        .flat_map(|(ns, elements)| {
            elements
                .iter()
                .map(move |(name, value)| (ns.clone(), name.clone(), value.clone()))
        })
        .collect();
    let key_of = |e: &(String, String, Value)| (e.0.clone(), e.1.clone());
    provisioned.sort_by_key(key_of);
    wanted.sort_by_key(key_of);
    if provisioned.len() != wanted.len() {
        return Err(ProofError::Mismatch(format!(
            "the device provisioned {} data elements, the credential version has {}",
            provisioned.len(),
            wanted.len()
        )));
    }
    for (got, want) in provisioned.iter().zip(&wanted) {
        if (&got.0, &got.1) != (&want.0, &want.1) {
            return Err(ProofError::Mismatch(format!(
                "the device provisioned {}/{}, which this version does not have",
                got.0, got.1
            )));
        }
        if to_vec(&got.2) != to_vec(&want.2) {
            return Err(ProofError::Mismatch(format!(
                "the device provisioned another value for {}/{}",
                got.0, got.1
            )));
        }
    }
    Ok(Provisioned {
        sha256: Sha256::digest(&payload).into(),
        test_credential: as_bool(&items[4], "ProofOfProvisioning testCredential")?,
    })
}

/// The auth key of one auth-key certificate, after checking it: signed by the identity key,
/// P-256, valid at `at` give or take `skew` (device clocks drift), and bound to `pop_sha256`
/// when it carries a ProofOfBinding.
pub fn verify_auth_key_certificate(
    der: &[u8],
    identity_key: &VerifyingKey,
    pop_sha256: Option<&[u8]>,
    at: std::time::SystemTime,
    skew: std::time::Duration,
) -> Result<VerifyingKey, ProofError> {
    let cert = certs::from_der(der).map_err(|e| malformed(e.to_string()))?;
    certs::check_signature(&cert, identity_key).map_err(|_| ProofError::BadSignature)?;
    let key = certs::public_key(&cert)
        .map_err(|_| ProofError::Mismatch("the auth key is not a P-256 key".into()))?;
    certs::check_validity_with_skew(&cert, at, skew)
        .map_err(|e| ProofError::Mismatch(e.to_string()))?;
    if let Some(cbor) = certs::raw_extension_value(&cert, PROOF_OF_BINDING_OID) {
        // The extension's OCTET STRING content is the CBOR itself.
        let value = from_slice(cbor, "ProofOfBinding")?;
        let items = array(&value, ids::PROOF_OF_BINDING, 2)?;
        let bound = as_bytes(&items[1], "ProofOfBinding digest")?;
        if Some(bound) != pop_sha256 {
            return Err(ProofError::Mismatch(
                "the auth key is bound to another ProofOfProvisioning".into(),
            ));
        }
    }
    Ok(key)
}

/// The credential payload (spec §8.7, [I]): `{"docType", "nameSpaces": {ns: {element: value}}}`.
pub fn credential_payload(values: &ElementValues) -> Vec<u8> {
    let namespaces = values
        .namespaces
        .iter()
        .map(|(ns, elements)| {
            (
                Value::Text(ns.clone()),
                Value::Map(
                    elements
                        .iter()
                        .map(|(name, value)| (Value::Text(name.clone()), value.clone()))
                        .collect(),
                ),
            )
        })
        .collect();
    to_vec(&Value::Map(vec![
        (
            Value::Text("docType".into()),
            Value::Text(values.doc_type.clone()),
        ),
        (Value::Text("nameSpaces".into()), Value::Map(namespaces)),
    ]))
}

/// Checks that the credential payload of `values`, once encrypted (AES-GCM adds a 16-byte tag),
/// fits in `encryptedValue` (65,536 bytes, spec §3.4). Too large, it names the largest element,
/// which is the one to shrink (for an mDL, the portrait).
pub fn check_payload_size(values: &ElementValues) -> Result<(), ElementError> {
    const TAG: usize = 16;
    let total = credential_payload(values).len() + TAG;
    if total <= crate::protocol::wallet::MAX_ENCRYPTED_VALUE {
        return Ok(());
    }
    let largest = values
        .namespaces
        .iter()
        .flat_map(|(ns, elements)| {
            elements
                .iter()
                .map(move |(id, v)| (ns, id, to_vec(v).len()))
        })
        .max_by_key(|(_, _, size)| *size);
    let (ns, id, size) = largest.ok_or(ElementError::NotAnObject)?;
    Err(ElementError::Invalid(
        ns.clone(),
        id.clone(),
        format!(
            "the credential would be {total} bytes encrypted, over the Wallet API's limit of {} \
             (this element takes {size}); make it smaller",
            crate::protocol::wallet::MAX_ENCRYPTED_VALUE
        ),
    ))
}

/// SHA-256 of `a ‖ b`: the challenge of DeviceEncryptionKey and EncryptedData proofs.
pub fn sha256_concat(a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(a);
    hasher.update(b);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    //! The server's readers against the simulator device's independent writers.
    use super::*;
    use crate::sim::wallet::android::identity_credential as device;
    use p256::ecdsa::SigningKey;

    fn values() -> ElementValues {
        ElementValues {
            doc_type: "org.iso.18013.5.1.mDL".into(),
            namespaces: vec![(
                "org.iso.18013.5.1".into(),
                vec![
                    ("family_name".into(), Value::Text("Doe".into())),
                    ("age_over_18".into(), Value::Bool(true)),
                ],
            )],
        }
    }

    fn provisioned(values: &ElementValues) -> Vec<device::Namespace> {
        values.namespaces.clone()
    }

    #[test]
    fn ownership_proofs_verify_and_mismatches_are_named() {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let challenge = Sha256::digest(b"ephemeral key").to_vec();
        let proof = device::proof_of_ownership(&key, "org.iso.18013.5.1.mDL", &challenge);
        let public = *key.verifying_key();
        assert_eq!(
            verify_ownership(&proof, &public, &challenge),
            Ok(Ownership {
                doc_type: "org.iso.18013.5.1.mDL".into(),
                test_credential: false
            })
        );
        assert!(matches!(
            verify_ownership(&proof, &public, &[0; 32]),
            Err(ProofError::Mismatch(_))
        ));
        let other = *SigningKey::random(&mut rand::rngs::OsRng).verifying_key();
        assert_eq!(
            verify_ownership(&proof, &other, &challenge),
            Err(ProofError::BadSignature)
        );
        assert!(matches!(
            verify_ownership(b"\x01\x02", &public, &challenge),
            Err(ProofError::Malformed(_))
        ));
    }

    #[test]
    fn provisioning_proofs_must_match_the_version_exactly() {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let public = *key.verifying_key();
        let payload =
            device::proof_of_provisioning_payload("org.iso.18013.5.1.mDL", &provisioned(&values()));
        let proof = device::sign1(&key, payload.clone());
        let verified = verify_provisioning(&proof, &public, &values()).unwrap();
        assert_eq!(verified.sha256, <[u8; 32]>::from(Sha256::digest(&payload)));

        let mut changed = values();
        changed.namespaces[0].1[0].1 = Value::Text("Roe".into());
        let err = verify_provisioning(&proof, &public, &changed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the device provisioned another value for org.iso.18013.5.1/family_name"
        );
        let mut fewer = values();
        fewer.namespaces[0].1.pop();
        assert!(matches!(
            verify_provisioning(&proof, &public, &fewer),
            Err(ProofError::Mismatch(_))
        ));
    }

    #[test]
    fn the_device_reads_the_payload_brevet_writes() {
        let bytes = credential_payload(&values());
        let (doc_type, data) = device::read_credential(&bytes).unwrap();
        assert_eq!(doc_type, values().doc_type);
        assert_eq!(data, values().namespaces);
    }

    #[test]
    fn auth_key_certificates_as_android_writes_them_are_accepted() {
        let identity = SigningKey::random(&mut rand::rngs::OsRng);
        let auth = SigningKey::random(&mut rand::rngs::OsRng);
        let digest = [7u8; 32];
        let now = std::time::SystemTime::now();
        let der = device::auth_key_certificate(&identity, auth.verifying_key(), Some(&digest), now);
        let skew = std::time::Duration::from_secs(300);
        let key =
            verify_auth_key_certificate(&der, identity.verifying_key(), Some(&digest), now, skew)
                .unwrap();
        assert_eq!(&key, auth.verifying_key());
        assert_eq!(
            verify_auth_key_certificate(&der, identity.verifying_key(), Some(&[8; 32]), now, skew),
            Err(ProofError::Mismatch(
                "the auth key is bound to another ProofOfProvisioning".into()
            ))
        );
        // A device clock a minute ahead is tolerated; an hour is not.
        let ahead = device::auth_key_certificate(
            &identity,
            auth.verifying_key(),
            Some(&digest),
            now + std::time::Duration::from_secs(60),
        );
        assert!(verify_auth_key_certificate(
            &ahead,
            identity.verifying_key(),
            Some(&digest),
            now,
            skew
        )
        .is_ok());
        let far_ahead = device::auth_key_certificate(
            &identity,
            auth.verifying_key(),
            Some(&digest),
            now + std::time::Duration::from_secs(3600),
        );
        assert_eq!(
            verify_auth_key_certificate(
                &far_ahead,
                identity.verifying_key(),
                Some(&digest),
                now,
                skew
            ),
            Err(ProofError::Mismatch("certificate is not yet valid".into()))
        );
    }
}
