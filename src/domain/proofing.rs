//! Proofing review: the statuses of spec/wallet-api.md §4.7 and §7.1, the decisions issuer staff
//! take, and the wire form `getProofingStatus` answers with. Transitions are [I] (the spec gives
//! the statuses, not the rules), kept here in one table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Status of a proofing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProofingStatus {
    /// No decision yet.
    Pending,
    /// Evidence satisfactory: provisionCredential may use it.
    Accepted,
    /// Evidence not satisfactory.
    Rejected,
    /// More is needed from the user.
    Challenged,
    /// The user canceled (final).
    Canceled,
    /// The issuer withdrew an acceptance.
    Revoked,
    /// A challenge went unanswered (final).
    Expired,
}

impl ProofingStatus {
    /// Stored name, also the wire member name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProofingStatus::Pending => "pending",
            ProofingStatus::Accepted => "accepted",
            ProofingStatus::Rejected => "rejected",
            ProofingStatus::Challenged => "challenged",
            ProofingStatus::Canceled => "canceled",
            ProofingStatus::Revoked => "revoked",
            ProofingStatus::Expired => "expired",
        }
    }

    /// Every status.
    pub const ALL: [ProofingStatus; 7] = [
        ProofingStatus::Pending,
        ProofingStatus::Accepted,
        ProofingStatus::Rejected,
        ProofingStatus::Challenged,
        ProofingStatus::Canceled,
        ProofingStatus::Revoked,
        ProofingStatus::Expired,
    ];
}

impl FromStr for ProofingStatus {
    type Err = super::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| super::UnknownName::new("proofing status", s))
    }
}

impl fmt::Display for ProofingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a proofing was rejected (the eight `Rejection` members of spec §4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RejectionReason {
    /// The evidence does not match the record.
    EvidenceMismatch,
    /// Evidence is missing.
    EvidenceIncomplete,
    /// The risk score is too low.
    LowRiskScore,
    /// No record matches.
    RecordNotFound,
    /// The matching record is not valid.
    RecordInvalid,
    /// The user has provisioned too many devices.
    MaxProvisioningsReached,
    /// A risk check failed.
    RiskCheckFailure,
    /// The liveness check failed.
    LivenessCheckFailure,
}

/// What the user must do for a challenged proofing (spec §4.7 `Challenged` members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", tag = "kind", deny_unknown_fields)]
pub enum Challenge {
    /// The issuer needs more time.
    AdditionalTimeRequired,
    /// Visit an office (or answer a letter).
    PhysicalLocationVisit,
    /// Visit the issuer's website.
    IssuerUrlVisit {
        /// Where (https).
        #[schema(pattern = "^https://")]
        url: String,
    },
}

/// A decision of issuer staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// Accept (also corrects an earlier rejection or revocation).
    Approve,
    /// Reject, for a reason.
    Reject(RejectionReason),
    /// Ask for more.
    Challenge(Challenge),
    /// Withdraw an acceptance.
    Revoke,
}

/// A decision that the proofing's status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the proofing is {status} and cannot be {action}")]
pub struct IllegalReview {
    /// The status.
    pub status: ProofingStatus,
    /// The decision, in words.
    pub action: &'static str,
}

impl Review {
    fn action(&self) -> &'static str {
        match self {
            Review::Approve => "approved",
            Review::Reject(_) => "rejected",
            Review::Challenge(_) => "challenged",
            Review::Revoke => "revoked",
        }
    }

    /// The status after this decision, or why it is not allowed.
    pub fn apply(&self, status: ProofingStatus) -> Result<ProofingStatus, IllegalReview> {
        use ProofingStatus::*;
        let next = match (self, status) {
            (Review::Approve, Pending | Challenged | Rejected | Revoked) => Accepted,
            (Review::Reject(_), Pending | Challenged | Accepted) => Rejected,
            (Review::Challenge(_), Pending | Challenged) => Challenged,
            (Review::Revoke, Accepted) => Revoked,
            _ => {
                return Err(IllegalReview {
                    status,
                    action: self.action(),
                })
            }
        };
        Ok(next)
    }

    /// The detail stored with the new status, and shown on the wire inside its member.
    pub fn detail(&self) -> Value {
        match self {
            Review::Reject(reason) => {
                json!({ "rejection": { serde_json::to_value(reason).unwrap_or_default().as_str().unwrap_or_default(): {} } })
            }
            Review::Challenge(challenge) => match challenge {
                Challenge::AdditionalTimeRequired => json!({ "additionalTimeRequired": {} }),
                Challenge::PhysicalLocationVisit => json!({ "physicalLocationVisit": {} }),
                Challenge::IssuerUrlVisit { url } => json!({ "issuerUrlVisit": { "url": url } }),
            },
            Review::Approve | Review::Revoke => json!({}),
        }
    }
}

