//! Staff's review of proofings and the expiry of unanswered challenges. Every status change is
//! announced to Google through the outbox, in the transaction that makes it.

use std::time::Duration;

use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::credential::CredentialStatus;
use crate::domain::proofing::{IllegalReview, ProofingRecord, ProofingStatus, Review};
use crate::protocol::ids::ProofingId;
use crate::store::{audit, credentials, outbox, proofings, Job, Provenance, Store, StoreError};

/// Why a review was not recorded. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// No such proofing.
    #[error("no such proofing")]
    NotFound,
    /// The approval names no record.
    #[error("no such credential")]
    NoSuchCredential,
    /// The approval names a record that is not active.
    #[error("the credential is not active")]
    CredentialNotActive,
    /// The status does not allow the decision.
    #[error(transparent)]
    Illegal(#[from] IllegalReview),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether a proofing's stored evidence says it re-proofs an existing credential
/// (proofUser with `reverificationContext`).
pub fn is_reverification(evidence: &serde_json::Value) -> bool {
    evidence.as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i.get("reverificationContext").is_some())
    })
}

/// Records a decision (approval binds `credential_id`, which must be an active record). An
/// accepted reverification also closes the record's reverification request.
pub async fn review(
    store: &Store,
    clock: &Clock,
    id: &ProofingId,
    review: &Review,
    credential_id: Option<Uuid>,
    by: Provenance<'_>,
) -> Result<ProofingRecord, ReviewError> {
    let now = clock.now();
    let mut tx = store.begin().await?;
    if let Some(credential_id) = credential_id {
        match credentials::lock(&mut tx, credential_id).await? {
            Some((CredentialStatus::Active, _)) => {}
            Some(_) => return Err(ReviewError::CredentialNotActive),
            None => return Err(ReviewError::NoSuchCredential),
        }
    }
    let current = proofings::lock(&mut tx, id)
        .await?
        .ok_or(ReviewError::NotFound)?;
    let next = review.apply(current.status)?;
    let record = proofings::decide(&mut tx, id, next, &review.detail(), credential_id).await?;
    outbox::enqueue(
        &mut tx,
        &Job::proofing_status(&record.device_reference_id, id.as_str()),
        now,
    )
    .await?;
    let action = format!("proofing.{}", next.as_str());
    audit::insert(&mut tx, &by.entry(&action, "proofing", id)).await?;
    if let (ProofingStatus::Accepted, Some(credential_id), true) = (
        next,
        record.credential_id,
        is_reverification(&record.evidence),
    ) {
        // Google learns that nothing is asked of the user any more.
        if credentials::answer_reverification(&mut tx, credential_id).await? {
            super::credentials::notify_copies(&mut tx, credential_id, now).await?;
        }
    }
    tx.commit().await?;
    Ok(record)
}

/// Expires up to `limit` proofings left `challenged` for longer than `after` (the user did not
/// answer in time), each with a notification to Google and an audit entry, in one transaction.
/// Replicas may sweep at once: each proofing is taken by one. Returns their ids.
pub async fn expire_challenges(
    store: &Store,
    clock: &Clock,
    after: Duration,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    let now = clock.now();
    let mut tx = store.begin().await?;
    let expired = proofings::expire_challenged(&mut tx, clock.before(after), limit).await?;
    for (proofing_id, device) in &expired {
        outbox::enqueue(&mut tx, &Job::proofing_status(device, proofing_id), now).await?;
        audit::insert(
            &mut tx,
            &Provenance::SYSTEM.entry("proofing.expired", "proofing", proofing_id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(expired.into_iter().map(|(id, _)| id).collect())
}
