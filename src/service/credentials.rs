//! Staff's changes to credential records. Each commits the change, one outbox job per device
//! copy the wallet still holds (so Google asks for the new status) and the audit entry together.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::credential::{Change, CredentialRecord, CredentialStatus, IllegalChange};
use crate::mdoc::doctype::{DocTypes, ElementErrors, ElementValues};
use crate::store::credentials::NewVersion;
use crate::store::{
    audit, codes, copies, credentials, outbox, Exec, Job, Provenance, Store, StoreError,
};

/// Why a change to a credential record was not made. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No such record.
    #[error("no such credential")]
    NotFound,
    /// Someone else changed the record since the caller read it.
    #[error("the credential is at version {current}, not the version given in If-Match")]
    VersionMismatch {
        /// The record's current version number.
        current: i32,
    },
    /// The record's status does not allow it.
    #[error(transparent)]
    Illegal(#[from] IllegalChange),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Holder data validated for `doc_type`, including that the credential it makes fits in the
/// Wallet API; every problem is reported, each naming its element.
pub fn check_holder_data(
    doc_types: &DocTypes,
    doc_type: &str,
    holder_data: &serde_json::Value,
) -> Result<ElementValues, ElementErrors> {
    let values = doc_types.validate(doc_type, holder_data)?;
    crate::mdoc::android::check_payload_size(&values)?;
    Ok(values)
}

/// Creates a record with its first version, audited (nobody holds a copy yet: no job). The
/// caller has checked the holder data ([`check_holder_data`]).
pub async fn create(
    store: &Store,
    doc_type: &str,
    holder_data: &serde_json::Value,
    by: Provenance<'_>,
) -> Result<CredentialRecord, StoreError> {
    let first = NewVersion {
        credential_version_id: Uuid::now_v7(),
        credential_id: Uuid::now_v7(),
        version_number: 1,
        holder_data,
        created_by: by.actor.token_id(),
    };
    let mut tx = store.begin().await?;
    credentials::insert(&mut tx, doc_type, &first).await?;
    credentials::insert_version(&mut tx, &first).await?;
    audit::insert(
        &mut tx,
        &by.entry("credential.create", "credential", first.credential_id),
    )
    .await?;
    let record = reread(&mut tx, first.credential_id).await?;
    tx.commit().await?;
    Ok(record)
}

/// What an update did.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A new version was written.
    Changed(CredentialRecord),
    /// The data equals the current version's (in whatever JSON spelling): no version, no
    /// notification.
    Unchanged(CredentialRecord),
}

/// What staff asked an update for.
#[derive(Debug, Clone, Copy)]
pub struct NewHolderData<'a> {
    /// The record.
    pub credential_id: Uuid,
    /// The version number the change was based on (`If-Match`).
    pub expected_version: i32,
    /// The complete new holder data.
    pub holder_data: &'a serde_json::Value,
}

impl Update {
    /// The record after the update, whether or not it wrote a version.
    pub fn into_record(self) -> CredentialRecord {
        match self {
            Update::Changed(record) | Update::Unchanged(record) => record,
        }
    }
}

/// Writes new holder data (checked by the caller, [`check_holder_data`]) as a new version if the
/// record is still at the expected version and may change. Checked in that order: unknown record,
/// stale version, unchanged data (equal element values, whatever the JSON spelling), revoked
/// record.
pub async fn update(
    store: &Store,
    clock: &Clock,
    doc_types: &DocTypes,
    new: NewHolderData<'_>,
    by: Provenance<'_>,
) -> Result<Update, ChangeError> {
    let mut tx = store.begin().await?;
    let update = update_in(&mut tx, clock, doc_types, new, by).await?;
    tx.commit().await?;
    Ok(update)
}

/// [`update`] inside the caller's transaction (a bulk update changes several records in one);
/// the record stays locked until it ends.
pub async fn update_in(
    tx: &mut impl Exec,
    clock: &Clock,
    doc_types: &DocTypes,
    new: NewHolderData<'_>,
    by: Provenance<'_>,
) -> Result<Update, ChangeError> {
    let (credential_id, holder_data) = (new.credential_id, new.holder_data);
    // Locked and read in one statement.
    let record = credentials::lock_all(tx, &[credential_id])
        .await?
        .pop()
        .ok_or(ChangeError::NotFound)?;
    let current = record.current_version_number;
    if current != new.expected_version {
        return Err(ChangeError::VersionMismatch { current });
    }
    let new_values = doc_types.validate(&record.doc_type, holder_data).ok();
    if unchanged(doc_types, &record, new_values.as_ref()) {
        return Ok(Update::Unchanged(record));
    }
    record.status.apply(Change::UpdateHolderData)?;
    let version = NewVersion {
        credential_version_id: Uuid::now_v7(),
        credential_id,
        version_number: current + 1,
        holder_data,
        created_by: by.actor.token_id(),
    };
    write_versions(tx, clock, std::slice::from_ref(&version), by).await?;
    Ok(Update::Changed(reread(tx, credential_id).await?))
}

