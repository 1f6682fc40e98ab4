//! The lifecycle of a credential as one device holds it (spec/wallet-api.md §7.3): Google's
//! credentialId, bound to one holder record and one deviceReferenceId.
//!
//! The wire status is derived, not stored: a revoked record makes every copy `revoked`; a copy the
//! wallet deleted is `deleted`; a copy whose device proved it holds the record's current version
//! (ProofOfProvisioning accepted for it) is `active`; anything else — never provisioned, or
//! provisioned with a version that is no longer current — is `provisionPending`. So an update to
//! the record turns every copy `provisionPending` at once, with no write per copy.

use uuid::Uuid;

/// A copy's wire status (the `CredentialStatus` union member).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyStatus {
    /// The device must fetch the current version.
    ProvisionPending,
    /// The device holds the current version.
    Active,
    /// The issuer revoked the record.
    Revoked,
    /// The wallet deleted the copy.
    Deleted,
}

impl CopyStatus {
    /// Wire member name.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyStatus::ProvisionPending => "provisionPending",
            CopyStatus::Active => "active",
            CopyStatus::Revoked => "revoked",
            CopyStatus::Deleted => "deleted",
        }
    }

    /// Every status.
    pub const ALL: [CopyStatus; 4] = [
        CopyStatus::ProvisionPending,
        CopyStatus::Active,
        CopyStatus::Revoked,
        CopyStatus::Deleted,
    ];
}

impl std::str::FromStr for CopyStatus {
    type Err = super::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| super::UnknownName::new("copy status", s))
    }
}

/// What is stored about a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Copy {
    /// The version whose data the device received last (provisionCredential).
    pub provisioned: Option<Uuid>,
    /// The version whose ProofOfProvisioning was accepted.
    pub proven: Option<Uuid>,
    /// Whether the wallet deleted it.
    pub deleted: bool,
}

/// What is known about the holder record behind the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Whether the issuer revoked it.
    pub revoked: bool,
    /// Its current version.
    pub current: Uuid,
}

/// Something the Wallet API does to a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// provisionCredential: deliver the current version.
    Provision,
    /// provisionMobileSecurityObjects for `version`, with a ProofOfProvisioning or without
    /// (a refresh).
    IssueMsos {
        /// The device's credentialVersionId.
        version: Uuid,
        /// Whether a ProofOfProvisioning came with it.
        with_proof: bool,
    },
    /// notifyCredentialDeleted.
    Delete,
}

/// An event the copy's state does not allow; answered with `invalidState`, nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Illegal {
    /// The record is revoked.
    #[error("the credential is revoked")]
    Revoked,
    /// The wallet deleted this copy.
    #[error("the credential was deleted from this device")]
    Deleted,
    /// The version is not the current one.
    #[error("credentialVersionId is not the current version of the credential")]
    StaleVersion,
    /// The device never received the current version.
    #[error("the current version was not provisioned to this device")]
    NotProvisioned,
    /// A refresh before any ProofOfProvisioning for this version.
    #[error("no ProofOfProvisioning was received for this version yet")]
    NoProof,
}

/// The wire status of `copy`.
pub fn status(copy: &Copy, record: &Record) -> CopyStatus {
    if record.revoked {
        CopyStatus::Revoked
    } else if copy.deleted {
        CopyStatus::Deleted
    } else if copy.proven == Some(record.current) {
        CopyStatus::Active
    } else {
        CopyStatus::ProvisionPending
    }
}

