//! The device side's CBOR structures as Android IdentityCredential makes them
//! (spec/wallet-api.md §8.4–§8.9), and the credential payload Brevet delivers (§8.7, [I]):
//!
//! - proofs: untagged COSE_Sign1 (ES256, protected `{1: -7}`) by the device identity key over
//!   `["ProofOfOwnership", docType, challenge, testCredential]` or
//!   `["ProofOfProvisioning", docType, [profiles], {ns: [{name, value, accessControlProfiles}]},
//!   testCredential]`;
//! - auth-key certificates signed by the identity key, optionally carrying
//!   `["ProofOfBinding", SHA-256(ProofOfProvisioning)]` in extension 1.3.6.1.4.1.11129.2.1.26;
//! - the credential payload `{"docType": tstr, "nameSpaces": {ns: {element: value}}}`.
//!
//! Both directions live here: the server verifies, the simulator builds.

use ciborium::Value;
use coset::{iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder};
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::OctetString;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use super::cbor::{
    as_bytes, as_map, as_text, from_slice, map_get, required, to_vec, CborError, Tag24,
};
use super::cose;
use super::doctype::ElementValues;
use crate::pki::certs;
use crate::pki::{Signer, SignerError};

/// OID of the ProofOfBinding extension of auth-key certificates.
pub const PROOF_OF_BINDING_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.1.26");

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