/// Whether new holder data (its element values, `None` when they do not validate) leaves an
/// active record as it is: equal element values, whatever the JSON spelling. A record in another
/// status is never unchanged, so that the change is refused by its status.
fn unchanged(doc_types: &DocTypes, record: &CredentialRecord, new: Option<&ElementValues>) -> bool {
    record.status == CredentialStatus::Active
        && new.is_some_and(|new| {
            doc_types
                .validate(&record.doc_type, &record.holder_data)
                .is_ok_and(|old| old == *new)
        })
}

/// What a change did to one record of a set ([`update_each_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// A new version was written.
    Changed,
    /// The new data equals the current version's: nothing written.
    Unchanged,
    /// Not changed, for this reason (no such record, invalid data, its status).
    Refused(String),
}

/// Gives each of `ids` the holder data `change` makes of its current holder data, in the
/// caller's transaction, with one statement per step for the whole set rather than per record:
/// lock and read, versions, current versions, live copies, notifications, audit entries. Each
/// record is read under its lock, so a concurrent change is built on, never overwritten; locks
/// are taken in id order, so two calls over overlapping sets cannot deadlock. The outcomes are in
/// id order. Keep sets small: every row is a handful of statement parameters.
pub async fn update_each_in(
    tx: &mut impl Exec,
    clock: &Clock,
    doc_types: &DocTypes,
    ids: &[Uuid],
    change: impl Fn(&serde_json::Value) -> serde_json::Value,
    by: Provenance<'_>,
) -> Result<Vec<(Uuid, RecordOutcome)>, StoreError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut records: std::collections::HashMap<Uuid, CredentialRecord> =
        credentials::lock_all(tx, &ids)
            .await?
            .into_iter()
            .map(|record| (record.credential_id, record))
            .collect();
    let mut outcomes = Vec::with_capacity(ids.len());
    let mut changes = Vec::new();
    for id in ids {
        let Some(record) = records.remove(&id) else {
            outcomes.push((id, RecordOutcome::Refused("no such credential".into())));
            continue;
        };
        let holder = change(&record.holder_data);
        let outcome = match check_holder_data(doc_types, &record.doc_type, &holder) {
            Err(errors) => RecordOutcome::Refused(errors.to_string()),
            Ok(new) if unchanged(doc_types, &record, Some(&new)) => RecordOutcome::Unchanged,
            Ok(_) => match record.status.apply(Change::UpdateHolderData) {
                Err(illegal) => RecordOutcome::Refused(illegal.to_string()),
                Ok(_) => {
                    changes.push((record, holder));
                    RecordOutcome::Changed
                }
            },
        };
        outcomes.push((id, outcome));
    }
    let versions: Vec<NewVersion<'_>> = changes
        .iter()
        .map(|(record, holder)| NewVersion {
            credential_version_id: Uuid::now_v7(),
            credential_id: record.credential_id,
            version_number: record.current_version_number + 1,
            holder_data: holder,
            created_by: by.actor.token_id(),
        })
        .collect();
    write_versions(tx, clock, &versions, by).await?;
    Ok(outcomes)
}

