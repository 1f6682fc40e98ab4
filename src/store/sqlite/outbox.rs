//! The outbox on SQLite: jobs enqueued inside the transaction of the change they announce,
//! claimed under a lease in an IMMEDIATE transaction (SQLite's single writer makes the claim
//! exclusive, as `skip locked` does on Postgres).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, Sqlite, Transaction};
use uuid::Uuid;

use super::{insert_audit, parse_json, parse_uuid, stamp, SqliteStore, NOW};
use crate::store::{
    notify_job, NewAuditEntry, OutboxJob, Provenance, StoreError, NOTIFY_CREDENTIAL_STATUS,
};

const JOB_COLUMNS: &str =
    "outbox_id, kind, payload, coalesce_key, state, attempts, next_attempt_at, last_error, created_at";

#[derive(FromRow)]
struct OutboxRow {
    outbox_id: String,
    kind: String,
    payload: String,
    coalesce_key: Option<String>,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<OutboxRow> for OutboxJob {
    type Error = StoreError;
    fn try_from(r: OutboxRow) -> Result<Self, StoreError> {
        Ok(OutboxJob {
            outbox_id: parse_uuid(&r.outbox_id)?,
            kind: r.kind,
            payload: parse_json(&r.payload)?,
            coalesce_key: r.coalesce_key,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
        })
    }
}

/// Enqueues one notification per device copy of `credential_id` that is not deleted.
pub(super) async fn enqueue_notification(
    tx: &mut Transaction<'_, Sqlite>,
    credential_id: Uuid,
) -> Result<(), StoreError> {
    let copies: Vec<(String, String)> = sqlx::query_as(
        "select wallet_credential_id, device_reference_id from wallet_credentials
         where credential_id = ? and status <> 'deleted' order by wallet_credential_id",
    )
    .bind(credential_id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    for (wallet_credential_id, device_reference_id) in copies {
        let (payload, key) = notify_job(&device_reference_id, &wallet_credential_id);
        sqlx::query("insert into outbox (outbox_id, kind, payload, coalesce_key, state) values (?, ?, ?, ?, 'pending')")
            .bind(Uuid::now_v7().to_string())
            .bind(NOTIFY_CREDENTIAL_STATUS)
            .bind(payload.to_string())
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl SqliteStore {
    pub(super) async fn list_outbox_impl(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxJob>, StoreError> {
        let rows: Vec<OutboxRow> = sqlx::query_as(&format!(
            "select {JOB_COLUMNS} from outbox where (?1 is null or state = ?1) order by outbox_id desc limit ?2"
        ))
        .bind(state)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(OutboxJob::try_from).collect()
    }

    pub(super) async fn bind_wallet_credential_impl(
        &self,
        wallet_credential_id: &str,
        credential_id: Uuid,
        device_reference_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "insert into wallet_credentials (wallet_credential_id, credential_id, device_reference_id, status)
             values (?, ?, ?, 'provisionPending') on conflict (wallet_credential_id) do nothing",
        )
        .bind(wallet_credential_id)
        .bind(credential_id.to_string())
        .bind(device_reference_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(super) async fn claim_outbox_job_impl(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<OutboxJob>, StoreError> {
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let row: Option<OutboxRow> = sqlx::query_as(&format!(
            "update outbox set lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1, updated_at = {NOW}
             where outbox_id = (
                 select outbox_id from outbox
                 where state = 'pending' and next_attempt_at <= ?3
                   and (lease_expires_at is null or lease_expires_at < ?3)
                 order by next_attempt_at, outbox_id
                 limit 1)
             returning {JOB_COLUMNS}"
        ))
        .bind(worker)
        .bind(stamp(expires))
        .bind(stamp(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        if let Some(key) = &row.coalesce_key {
            sqlx::query(&format!(
                "update outbox set state = 'done', last_error = ?3, updated_at = {NOW}
                 where coalesce_key = ?1 and state = 'pending' and outbox_id <> ?2
                   and (lease_expires_at is null or lease_expires_at < ?4)"
            ))
            .bind(key)
            .bind(&row.outbox_id)
            .bind(format!("coalesced into {}", row.outbox_id))
            .bind(stamp(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(row.try_into()?))
    }

    pub(super) async fn complete_outbox_job_impl(
        &self,
        outbox_id: Uuid,
        worker: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "update outbox set state = 'done', lease_owner = null, lease_expires_at = null, last_error = null, updated_at = {NOW}
             where outbox_id = ? and lease_owner = ? and state = 'pending'"
        ))
        .bind(outbox_id.to_string())
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn fail_outbox_job_impl(
        &self,
        outbox_id: Uuid,
        worker: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let state = if retry_at.is_some() {
            "pending"
        } else {
            "dead"
        };
        let failed = sqlx::query(&format!(
            "update outbox set state = ?3, next_attempt_at = coalesce(?4, next_attempt_at), last_error = ?5,
                 lease_owner = null, lease_expires_at = null, updated_at = {NOW}
             where outbox_id = ?1 and lease_owner = ?2 and state = 'pending'"
        ))
        .bind(outbox_id.to_string())
        .bind(worker)
        .bind(state)
        .bind(retry_at.map(stamp))
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(failed.rows_affected() == 1)
    }

    pub(super) async fn retry_dead_job_impl(
        &self,
        outbox_id: Uuid,
        by: Provenance<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let revived = sqlx::query(&format!(
            "update outbox set state = 'pending', attempts = 0, next_attempt_at = {NOW}, updated_at = {NOW}
             where outbox_id = ? and state = 'dead'"
        ))
        .bind(outbox_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if revived {
            let entry = NewAuditEntry {
                actor: by.actor,
                action: "outbox.retry",
                target_kind: "outbox",
                target_id: outbox_id.to_string(),
                request_id: by.request_id,
            };
            insert_audit(&mut tx, &entry).await?;
        }
        tx.commit().await?;
        Ok(revived)
    }
}
