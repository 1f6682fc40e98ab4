//! Token Status List (draft-ietf-oauth-status-list-18; docs/STATUS_LIST.md): one bit per issued
//! MSO in a zlib-compressed byte array, published as a CWT that the status-list signer signs,
//! and the `status` member by which an MSO names its bit.
//!
//! This module only encodes; the verifiers that read the tokens (the Wallet simulator's and the
//! Python cross-check) are written separately from the draft.

use chrono::{DateTime, Utc};
use ciborium::Value;
use coset::iana;
use coset::{CoseSign1, CoseSign1Builder, HeaderBuilder};
use p256::ecdsa::Signature;
use std::io::Write;

use super::cbor::{as_map, as_text, as_uint, map_get, required, CborError};
use super::cose::{self, X5CHAIN};

/// COSE header label of `typ` (RFC 9596).
pub const TYP: i64 = 16;
/// The `typ` of a Status List Token in CWT form.
pub const TOKEN_TYPE: &str = "application/statuslist+cwt";
/// The media type the token is served with.
pub const MEDIA_TYPE: &str = "application/statuslist+cwt";
/// CWT claim keys (RFC 8392 and the draft's registrations).
pub const CLAIM_SUB: i64 = 2;
/// `exp`.
pub const CLAIM_EXP: i64 = 4;
/// `iat`.
pub const CLAIM_IAT: i64 = 6;
/// `ttl`.
pub const CLAIM_TTL: i64 = 65534;
/// `status_list`.
pub const CLAIM_STATUS_LIST: i64 = 65533;

/// A list of 1-bit statuses: 0 valid, 1 invalid (the draft's two basic status types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusBits {
    bytes: Vec<u8>,
}

impl StatusBits {
    /// `len` entries, all valid.
    pub fn new(len: u64) -> Self {
        Self {
            bytes: vec![0; usize::try_from(len.div_ceil(8)).unwrap_or(usize::MAX)],
        }
    }

    /// Marks entry `index` invalid. Entries are counted from the least significant bit of byte
    /// 0 upwards. An index past the end is ignored (the store never hands one out).
    pub fn set_invalid(&mut self, index: u64) {
        if let Some(byte) = usize::try_from(index / 8)
            .ok()
            .and_then(|i| self.bytes.get_mut(i))
        {
            *byte |= 1 << (index % 8);
        }
    }

    /// The uncompressed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `lst`: the bytes, DEFLATE in the ZLIB format at the best compression (as the draft
    /// recommends).
    pub fn compressed(&self) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing into memory cannot fail.
        encoder.write_all(&self.bytes).expect("zlib into memory");
        encoder.finish().expect("zlib into memory")
    }

    /// The CBOR `StatusList`: `{"bits": 1, "lst": bstr}`.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (Value::Text("bits".into()), Value::Integer(1.into())),
            (Value::Text("lst".into()), Value::Bytes(self.compressed())),
        ])
    }
}

/// Where an MSO's status is: its index in the list at `uri` (the MSO's `status` member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReference {
    /// The entry.
    pub idx: u64,
    /// The URI of the Status List Token (its `sub`).
    pub uri: String,
}

impl StatusReference {
    /// `{"status_list": {"idx": uint, "uri": tstr}}`.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![(
            Value::Text("status_list".into()),
            Value::Map(vec![
                (Value::Text("idx".into()), Value::Integer(self.idx.into())),
                (Value::Text("uri".into()), Value::Text(self.uri.clone())),
            ]),
        )])
    }

    /// Reads a `status` member; other status mechanisms beside `status_list` are ignored.
    pub fn from_value(value: &Value) -> Result<Option<Self>, CborError> {
        let place = "MSO.status";
        let Some(list) = map_get(as_map(value, place)?, "status_list") else {
            return Ok(None);
        };
        let list = as_map(list, "MSO.status.status_list")?;
        Ok(Some(Self {
            idx: as_uint(
                required(list, "idx", "MSO.status.status_list")?,
                "MSO.status.status_list.idx",
            )?,
            uri: as_text(
                required(list, "uri", "MSO.status.status_list")?,
                "MSO.status.status_list.uri",
            )?
            .to_owned(),
        }))
    }
}