/// The copy after `event`, or why it is refused.
pub fn apply(copy: &Copy, record: &Record, event: Event) -> Result<Copy, Illegal> {
    if event == Event::Delete {
        // Deletion is always acknowledged (repeats too); a revoked copy stays revoked on the wire.
        return Ok(Copy {
            deleted: true,
            ..*copy
        });
    }
    if record.revoked {
        return Err(Illegal::Revoked);
    }
    if copy.deleted {
        return Err(Illegal::Deleted);
    }
    match event {
        Event::Provision => Ok(Copy {
            provisioned: Some(record.current),
            ..*copy
        }),
        Event::IssueMsos {
            version,
            with_proof,
        } => {
            if version != record.current {
                Err(Illegal::StaleVersion)
            } else if copy.provisioned != Some(version) {
                Err(Illegal::NotProvisioned)
            } else if with_proof {
                Ok(Copy {
                    proven: Some(version),
                    ..*copy
                })
            } else if copy.proven != Some(version) {
                Err(Illegal::NoProof)
            } else {
                Ok(*copy)
            }
        }
        Event::Delete => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_in_every_state() {
        let v1 = Uuid::from_u128(1);
        let v2 = Uuid::from_u128(2);
        let live = Record {
            revoked: false,
            current: v1,
        };
        let updated = Record {
            revoked: false,
            current: v2,
        };
        let revoked = Record {
            revoked: true,
            current: v1,
        };
        let new = Copy::default();
        let provisioned = Copy {
            provisioned: Some(v1),
            ..new
        };
        let proven = Copy {
            proven: Some(v1),
            ..provisioned
        };
        let deleted = Copy {
            deleted: true,
            ..proven
        };
        let msos = |version, with_proof| Event::IssueMsos {
            version,
            with_proof,
        };

        // Statuses.
        assert_eq!(status(&new, &live), CopyStatus::ProvisionPending);
        assert_eq!(status(&provisioned, &live), CopyStatus::ProvisionPending);
        assert_eq!(status(&proven, &live), CopyStatus::Active);
        assert_eq!(status(&proven, &updated), CopyStatus::ProvisionPending);
        assert_eq!(status(&deleted, &live), CopyStatus::Deleted);
        assert_eq!(status(&deleted, &revoked), CopyStatus::Revoked);
        assert_eq!(status(&proven, &revoked), CopyStatus::Revoked);

        // Provision.
        assert_eq!(apply(&new, &live, Event::Provision), Ok(provisioned));
        assert_eq!(
            apply(&proven, &updated, Event::Provision),
            Ok(Copy {
                provisioned: Some(v2),
                ..proven
            })
        );
        assert_eq!(
            apply(&proven, &revoked, Event::Provision),
            Err(Illegal::Revoked)
        );
        assert_eq!(
            apply(&deleted, &live, Event::Provision),
            Err(Illegal::Deleted)
        );

        // MSOs.
        assert_eq!(apply(&provisioned, &live, msos(v1, true)), Ok(proven));
        assert_eq!(
            apply(&provisioned, &live, msos(v1, false)),
            Err(Illegal::NoProof)
        );
        assert_eq!(apply(&proven, &live, msos(v1, false)), Ok(proven));
        assert_eq!(apply(&proven, &live, msos(v1, true)), Ok(proven));
        assert_eq!(
            apply(&proven, &updated, msos(v1, false)),
            Err(Illegal::StaleVersion)
        );
        assert_eq!(
            apply(&proven, &updated, msos(v2, true)),
            Err(Illegal::NotProvisioned)
        );
        assert_eq!(
            apply(&new, &live, msos(v1, true)),
            Err(Illegal::NotProvisioned)
        );
        assert_eq!(
            apply(&proven, &revoked, msos(v1, false)),
            Err(Illegal::Revoked)
        );
        assert_eq!(
            apply(&deleted, &live, msos(v1, false)),
            Err(Illegal::Deleted)
        );

        // Delete: always, and idempotent.
        assert_eq!(apply(&proven, &live, Event::Delete), Ok(deleted));
        assert_eq!(apply(&deleted, &live, Event::Delete), Ok(deleted));
        assert_eq!(
            apply(&proven, &revoked, Event::Delete).map(|c| status(&c, &revoked)),
            Ok(CopyStatus::Revoked)
        );
    }
}
