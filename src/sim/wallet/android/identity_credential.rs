//! What Android's Identity Credential stack makes with the CredentialKey, written from its public
//! definitions (the HAL's `IWritableIdentityCredential.aidl` / `IIdentityCredential.aidl`, the
//! support library's `IdentityCredentialSupport.cpp`, and identity-credential's `Util` and
//! `CredentialData`), with `ciborium` and `coset` only:
//!
//! - untagged COSE_Sign1 proofs: protected header `{1: -7}`, empty unprotected header, the CBOR
//!   payload attached, a 64-byte r‖s signature over the `Signature1` structure;
//! - `ProofOfOwnership = ["ProofOfOwnership", docType, challenge, testCredential]`;
//! - `ProofOfProvisioning = ["ProofOfProvisioning", docType, [profiles], {ns: [{name, value,
//!   accessControlProfiles}]}, testCredential]`, entries in the order they were personalised;
//! - auth-key certificates: serial 1, issuer CN "Android Identity Credential Key", subject CN
//!   "Android Identity Credential Authentication Key", valid from now for 365 days, and the
//!   non-critical extension 1.3.6.1.4.1.11129.2.1.26 whose `extnValue` holds the CBOR of
//!   `["ProofOfBinding", SHA-256(ProofOfProvisioning)]` (one OCTET STRING, as BouncyCastle's
//!   `addExtension(oid, false, bytes)` writes it).

use std::time::{Duration, SystemTime};

use ciborium::Value;
use coset::{iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::ObjectIdentifier;

use super::x509::{self, Role, Template};
use crate::protocol::android as ids;

/// One namespace of provisioned data: `(element identifier, value)` in personalisation order.
pub type Namespace = (String, Vec<(String, Value)>);

/// CBOR bytes of a value.
pub fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing CBOR to memory cannot fail");
    out
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// An untagged ES256 COSE_Sign1 over `payload` by `key`.
pub fn sign1(key: &SigningKey, payload: Vec<u8>) -> Vec<u8> {
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |to_be_signed| {
            let signature: Signature = key.sign(to_be_signed);
            signature.to_bytes().to_vec()
        })
        .build()
        .to_vec()
        .expect("COSE_Sign1 encodes")
}

/// Checks an ES256 COSE_Sign1 (tagged or not) with `key` and returns its payload.
pub fn open_sign1(bytes: &[u8], key: &VerifyingKey) -> Result<Vec<u8>, String> {
    let sign1 = CoseSign1::from_slice(bytes)
        .or_else(|_| {
            use coset::TaggedCborSerializable;
            CoseSign1::from_tagged_slice(bytes)
        })
        .map_err(|_| "not a COSE_Sign1".to_owned())?;
    if sign1.protected.header.alg != Some(coset::Algorithm::Assigned(iana::Algorithm::ES256)) {
        return Err("the COSE_Sign1 is not ES256".into());
    }
    sign1.verify_signature(b"", |signature, to_be_signed| {
        let signature = Signature::from_slice(signature).map_err(|_| "malformed signature")?;
        key.verify(to_be_signed, &signature)
            .map_err(|_| "the signature does not verify")
    })?;
    sign1.payload.ok_or_else(|| "no payload".into())
}

/// `ProofOfOwnership` for `challenge`, signed by the CredentialKey.
pub fn proof_of_ownership(key: &SigningKey, doc_type: &str, challenge: &[u8]) -> Vec<u8> {
    let payload = Value::Array(vec![
        text(ids::PROOF_OF_OWNERSHIP),
        text(doc_type),
        Value::Bytes(challenge.to_vec()),
        Value::Bool(false),
    ]);
    sign1(key, cbor(&payload))
}

/// The payload of `ProofOfProvisioning` for what was personalised: one access-control profile
/// (id 0, no user authentication) that every entry refers to.
pub fn proof_of_provisioning_payload(doc_type: &str, data: &[Namespace]) -> Vec<u8> {
    let profile = Value::Map(vec![(text("id"), Value::Integer(0.into()))]);
    let namespaces = data
        .iter()
        .map(|(ns, entries)| {
            let entries = entries
                .iter()
                .map(|(name, value)| {
                    Value::Map(vec![
                        (text("name"), text(name)),
                        (text("value"), value.clone()),
                        (
                            text("accessControlProfiles"),
                            Value::Array(vec![Value::Integer(0.into())]),
                        ),
                    ])
                })
                .collect();
            (text(ns), Value::Array(entries))
        })
        .collect();
    cbor(&Value::Array(vec![
        text(ids::PROOF_OF_PROVISIONING),
        text(doc_type),
        Value::Array(vec![profile]),
        Value::Map(namespaces),
        Value::Bool(false),
    ]))
}

/// The CBOR of `ProofOfBinding` for a ProofOfProvisioning digest.
pub fn proof_of_binding(pop_sha256: &[u8; 32]) -> Vec<u8> {
    cbor(&Value::Array(vec![
        text(ids::PROOF_OF_BINDING),
        Value::Bytes(pop_sha256.to_vec()),
    ]))
}

