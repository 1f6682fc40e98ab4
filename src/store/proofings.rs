//! Proofings (proofUser) and their review.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::sql::{query, Exec, Row};
use super::{parse_stored, StoreError};
use crate::domain::proofing::{ProofingRecord, ProofingStatus};
use crate::protocol::ids::{DeviceReferenceId, ProofingId};

/// Outcome of recording a proofing (proofUser is retried by Google with the same proofingId).
#[derive(Debug, Clone, PartialEq)]
pub enum ProofingInsert {
    /// A new proofing.
    Created(ProofingRecord),
    /// The same proofingId and device were seen before; nothing changed.
    Existing(ProofingRecord),
    /// The proofingId exists for another device.
    OtherDevice,
}

const COLUMNS: &str =
    "proofing_id, device_reference_id, credential_id, status, status_detail, evidence, created_at, updated_at";

fn read(r: &Row) -> Result<ProofingRecord, StoreError> {
    Ok(ProofingRecord {
        proofing_id: r.text("proofing_id")?,
        device_reference_id: r.text("device_reference_id")?,
        credential_id: r.opt_uuid("credential_id")?,
        status: parse_stored("proofings.status", &r.text("status")?)?,
        status_detail: r.opt_json("status_detail")?,
        evidence: r.json("evidence")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// Records a pending proofing, idempotent on its id for the same device.
pub async fn insert(
    ex: &mut impl Exec,
    id: &ProofingId,
    device: &DeviceReferenceId,
    evidence: &serde_json::Value,
) -> Result<ProofingInsert, StoreError> {
    let inserted = ex
        .fetch_optional(
            query(format!(
                "insert into proofings (proofing_id, device_reference_id, status, evidence) values ($1, $2, $3, $4)
                 on conflict (proofing_id) do nothing returning {COLUMNS}"
            ))
            .bind(id.as_str())
            .bind(device.as_str())
            .bind(ProofingStatus::Pending.as_str())
            .bind(evidence),
        )
        .await?;
    if let Some(row) = inserted {
        return Ok(ProofingInsert::Created(read(&row)?));
    }
    let existing = get(ex, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("proofing vanished".into()))?;
    Ok(if existing.device_reference_id == device.as_str() {
        ProofingInsert::Existing(existing)
    } else {
        ProofingInsert::OtherDevice
    })
}

/// One proofing.
pub async fn get(
    ex: &mut impl Exec,
    id: &ProofingId,
) -> Result<Option<ProofingRecord>, StoreError> {
    let row = ex
        .fetch_optional(
            query(format!(
                "select {COLUMNS} from proofings where proofing_id = $1"
            ))
            .bind(id.as_str()),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// One proofing, locked until the transaction ends.
pub async fn lock(
    tx: &mut impl Exec,
    id: &ProofingId,
) -> Result<Option<ProofingRecord>, StoreError> {
    let row = tx
        .fetch_optional(
            query(format!(
                "select {COLUMNS} from proofings where proofing_id = $1%for_update%"
            ))
            .bind(id.as_str()),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// Proofings oldest first, optionally in one status.
pub async fn list(
    ex: &mut impl Exec,
    status: Option<ProofingStatus>,
    limit: u32,
) -> Result<Vec<ProofingRecord>, StoreError> {
    let rows = ex
        .fetch_all(
            query(format!(
                "select {COLUMNS} from proofings where ($1 is null or status = $1)
                 order by created_at, proofing_id limit $2"
            ))
            .bind(status.map(ProofingStatus::as_str))
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter().map(read).collect()
}

/// How many proofings are in each status.
pub async fn count_by_status(ex: &mut impl Exec) -> Result<Vec<(String, i64)>, StoreError> {
    super::count_by(ex, "proofings", "status").await
}

/// Writes a decision: the status, its wire detail and (on approval) the record it binds.
pub async fn decide(
    ex: &mut impl Exec,
    id: &ProofingId,
    status: ProofingStatus,
    detail: &serde_json::Value,
    credential_id: Option<Uuid>,
) -> Result<ProofingRecord, StoreError> {
    let row = ex
        .fetch_one(
            query(format!(
                "update proofings set status = $2, status_detail = $3, credential_id = coalesce($4, credential_id), updated_at = %now%
                 where proofing_id = $1 returning {COLUMNS}"
            ))
            .bind(id.as_str())
            .bind(status.as_str())
            .bind(detail)
            .bind(credential_id),
        )
        .await?;
    read(&row)
}

/// Moves a proofing from `from` to `to`; false when it was no longer in `from`.
pub async fn set_status(
    ex: &mut impl Exec,
    id: &ProofingId,
    from: ProofingStatus,
    to: ProofingStatus,
) -> Result<bool, StoreError> {
    let done = ex
        .execute(
            query(
                "update proofings set status = $1, status_detail = null, updated_at = %now%
                 where proofing_id = $2 and status = $3",
            )
            .bind(to.as_str())
            .bind(id.as_str())
            .bind(from.as_str()),
        )
        .await?;
    Ok(done == 1)
}

/// Marks up to `limit` proofings challenged before `before` expired, skipping any another sweep
/// holds; returns their (proofingId, deviceReferenceId).
pub async fn expire_challenged(
    tx: &mut impl Exec,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = tx
        .fetch_all(
            query(
                "update proofings set status = 'expired', status_detail = '{}', updated_at = %now%
                 where proofing_id in (
                     select proofing_id from proofings where status = 'challenged' and updated_at < $1
                     order by updated_at limit $2%for_update%%skip_locked%)
                 returning proofing_id, device_reference_id",
            )
            .bind(before)
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.text("proofing_id")?, r.text("device_reference_id")?)))
        .collect()
}