/// `ProofOfOwnership` payload.
pub fn proof_of_ownership(doc_type: &str, challenge: &[u8], test_credential: bool) -> Vec<u8> {
    to_vec(&Value::Array(vec![
        Value::Text("ProofOfOwnership".into()),
        Value::Text(doc_type.into()),
        Value::Bytes(challenge.to_vec()),
        Value::Bool(test_credential),
    ]))
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
    let items = array(&value, "ProofOfOwnership", 4)?;
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

/// The access-control profile Brevet's provisioned entries refer to ([I]: the issuer has no
/// say in profiles; the device's own profile 0 without user authentication).
fn default_profile() -> Value {
    Value::Map(vec![(Value::Text("id".into()), Value::Integer(0.into()))])
}

/// `ProofOfProvisioning` payload for `values`, as a device that stored them would sign it.
pub fn proof_of_provisioning(values: &ElementValues, test_credential: bool) -> Vec<u8> {
    let data = values
        .namespaces
        .iter()
        .map(|(ns, elements)| {
            let entries = elements
                .iter()
                .map(|(name, value)| {
                    Value::Map(vec![
                        (Value::Text("name".into()), Value::Text(name.clone())),
                        (Value::Text("value".into()), value.clone()),
                        (
                            Value::Text("accessControlProfiles".into()),
                            Value::Array(vec![Value::Integer(0.into())]),
                        ),
                    ])
                })
                .collect();
            (Value::Text(ns.clone()), Value::Array(entries))
        })
        .collect();
    to_vec(&Value::Array(vec![
        Value::Text("ProofOfProvisioning".into()),
        Value::Text(values.doc_type.clone()),
        Value::Array(vec![default_profile()]),
        Value::Map(data),
        Value::Bool(test_credential),
    ]))
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
    let items = array(&value, "ProofOfProvisioning", 5)?;
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

/// The ProofOfBinding extension's DER value for a ProofOfProvisioning digest.
pub fn proof_of_binding_extension(pop_sha256: &[u8; 32]) -> Result<Vec<u8>, String> {
    let cbor = to_vec(&Value::Array(vec![
        Value::Text("ProofOfBinding".into()),
        Value::Bytes(pop_sha256.to_vec()),
    ]));
    OctetString::new(cbor)
        .and_then(|o| o.to_der())
        .map_err(|e| e.to_string())
}

/// The auth key of one auth-key certificate, after checking it: signed by the identity key,
/// P-256, valid now, and bound to `pop_sha256` when it carries a ProofOfBinding.
pub fn verify_auth_key_certificate(
    der: &[u8],
    identity_key: &VerifyingKey,
    pop_sha256: Option<&[u8]>,
    at: std::time::SystemTime,
) -> Result<VerifyingKey, ProofError> {
    let cert = certs::from_der(der).map_err(|e| malformed(e.to_string()))?;
    certs::check_signature(&cert, identity_key).map_err(|_| ProofError::BadSignature)?;
    let key = certs::public_key(&cert)
        .map_err(|_| ProofError::Mismatch("the auth key is not a P-256 key".into()))?;
    certs::check_validity(&cert, at).map_err(|e| ProofError::Mismatch(e.to_string()))?;
    if let Some(raw) = certs::raw_extension_value(&cert, PROOF_OF_BINDING_OID) {
        let cbor = OctetString::from_der(raw)
            .map_err(|_| malformed("ProofOfBinding extension is not an OCTET STRING"))?;
        let value = from_slice(cbor.as_bytes(), "ProofOfBinding")?;
        let items = array(&value, "ProofOfBinding", 2)?;
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

/// Reads a credential payload back (the device's side).
pub fn parse_credential_payload(bytes: &[u8]) -> Result<ElementValues, CborError> {
    let value = from_slice(bytes, "Credential")?;
    let map = as_map(&value, "Credential")?;
    let doc_type = as_text(required(map, "docType", "Credential")?, "docType")?.to_owned();
    let mut namespaces = Vec::new();
    for (ns, elements) in as_map(required(map, "nameSpaces", "Credential")?, "nameSpaces")? {
        let ns = as_text(ns, "namespace")?.to_owned();
        let mut values = Vec::new();
        for (name, value) in as_map(elements, &ns)? {
            values.push((as_text(name, "element")?.to_owned(), value.clone()));
        }
        namespaces.push((ns, values));
    }
    Ok(ElementValues {
        doc_type,
        namespaces,
    })
}

/// Rebuilds `IssuerSigned` from static auth data and the values the device holds, putting each
/// value back into its item map in place of the null (the map's key order is kept, as Android's
/// `issuerSignedItemSetValue` does), so that a verifier can check every digest.
pub fn issuer_signed_from_static_auth_data(
    static_auth_data: &[u8],
    values: &ElementValues,
) -> Result<Value, CborError> {
    let sad = from_slice(static_auth_data, "StaticAuthData")?;
    let map = as_map(&sad, "StaticAuthData")?;
    let mapping = required(map, "digestIdMapping", "StaticAuthData")?;
    let issuer_auth = required(map, "issuerAuth", "StaticAuthData")?.clone();
    let mut namespaces = Vec::new();
    for (ns, items) in as_map(mapping, "digestIdMapping")? {
        let ns_name = as_text(ns, "digestIdMapping namespace")?;
        let Value::Array(items) = items else {
            return Err(CborError::at(
                "digestIdMapping",
                "namespace entry must be an array",
            ));
        };
        let held = values
            .namespaces
            .iter()
            .find(|(n, _)| n == ns_name)
            .map(|(_, e)| e.as_slice())
            .unwrap_or_default();
        let mut rebuilt = Vec::new();
        for item in items {
            let metadata = Tag24::from_value(item, "IssuerSignedItemMetadata")?;
            let Value::Map(entries) = metadata.value().clone() else {
                return Err(CborError::at("IssuerSignedItemMetadata", "must be a map"));
            };
            let element = map_get(&entries, "elementIdentifier")
                .and_then(|v| v.as_text())
                .ok_or_else(|| CborError::at("IssuerSignedItemMetadata", "no elementIdentifier"))?
                .to_owned();
            let value = held
                .iter()
                .find(|(name, _)| *name == element)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    CborError::at(
                        "StaticAuthData",
                        format!("no value held for {ns_name}/{element}"),
                    )
                })?;
            let filled = entries
                .into_iter()
                .map(|(k, v)| {
                    if k == Value::Text("elementValue".into()) {
                        (k, value.clone())
                    } else {
                        (k, v)
                    }
                })
                .collect();
            rebuilt.push(Tag24::encode(Value::Map(filled)).to_value());
        }
        namespaces.push((ns.clone(), Value::Array(rebuilt)));
    }
    Ok(Value::Map(vec![
        (Value::Text("nameSpaces".into()), Value::Map(namespaces)),
        (Value::Text("issuerAuth".into()), issuer_auth),
    ]))
}

/// SHA-256 of `a ‖ b`: the challenge of DeviceEncryptionKey and EncryptedData proofs.
pub fn sha256_concat(a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(a);
    hasher.update(b);
    hasher.finalize().into()
}

/// Parses an auth-key certificate without checking it (for the simulator's bookkeeping).
pub fn certificate_key(der: &[u8]) -> Result<VerifyingKey, String> {
    let cert = Certificate::from_der(der).map_err(|e| e.to_string())?;
    certs::public_key(&cert).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::SoftwareSigner;

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

    #[test]
    fn ownership_proofs_verify_and_mismatches_are_named() {
        let device = SoftwareSigner::generate();
        let challenge = Sha256::digest(b"ephemeral key").to_vec();
        let proof = sign1(
            proof_of_ownership("org.iso.18013.5.1.mDL", &challenge, false),
            &device,
        )
        .unwrap();
        let key = device.verifying_key();
        assert_eq!(
            verify_ownership(&proof, &key, &challenge),
            Ok(Ownership {
                doc_type: "org.iso.18013.5.1.mDL".into(),
                test_credential: false
            })
        );
        assert!(matches!(
            verify_ownership(&proof, &key, &[0; 32]),
            Err(ProofError::Mismatch(_))
        ));
        let other = SoftwareSigner::generate().verifying_key();
        assert_eq!(
            verify_ownership(&proof, &other, &challenge),
            Err(ProofError::BadSignature)
        );
        assert!(matches!(
            verify_ownership(b"\x01\x02", &key, &challenge),
            Err(ProofError::Malformed(_))
        ));
    }

    #[test]
    fn provisioning_proofs_must_match_the_version_exactly() {
        let device = SoftwareSigner::generate();
        let key = device.verifying_key();
        let payload = proof_of_provisioning(&values(), false);
        let proof = sign1(payload.clone(), &device).unwrap();
        let verified = verify_provisioning(&proof, &key, &values()).unwrap();
        assert_eq!(verified.sha256, <[u8; 32]>::from(Sha256::digest(&payload)));

        let mut changed = values();
        changed.namespaces[0].1[0].1 = Value::Text("Roe".into());
        let err = verify_provisioning(&proof, &key, &changed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the device provisioned another value for org.iso.18013.5.1/family_name"
        );
        let mut fewer = values();
        fewer.namespaces[0].1.pop();
        assert!(matches!(
            verify_provisioning(&proof, &key, &fewer),
            Err(ProofError::Mismatch(_))
        ));
    }

    #[test]
    fn payload_round_trips() {
        let bytes = credential_payload(&values());
        assert_eq!(parse_credential_payload(&bytes).unwrap(), values());
    }
}