/// An auth-key certificate for `auth_key`, signed by the CredentialKey and bound to the last
/// ProofOfProvisioning when there is one (DER).
pub fn auth_key_certificate(
    credential_key: &SigningKey,
    auth_key: &VerifyingKey,
    pop_sha256: Option<&[u8; 32]>,
    not_before: SystemTime,
) -> Vec<u8> {
    let extensions = pop_sha256
        .map(|digest| {
            (
                ObjectIdentifier::new_unwrap(ids::PROOF_OF_BINDING_OID),
                false,
                proof_of_binding(digest),
            )
        })
        .into_iter()
        .collect();
    let issuer = x509::name(&format!("CN={}", ids::AUTH_KEY_ISSUER_CN));
    x509::der(&x509::issue(
        &Template {
            subject: &format!("CN={}", ids::AUTH_KEY_SUBJECT_CN),
            issuer: Some(&issuer),
            serial: &[0x01],
            not_before,
            lifetime: Duration::from_secs(365 * 86_400),
            key: auth_key,
            role: Role::Bare,
            extensions,
        },
        credential_key,
    ))
}

/// SHA-256 of `a ‖ b`: the challenge of the Wallet API's ownership proofs.
pub fn sha256_concat(a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(a);
    hasher.update(b);
    hasher.finalize().into()
}

fn map_get<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
        .map(|(_, v)| v)
}

/// Reads the credential payload Brevet delivers ([I], spec §8.7):
/// `{"docType": tstr, "nameSpaces": {ns: {element: value}}}`, keeping the order of namespaces
/// and elements (the order the device personalises them in).
pub fn read_credential(bytes: &[u8]) -> Result<(String, Vec<Namespace>), String> {
    let value: Value =
        ciborium::from_reader(bytes).map_err(|e| format!("the credential is not CBOR: {e}"))?;
    let Value::Map(map) = value else {
        return Err("the credential is not a CBOR map".into());
    };
    let doc_type = match map_get(&map, "docType") {
        Some(Value::Text(t)) => t.clone(),
        _ => return Err("the credential has no docType".into()),
    };
    let Some(Value::Map(namespaces)) = map_get(&map, "nameSpaces") else {
        return Err("the credential has no nameSpaces map".into());
    };
    let mut data = Vec::new();
    for (ns, elements) in namespaces {
        let (Value::Text(ns), Value::Map(elements)) = (ns, elements) else {
            return Err("a namespace is not a text key with a map of elements".into());
        };
        let mut entries = Vec::new();
        for (name, value) in elements {
            let Value::Text(name) = name else {
                return Err(format!("{ns}: an element identifier is not text"));
            };
            entries.push((name.clone(), value.clone()));
        }
        data.push((ns.clone(), entries));
    }
    Ok((doc_type, data))
}

/// Rebuilds `IssuerSigned` from static auth data as a presenting device does: each item's
/// `elementValue` (null in what the issuer sent) is set to the value held, in place, so that the
/// item map keeps the issuer's key order (identity-credential `issuerSignedItemSetValue`).
pub fn issuer_signed(static_auth_data: &[u8], held: &[Namespace]) -> Result<Value, String> {
    let sad: Value =
        ciborium::from_reader(static_auth_data).map_err(|e| format!("StaticAuthData: {e}"))?;
    let Value::Map(sad) = sad else {
        return Err("StaticAuthData is not a map".into());
    };
    let Some(Value::Map(mapping)) = map_get(&sad, "digestIdMapping") else {
        return Err("StaticAuthData has no digestIdMapping".into());
    };
    let issuer_auth = map_get(&sad, "issuerAuth")
        .ok_or("StaticAuthData has no issuerAuth")?
        .clone();
    let mut namespaces = Vec::new();
    for (ns, items) in mapping {
        let (Value::Text(ns_name), Value::Array(items)) = (ns, items) else {
            return Err("digestIdMapping: a namespace is not text → array".into());
        };
        let values = held
            .iter()
            .find(|(n, _)| n == ns_name)
            .map(|(_, e)| e.as_slice())
            .unwrap_or_default();
        let mut rebuilt = Vec::new();
        for item in items {
            let Value::Tag(24, inner) = item else {
                return Err(format!("{ns_name}: an item is not tag 24"));
            };
            let Value::Bytes(bytes) = inner.as_ref() else {
                return Err(format!("{ns_name}: tag 24 does not wrap bytes"));
            };
            let Value::Map(entries) = ciborium::from_reader::<Value, _>(bytes.as_slice())
                .map_err(|e| format!("{ns_name}: item: {e}"))?
            else {
                return Err(format!("{ns_name}: an item is not a map"));
            };
            let Some(Value::Text(element)) = map_get(&entries, "elementIdentifier") else {
                return Err(format!("{ns_name}: an item has no elementIdentifier"));
            };
            let value = values
                .iter()
                .find(|(name, _)| name == element)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("no value held for {ns_name}/{element}"))?;
            let filled = entries
                .iter()
                .map(|(k, v)| match k {
                    Value::Text(t) if t == "elementValue" => (k.clone(), value.clone()),
                    _ => (k.clone(), v.clone()),
                })
                .collect();
            rebuilt.push(Value::Tag(
                24,
                Box::new(Value::Bytes(cbor(&Value::Map(filled)))),
            ));
        }
        namespaces.push((ns.clone(), Value::Array(rebuilt)));
    }
    Ok(Value::Map(vec![
        (text("nameSpaces"), Value::Map(namespaces)),
        (text("issuerAuth"), issuer_auth),
    ]))
}