/// The claims of a Status List Token beside the list.
#[derive(Debug, Clone)]
pub struct TokenClaims {
    /// The token's own URI (`sub`), the `uri` the MSOs name.
    pub subject: String,
    /// `iat`.
    pub issued_at: DateTime<Utc>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
    /// `ttl`, seconds.
    pub ttl_secs: u64,
}

fn claim(key: i64, value: Value) -> (Value, Value) {
    (Value::Integer(key.into()), value)
}

/// A Status List Token waiting for its signature: a COSE_Sign1 (ES256) with `typ` in the
/// protected header and the signer's certificate in `x5chain`, as IssuerAuth carries the DS's.
pub struct PreparedToken {
    unsigned: CoseSign1,
}

impl PreparedToken {
    /// The token for `bits` with `claims`, naming `signer_certificate_der`.
    pub fn new(claims: &TokenClaims, bits: &StatusBits, signer_certificate_der: Vec<u8>) -> Self {
        let payload = Value::Map(vec![
            claim(CLAIM_SUB, Value::Text(claims.subject.clone())),
            claim(
                CLAIM_IAT,
                Value::Integer(claims.issued_at.timestamp().into()),
            ),
            claim(
                CLAIM_EXP,
                Value::Integer(claims.expires_at.timestamp().into()),
            ),
            claim(CLAIM_TTL, Value::Integer(claims.ttl_secs.into())),
            claim(CLAIM_STATUS_LIST, bits.to_value()),
        ]);
        let protected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES256)
            .value(TYP, Value::Text(TOKEN_TYPE.into()))
            .build();
        let unprotected = HeaderBuilder::new()
            .value(X5CHAIN, Value::Bytes(signer_certificate_der))
            .build();
        let unsigned = CoseSign1Builder::new()
            .protected(protected)
            .unprotected(unprotected)
            .payload(super::cbor::to_vec(&payload))
            .build();
        Self { unsigned }
    }

    /// The bytes the signer signs (ES256).
    pub fn to_be_signed(&self) -> Vec<u8> {
        cose::to_be_signed(&self.unsigned)
    }

    /// The token with `signature`: the COSE_Sign1 encoded, untagged (the draft forbids the CWT
    /// and COSE tags on a Status List Token).
    pub fn complete(self, signature: &Signature) -> Vec<u8> {
        cose::to_vec(&cose::attach_signature(self.unsigned, signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draft's example list (§4.1): 16 entries whose statuses are
    /// 1,0,0,1,1,1,0,1, 1,1,0,0,0,1,0,1 give the bytes b9 a3.
    #[test]
    fn bits_are_counted_from_the_least_significant_bit() {
        let mut bits = StatusBits::new(16);
        for (index, status) in [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
            .into_iter()
            .enumerate()
        {
            if status == 1 {
                bits.set_invalid(index as u64);
            }
        }
        assert_eq!(bits.as_bytes(), [0xb9, 0xa3]);
        bits.set_invalid(16); // past the end: ignored
        assert_eq!(bits.as_bytes(), [0xb9, 0xa3]);
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(bits.compressed().as_slice()),
            &mut inflated,
        )
        .unwrap();
        assert_eq!(inflated, [0xb9, 0xa3]);
    }

    #[test]
    fn a_status_reference_reads_back() {
        let reference = StatusReference {
            idx: 412,
            uri: "https://dmv.example/status-lists/1".into(),
        };
        assert_eq!(
            StatusReference::from_value(&reference.to_value()).unwrap(),
            Some(reference)
        );
        let other = Value::Map(vec![(Value::Text("identifier_list".into()), Value::Null)]);
        assert_eq!(StatusReference::from_value(&other).unwrap(), None);
    }
}
