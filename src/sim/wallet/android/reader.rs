//! A relying party reading what the device presents (ISO/IEC 18013-5 §9.1.2–§9.3): the
//! `IssuerAuth` COSE_Sign1 verified with the document signer certificate in its `x5chain`, that
//! certificate checked against the IACA, the MSO's doc type, validity and device key, and the
//! digest of every `IssuerSignedItemBytes` recomputed. Written with `coset`, `ciborium` and
//! `x509-cert` only, apart from Brevet's own verifier.

use chrono::{DateTime, Utc};
use ciborium::Value;
use coset::{CborSerializable, CoseSign1, Label};
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::Certificate;

use super::identity_credential::{cbor, open_sign1};
use super::x509;

/// The document signer's extended key usage (ISO/IEC 18013-5 Annex B).
const MDOC_DS_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.0.18013.5.1.2");
/// COSE header label of `x5chain`.
const X5CHAIN: i64 = 33;

/// What the reader learnt from a valid presentation.
#[derive(Debug, Clone)]
pub struct Reading {
    /// `validityInfo.signed`.
    pub signed: DateTime<Utc>,
    /// `validityInfo.validFrom`.
    pub valid_from: DateTime<Utc>,
    /// `validityInfo.validUntil`.
    pub valid_until: DateTime<Utc>,
    /// `validityInfo.expectedUpdate`, when present.
    pub expected_update: Option<DateTime<Utc>>,
    /// Number of items whose digest matched.
    pub items: usize,
    /// The MSO's `status` member, when present.
    pub status: Option<Value>,
}

fn get<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
        .map(|(_, v)| v)
}

fn tdate(value: Option<&Value>, what: &str) -> Result<DateTime<Utc>, String> {
    match value {
        Some(Value::Tag(0, inner)) => match inner.as_ref() {
            Value::Text(t) => DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("{what}: {e}")),
            _ => Err(format!("{what} is not text")),
        },
        _ => Err(format!("{what} is not a tdate (tag 0)")),
    }
}

fn tag24(value: &Value, what: &str) -> Result<Vec<u8>, String> {
    match value {
        Value::Tag(24, inner) => match inner.as_ref() {
            Value::Bytes(bytes) => Ok(bytes.clone()),
            _ => Err(format!("{what}: tag 24 does not wrap bytes")),
        },
        _ => Err(format!("{what} is not tag 24")),
    }
}

/// The P-256 key in a COSE_Key `{1: 2, -1: 1, -2: x, -3: y}`.
fn cose_key(value: &Value) -> Result<VerifyingKey, String> {
    let Value::Map(map) = value else {
        return Err("deviceKey is not a map".into());
    };
    let int_key = |label: i64| {
        map.iter()
            .find(|(k, _)| matches!(k, Value::Integer(i) if i128::from(*i) == i128::from(label)))
            .map(|(_, v)| v)
    };
    let coordinate = |label| match int_key(label) {
        Some(Value::Bytes(b)) if b.len() == 32 => Ok(b.clone()),
        _ => Err("deviceKey coordinate is not 32 bytes".to_owned()),
    };
    if int_key(1) != Some(&Value::Integer(2.into()))
        || int_key(-1) != Some(&Value::Integer(1.into()))
    {
        return Err("deviceKey is not an EC2 P-256 key".into());
    }
    let point = [vec![0x04], coordinate(-2)?, coordinate(-3)?].concat();
    VerifyingKey::from_sec1_bytes(&point).map_err(|_| "deviceKey is not on P-256".into())
}

/// Checks the document signer certificate: signed by the IACA, valid now, with the DS EKU.
fn check_ds(ds: &Certificate, iaca: &[Certificate]) -> Result<VerifyingKey, String> {
    let now = std::time::SystemTime::now();
    let issuer = iaca
        .iter()
        .find(|ca| ca.tbs_certificate.subject == ds.tbs_certificate.issuer)
        .ok_or("the DS certificate was not issued by the IACA")?;
    let ca_key = x509::p256_key(issuer)?;
    if !x509::signed_by(ds, &ca_key) {
        return Err("the DS certificate's signature does not verify with the IACA".into());
    }
    if !x509::valid_at(ds, now) || !x509::valid_at(issuer, now) {
        return Err("the DS or IACA certificate is not valid now".into());
    }
    let eku_oid = ObjectIdentifier::new_unwrap("2.5.29.37");
    let eku = x509::extension_value(ds, &eku_oid)
        .and_then(|der| ExtendedKeyUsage::from_der(der).ok())
        .ok_or("the DS certificate has no extended key usage")?;
    if !eku.0.contains(&MDOC_DS_EKU) {
        return Err("the DS certificate lacks the mdoc DS key usage".into());
    }
    x509::p256_key(ds)
}

