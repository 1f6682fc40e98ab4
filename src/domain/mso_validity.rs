//! How long an MSO is valid (ISO/IEC 18013-5 §9.1.2.4 `ValidityInfo`), decided from the policy
//! and the facts that bound it:
//!
//! - `signed` and `validFrom` are backdated by the clock skew: a verifier whose clock lags must
//!   not find a fresh MSO "not yet valid", and ISO requires `validFrom` ≥ `signed`, so both move;
//! - `validUntil` is the earliest of `signed + lifetime`, the document signer certificate's end
//!   and the document's own expiry (an mDL's `expiry_date`, taken at 00:00 UTC of that day);
//! - `expectedUpdate`, when a refresh interval is set, is `signed + interval`, never past
//!   `validUntil`.

use chrono::{DateTime, Duration, Utc};

/// The policy of one doc type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Longest MSO lifetime.
    pub lifetime: Duration,
    /// When set, the interval after which the issuer expects the device to fetch new MSOs.
    pub refresh: Option<Duration>,
    /// Clock tolerance.
    pub skew: Duration,
}

/// The validity an MSO gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsoValidity {
    /// `signed`.
    pub signed: DateTime<Utc>,
    /// `validFrom`.
    pub valid_from: DateTime<Utc>,
    /// `validUntil`.
    pub valid_until: DateTime<Utc>,
    /// `expectedUpdate`.
    pub expected_update: Option<DateTime<Utc>>,
}

/// Why no MSO can be issued now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoValidity {
    /// The document itself has expired: nothing to certify (a final state for this version).
    #[error("the document expired on {0}")]
    DocumentExpired(DateTime<Utc>),
    /// The document signer certificate is not valid now: the issuer must rotate it (passing).
    #[error("the document signer certificate is not valid now (valid {0} to {1})")]
    SignerNotValid(DateTime<Utc>, DateTime<Utc>),
}

/// The validity of an MSO signed at `now` under `policy` by a DS valid from `ds_from` to
/// `ds_until`, for a document that expires at `document_expiry`.
pub fn decide(
    now: DateTime<Utc>,
    policy: &Policy,
    ds_from: DateTime<Utc>,
    ds_until: DateTime<Utc>,
    document_expiry: Option<DateTime<Utc>>,
) -> Result<MsoValidity, NoValidity> {
    if let Some(expiry) = document_expiry.filter(|expiry| *expiry <= now) {
        return Err(NoValidity::DocumentExpired(expiry));
    }
    // Backdated, but never before the DS certificate starts.
    let signed = (now - policy.skew).max(ds_from);
    if signed > now || now >= ds_until {
        return Err(NoValidity::SignerNotValid(ds_from, ds_until));
    }
    let mut valid_until = (signed + policy.lifetime).min(ds_until);
    if let Some(expiry) = document_expiry {
        valid_until = valid_until.min(expiry);
    }
    let expected_update = policy
        .refresh
        .map(|interval| signed + interval)
        .filter(|at| *at < valid_until);
    Ok(MsoValidity {
        signed,
        valid_from: signed,
        valid_until,
        expected_update,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().into()
    }

    fn policy() -> Policy {
        Policy {
            lifetime: Duration::days(30),
            refresh: Some(Duration::days(7)),
            skew: Duration::minutes(5),
        }
    }

    const DS_FROM: &str = "2026-01-01T00:00:00Z";
    const DS_UNTIL: &str = "2027-04-01T00:00:00Z";

    #[test]
    fn backdated_by_the_skew_and_bounded_by_the_lifetime() {
        let now = at("2026-11-30T12:00:00Z");
        let v = decide(now, &policy(), at(DS_FROM), at(DS_UNTIL), None).unwrap();
        assert_eq!(v.signed, at("2026-11-30T11:55:00Z"));
        assert_eq!(v.valid_from, v.signed);
        assert_eq!(v.valid_until, at("2026-12-30T11:55:00Z"));
        assert_eq!(v.expected_update, Some(at("2026-12-07T11:55:00Z")));
    }

    #[test]
    fn never_past_the_document_or_the_signer() {
        let now = at("2026-11-30T12:00:00Z");
        let expiry = at("2026-12-10T00:00:00Z");
        let v = decide(now, &policy(), at(DS_FROM), at(DS_UNTIL), Some(expiry)).unwrap();
        assert_eq!(v.valid_until, expiry);
        let v = decide(
            now,
            &policy(),
            at(DS_FROM),
            at("2026-12-01T00:00:00Z"),
            None,
        )
        .unwrap();
        assert_eq!(v.valid_until, at("2026-12-01T00:00:00Z"));
        // expectedUpdate after validUntil is left out.
        assert_eq!(v.expected_update, None);
    }

    #[test]
    fn a_fresh_signer_is_not_backdated_past_its_start() {
        let now = at("2026-01-01T00:02:00Z");
        let v = decide(now, &policy(), at(DS_FROM), at(DS_UNTIL), None).unwrap();
        assert_eq!(v.signed, at(DS_FROM));
    }

    #[test]
    fn expired_documents_and_signers_are_refused() {
        let now = at("2026-11-30T12:00:00Z");
        assert_eq!(
            decide(
                now,
                &policy(),
                at(DS_FROM),
                at(DS_UNTIL),
                Some(at("2026-11-30T00:00:00Z"))
            ),
            Err(NoValidity::DocumentExpired(at("2026-11-30T00:00:00Z")))
        );
        assert_eq!(
            decide(
                now,
                &policy(),
                at(DS_FROM),
                at("2026-11-30T12:00:00Z"),
                None
            ),
            Err(NoValidity::SignerNotValid(
                at(DS_FROM),
                at("2026-11-30T12:00:00Z")
            ))
        );
        assert!(matches!(
            decide(
                now,
                &policy(),
                at("2026-12-01T00:00:00Z"),
                at(DS_UNTIL),
                None
            ),
            Err(NoValidity::SignerNotValid(..))
        ));
    }
}
