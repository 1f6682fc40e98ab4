//! Issuing mobile security objects. Issuance is split so that a remote key (an HSM) can sign:
//! [`prepare`] builds the items, the MSO and the bytes to sign; [`PreparedMso::complete`] takes the
//! signature; [`PreparedMso::sign`] does both with a [`Signer`] at hand.
//!
//! Each MSO gets fresh salts and a fresh shuffle of digest IDs, so that two MSOs of one credential
//! cannot be linked by their digests.

use chrono::{DateTime, Utc};
use ciborium::Value;
use coset::CoseSign1;
use p256::ecdsa::{Signature, VerifyingKey};
use rand::seq::SliceRandom;
use x509_cert::der::Encode;
use x509_cert::Certificate;

use super::cbor::{to_vec, Tag24};
use super::cose;
use super::doctype::ElementValues;
use super::item::IssuerSignedItem;
use super::mso::{cose_key, MobileSecurityObject, DIGEST_ALGORITHM, MSO_VERSION};
use super::status_list::StatusReference;
use crate::pki::{Signer, SignerError};

/// Why an MSO could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The requested validity is empty or outlives the DS certificate.
    #[error("invalid MSO validity: {0}")]
    Validity(String),
    /// The DS certificate could not be encoded.
    #[error("DS certificate: {0}")]
    Certificate(String),
    /// There is nothing to sign.
    #[error("no data elements to issue")]
    NoElements,
    /// The signer failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
}

/// A document signer: its key and its certificate.
pub struct DocumentSigner<'a> {
    /// Signs with the DS key.
    pub signer: &'a dyn Signer,
    /// The DS certificate, placed in `x5chain`.
    pub certificate: &'a Certificate,
}

/// The validity an MSO is issued with (`validityInfo`, with `expectedUpdate` when set).
pub use super::mso::ValidityInfo as Validity;

/// Everything of an MSO but its signature.
#[derive(Debug, Clone)]
pub struct PreparedMso {
    /// The issued items per namespace, in the doc type's order.
    pub items: Vec<(String, Vec<IssuerSignedItem>)>,
    /// The MSO.
    pub mso: MobileSecurityObject,
    unsigned: CoseSign1,
}

/// A signed MSO with the items it covers.
#[derive(Debug, Clone)]
pub struct IssuedMso {
    /// The issued items per namespace.
    pub items: Vec<(String, Vec<IssuerSignedItem>)>,
    /// The MSO.
    pub mso: MobileSecurityObject,
    /// The COSE_Sign1 over the tagged MSO.
    pub issuer_auth: CoseSign1,
}

fn to_utc(time: std::time::SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(time)
}

/// Builds the items and the MSO binding `values` to `device_key`, without a status reference.
pub fn prepare(
    values: &ElementValues,
    device_key: &VerifyingKey,
    validity: Validity,
    ds_certificate: &Certificate,
) -> Result<PreparedMso, IssueError> {
    prepare_referenced(values, device_key, validity, None, ds_certificate)
}

/// [`prepare`], the MSO naming its entry in a status list when `status` is given.
pub fn prepare_referenced(
    values: &ElementValues,
    device_key: &VerifyingKey,
    validity: Validity,
    status: Option<StatusReference>,
    ds_certificate: &Certificate,
) -> Result<PreparedMso, IssueError> {
    if values.is_empty() {
        return Err(IssueError::NoElements);
    }
    if validity.valid_until <= validity.valid_from {
        return Err(IssueError::Validity(
            "validUntil must be after validFrom".into(),
        ));
    }
    if validity.valid_from < validity.signed {
        return Err(IssueError::Validity(
            "validFrom must not be before signed (ISO/IEC 18013-5 §9.1.2.4)".into(),
        ));
    }
    let ds_validity = &ds_certificate.tbs_certificate.validity;
    let (ds_from, ds_until) = (
        to_utc(ds_validity.not_before.to_system_time()),
        to_utc(ds_validity.not_after.to_system_time()),
    );
    if validity.signed < ds_from || validity.signed > ds_until {
        return Err(IssueError::Validity(
            "the DS certificate is not valid at the signing time".into(),
        ));
    }
    if validity.valid_until > ds_until {
        return Err(IssueError::Validity(format!(
            "validUntil {} is after the DS certificate expires ({ds_until})",
            validity.valid_until
        )));
    }

    let mut digest_ids: Vec<u64> = (0..values.len() as u64).collect();
    digest_ids.shuffle(&mut rand::thread_rng());
    let mut ids = digest_ids.into_iter();
    let mut items = Vec::new();
    let mut value_digests = Vec::new();
    for (namespace, elements) in &values.namespaces {
        let namespace_items: Vec<IssuerSignedItem> = elements
            .iter()
            .zip(ids.by_ref())
            .map(|((id, value), digest_id)| IssuerSignedItem::new(digest_id, id, value.clone()))
            .collect();
        let mut digests: Vec<(u64, Vec<u8>)> = namespace_items
            .iter()
            .map(|i| (i.digest_id, i.digest().to_vec()))
            .collect();
        digests.sort_by_key(|(id, _)| *id);
        value_digests.push((namespace.clone(), digests));
        items.push((namespace.clone(), namespace_items));
    }
    let mso = MobileSecurityObject {
        version: MSO_VERSION.into(),
        digest_algorithm: DIGEST_ALGORITHM.into(),
        value_digests,
        device_key: cose_key(device_key),
        doc_type: values.doc_type.clone(),
        validity,
        status,
    };
    let payload = Tag24::encode(mso.to_value()).tagged_bytes();
    let certificate = ds_certificate
        .to_der()
        .map_err(|e| IssueError::Certificate(e.to_string()))?;
    Ok(PreparedMso {
        items,
        mso,
        unsigned: cose::unsigned_issuer_auth(payload, certificate),
    })
}