/// Verifies `issuer_signed` for `doc_type` and the device key `auth_key` against `iaca`.
pub fn verify(
    issuer_signed: &Value,
    doc_type: &str,
    auth_key: &VerifyingKey,
    iaca: &[Certificate],
) -> Result<Reading, String> {
    let Value::Map(map) = issuer_signed else {
        return Err("IssuerSigned is not a map".into());
    };
    let issuer_auth = cbor(get(map, "issuerAuth").ok_or("no issuerAuth")?);
    let sign1 =
        CoseSign1::from_slice(&issuer_auth).map_err(|_| "issuerAuth is not a COSE_Sign1")?;
    let x5chain = sign1
        .unprotected
        .rest
        .iter()
        .chain(&sign1.protected.header.rest)
        .find(|(label, _)| *label == Label::Int(X5CHAIN))
        .map(|(_, v)| v.clone())
        .ok_or("issuerAuth has no x5chain")?;
    let ds_der = match x5chain {
        Value::Bytes(der) => der,
        Value::Array(items) => match items.first() {
            Some(Value::Bytes(der)) => der.clone(),
            _ => return Err("x5chain is empty".into()),
        },
        _ => return Err("x5chain is neither bytes nor an array".into()),
    };
    let ds = Certificate::from_der(&ds_der).map_err(|e| format!("DS certificate: {e}"))?;
    let ds_key = check_ds(&ds, iaca)?;
    let payload = open_sign1(&issuer_auth, &ds_key).map_err(|e| format!("issuerAuth: {e}"))?;
    let mso_bytes = tag24(
        &ciborium::from_reader(payload.as_slice()).map_err(|e| format!("MSO: {e}"))?,
        "MobileSecurityObjectBytes",
    )?;
    let Value::Map(mso) =
        ciborium::from_reader(mso_bytes.as_slice()).map_err(|e| format!("MSO: {e}"))?
    else {
        return Err("the MSO is not a map".into());
    };
    if get(&mso, "docType") != Some(&Value::Text(doc_type.into())) {
        return Err(format!("the MSO is not for {doc_type}"));
    }
    if get(&mso, "digestAlgorithm") != Some(&Value::Text("SHA-256".into())) {
        return Err("the MSO's digest algorithm is not SHA-256".into());
    }
    let Some(Value::Map(validity)) = get(&mso, "validityInfo") else {
        return Err("the MSO has no validityInfo".into());
    };
    let reading = Reading {
        signed: tdate(get(validity, "signed"), "signed")?,
        valid_from: tdate(get(validity, "validFrom"), "validFrom")?,
        valid_until: tdate(get(validity, "validUntil"), "validUntil")?,
        expected_update: get(validity, "expectedUpdate")
            .map(|v| tdate(Some(v), "expectedUpdate"))
            .transpose()?,
        items: 0,
        status: get(&mso, "status").cloned(),
    };
    let now = Utc::now();
    if reading.valid_from < reading.signed {
        return Err("validFrom is before signed".into());
    }
    if now < reading.valid_from || now > reading.valid_until {
        return Err(format!(
            "the MSO is not valid now (from {} until {})",
            reading.valid_from, reading.valid_until
        ));
    }
    let Some(Value::Map(key_info)) = get(&mso, "deviceKeyInfo") else {
        return Err("the MSO has no deviceKeyInfo".into());
    };
    if cose_key(get(key_info, "deviceKey").ok_or("no deviceKey")?)? != *auth_key {
        return Err("the MSO certifies another device key".into());
    }
    let Some(Value::Map(digests)) = get(&mso, "valueDigests") else {
        return Err("the MSO has no valueDigests".into());
    };
    let Some(Value::Map(namespaces)) = get(map, "nameSpaces") else {
        return Err("IssuerSigned has no nameSpaces".into());
    };
    let mut items = 0;
    for (ns, list) in namespaces {
        let (Value::Text(ns_name), Value::Array(list)) = (ns, list) else {
            return Err("nameSpaces: not text → array".into());
        };
        let Some(Value::Map(ns_digests)) = get(digests, ns_name) else {
            return Err(format!("no digests for {ns_name}"));
        };
        for item in list {
            let item_bytes = tag24(item, "IssuerSignedItemBytes")?;
            let Value::Map(fields) =
                ciborium::from_reader(item_bytes.as_slice()).map_err(|e| format!("item: {e}"))?
            else {
                return Err("an item is not a map".into());
            };
            let Some(Value::Integer(id)) = get(&fields, "digestID") else {
                return Err("an item has no digestID".into());
            };
            let expected = ns_digests
                .iter()
                .find(|(k, _)| k == &Value::Integer(*id))
                .map(|(_, v)| v)
                .ok_or_else(|| format!("{ns_name}: no digest for an item"))?;
            let digest = Sha256::digest(cbor(item));
            if expected != &Value::Bytes(digest.to_vec()) {
                return Err(format!(
                    "{ns_name}: an item's digest does not match the MSO"
                ));
            }
            items += 1;
        }
    }
    Ok(Reading { items, ..reading })
}
