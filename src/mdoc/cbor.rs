//! CBOR helpers shared by the mdoc structures: tag-24 embedded CBOR that keeps its bytes, the two
//! date encodings, and typed access to `ciborium::Value` maps with clear errors.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use ciborium::Value;

/// Tag of embedded CBOR (`#6.24(bstr .cbor T)`).
pub const TAG_ENCODED_CBOR: u64 = 24;
/// Tag of an RFC 3339 date-time (`tdate`).
pub const TAG_TDATE: u64 = 0;
/// Tag of an RFC 8943 `full-date` string.
pub const TAG_FULL_DATE: u64 = 1004;

/// Why CBOR could not be read as the structure expected; the message names the place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CborError(pub String);

impl CborError {
    /// An error at `place`.
    pub fn at(place: &str, what: impl std::fmt::Display) -> Self {
        Self(format!("{place}: {what}"))
    }
}

/// Encodes a value with ciborium's deterministic (shortest-form, definite-length) encoder.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    ciborium::into_writer(value, &mut out).expect("CBOR encoding into memory");
    out
}

/// Decodes exactly one CBOR item that fills `bytes` (trailing bytes are an error).
pub fn from_slice(bytes: &[u8], place: &str) -> Result<Value, CborError> {
    let mut reader = bytes;
    let value: Value = ciborium::from_reader(&mut reader)
        .map_err(|e| CborError::at(place, format!("not CBOR ({e})")))?;
    if !reader.is_empty() {
        return Err(CborError::at(
            place,
            format!("{} trailing bytes after the CBOR item", reader.len()),
        ));
    }
    Ok(value)
}

/// Embedded CBOR: `#6.24(bstr)` whose bytes are the encoding of a `T`. The bytes are kept as
/// received or produced, because digests and signatures cover them, not a re-encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag24 {
    inner: Vec<u8>,
    value: Value,
}

impl Tag24 {
    /// Wraps the encoding of `value`.
    pub fn encode(value: Value) -> Self {
        Self {
            inner: to_vec(&value),
            value,
        }
    }

    /// Reads `#6.24(bstr)` and decodes the embedded item, keeping its bytes.
    pub fn from_value(value: &Value, place: &str) -> Result<Self, CborError> {
        match value {
            Value::Tag(TAG_ENCODED_CBOR, inner) => match inner.as_ref() {
                Value::Bytes(bytes) => {
                    let decoded = from_slice(bytes, place)?;
                    Ok(Self {
                        inner: bytes.clone(),
                        value: decoded,
                    })
                }
                _ => Err(CborError::at(place, "tag 24 must wrap a byte string")),
            },
            _ => Err(CborError::at(place, "expected embedded CBOR (tag 24)")),
        }
    }

    /// The decoded embedded item.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The embedded item's bytes (inside the bstr).
    pub fn inner_bytes(&self) -> &[u8] {
        &self.inner
    }

    /// `#6.24(bstr)` as a value.
    pub fn to_value(&self) -> Value {
        Value::Tag(TAG_ENCODED_CBOR, Box::new(Value::Bytes(self.inner.clone())))
    }

    /// The full encoding of `#6.24(bstr)`: what mdoc digests and COSE payloads cover. Written
    /// directly (tag head, byte-string head, bytes) rather than through a cloned `Value`.
    pub fn tagged_bytes(&self) -> Vec<u8> {
        let len = self.inner.len() as u64;
        let mut out = Vec::with_capacity(self.inner.len() + 11);
        out.extend_from_slice(&[0xd8, TAG_ENCODED_CBOR as u8]);
        // Major type 2 (byte string) head in its shortest form.
        match len {
            0..=23 => out.push(0x40 | len as u8),
            24..=0xff => out.extend_from_slice(&[0x58, len as u8]),
            0x100..=0xffff => {
                out.push(0x59);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0x5a);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            _ => {
                out.push(0x5b);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        out.extend_from_slice(&self.inner);
        out
    }
}

/// `tdate`: tag 0 with RFC 3339 UTC text, whole seconds (ISO 18013-5 §7.2.1 forbids fractions).
pub fn tdate(at: DateTime<Utc>) -> Value {
    Value::Tag(
        TAG_TDATE,
        Box::new(Value::Text(at.to_rfc3339_opts(SecondsFormat::Secs, true))),
    )
}

/// `full-date`: tag 1004 with `YYYY-MM-DD`.
pub fn full_date(date: NaiveDate) -> Value {
    Value::Tag(
        TAG_FULL_DATE,
        Box::new(Value::Text(date.format("%Y-%m-%d").to_string())),
    )
}

/// Reads a `tdate`.
pub fn read_tdate(value: &Value, place: &str) -> Result<DateTime<Utc>, CborError> {
    match value {
        Value::Tag(TAG_TDATE, inner) => match inner.as_ref() {
            Value::Text(text) => DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| CborError::at(place, format!("bad date-time {text:?} ({e})"))),
            _ => Err(CborError::at(place, "tag 0 must wrap text")),
        },
        _ => Err(CborError::at(place, "expected a tdate (tag 0)")),
    }
}

/// Looks up a text key in a CBOR map.
pub fn map_get<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
        .map(|(_, v)| v)
}

