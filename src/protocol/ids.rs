//! Google's identifiers in the Wallet API, checked once where a request is read: an id of one of
//! these types is 1 to its maximum length in bytes, not blank and free of control characters.
//! The maxima are [I] (Google's ids are UUIDs or opaque strings well below them).

use std::fmt;

/// An identifier that is empty, blank, too long or holds control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be 1 to {max} printable characters")]
pub struct InvalidId {
    /// The wire field, e.g. `deviceReferenceId`.
    pub field: &'static str,
    /// Its longest accepted length.
    pub max: usize,
}

macro_rules! wire_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The wire field the id travels in.
            pub const FIELD: &'static str = $field;
            /// Longest accepted length, in bytes.
            pub const MAX: usize = $max;

            /// Checks `raw`.
            pub fn parse(raw: &str) -> Result<Self, InvalidId> {
                if raw.trim().is_empty() || raw.len() > Self::MAX || raw.chars().any(char::is_control) {
                    return Err(InvalidId { field: Self::FIELD, max: Self::MAX });
                }
                Ok(Self(raw.to_owned()))
            }

            /// The id as sent.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

wire_id!(
    /// Google's deviceReferenceId: one device and credential.
    DeviceReferenceId,
    "deviceReferenceId",
    512
);
wire_id!(
    /// Google's credentialId: one credential on one device (a "copy").
    WalletCredentialId,
    "credentialId",
    256
);
wire_id!(
    /// Google's proofingId.
    ProofingId,
    "proofingId",
    256
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_printable_bounded_and_not_blank() {
        assert_eq!(DeviceReferenceId::parse("dev-1").unwrap().as_str(), "dev-1");
        assert!(DeviceReferenceId::parse(&"d".repeat(512)).is_ok());
        for bad in ["", "   ", "a\nb", "\u{7f}"] {
            assert_eq!(
                ProofingId::parse(bad).unwrap_err().to_string(),
                "proofingId must be 1 to 256 printable characters",
                "{bad:?}"
            );
        }
        assert!(WalletCredentialId::parse(&"c".repeat(257)).is_err());
        assert_eq!(
            DeviceReferenceId::parse(&"d".repeat(513))
                .unwrap_err()
                .to_string(),
            "deviceReferenceId must be 1 to 512 printable characters"
        );
    }
}
