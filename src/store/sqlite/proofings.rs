//! Proofings and their review (SQLite; writes take the lock up front with BEGIN IMMEDIATE).

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{insert_audit, parse_json, parse_uuid, SqliteStore, NOW};
use crate::domain::proofing::{ProofingRecord, ProofingStatus, Review};
use crate::store::{
    parse_proofing_status, proofing_job, NewAuditEntry, ProofingInsert, Provenance, ReviewError,
    StoreError, NOTIFY_PROOFING_STATUS,
};

const COLUMNS: &str = "proofing_id, device_reference_id, credential_id, status, status_detail, evidence, created_at, updated_at";

#[derive(FromRow)]
struct Row {
    proofing_id: String,
    device_reference_id: String,
    credential_id: Option<String>,
    status: String,
    status_detail: Option<String>,
    evidence: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for ProofingRecord {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(ProofingRecord {
            proofing_id: r.proofing_id,
            device_reference_id: r.device_reference_id,
            credential_id: r.credential_id.as_deref().map(parse_uuid).transpose()?,
            status: parse_proofing_status(&r.status)?,
            status_detail: r.status_detail.as_deref().map(parse_json).transpose()?,
            evidence: parse_json(&r.evidence)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

impl SqliteStore {
    pub(super) async fn record_proofing_impl(
        &self,
        proofing_id: &str,
        device_reference_id: &str,
        evidence: &serde_json::Value,
    ) -> Result<ProofingInsert, StoreError> {
        let inserted: Option<Row> = sqlx::query_as(&format!(
            "insert into proofings (proofing_id, device_reference_id, status, evidence) values (?, ?, 'pending', ?)
             on conflict (proofing_id) do nothing returning {COLUMNS}"
        ))
        .bind(proofing_id)
        .bind(device_reference_id)
        .bind(evidence.to_string())
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = inserted {
            return Ok(ProofingInsert::Created(row.try_into()?));
        }
        let existing = self
            .get_proofing_impl(proofing_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("proofing vanished".into()))?;
        Ok(if existing.device_reference_id == device_reference_id {
            ProofingInsert::Existing(existing)
        } else {
            ProofingInsert::OtherDevice
        })
    }

    pub(super) async fn get_proofing_impl(
        &self,
        proofing_id: &str,
    ) -> Result<Option<ProofingRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "select {COLUMNS} from proofings where proofing_id = ?"
        ))
        .bind(proofing_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(ProofingRecord::try_from).transpose()
    }

    pub(super) async fn list_proofings_impl(
        &self,
        status: Option<ProofingStatus>,
        limit: u32,
    ) -> Result<Vec<ProofingRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "select {COLUMNS} from proofings where (?1 is null or status = ?1) order by created_at, proofing_id limit ?2"
        ))
        .bind(status.map(ProofingStatus::as_str))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(ProofingRecord::try_from).collect()
    }

    pub(super) async fn review_proofing_impl(
        &self,
        proofing_id: &str,
        review: &Review,
        credential_id: Option<Uuid>,
        by: Provenance<'_>,
    ) -> Result<ProofingRecord, ReviewError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let row: Option<(String, String)> = sqlx::query_as(
            "select status, device_reference_id from proofings where proofing_id = ?",
        )
        .bind(proofing_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (status, device_reference_id) = row.ok_or(ReviewError::NotFound)?;
        let next = review.apply(parse_proofing_status(&status)?)?;
        let row: Row = sqlx::query_as(&format!(
            "update proofings set status = ?2, status_detail = ?3, credential_id = coalesce(?4, credential_id), updated_at = {NOW}
             where proofing_id = ?1 returning {COLUMNS}"
        ))
        .bind(proofing_id)
        .bind(next.as_str())
        .bind(review.detail().to_string())
        .bind(credential_id.map(|id| id.to_string()))
        .fetch_one(&mut *tx)
        .await?;
        enqueue_proofing_job(&mut tx, &device_reference_id, proofing_id).await?;
        let action = format!("proofing.{}", next.as_str());
        let entry = NewAuditEntry {
            actor: by.actor,
            action: &action,
            target_kind: "proofing",
            target_id: proofing_id.to_owned(),
            request_id: by.request_id,
        };
        insert_audit(&mut tx, &entry).await?;
        let record: ProofingRecord = row.try_into()?;
        // An accepted reverification answers the request for it.
        if let (ProofingStatus::Accepted, Some(credential_id), true) = (
            next,
            record.credential_id,
            crate::store::is_reverification(&record.evidence),
        ) {
            let answered = sqlx::query(&format!(
                "update credentials set reverification_requested_at = null, updated_at = {NOW}
                 where credential_id = ? and reverification_requested_at is not null"
            ))
            .bind(credential_id.to_string())
            .execute(&mut *tx)
            .await?;
            // Google learns that nothing is asked of the user any more.
            if answered.rows_affected() == 1 {
                super::outbox::enqueue_notification(&mut tx, credential_id).await?;
            }
        }
        tx.commit().await?;
        Ok(record)
    }
    pub(super) async fn expire_challenges_impl(
        &self,
        challenged_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let expired: Vec<(String, String)> = sqlx::query_as(&format!(
            "update proofings set status = 'expired', status_detail = '{{}}', updated_at = {NOW}
             where proofing_id in (
                 select proofing_id from proofings where status = 'challenged' and updated_at < ?1
                 order by updated_at limit ?2)
             returning proofing_id, device_reference_id"
        ))
        .bind(super::stamp(challenged_before))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        for (proofing_id, device_reference_id) in &expired {
            enqueue_proofing_job(&mut tx, device_reference_id, proofing_id).await?;
            let entry = NewAuditEntry {
                actor: &crate::store::Actor::System,
                action: "proofing.expired",
                target_kind: "proofing",
                target_id: proofing_id.clone(),
                request_id: None,
            };
            insert_audit(&mut tx, &entry).await?;
        }
        tx.commit().await?;
        Ok(expired.into_iter().map(|(id, _)| id).collect())
    }
}

/// Queues notifyProofingStatusUpdateAvailable for one proofing, in the caller's transaction.
async fn enqueue_proofing_job(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    device_reference_id: &str,
    proofing_id: &str,
) -> Result<(), StoreError> {
    let (payload, key) = proofing_job(device_reference_id, proofing_id);
    sqlx::query("insert into outbox (outbox_id, kind, payload, coalesce_key, state) values (?, ?, ?, ?, 'pending')")
        .bind(Uuid::now_v7().to_string())
        .bind(NOTIFY_PROOFING_STATUS)
        .bind(payload.to_string())
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
