//! The outbox on Postgres: jobs enqueued inside the transaction of the change they announce,
//! claimed with `for update skip locked` under a lease so that replicas never share a job.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::types::PgInterval;
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, Transaction};
use uuid::Uuid;

use super::{insert_audit, PgStore};
use crate::store::{
    notify_job, NewAuditEntry, OutboxJob, Provenance, StoreError, NOTIFY_CREDENTIAL_STATUS,
};

const JOB_COLUMNS: &str =
    "outbox_id, kind, payload, coalesce_key, state, attempts, next_attempt_at, last_error, created_at";

#[derive(FromRow)]
struct OutboxRow {
    outbox_id: Uuid,
    kind: String,
    payload: Json<serde_json::Value>,
    coalesce_key: Option<String>,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<OutboxRow> for OutboxJob {
    fn from(r: OutboxRow) -> Self {
        OutboxJob {
            outbox_id: r.outbox_id,
            kind: r.kind,
            payload: r.payload.0,
            coalesce_key: r.coalesce_key,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
        }
    }
}

/// Enqueues one notification per device copy of `credential_id` that is not deleted.
pub(super) async fn enqueue_notification(
    tx: &mut Transaction<'_, Postgres>,
    credential_id: Uuid,
) -> Result<(), StoreError> {
    let copies: Vec<(String, String)> = sqlx::query_as(
        "select wallet_credential_id, device_reference_id from wallet_credentials
         where credential_id = $1 and status <> 'deleted' order by wallet_credential_id",
    )
    .bind(credential_id)
    .fetch_all(&mut **tx)
    .await?;
    for (wallet_credential_id, device_reference_id) in copies {
        let (payload, key) = notify_job(&device_reference_id, &wallet_credential_id);
        sqlx::query("insert into outbox (outbox_id, kind, payload, coalesce_key, state) values ($1, $2, $3, $4, 'pending')")
            .bind(Uuid::now_v7())
            .bind(NOTIFY_CREDENTIAL_STATUS)
            .bind(Json(payload))
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

pub(super) fn interval(lease: Duration) -> PgInterval {
    PgInterval {
        months: 0,
        days: 0,
        microseconds: i64::try_from(lease.as_micros()).unwrap_or(i64::MAX),
    }
}

impl PgStore {
    pub(super) async fn list_outbox_impl(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxJob>, StoreError> {
        let rows: Vec<OutboxRow> = sqlx::query_as(&format!(
            "select {JOB_COLUMNS} from outbox where ($1::text is null or state = $1) order by outbox_id desc limit $2"
        ))
        .bind(state)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(OutboxJob::from).collect())
    }

    pub(super) async fn bind_wallet_credential_impl(
        &self,
        wallet_credential_id: &str,
        credential_id: Uuid,
        device_reference_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "insert into wallet_credentials (wallet_credential_id, credential_id, device_reference_id, status)
             values ($1, $2, $3, 'provisionPending') on conflict (wallet_credential_id) do nothing",
        )
        .bind(wallet_credential_id)
        .bind(credential_id)
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
        let mut tx = self.pool().begin().await?;
        let row: Option<OutboxRow> = sqlx::query_as(&format!(
            "update outbox set lease_owner = $1, lease_expires_at = now() + $2, attempts = attempts + 1, updated_at = now()
             where outbox_id = (
                 select outbox_id from outbox
                 where state = 'pending' and next_attempt_at <= now()
                   and (lease_expires_at is null or lease_expires_at < now())
                 order by next_attempt_at, outbox_id
                 for update skip locked
                 limit 1)
             returning {JOB_COLUMNS}"
        ))
        .bind(worker)
        .bind(interval(lease))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        if let Some(key) = &row.coalesce_key {
            // Only unleased rows that nobody else is claiming right now (skip locked).
            sqlx::query(
                "update outbox set state = 'done', last_error = $3, updated_at = now()
                 where outbox_id in (
                     select outbox_id from outbox
                     where coalesce_key = $1 and state = 'pending' and outbox_id <> $2
                       and (lease_expires_at is null or lease_expires_at < now())
                     for update skip locked)",
            )
            .bind(key)
            .bind(row.outbox_id)
            .bind(format!("coalesced into {}", row.outbox_id))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(row.into()))
    }

    pub(super) async fn complete_outbox_job_impl(
        &self,
        outbox_id: Uuid,
        worker: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "update outbox set state = 'done', lease_owner = null, lease_expires_at = null, last_error = null, updated_at = now()
             where outbox_id = $1 and lease_owner = $2 and state = 'pending'",
        )
        .bind(outbox_id)
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
        let failed = sqlx::query(
            "update outbox set state = $3, next_attempt_at = coalesce($4, next_attempt_at), last_error = $5,
                 lease_owner = null, lease_expires_at = null, updated_at = now()
             where outbox_id = $1 and lease_owner = $2 and state = 'pending'",
        )
        .bind(outbox_id)
        .bind(worker)
        .bind(state)
        .bind(retry_at)
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
        let mut tx = self.pool().begin().await?;
        let revived = sqlx::query(
            "update outbox set state = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
             where outbox_id = $1 and state = 'dead'",
        )
        .bind(outbox_id)
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
