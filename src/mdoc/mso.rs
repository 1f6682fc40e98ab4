//! MobileSecurityObject (ISO/IEC 18013-5 §9.1.2.4): the digests of every issued element, the device
//! key they are bound to, the doc type and the validity, signed by the document signer.

use chrono::{DateTime, Utc};
use ciborium::Value;
use p256::ecdsa::VerifyingKey;
use p256::EncodedPoint;

use super::cbor::{as_bytes, as_map, as_text, as_uint, read_tdate, required, tdate, CborError};
use super::status_list::StatusReference;

/// The only MSO version defined.
pub const MSO_VERSION: &str = "1.0";
/// The digest algorithm Brevet issues with (and the only one it verifies).
pub const DIGEST_ALGORITHM: &str = "SHA-256";

/// `ValidityInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidityInfo {
    /// When the MSO was signed.
    pub signed: DateTime<Utc>,
    /// Not valid before.
    pub valid_from: DateTime<Utc>,
    /// Not valid after.
    pub valid_until: DateTime<Utc>,
    /// When the issuer expects to re-issue, if it says.
    pub expected_update: Option<DateTime<Utc>>,
}

/// Digest ID → digest, for one namespace.
pub type DigestIds = Vec<(u64, Vec<u8>)>;

/// `MobileSecurityObject`.
#[derive(Debug, Clone, PartialEq)]
pub struct MobileSecurityObject {
    /// "1.0".
    pub version: String,
    /// "SHA-256".
    pub digest_algorithm: String,
    /// Per namespace, digest ID → digest.
    pub value_digests: Vec<(String, DigestIds)>,
    /// `deviceKeyInfo.deviceKey` as the COSE_Key map received or produced.
    pub device_key: Value,
    /// The doc type.
    pub doc_type: String,
    /// Validity.
    pub validity: ValidityInfo,
    /// Where verifiers learn whether the issuer still stands by it (the `status` member of
    /// ISO/IEC 18013-5's second edition and the Token Status List draft); `None` leaves it out.
    pub status: Option<StatusReference>,
}

/// A P-256 public key as COSE_Key: `{1: 2 (EC2), -1: 1 (P-256), -2: x, -3: y}`.
pub fn cose_key(key: &VerifyingKey) -> Value {
    let point = key.to_encoded_point(false);
    let coordinate =
        |c: Option<&p256::FieldBytes>| Value::Bytes(c.map(|b| b.to_vec()).unwrap_or_default());
    Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer(2.into())),
        (Value::Integer((-1).into()), Value::Integer(1.into())),
        (Value::Integer((-2).into()), coordinate(point.x())),
        (Value::Integer((-3).into()), coordinate(point.y())),
    ])
}

fn int_key(map: &[(Value, Value)], key: i64) -> Option<&Value> {
    map.iter()
        .find(|(k, _)| matches!(k, Value::Integer(i) if i128::from(*i) == i128::from(key)))
        .map(|(_, v)| v)
}

/// Reads a COSE_Key that must be an EC2 P-256 public key.
pub fn p256_from_cose_key(value: &Value, place: &str) -> Result<VerifyingKey, CborError> {
    let map = as_map(value, place)?;
    let int = |key: i64| {
        int_key(map, key).and_then(|v| {
            if let Value::Integer(i) = v {
                i64::try_from(*i).ok()
            } else {
                None
            }
        })
    };
    if int(1) != Some(2) {
        return Err(CborError::at(place, "COSE_Key kty must be 2 (EC2)"));
    }
    if int(-1) != Some(1) {
        return Err(CborError::at(place, "COSE_Key curve must be 1 (P-256)"));
    }
    let coordinate = |key: i64| -> Result<&[u8], CborError> {
        let bytes = int_key(map, key)
            .ok_or_else(|| CborError::at(place, format!("COSE_Key lacks {key}")))?;
        let bytes = as_bytes(bytes, place)?;
        if bytes.len() != 32 {
            return Err(CborError::at(place, "P-256 coordinates are 32 bytes"));
        }
        Ok(bytes)
    };
    let point = EncodedPoint::from_affine_coordinates(
        coordinate(-2)?.into(),
        coordinate(-3)?.into(),
        false,
    );
    VerifyingKey::from_encoded_point(&point)
        .map_err(|_| CborError::at(place, "COSE_Key is not a point on P-256"))
}

impl MobileSecurityObject {
    /// The device key, which must be P-256.
    pub fn device_key_p256(&self) -> Result<VerifyingKey, CborError> {
        p256_from_cose_key(&self.device_key, "MSO.deviceKeyInfo.deviceKey")
    }

