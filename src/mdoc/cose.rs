//! IssuerAuth: the untagged COSE_Sign1 (ES256) over `#6.24(MobileSecurityObject)`, with the DS
//! certificate in the unprotected `x5chain` header (label 33) and empty external AAD.

use ciborium::Value;
use coset::iana::{self, EnumI64};
use coset::{
    CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, Label, RegisteredLabelWithPrivate,
};
use p256::ecdsa::{Signature, VerifyingKey};

use super::cbor::CborError;
use crate::pki::signer::{verify_es256, SignatureEncoding};

/// COSE header label of `x5chain` (RFC 9360).
pub const X5CHAIN: i64 = 33;

/// An unsigned IssuerAuth over `payload` (the tagged MSO bytes) naming `certificate_der` as signer.
pub fn unsigned_issuer_auth(payload: Vec<u8>, certificate_der: Vec<u8>) -> CoseSign1 {
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .build();
    let unprotected = HeaderBuilder::new()
        .value(X5CHAIN, Value::Bytes(certificate_der))
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(payload)
        .build()
}

/// The bytes an ES256 signer signs for `sign1` (the `Sig_structure`, external AAD empty).
pub fn to_be_signed(sign1: &CoseSign1) -> Vec<u8> {
    sign1.tbs_data(b"")
}

/// Puts the signature in.
pub fn attach_signature(mut sign1: CoseSign1, signature: &Signature) -> CoseSign1 {
    sign1.signature = signature.to_bytes().to_vec();
    sign1
}

/// Reads an IssuerAuth (untagged, or tagged 18 for leniency).
pub fn parse(value: &Value) -> Result<CoseSign1, CborError> {
    let untagged = match value {
        Value::Tag(18, inner) => inner.as_ref().clone(),
        other => other.clone(),
    };
    coset::AsCborValue::from_cbor_value(untagged)
        .map_err(|e| CborError::at("issuerAuth", format!("not a COSE_Sign1 ({e:?})")))
}

/// The IssuerAuth as a CBOR value, to embed in IssuerSigned.
pub fn to_value(sign1: &CoseSign1) -> Value {
    // Encoding a well-formed structure into memory cannot fail.
    coset::AsCborValue::to_cbor_value(sign1.clone()).expect("COSE_Sign1 to CBOR")
}

/// The COSE_Sign1 encoded on its own.
pub fn to_vec(sign1: &CoseSign1) -> Vec<u8> {
    sign1.clone().to_vec().expect("COSE_Sign1 to bytes")
}

/// Whether the protected header says ES256.
pub fn is_es256(sign1: &CoseSign1) -> bool {
    sign1.protected.header.alg == Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256))
}

/// The algorithm named in the protected header, for error messages.
pub fn algorithm_name(sign1: &CoseSign1) -> String {
    match &sign1.protected.header.alg {
        Some(RegisteredLabelWithPrivate::Assigned(alg)) => format!("{alg:?} ({})", alg.to_i64()),
        Some(other) => format!("{other:?}"),
        None => "none".into(),
    }
}

/// The certificates of `x5chain`, leaf first, from either header bucket (bstr or array of bstr).
pub fn x5chain(sign1: &CoseSign1) -> Result<Vec<Vec<u8>>, CborError> {
    let label = Label::Int(X5CHAIN);
    let found = sign1
        .unprotected
        .rest
        .iter()
        .chain(sign1.protected.header.rest.iter())
        .find(|(l, _)| *l == label)
        .map(|(_, v)| v)
        .ok_or_else(|| CborError::at("issuerAuth", "no x5chain (label 33) header"))?;
    match found {
        Value::Bytes(der) => Ok(vec![der.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::Bytes(der) => Ok(der.clone()),
                _ => Err(CborError::at(
                    "issuerAuth.x5chain",
                    "entries must be byte strings",
                )),
            })
            .collect(),
        _ => Err(CborError::at(
            "issuerAuth.x5chain",
            "must be a byte string or a non-empty array",
        )),
    }
}

/// Whether the ES256 signature of `sign1` verifies with `key`.
pub fn signature_verifies(sign1: &CoseSign1, key: &VerifyingKey) -> bool {
    sign1
        .verify_signature(b"", |signature, data| {
            if verify_es256(key, data, signature, SignatureEncoding::Fixed) {
                Ok(())
            } else {
                Err(())
            }
        })
        .is_ok()
}
