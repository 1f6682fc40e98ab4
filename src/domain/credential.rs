//! The issuer's credential record (one person's licence, say) and the rules for changing it.
//! Holder data changes only by writing a new immutable version; a revoked record never changes
//! again. The per-device copies Google Wallet holds (and their wire statuses) live elsewhere.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Status of a credential record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CredentialStatus {
    /// In force: holder data may change, MSOs may be issued.
    Active,
    /// Withdrawn by the issuer: final.
    Revoked,
}

impl CredentialStatus {
    /// Stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialStatus::Active => "active",
            CredentialStatus::Revoked => "revoked",
        }
    }
}

impl FromStr for CredentialStatus {
    type Err = super::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(CredentialStatus::Active),
            "revoked" => Ok(CredentialStatus::Revoked),
            other => Err(super::UnknownName::new("credential status", other)),
        }
    }
}

impl fmt::Display for CredentialStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change staff may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// New holder data (a new version).
    UpdateHolderData,
    /// Revocation.
    Revoke,
    /// Asking the holder to prove their identity again.
    RequestReverification,
}

/// Why a change is not allowed in the record's status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {status} credential cannot be {action}")]
pub struct IllegalChange {
    /// The record's status.
    pub status: CredentialStatus,
    /// What was attempted, in words.
    pub action: &'static str,
}

impl CredentialStatus {
    /// The status after `change`, or why it is not allowed.
    pub fn apply(self, change: Change) -> Result<CredentialStatus, IllegalChange> {
        match (self, change) {
            (CredentialStatus::Active, Change::UpdateHolderData) => Ok(CredentialStatus::Active),
            (CredentialStatus::Active, Change::Revoke) => Ok(CredentialStatus::Revoked),
            (CredentialStatus::Revoked, Change::UpdateHolderData) => Err(IllegalChange {
                status: self,
                action: "updated",
            }),
            (CredentialStatus::Revoked, Change::Revoke) => Err(IllegalChange {
                status: self,
                action: "revoked again",
            }),
            (CredentialStatus::Active, Change::RequestReverification) => {
                Ok(CredentialStatus::Active)
            }
            (CredentialStatus::Revoked, Change::RequestReverification) => Err(IllegalChange {
                status: self,
                action: "sent for reverification",
            }),
        }
    }
}

/// A credential record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRecord {
    /// Brevet's id (UUIDv7, so ids sort by creation).
    pub credential_id: Uuid,
    /// The ISO 18013-5 doc type.
    pub doc_type: String,
    /// Status.
    pub status: CredentialStatus,
    /// Why it has that status (the revocation reason), if given.
    pub status_reason: Option<String>,
    /// The version provisionCredential serves.
    pub current_version_id: Uuid,
    /// Its number, 1 for the first; the ETag of the record.
    pub current_version_number: i32,
    /// The current version's holder data.
    pub holder_data: serde_json::Value,
    /// When staff last asked the holder to verify their identity again.
    pub reverification_requested_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// An immutable version of a record's holder data.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialVersion {
    /// The credentialVersionId.
    pub credential_version_id: Uuid,
    /// The record.
    pub credential_id: Uuid,
    /// 1, 2, 3…
    pub version_number: i32,
    /// The holder data of this version.
    pub holder_data: serde_json::Value,
    /// The admin token that wrote it.
    pub created_by: Option<Uuid>,
    /// When.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transition() {
        use CredentialStatus::*;
        assert_eq!(Active.apply(Change::UpdateHolderData), Ok(Active));
        assert_eq!(Active.apply(Change::Revoke), Ok(Revoked));
        assert_eq!(
            Revoked
                .apply(Change::UpdateHolderData)
                .unwrap_err()
                .to_string(),
            "a revoked credential cannot be updated"
        );
        assert_eq!(
            Revoked.apply(Change::Revoke).unwrap_err().to_string(),
            "a revoked credential cannot be revoked again"
        );
        assert_eq!(Active.apply(Change::RequestReverification), Ok(Active));
        assert_eq!(
            Revoked
                .apply(Change::RequestReverification)
                .unwrap_err()
                .to_string(),
            "a revoked credential cannot be sent for reverification"
        );
        for status in [Active, Revoked] {
            assert_eq!(status.as_str().parse::<CredentialStatus>(), Ok(status));
        }
    }
}