impl PreparedMso {
    /// The bytes the DS key must sign (ES256: SHA-256 then ECDSA).
    pub fn to_be_signed(&self) -> Vec<u8> {
        cose::to_be_signed(&self.unsigned)
    }

    /// Completes the MSO with a signature made elsewhere over [`Self::to_be_signed`].
    pub fn complete(self, signature: &Signature) -> IssuedMso {
        IssuedMso {
            items: self.items,
            mso: self.mso,
            issuer_auth: cose::attach_signature(self.unsigned, signature),
        }
    }

    /// Signs with `signer` and completes.
    pub fn sign(self, signer: &dyn Signer) -> Result<IssuedMso, IssueError> {
        let signature = signer.sign(&self.to_be_signed())?;
        Ok(self.complete(&signature))
    }
}

/// Prepares and signs in one step.
pub fn issue(
    values: &ElementValues,
    device_key: &VerifyingKey,
    validity: Validity,
    ds: &DocumentSigner<'_>,
) -> Result<IssuedMso, IssueError> {
    prepare(values, device_key, validity, ds.certificate)?.sign(ds.signer)
}

/// [`issue`], the MSO naming its entry in a status list when `status` is given.
pub fn issue_referenced(
    values: &ElementValues,
    device_key: &VerifyingKey,
    validity: Validity,
    status: Option<StatusReference>,
    ds: &DocumentSigner<'_>,
) -> Result<IssuedMso, IssueError> {
    prepare_referenced(values, device_key, validity, status, ds.certificate)?.sign(ds.signer)
}

impl IssuedMso {
    /// `IssuerSigned`: `{ "nameSpaces": { ns: [IssuerSignedItemBytes] }, "issuerAuth": COSE_Sign1 }`.
    pub fn issuer_signed(&self) -> Value {
        Value::Map(vec![
            (
                Value::Text("nameSpaces".into()),
                self.namespaces(IssuerSignedItem::to_value),
            ),
            (
                Value::Text("issuerAuth".into()),
                cose::to_value(&self.issuer_auth),
            ),
        ])
    }

    /// `IssuerSigned` encoded.
    pub fn issuer_signed_bytes(&self) -> Vec<u8> {
        to_vec(&self.issuer_signed())
    }

    /// Android's `StaticAuthData` for the auth key of this MSO: the items without their values
    /// (`digestIdMapping`) and the IssuerAuth (spec/wallet-api.md §8.9).
    pub fn static_auth_data(&self) -> Value {
        Value::Map(vec![
            (
                Value::Text("digestIdMapping".into()),
                self.namespaces(IssuerSignedItem::metadata_value),
            ),
            (
                Value::Text("issuerAuth".into()),
                cose::to_value(&self.issuer_auth),
            ),
        ])
    }

    fn namespaces(&self, item_value: fn(&IssuerSignedItem) -> Value) -> Value {
        Value::Map(
            self.items
                .iter()
                .map(|(ns, items)| {
                    (
                        Value::Text(ns.clone()),
                        Value::Array(items.iter().map(item_value).collect()),
                    )
                })
                .collect(),
        )
    }
}
