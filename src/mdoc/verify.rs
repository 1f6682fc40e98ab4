//! Verifying issuer-signed mdoc data as a relying party would: the COSE_Sign1, the DS certificate
//! and its chain to a trusted IACA, the MSO's version, digest algorithm, doc type and validity, and
//! every item's digest. Used by the simulators and the tests, and to check Brevet's own output.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use ciborium::Value;
use coset::CoseSign1;
use x509_cert::der::Decode;
use x509_cert::Certificate;

use super::cbor::{as_map, as_text, from_slice, map_get, required, CborError, Tag24};
use super::cose;
use super::item::IssuerSignedItem;
use super::mso::{MobileSecurityObject, DIGEST_ALGORITHM, MSO_VERSION};
use crate::pki::certs::{self, CertError};

/// Why issuer-signed data failed verification.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The CBOR does not have the expected structure.
    #[error("malformed: {0}")]
    Malformed(#[from] CborError),
    /// The COSE algorithm is not ES256.
    #[error("unsupported COSE algorithm {0}; IssuerAuth must be ES256")]
    Algorithm(String),
    /// The DS certificate is unusable, untrusted or out of validity.
    #[error("DS certificate: {0}")]
    Certificate(#[from] CertError),
    /// The IssuerAuth signature does not verify with the DS key.
    #[error("IssuerAuth signature does not verify")]
    Signature,
    /// The MSO's version or digest algorithm is not supported.
    #[error("unsupported MSO: {0}")]
    Unsupported(String),
    /// The MSO is for another doc type.
    #[error("MSO is for doc type {found:?}, expected {expected:?}")]
    DocType {
        /// Doc type in the MSO.
        found: String,
        /// Doc type expected.
        expected: String,
    },
    /// The MSO is not valid at the time of verification.
    #[error("MSO is not valid at {at}: valid from {from} until {until}")]
    Validity {
        /// Verification time.
        at: DateTime<Utc>,
        /// validFrom.
        from: DateTime<Utc>,
        /// validUntil.
        until: DateTime<Utc>,
    },
    /// An item's digest is absent from or differs from the MSO.
    #[error("digest mismatch for {namespace}/{element} (digestID {digest_id})")]
    Digest {
        /// Namespace.
        namespace: String,
        /// Element identifier.
        element: String,
        /// Digest ID.
        digest_id: u64,
    },
}

/// What the DS certificate must chain to.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// Any of these IACA root certificates.
    Iaca(&'a [Certificate]),
    /// Exactly this DS certificate (for test vectors published without their IACA).
    PinnedDs(&'a Certificate),
}

/// Issuer-signed data that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The MSO.
    pub mso: MobileSecurityObject,
    /// The DS certificate from x5chain.
    pub ds_certificate: Certificate,
    /// The disclosed items per namespace, each checked against its digest.
    pub items: Vec<(String, Vec<IssuerSignedItem>)>,
}

/// Verifies an encoded `IssuerSigned`.
pub fn verify_issuer_signed_bytes(
    bytes: &[u8],
    trust: Trust<'_>,
    at: DateTime<Utc>,
    expected_doc_type: Option<&str>,
) -> Result<Verified, VerifyError> {
    verify_issuer_signed(
        &from_slice(bytes, "IssuerSigned")?,
        trust,
        at,
        expected_doc_type,
    )
}

/// Verifies an `IssuerSigned` value.
pub fn verify_issuer_signed(
    value: &Value,
    trust: Trust<'_>,
    at: DateTime<Utc>,
    expected_doc_type: Option<&str>,
) -> Result<Verified, VerifyError> {
    let map = as_map(value, "IssuerSigned")?;
    let sign1 = cose::parse(required(map, "issuerAuth", "IssuerSigned")?)?;
    let (mso, ds_certificate) = verify_issuer_auth(&sign1, trust, at, expected_doc_type)?;
    let mut items = Vec::new();
    if let Some(namespaces) = map_get(map, "nameSpaces") {
        for (ns, list) in as_map(namespaces, "IssuerSigned.nameSpaces")? {
            let ns = as_text(ns, "IssuerSigned.nameSpaces key")?.to_owned();
            let Value::Array(list) = list else {
                return Err(CborError::at(
                    &format!("IssuerSigned.nameSpaces.{ns}"),
                    "expected an array",
                )
                .into());
            };
            let mut checked = Vec::new();
            for (i, entry) in list.iter().enumerate() {
                let item = IssuerSignedItem::from_value(
                    entry,
                    &format!("IssuerSigned.nameSpaces.{ns}[{i}]"),
                )?;
                if mso.digest(&ns, item.digest_id) != Some(item.digest().as_slice()) {
                    return Err(VerifyError::Digest {
                        namespace: ns.clone(),
                        element: item.element_identifier.clone(),
                        digest_id: item.digest_id,
                    });
                }
                checked.push(item);
            }
            items.push((ns, checked));
        }
    }
    Ok(Verified {
        mso,
        ds_certificate,
        items,
    })
}

/// Verifies an IssuerAuth and returns its MSO and DS certificate.
pub fn verify_issuer_auth(
    sign1: &CoseSign1,
    trust: Trust<'_>,
    at: DateTime<Utc>,
    expected_doc_type: Option<&str>,
) -> Result<(MobileSecurityObject, Certificate), VerifyError> {
    if !cose::is_es256(sign1) {
        return Err(VerifyError::Algorithm(cose::algorithm_name(sign1)));
    }
    let chain = cose::x5chain(sign1)?;
    let ds = Certificate::from_der(&chain[0])
        .map_err(|e| CertError::Encoding(format!("x5chain[0] is not a certificate: {e}")))?;
    let at_system = SystemTime::from(at);
    match trust {
        Trust::Iaca(roots) => {
            let mut last = CertError::Invalid("no trusted IACA certificate is configured".into());
            let chained =
                roots
                    .iter()
                    .any(|iaca| match certs::verify_ds_chain(&ds, iaca, at_system) {
                        Ok(()) => true,
                        Err(e) => {
                            last = e;
                            false
                        }
                    });
            if !chained {
                return Err(last.into());
            }
        }
        Trust::PinnedDs(pinned) => {
            if &ds != pinned {
                return Err(CertError::Invalid(
                    "x5chain does not hold the pinned DS certificate".into(),
                )
                .into());
            }
            certs::check_validity(&ds, at_system)?;
        }
    }
    let ds_key = certs::public_key(&ds)?;
    if !cose::signature_verifies(sign1, &ds_key) {
        return Err(VerifyError::Signature);
    }
    let payload = sign1
        .payload
        .as_deref()
        .ok_or_else(|| CborError::at("issuerAuth", "detached payload"))?;
    let tagged = from_slice(payload, "issuerAuth.payload")?;
    let mso = MobileSecurityObject::from_value(
        Tag24::from_value(&tagged, "issuerAuth.payload")?.value(),
    )?;
    if mso.version != MSO_VERSION {
        return Err(VerifyError::Unsupported(format!(
            "version {:?}",
            mso.version
        )));
    }
    if mso.digest_algorithm != DIGEST_ALGORITHM {
        return Err(VerifyError::Unsupported(format!(
            "digest algorithm {:?}",
            mso.digest_algorithm
        )));
    }
    if let Some(expected) = expected_doc_type {
        if mso.doc_type != expected {
            return Err(VerifyError::DocType {
                found: mso.doc_type.clone(),
                expected: expected.to_owned(),
            });
        }
    }
    let validity = mso.validity;
    if at < validity.valid_from || at > validity.valid_until {
        return Err(VerifyError::Validity {
            at,
            from: validity.valid_from,
            until: validity.valid_until,
        });
    }
    mso.device_key_p256()?;
    Ok((mso, ds))
}