    /// The digest of `(namespace, digest_id)`.
    pub fn digest(&self, namespace: &str, digest_id: u64) -> Option<&[u8]> {
        let (_, digests) = self.value_digests.iter().find(|(ns, _)| ns == namespace)?;
        digests
            .iter()
            .find(|(id, _)| *id == digest_id)
            .map(|(_, d)| d.as_slice())
    }

    /// As a CBOR map in the order of ISO 18013-5's CDDL.
    pub fn to_value(&self) -> Value {
        let digests = self
            .value_digests
            .iter()
            .map(|(ns, ids)| {
                let ids = ids
                    .iter()
                    .map(|(id, d)| (Value::Integer((*id).into()), Value::Bytes(d.clone())))
                    .collect();
                (Value::Text(ns.clone()), Value::Map(ids))
            })
            .collect();
        let mut validity = vec![
            (Value::Text("signed".into()), tdate(self.validity.signed)),
            (
                Value::Text("validFrom".into()),
                tdate(self.validity.valid_from),
            ),
            (
                Value::Text("validUntil".into()),
                tdate(self.validity.valid_until),
            ),
        ];
        if let Some(at) = self.validity.expected_update {
            validity.push((Value::Text("expectedUpdate".into()), tdate(at)));
        }
        let mut mso = vec![
            (
                Value::Text("version".into()),
                Value::Text(self.version.clone()),
            ),
            (
                Value::Text("digestAlgorithm".into()),
                Value::Text(self.digest_algorithm.clone()),
            ),
            (Value::Text("valueDigests".into()), Value::Map(digests)),
            (
                Value::Text("deviceKeyInfo".into()),
                Value::Map(vec![(
                    Value::Text("deviceKey".into()),
                    self.device_key.clone(),
                )]),
            ),
            (
                Value::Text("docType".into()),
                Value::Text(self.doc_type.clone()),
            ),
            (Value::Text("validityInfo".into()), Value::Map(validity)),
        ];
        if let Some(status) = &self.status {
            mso.push((Value::Text("status".into()), status.to_value()));
        }
        Value::Map(mso)
    }

    /// Reads an MSO map.
    pub fn from_value(value: &Value) -> Result<Self, CborError> {
        let place = "MSO";
        let map = as_map(value, place)?;
        let version = as_text(required(map, "version", place)?, "MSO.version")?.to_owned();
        let digest_algorithm = as_text(
            required(map, "digestAlgorithm", place)?,
            "MSO.digestAlgorithm",
        )?
        .to_owned();
        let mut value_digests = Vec::new();
        for (ns, ids) in as_map(required(map, "valueDigests", place)?, "MSO.valueDigests")? {
            let ns = as_text(ns, "MSO.valueDigests key")?.to_owned();
            let place = format!("MSO.valueDigests.{ns}");
            let mut digests = Vec::new();
            for (id, digest) in as_map(ids, &place)? {
                digests.push((as_uint(id, &place)?, as_bytes(digest, &place)?.to_vec()));
            }
            value_digests.push((ns, digests));
        }
        let key_info = as_map(required(map, "deviceKeyInfo", place)?, "MSO.deviceKeyInfo")?;
        let device_key = required(key_info, "deviceKey", "MSO.deviceKeyInfo")?.clone();
        let doc_type = as_text(required(map, "docType", place)?, "MSO.docType")?.to_owned();
        let validity = as_map(required(map, "validityInfo", place)?, "MSO.validityInfo")?;
        let date = |key: &str| {
            read_tdate(
                required(validity, key, "MSO.validityInfo")?,
                &format!("MSO.validityInfo.{key}"),
            )
        };
        let expected_update = match super::cbor::map_get(validity, "expectedUpdate") {
            Some(Value::Null) | None => None,
            Some(v) => Some(read_tdate(v, "MSO.validityInfo.expectedUpdate")?),
        };
        let status = match super::cbor::map_get(map, "status") {
            Some(value) => StatusReference::from_value(value)?,
            None => None,
        };
        Ok(Self {
            status,
            version,
            digest_algorithm,
            value_digests,
            device_key,
            doc_type,
            validity: ValidityInfo {
                signed: date("signed")?,
                valid_from: date("validFrom")?,
                valid_until: date("validUntil")?,
                expected_update,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{Signer, SoftwareSigner};

    #[test]
    fn cose_keys_round_trip_and_other_curves_are_refused() {
        let key = SoftwareSigner::generate().verifying_key();
        let cose = cose_key(&key);
        assert_eq!(p256_from_cose_key(&cose, "k").unwrap(), key);
        let Value::Map(mut entries) = cose else {
            unreachable!()
        };
        entries[1].1 = Value::Integer(2.into()); // crv 2 = P-384
        let err = p256_from_cose_key(&Value::Map(entries), "k").unwrap_err();
        assert_eq!(err.0, "k: COSE_Key curve must be 1 (P-256)");
    }
}
