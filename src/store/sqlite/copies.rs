//! Device copies of credentials and the MSOs issued for them (SQLite).

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{insert_audit, parse_uuid, stamp, SqliteStore, NOW};
use crate::domain::proofing::ProofingStatus;
use crate::store::{
    parse_status, pre_authorized_audit, CopyChange, CopyWithRecord, MsoIssuance, NewMsoIssuance,
    Provenance, StoreError, WalletCopy,
};

const COPY_COLUMNS: &str = "wallet_credential_id, credential_id, device_reference_id, status, provisioned_version_id, proven_version_id, pop_sha256, deleted_at, created_at";

#[derive(FromRow)]
struct CopyRow {
    wallet_credential_id: String,
    credential_id: String,
    device_reference_id: String,
    status: String,
    provisioned_version_id: Option<String>,
    proven_version_id: Option<String>,
    pop_sha256: Option<Vec<u8>>,
    deleted_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<CopyRow> for WalletCopy {
    type Error = StoreError;
    fn try_from(r: CopyRow) -> Result<Self, StoreError> {
        let uuid = |raw: Option<String>| raw.as_deref().map(parse_uuid).transpose();
        Ok(WalletCopy {
            credential_id: parse_uuid(&r.credential_id)?,
            provisioned_version_id: uuid(r.provisioned_version_id)?,
            proven_version_id: uuid(r.proven_version_id)?,
            wallet_credential_id: r.wallet_credential_id,
            device_reference_id: r.device_reference_id,
            status: r.status,
            pop_sha256: r.pop_sha256,
            deleted_at: r.deleted_at,
            created_at: r.created_at,
        })
    }
}

#[derive(FromRow)]
struct CopyStatusRow {
    #[sqlx(flatten)]
    copy: CopyRow,
    record_status: String,
    current_version_id: String,
    reverification_requested_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct MsoRow {
    mso_issuance_id: String,
    credential_version_id: String,
    version_number: i32,
    device_reference_id: String,
    auth_key_sha256: Vec<u8>,
    ds_key_id: String,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl SqliteStore {
    pub(super) async fn list_wallet_credentials_impl(
        &self,
        credential_id: Uuid,
    ) -> Result<Vec<WalletCopy>, StoreError> {
        let rows: Vec<CopyRow> = sqlx::query_as(&format!(
            "select {COPY_COLUMNS} from wallet_credentials where credential_id = ? order by created_at, wallet_credential_id"
        ))
        .bind(credential_id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(WalletCopy::try_from).collect()
    }

    pub(super) async fn get_wallet_credential_impl(
        &self,
        wallet_credential_id: &str,
    ) -> Result<Option<WalletCopy>, StoreError> {
        let row: Option<CopyRow> = sqlx::query_as(&format!(
            "select {COPY_COLUMNS} from wallet_credentials where wallet_credential_id = ?"
        ))
        .bind(wallet_credential_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(WalletCopy::try_from).transpose()
    }

    pub(super) async fn get_wallet_credential_status_impl(
        &self,
        wallet_credential_id: &str,
    ) -> Result<Option<CopyWithRecord>, StoreError> {
        let row: Option<CopyStatusRow> = sqlx::query_as(
            "select c.wallet_credential_id, c.credential_id, c.device_reference_id, c.status, c.provisioned_version_id, c.proven_version_id, c.pop_sha256, c.deleted_at, c.created_at, r.status as record_status, r.current_version_id, r.reverification_requested_at
             from wallet_credentials c join credentials r on r.credential_id = c.credential_id
             where c.wallet_credential_id = ?",
        )
        .bind(wallet_credential_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(CopyWithRecord {
            record_status: parse_status(&r.record_status)?,
            current_version_id: parse_uuid(&r.current_version_id)?,
            reverification_requested_at: r.reverification_requested_at,
            copy: WalletCopy::try_from(r.copy)?,
        }))
    }

    pub(super) async fn change_wallet_credential_impl(
        &self,
        wallet_credential_id: &str,
        change: &CopyChange<'_>,
    ) -> Result<bool, StoreError> {
        let text = |id: Option<Uuid>| id.map(|id| id.to_string());
        let done = sqlx::query(&format!(
            "update wallet_credentials
             set provisioned_version_id = ?, proven_version_id = ?, status = ?,
                 pop_sha256 = coalesce(?, pop_sha256),
                 deleted_at = case when ? then coalesce(deleted_at, {NOW}) else null end,
                 updated_at = {NOW}
             where wallet_credential_id = ? and provisioned_version_id is ? and proven_version_id is ?
               and (deleted_at is not null) = ?"
        ))
        .bind(text(change.next.provisioned))
        .bind(text(change.next.proven))
        .bind(change.status)
        .bind(change.pop_sha256)
        .bind(change.next.deleted)
        .bind(wallet_credential_id)
        .bind(text(change.expected.provisioned))
        .bind(text(change.expected.proven))
        .bind(change.expected.deleted)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn register_device_impl(
        &self,
        device_reference_id: &str,
        nonce: &[u8],
        identity_public_key: &[u8],
        attestation_chain: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "update devices
             set status = 'registered', identity_public_key = ?, attestation_chain = ?, registered_at = {NOW},
                 registration_nonce = null, nonce_expires_at = null, updated_at = {NOW}
             where device_reference_id = ? and registration_nonce = ? and identity_public_key is null"
        ))
        .bind(identity_public_key)
        .bind(attestation_chain.to_string())
        .bind(device_reference_id)
        .bind(nonce)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn create_pre_authorized_code_impl(
        &self,
        credential_id: Uuid,
        code_sha256: &[u8; 32],
        expires_at: DateTime<Utc>,
        by: Provenance<'_>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "insert into pre_authorized_codes (code_sha256, credential_id, expires_at) values (?, ?, ?)",
        )
        .bind(code_sha256.as_slice())
        .bind(credential_id.to_string())
        .bind(stamp(expires_at))
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, &pre_authorized_audit(by, credential_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn redeem_pre_authorized_code_impl(
        &self,
        code_sha256: &[u8; 32],
        proofing_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(&format!(
            "update pre_authorized_codes set used_by_proofing = ?2, updated_at = {NOW}
             where code_sha256 = ?1 and expires_at > ?3
               and (used_by_proofing is null or used_by_proofing = ?2)
             returning credential_id"
        ))
        .bind(code_sha256.as_slice())
        .bind(proofing_id)
        .bind(stamp(Utc::now()))
        .fetch_optional(self.pool())
        .await?;
        row.map(|(id,)| parse_uuid(&id)).transpose()
    }

    pub(super) async fn set_proofing_status_impl(
        &self,
        proofing_id: &str,
        from: ProofingStatus,
        to: ProofingStatus,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "update proofings set status = ?, status_detail = null, updated_at = {NOW}
             where proofing_id = ? and status = ?"
        ))
        .bind(to.as_str())
        .bind(proofing_id)
        .bind(from.as_str())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn record_mso_issuances_impl(
        &self,
        msos: &[NewMsoIssuance<'_>],
    ) -> Result<(), StoreError> {
        if msos.is_empty() {
            return Ok(());
        }
        let mut insert = sqlx::QueryBuilder::new(
            "insert into mso_issuances (mso_issuance_id, credential_version_id, device_reference_id, auth_key_sha256, ds_key_id, valid_from, valid_until) ",
        );
        insert.push_values(msos, |mut row, mso| {
            row.push_bind(Uuid::now_v7().to_string())
                .push_bind(mso.credential_version_id.to_string())
                .push_bind(mso.device_reference_id)
                .push_bind(mso.auth_key_sha256.as_slice())
                .push_bind(mso.ds_key_id)
                .push_bind(stamp(mso.valid_from))
                .push_bind(stamp(mso.valid_until));
        });
        insert.build().execute(self.pool()).await?;
        Ok(())
    }

    pub(super) async fn list_mso_issuances_impl(
        &self,
        credential_id: Uuid,
        limit: u32,
    ) -> Result<Vec<MsoIssuance>, StoreError> {
        let rows: Vec<MsoRow> = sqlx::query_as(
            "select m.mso_issuance_id, m.credential_version_id, v.version_number, m.device_reference_id, m.auth_key_sha256,
                    m.ds_key_id, m.valid_from, m.valid_until, m.created_at
             from mso_issuances m join credential_versions v on v.credential_version_id = m.credential_version_id
             where v.credential_id = ? order by m.mso_issuance_id desc limit ?",
        )
        .bind(credential_id.to_string())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(MsoIssuance {
                    mso_issuance_id: parse_uuid(&r.mso_issuance_id)?,
                    credential_version_id: parse_uuid(&r.credential_version_id)?,
                    version_number: r.version_number,
                    device_reference_id: r.device_reference_id,
                    auth_key_sha256: r.auth_key_sha256,
                    ds_key_id: r.ds_key_id,
                    valid_from: r.valid_from,
                    valid_until: r.valid_until,
                    created_at: r.created_at,
                })
            })
            .collect()
    }
}
