//! IssuerSignedItem (ISO/IEC 18013-5 §8.3.2.1.2.2): one data element with its digest ID and salt,
//! carried as `#6.24(bstr .cbor IssuerSignedItem)`. Its digest is SHA-256 over exactly those
//! tagged bytes.

use ciborium::Value;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::cbor::{as_bytes, as_map, as_text, as_uint, required, CborError, Tag24};

/// Bytes of salt per item; ISO 18013-5 asks for at least 16.
pub const SALT_LEN: usize = 32;

/// One issuer-signed data element, with the bytes its digest covers.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerSignedItem {
    /// Key of this item's digest in the MSO's valueDigests.
    pub digest_id: u64,
    /// Salt that makes the digest unguessable.
    pub random: Vec<u8>,
    /// The element identifier, e.g. `family_name`.
    pub element_identifier: String,
    /// The element's CBOR value.
    pub element_value: Value,
    bytes: Tag24,
}

impl IssuerSignedItem {
    /// A new item with a fresh random salt. The map's keys are in the order digestID, random,
    /// elementIdentifier, elementValue, which is the order Android rebuilds at presentation.
    pub fn new(digest_id: u64, element_identifier: &str, element_value: Value) -> Self {
        let mut random = vec![0u8; SALT_LEN];
        // ThreadRng is a CSPRNG seeded (and periodically reseeded) from the OS; one syscall per
        // salt through OsRng cost a fifth of an MSO's issuance time.
        rand::thread_rng().fill_bytes(&mut random);
        Self::with_salt(digest_id, random, element_identifier, element_value)
    }

    /// A new item with the given salt.
    pub fn with_salt(
        digest_id: u64,
        random: Vec<u8>,
        element_identifier: &str,
        element_value: Value,
    ) -> Self {
        let map = Value::Map(vec![
            (
                Value::Text("digestID".into()),
                Value::Integer(digest_id.into()),
            ),
            (Value::Text("random".into()), Value::Bytes(random.clone())),
            (
                Value::Text("elementIdentifier".into()),
                Value::Text(element_identifier.to_owned()),
            ),
            (Value::Text("elementValue".into()), element_value.clone()),
        ]);
        Self {
            digest_id,
            random,
            element_identifier: element_identifier.to_owned(),
            element_value,
            bytes: Tag24::encode(map),
        }
    }

    /// Reads `IssuerSignedItemBytes`, keeping the bytes as they are.
    pub fn from_value(value: &Value, place: &str) -> Result<Self, CborError> {
        let bytes = Tag24::from_value(value, place)?;
        let map = as_map(bytes.value(), place)?;
        let digest_id = as_uint(
            required(map, "digestID", place)?,
            &format!("{place}.digestID"),
        )?;
        let random =
            as_bytes(required(map, "random", place)?, &format!("{place}.random"))?.to_vec();
        if random.len() < 16 {
            return Err(CborError::at(
                place,
                format!("random is {} bytes; at least 16 are required", random.len()),
            ));
        }
        let element_identifier =
            as_text(required(map, "elementIdentifier", place)?, place)?.to_owned();
        let element_value = required(map, "elementValue", place)?.clone();
        Ok(Self {
            digest_id,
            random,
            element_identifier,
            element_value,
            bytes,
        })
    }

    /// `#6.24(bstr)` as a value, to place in IssuerSigned.nameSpaces.
    pub fn to_value(&self) -> Value {
        self.bytes.to_value()
    }

    /// SHA-256 over the tagged bytes: the value of this item in the MSO's valueDigests.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.bytes.tagged_bytes()).into()
    }

    /// The same item with `elementValue` null: the IssuerSignedItemMetadata that Android's static
    /// auth data carries (the device holds the value itself and puts it back at presentation).
    pub fn metadata_value(&self) -> Value {
        let without_value = Self::with_salt(
            self.digest_id,
            self.random.clone(),
            &self.element_identifier,
            Value::Null,
        );
        without_value.to_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mdoc::cbor::to_vec;

    #[test]
    fn encodes_in_android_key_order_and_digests_the_tagged_bytes() {
        let item = IssuerSignedItem::with_salt(
            3,
            vec![0xab; 16],
            "family_name",
            Value::Text("Doe".into()),
        );
        let tagged = to_vec(&item.to_value());
        // d8 18 (tag 24) 58 52 (82-byte bstr) a4 (map of 4) 68 "digestID" 03 66 "random" 50 ab×16 …
        assert_eq!(&tagged[..4], &[0xd8, 0x18, 0x58, 0x52]);
        let inner = &tagged[4..];
        assert_eq!(inner[0], 0xa4);
        assert_eq!(&inner[1..10], b"\x68digestID");
        assert_eq!(inner[10], 0x03);
        assert_eq!(&inner[11..18], b"\x66random");
        assert_eq!(item.digest().to_vec(), Sha256::digest(&tagged).to_vec());
        let back = IssuerSignedItem::from_value(&item.to_value(), "item").unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn salts_are_fresh_and_short_salts_rejected() {
        let a = IssuerSignedItem::new(0, "x", Value::Bool(true));
        let b = IssuerSignedItem::new(0, "x", Value::Bool(true));
        assert_ne!(a.random, b.random);
        assert_ne!(a.digest(), b.digest());
        let short = IssuerSignedItem::with_salt(0, vec![1; 15], "x", Value::Bool(true));
        let err = IssuerSignedItem::from_value(&short.to_value(), "item").unwrap_err();
        assert!(err.0.contains("at least 16"), "{err}");
    }
}
