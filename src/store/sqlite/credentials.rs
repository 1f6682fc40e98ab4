//! Credential records, their versions and the outbox rows their changes enqueue (SQLite). Write
//! transactions begin IMMEDIATE: they take SQLite's write lock up front, so a read-then-write can
//! never be overtaken by another writer (the role `select … for update` plays on Postgres).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, QueryBuilder, Sqlite, Transaction};
use uuid::Uuid;

use super::outbox::enqueue_notification;
use super::{insert_audit, parse_json, parse_uuid, SqliteStore, NOW};
use crate::domain::credential::{Change, CredentialRecord, CredentialStatus, CredentialVersion};
use crate::store::{
    parse_status, ChangeError, CredentialFilter, NewAuditEntry, Provenance, StoreError,
};

const RECORD_COLUMNS: &str = "credential_id, doc_type, status, status_reason, current_version_id, \
     current_version_number, holder_data, reverification_requested_at, created_at, updated_at";

#[derive(FromRow)]
struct RecordRow {
    credential_id: String,
    doc_type: String,
    status: String,
    status_reason: Option<String>,
    current_version_id: Option<String>,
    current_version_number: i32,
    holder_data: String,
    reverification_requested_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RecordRow> for CredentialRecord {
    type Error = StoreError;
    fn try_from(row: RecordRow) -> Result<Self, StoreError> {
        let version = row
            .current_version_id
            .ok_or_else(|| StoreError::Corrupt("credential without a version".into()))?;
        Ok(CredentialRecord {
            credential_id: parse_uuid(&row.credential_id)?,
            doc_type: row.doc_type,
            status: parse_status(&row.status)?,
            status_reason: row.status_reason,
            current_version_id: parse_uuid(&version)?,
            current_version_number: row.current_version_number,
            holder_data: parse_json(&row.holder_data)?,
            reverification_requested_at: row.reverification_requested_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(FromRow)]
struct VersionRow {
    credential_version_id: String,
    credential_id: String,
    version_number: i32,
    holder_data: String,
    created_by: Option<String>,
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

/// Checks that `change` is allowed (and, when given, the version); the IMMEDIATE transaction
/// already holds the write lock.
async fn check_change(
    tx: &mut Transaction<'_, Sqlite>,
    credential_id: Uuid,
    change: Change,
    expected_version: Option<i32>,
) -> Result<i32, ChangeError> {
    let row: Option<(String, i32)> = sqlx::query_as(
        "select status, current_version_number from credentials where credential_id = ?",
    )
    .bind(credential_id.to_string())
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
    tx: &mut Transaction<'_, Sqlite>,
    credential_id: Uuid,
) -> Result<CredentialRecord, StoreError> {
    let row: RecordRow = sqlx::query_as(&format!(
        "select {RECORD_COLUMNS} from credentials where credential_id = ?"
    ))
    .bind(credential_id.to_string())
    .fetch_one(&mut **tx)
    .await?;
    row.try_into()
}

impl SqliteStore {
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool().begin_with("BEGIN IMMEDIATE").await
    }

    pub(super) async fn create_credential_impl(
        &self,
        doc_type: &str,
        holder_data: &serde_json::Value,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, StoreError> {
        let (credential_id, version_id) = (Uuid::now_v7(), Uuid::now_v7());
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "insert into credentials (credential_id, doc_type, status, current_version_id, current_version_number, holder_data)
             values (?, ?, 'active', ?, 1, ?)",
        )
        .bind(credential_id.to_string())
        .bind(doc_type)
        .bind(version_id.to_string())
        .bind(holder_data.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "insert into credential_versions (credential_version_id, credential_id, version_number, holder_data, created_by)
             values (?, ?, 1, ?, ?)",
        )
        .bind(version_id.to_string())
        .bind(credential_id.to_string())
        .bind(holder_data.to_string())
        .bind(by.actor.token_id().map(|id| id.to_string()))
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
            "select {RECORD_COLUMNS} from credentials where credential_id = ?"
        ))
        .bind(credential_id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.map(CredentialRecord::try_from).transpose()
    }

    pub(super) async fn list_credentials_impl(
        &self,
        filter: &CredentialFilter,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "select {RECORD_COLUMNS} from credentials where 1 = 1"
        ));
        if let Some(status) = filter.status {
            query.push(" and status = ").push_bind(status.as_str());
        }
        if let Some(doc_type) = &filter.doc_type {
            query.push(" and doc_type = ").push_bind(doc_type.clone());
        }
        if let Some(after) = filter.after {
            // Hyphenated UUIDv7 text sorts like the UUID itself.
            query
                .push(" and credential_id > ")
                .push_bind(after.to_string());
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
             from credential_versions where credential_id = ? order by version_number",
        )
        .bind(credential_id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CredentialVersion {
                    credential_version_id: parse_uuid(&r.credential_version_id)?,
                    credential_id: parse_uuid(&r.credential_id)?,
                    version_number: r.version_number,
                    holder_data: parse_json(&r.holder_data)?,
                    created_by: r.created_by.as_deref().map(parse_uuid).transpose()?,
                    created_at: r.created_at,
                })
            })
            .collect()
    }

    pub(super) async fn update_holder_data_impl(
        &self,
        credential_id: Uuid,
        expected_version: i32,
        holder_data: &serde_json::Value,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, ChangeError> {
        let mut tx = self.begin_write().await?;
        let current = check_change(
            &mut tx,
            credential_id,
            Change::UpdateHolderData,
            Some(expected_version),
        )
        .await?;
        let version_id = Uuid::now_v7();
        sqlx::query(
            "insert into credential_versions (credential_version_id, credential_id, version_number, holder_data, created_by)
             values (?, ?, ?, ?, ?)",
        )
        .bind(version_id.to_string())
        .bind(credential_id.to_string())
        .bind(current + 1)
        .bind(holder_data.to_string())
        .bind(by.actor.token_id().map(|id| id.to_string()))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "update credentials set current_version_id = ?, current_version_number = ?, holder_data = ?, updated_at = {NOW}
             where credential_id = ?"
        ))
        .bind(version_id.to_string())
        .bind(current + 1)
        .bind(holder_data.to_string())
        .bind(credential_id.to_string())
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
        let mut tx = self.begin_write().await?;
        check_change(&mut tx, credential_id, Change::Revoke, None).await?;
        sqlx::query(&format!("update credentials set status = ?, status_reason = ?, updated_at = {NOW} where credential_id = ?"))
            .bind(CredentialStatus::Revoked.as_str())
            .bind(reason)
            .bind(credential_id.to_string())
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
        let mut tx = self.begin_write().await?;
        check_change(&mut tx, credential_id, Change::RequestReverification, None).await?;
        sqlx::query(&format!(
            "update credentials set reverification_requested_at = {NOW}, updated_at = {NOW} where credential_id = ?"
        ))
        .bind(credential_id.to_string())
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
