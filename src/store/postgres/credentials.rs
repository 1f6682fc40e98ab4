//! Credential records, their versions and the outbox rows their changes enqueue (Postgres).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use super::outbox::enqueue_notification;
use super::{insert_audit, PgStore};
use crate::domain::credential::{Change, CredentialRecord, CredentialStatus, CredentialVersion};
use crate::store::{
    parse_status, ChangeError, CredentialFilter, NewAuditEntry, Provenance, StoreError,
};

const RECORD_COLUMNS: &str = "credential_id, doc_type, status, status_reason, current_version_id, \
     current_version_number, holder_data, reverification_requested_at, created_at, updated_at";

#[derive(FromRow)]
struct RecordRow {
    credential_id: Uuid,
    doc_type: String,
    status: String,
    status_reason: Option<String>,
    current_version_id: Option<Uuid>,
    current_version_number: i32,
    holder_data: Json<serde_json::Value>,
    reverification_requested_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RecordRow> for CredentialRecord {
    type Error = StoreError;
    fn try_from(row: RecordRow) -> Result<Self, StoreError> {
        Ok(CredentialRecord {
            credential_id: row.credential_id,
            doc_type: row.doc_type,
            status: parse_status(&row.status)?,
            status_reason: row.status_reason,
            current_version_id: row
                .current_version_id
                .ok_or_else(|| StoreError::Corrupt("credential without a version".into()))?,
            current_version_number: row.current_version_number,
            holder_data: row.holder_data.0,
            reverification_requested_at: row.reverification_requested_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(FromRow)]
struct VersionRow {
    credential_version_id: Uuid,
    credential_id: Uuid,
    version_number: i32,
    holder_data: Json<serde_json::Value>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
}

fn audit<'a>(by: Provenance<'a>, action: &'a str, credential_id: Uuid) -> NewAuditEntry<'a> {
    NewAuditEntry {
        actor: by.actor,
        action,
        target_kind: "credential",
        target_id: credential_id.to_string(),
        request_id: by.request_id,
    }
}

/// Locks the record and checks that `change` is allowed (and, when given, the version).
async fn lock_for_change(
    tx: &mut Transaction<'_, Postgres>,
    credential_id: Uuid,
    change: Change,
    expected_version: Option<i32>,
) -> Result<i32, ChangeError> {
    let row: Option<(String, i32)> =
        sqlx::query_as("select status, current_version_number from credentials where credential_id = $1 for update")
            .bind(credential_id)
            .fetch_optional(&mut **tx)
            .await?;
    let (status, current) = row.ok_or(ChangeError::NotFound)?;
    parse_status(&status)?.apply(change)?;
    if expected_version.is_some_and(|expected| expected != current) {
        return Err(ChangeError::VersionMismatch { current });
    }
    Ok(current)
}

async fn fetch_record(
    tx: &mut Transaction<'_, Postgres>,
    credential_id: Uuid,
) -> Result<CredentialRecord, StoreError> {
    let row: RecordRow = sqlx::query_as(&format!(
        "select {RECORD_COLUMNS} from credentials where credential_id = $1"
    ))
    .bind(credential_id)
    .fetch_one(&mut **tx)
    .await?;
    row.try_into()
}

impl PgStore {
    pub(super) async fn create_credential_impl(
        &self,
        doc_type: &str,
        holder_data: &serde_json::Value,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, StoreError> {
        let (credential_id, version_id) = (Uuid::now_v7(), Uuid::now_v7());
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "insert into credentials (credential_id, doc_type, status, current_version_id, current_version_number, holder_data)
             values ($1, $2, 'active', $3, 1, $4)",
        )
        .bind(credential_id)
        .bind(doc_type)
        .bind(version_id)
        .bind(Json(holder_data))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "insert into credential_versions (credential_version_id, credential_id, version_number, holder_data, created_by)
             values ($1, $2, 1, $3, $4)",
        )
        .bind(version_id)
        .bind(credential_id)
        .bind(Json(holder_data))
        .bind(by.actor.token_id())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, &audit(by, "credential.create", credential_id)).await?;
        let record = fetch_record(&mut tx, credential_id).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn get_credential_impl(
        &self,
        credential_id: Uuid,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let row: Option<RecordRow> = sqlx::query_as(&format!(
            "select {RECORD_COLUMNS} from credentials where credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(CredentialRecord::try_from).transpose()
    }

    pub(super) async fn list_credentials_impl(
        &self,
        filter: &CredentialFilter,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "select {RECORD_COLUMNS} from credentials where true"
        ));
        if let Some(status) = filter.status {
            query.push(" and status = ").push_bind(status.as_str());
        }
        if let Some(doc_type) = &filter.doc_type {
            query.push(" and doc_type = ").push_bind(doc_type.clone());
        }
        if let Some(after) = filter.after {
            query.push(" and credential_id > ").push_bind(after);
        }
        query
            .push(" order by credential_id limit ")
            .push_bind(i64::from(filter.limit));
        let rows: Vec<RecordRow> = query.build_query_as().fetch_all(self.pool()).await?;
        rows.into_iter().map(CredentialRecord::try_from).collect()
    }

    pub(super) async fn list_versions_impl(
        &self,
        credential_id: Uuid,
    ) -> Result<Vec<CredentialVersion>, StoreError> {
        let rows: Vec<VersionRow> = sqlx::query_as(
            "select credential_version_id, credential_id, version_number, holder_data, created_by, created_at
             from credential_versions where credential_id = $1 order by version_number",
        )
        .bind(credential_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| CredentialVersion {
                credential_version_id: r.credential_version_id,
                credential_id: r.credential_id,
                version_number: r.version_number,
                holder_data: r.holder_data.0,
                created_by: r.created_by,
                created_at: r.created_at,
            })
            .collect())
    }

    pub(super) async fn update_holder_data_impl(
        &self,
        credential_id: Uuid,
        expected_version: i32,
        holder_data: &serde_json::Value,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, ChangeError> {
        let mut tx = self.pool().begin().await?;
        let current = lock_for_change(
            &mut tx,
            credential_id,
            Change::UpdateHolderData,
            Some(expected_version),
        )
        .await?;
        let version_id = Uuid::now_v7();
        sqlx::query(
            "insert into credential_versions (credential_version_id, credential_id, version_number, holder_data, created_by)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(version_id)
        .bind(credential_id)
        .bind(current + 1)
        .bind(Json(holder_data))
        .bind(by.actor.token_id())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update credentials set current_version_id = $2, current_version_number = $3, holder_data = $4, updated_at = now()
             where credential_id = $1",
        )
        .bind(credential_id)
        .bind(version_id)
        .bind(current + 1)
        .bind(Json(holder_data))
        .execute(&mut *tx)
        .await?;
        enqueue_notification(&mut tx, credential_id).await?;
        insert_audit(&mut tx, &audit(by, "credential.update", credential_id)).await?;
        let record = fetch_record(&mut tx, credential_id).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn revoke_credential_impl(
        &self,
        credential_id: Uuid,
        reason: &str,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, ChangeError> {
        let mut tx = self.pool().begin().await?;
        lock_for_change(&mut tx, credential_id, Change::Revoke, None).await?;
        sqlx::query("update credentials set status = $2, status_reason = $3, updated_at = now() where credential_id = $1")
            .bind(credential_id)
            .bind(CredentialStatus::Revoked.as_str())
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        enqueue_notification(&mut tx, credential_id).await?;
        insert_audit(&mut tx, &audit(by, "credential.revoke", credential_id)).await?;
        let record = fetch_record(&mut tx, credential_id).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn request_reverification_impl(
        &self,
        credential_id: Uuid,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, ChangeError> {
        let mut tx = self.pool().begin().await?;
        lock_for_change(&mut tx, credential_id, Change::RequestReverification, None).await?;
        sqlx::query("update credentials set reverification_requested_at = now(), updated_at = now() where credential_id = $1")
            .bind(credential_id)
            .execute(&mut *tx)
            .await?;
        enqueue_notification(&mut tx, credential_id).await?;
        insert_audit(
            &mut tx,
            &audit(by, "credential.request_reverification", credential_id),
        )
        .await?;
        let record = fetch_record(&mut tx, credential_id).await?;
        tx.commit().await?;
        Ok(record)
    }
}