/// cancelProofing on a proofing in `status`: "must be in a Pending, Challenged or Cancelled
/// state" (spec §4.8), so a repeat is a no-op and everything else is refused.
pub fn cancel(status: ProofingStatus) -> Result<ProofingStatus, IllegalReview> {
    match status {
        ProofingStatus::Pending | ProofingStatus::Challenged | ProofingStatus::Canceled => {
            Ok(ProofingStatus::Canceled)
        }
        _ => Err(IllegalReview {
            status,
            action: "canceled",
        }),
    }
}

/// A proofing as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ProofingRecord {
    /// Google's proofingId.
    pub proofing_id: String,
    /// The device (and credential) it is for.
    pub device_reference_id: String,
    /// The holder record it was matched to, once approved.
    pub credential_id: Option<uuid::Uuid>,
    /// Status.
    pub status: ProofingStatus,
    /// Detail of the status (rejection reason, challenge).
    pub status_detail: Option<Value>,
    /// Evidence as received (personal data: never logged).
    pub evidence: Value,
    /// Received.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The `ProofingStatus` union as getProofingStatus answers it, e.g.
/// `{"rejected": {"rejection": {"evidenceMismatch": {}}}}`.
pub fn wire_status(status: ProofingStatus, detail: Option<&Value>) -> Value {
    json!({ status.as_str(): detail.cloned().unwrap_or_else(|| json!({})) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decision_in_every_status() {
        use ProofingStatus::*;
        let reject = Review::Reject(RejectionReason::EvidenceMismatch);
        let challenge = Review::Challenge(Challenge::AdditionalTimeRequired);
        let table: [(&Review, [Option<ProofingStatus>; 7]); 4] = [
            // pending, accepted, rejected, challenged, canceled, revoked, expired
            (
                &Review::Approve,
                [
                    Some(Accepted),
                    None,
                    Some(Accepted),
                    Some(Accepted),
                    None,
                    Some(Accepted),
                    None,
                ],
            ),
            (
                &reject,
                [
                    Some(Rejected),
                    Some(Rejected),
                    None,
                    Some(Rejected),
                    None,
                    None,
                    None,
                ],
            ),
            (
                &challenge,
                [
                    Some(Challenged),
                    None,
                    None,
                    Some(Challenged),
                    None,
                    None,
                    None,
                ],
            ),
            (
                &Review::Revoke,
                [None, Some(Revoked), None, None, None, None, None],
            ),
        ];
        for (review, expected) in table {
            for (status, want) in ProofingStatus::ALL.into_iter().zip(expected) {
                assert_eq!(review.apply(status).ok(), want, "{review:?} on {status}");
            }
        }
        assert_eq!(
            Review::Revoke.apply(Pending).unwrap_err().to_string(),
            "the proofing is pending and cannot be revoked"
        );
        for status in ProofingStatus::ALL {
            assert_eq!(status.as_str().parse::<ProofingStatus>(), Ok(status));
        }
    }

    #[test]
    fn cancel_in_every_status() {
        use ProofingStatus::*;
        let expected = [
            Some(Canceled),
            None,
            None,
            Some(Canceled),
            Some(Canceled),
            None,
            None,
        ];
        for (status, want) in ProofingStatus::ALL.into_iter().zip(expected) {
            assert_eq!(cancel(status).ok(), want, "{status}");
        }
        assert_eq!(
            cancel(Accepted).unwrap_err().to_string(),
            "the proofing is accepted and cannot be canceled"
        );
    }

    #[test]
    fn wire_forms_follow_the_spec() {
        let reject = Review::Reject(RejectionReason::LivenessCheckFailure);
        assert_eq!(
            wire_status(ProofingStatus::Rejected, Some(&reject.detail())),
            json!({ "rejected": { "rejection": { "livenessCheckFailure": {} } } })
        );
        let visit = Review::Challenge(Challenge::IssuerUrlVisit {
            url: "https://dmv.example/verify".into(),
        });
        assert_eq!(
            wire_status(ProofingStatus::Challenged, Some(&visit.detail())),
            json!({ "challenged": { "issuerUrlVisit": { "url": "https://dmv.example/verify" } } })
        );
        assert_eq!(
            wire_status(ProofingStatus::Pending, None),
            json!({ "pending": {} })
        );
    }
}