/// The entries of a map, or an error naming `place`.
pub fn as_map<'a>(value: &'a Value, place: &str) -> Result<&'a [(Value, Value)], CborError> {
    match value {
        Value::Map(entries) => Ok(entries),
        _ => Err(CborError::at(place, "expected a map")),
    }
}

/// A required map entry.
pub fn required<'a>(
    map: &'a [(Value, Value)],
    key: &str,
    place: &str,
) -> Result<&'a Value, CborError> {
    map_get(map, key).ok_or_else(|| CborError::at(place, format!("missing {key:?}")))
}

/// A text value.
pub fn as_text<'a>(value: &'a Value, place: &str) -> Result<&'a str, CborError> {
    match value {
        Value::Text(text) => Ok(text),
        _ => Err(CborError::at(place, "expected text")),
    }
}

/// A byte string.
pub fn as_bytes<'a>(value: &'a Value, place: &str) -> Result<&'a [u8], CborError> {
    match value {
        Value::Bytes(bytes) => Ok(bytes),
        _ => Err(CborError::at(place, "expected a byte string")),
    }
}

/// An unsigned integer that fits in u64.
pub fn as_uint(value: &Value, place: &str) -> Result<u64, CborError> {
    match value {
        Value::Integer(i) => {
            u64::try_from(*i).map_err(|_| CborError::at(place, "expected an unsigned integer"))
        }
        _ => Err(CborError::at(place, "expected an unsigned integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_encode_as_iso_18013_5_says() {
        let at = DateTime::parse_from_rfc3339("2020-10-01T13:30:02.123Z")
            .unwrap()
            .with_timezone(&Utc);
        // c0 74 "2020-10-01T13:30:02Z": tag 0, 20-character text, fractions dropped.
        assert_eq!(
            hex::encode(to_vec(&tdate(at))),
            "c074323032302d31302d30315431333a33303a30325a"
        );
        let date = NaiveDate::from_ymd_opt(2019, 10, 20).unwrap();
        assert_eq!(
            hex::encode(to_vec(&full_date(date))),
            "d903ec6a323031392d31302d3230"
        );
        assert_eq!(
            read_tdate(&tdate(at), "t").unwrap().timestamp(),
            at.timestamp()
        );
    }

    #[test]
    fn tag24_keeps_bytes_and_rejects_wrong_shapes() {
        let tagged = Tag24::encode(Value::Text("x".into()));
        assert_eq!(hex::encode(tagged.tagged_bytes()), "d818426178");
        let read = Tag24::from_value(&tagged.to_value(), "t").unwrap();
        assert_eq!(read, tagged);
        // The direct encoding agrees with the general encoder at every length boundary.
        for len in [0usize, 23, 24, 255, 256, 65_535, 65_536] {
            let t = Tag24::encode(Value::Bytes(vec![7; len]));
            assert_eq!(
                t.tagged_bytes(),
                to_vec(&t.to_value()),
                "inner length {}",
                t.inner_bytes().len()
            );
        }
        assert!(Tag24::from_value(&Value::Bytes(vec![0x61, 0x78]), "t").is_err());
        assert!(
            Tag24::from_value(&Value::Tag(24, Box::new(Value::Text("x".into()))), "t").is_err()
        );
        let truncated = Value::Tag(24, Box::new(Value::Bytes(vec![0x62, 0x78])));
        assert!(Tag24::from_value(&truncated, "t").is_err());
        let trailing = Value::Tag(24, Box::new(Value::Bytes(vec![0x61, 0x78, 0x00])));
        assert!(Tag24::from_value(&trailing, "t")
            .unwrap_err()
            .0
            .contains("trailing"));
    }
}