/// Writes new versions and makes them current, tells every live copy of their records and
/// audits each as `credential.update`: five statements, however many versions.
async fn write_versions(
    tx: &mut impl Exec,
    clock: &Clock,
    versions: &[NewVersion<'_>],
    by: Provenance<'_>,
) -> Result<(), StoreError> {
    if versions.is_empty() {
        return Ok(());
    }
    credentials::insert_versions(tx, versions).await?;
    credentials::set_current(tx, versions).await?;
    let ids: Vec<Uuid> = versions.iter().map(|v| v.credential_id).collect();
    notify_copies_of(tx, &ids, clock.now()).await?;
    let entries: Vec<_> = ids
        .iter()
        .map(|id| by.entry("credential.update", "credential", id))
        .collect();
    audit::insert_all(tx, &entries).await
}

/// Revokes the record (final).
pub async fn revoke(
    store: &Store,
    clock: &Clock,
    credential_id: Uuid,
    reason: &str,
    by: Provenance<'_>,
) -> Result<CredentialRecord, ChangeError> {
    let mut tx = store.begin().await?;
    lock_for(&mut tx, credential_id, Change::Revoke).await?;
    credentials::set_status(&mut tx, credential_id, CredentialStatus::Revoked, reason).await?;
    // Its MSOs' entries turn invalid with this commit; their lists' tokens are rebuilt.
    crate::store::status_lists::mark_credential_changed(&mut tx, credential_id).await?;
    notify_copies(&mut tx, credential_id, clock.now()).await?;
    audit::insert(
        &mut tx,
        &by.entry("credential.revoke", "credential", credential_id),
    )
    .await?;
    let record = reread(&mut tx, credential_id).await?;
    tx.commit().await?;
    Ok(record)
}

/// Asks the holder to verify their identity again: stamps the record and tells every copy.
pub async fn request_reverification(
    store: &Store,
    clock: &Clock,
    credential_id: Uuid,
    by: Provenance<'_>,
) -> Result<CredentialRecord, ChangeError> {
    let mut tx = store.begin().await?;
    lock_for(&mut tx, credential_id, Change::RequestReverification).await?;
    credentials::request_reverification(&mut tx, credential_id).await?;
    notify_copies(&mut tx, credential_id, clock.now()).await?;
    audit::insert(
        &mut tx,
        &by.entry(
            "credential.request_reverification",
            "credential",
            credential_id,
        ),
    )
    .await?;
    let record = reread(&mut tx, credential_id).await?;
    tx.commit().await?;
    Ok(record)
}

/// A one-time code for the holder of an active record (only its hash is kept).
#[derive(Debug, Clone)]
pub struct PreAuthorizedCode {
    /// The code to hand to the holder.
    pub code: String,
    /// When it stops being usable.
    pub expires_at: DateTime<Utc>,
}

/// Issues a pre-authorized code for the record, usable for `ttl`, audited (never the code).
pub async fn create_pre_authorized_code(
    store: &Store,
    clock: &Clock,
    credential_id: Uuid,
    ttl: Duration,
    by: Provenance<'_>,
) -> Result<PreAuthorizedCode, ChangeError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let expires_at = clock.after(ttl);
    let mut tx = store.begin().await?;
    // Locked, so that a revocation cannot slip in between the check and the insert.
    let (status, _) = credentials::lock(&mut tx, credential_id)
        .await?
        .ok_or(ChangeError::NotFound)?;
    if status != CredentialStatus::Active {
        return Err(ChangeError::Illegal(IllegalChange {
            status,
            action: "provisioned",
        }));
    }
    codes::insert(
        &mut tx,
        &Sha256::digest(code.as_bytes()).into(),
        credential_id,
        expires_at,
    )
    .await?;
    audit::insert(
        &mut tx,
        &by.entry("pre_authorized_code.create", "credential", credential_id),
    )
    .await?;
    tx.commit().await?;
    Ok(PreAuthorizedCode { code, expires_at })
}

/// Locks the record and checks that `change` is allowed; returns its current version number.
async fn lock_for(
    tx: &mut impl Exec,
    credential_id: Uuid,
    change: Change,
) -> Result<i32, ChangeError> {
    let (status, current) = credentials::lock(tx, credential_id)
        .await?
        .ok_or(ChangeError::NotFound)?;
    status.apply(change)?;
    Ok(current)
}

async fn reread(tx: &mut impl Exec, credential_id: Uuid) -> Result<CredentialRecord, StoreError> {
    credentials::get(tx, credential_id).await?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "credential {credential_id} vanished in its own transaction"
        ))
    })
}

/// Enqueues one notification per device copy of the record that the wallet still holds.
pub(crate) async fn notify_copies(
    tx: &mut impl Exec,
    credential_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    notify_copies_of(tx, &[credential_id], now).await
}

/// [`notify_copies`] for several records: two statements, however many copies.
async fn notify_copies_of(
    tx: &mut impl Exec,
    credential_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let jobs: Vec<Job> = copies::live_of(tx, credential_ids)
        .await?
        .iter()
        .map(|(_, copy, device)| Job::credential_status(device, copy))
        .collect();
    outbox::enqueue_all(tx, &jobs, now).await
}
