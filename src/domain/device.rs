//! The device lifecycle (spec/wallet-api.md §7.2, transitions [I]): a deviceReferenceId gets a
//! nonce (getDeviceRegistrationNonce), then registers its identity key once (registerDevice). A
//! registered device may ask for another nonce; registering again with the same key is a retry
//! and changes nothing, with another key it is refused.

/// Where a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Holds a nonce, no identity key yet.
    NonceIssued,
    /// Its identity key is registered.
    Registered,
}

impl DeviceStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::NonceIssued => "nonceIssued",
            DeviceStatus::Registered => "registered",
        }
    }

    /// Reads a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "nonceIssued" => Some(DeviceStatus::NonceIssued),
            "registered" => Some(DeviceStatus::Registered),
            _ => None,
        }
    }
}

/// What a registerDevice call does in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Check the attestation against the outstanding nonce and store the key.
    Register,
    /// The same key is already registered: a retry, answered without change.
    AlreadyRegistered,
}

/// registerDevice on a device that registered another identity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this deviceReferenceId is registered with another identity key")]
pub struct KeyConflict;

/// The effect of registering `presented_key` on a device in `status` with `registered_key`.
pub fn register(
    status: DeviceStatus,
    registered_key: Option<&[u8]>,
    presented_key: &[u8],
) -> Result<Registration, KeyConflict> {
    match (status, registered_key) {
        (DeviceStatus::Registered, Some(key)) if key == presented_key => {
            Ok(Registration::AlreadyRegistered)
        }
        (DeviceStatus::Registered, _) => Err(KeyConflict),
        (DeviceStatus::NonceIssued, _) => Ok(Registration::Register),
    }
}

/// The status after a new nonce: unchanged (a registered device stays registered).
pub fn issue_nonce(status: DeviceStatus) -> DeviceStatus {
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registration() {
        use DeviceStatus::*;
        assert_eq!(
            register(NonceIssued, None, b"k"),
            Ok(Registration::Register)
        );
        assert_eq!(
            register(Registered, Some(b"k"), b"k"),
            Ok(Registration::AlreadyRegistered)
        );
        assert_eq!(register(Registered, Some(b"k"), b"other"), Err(KeyConflict));
        assert_eq!(register(Registered, None, b"k"), Err(KeyConflict));
        assert_eq!(issue_nonce(NonceIssued), NonceIssued);
        assert_eq!(issue_nonce(Registered), Registered);
        for status in [NonceIssued, Registered] {
            assert_eq!(DeviceStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeviceStatus::parse("gone"), None);
    }
}
