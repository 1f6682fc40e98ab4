//! Device copies of credentials and the MSOs issued for them (Postgres).

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{insert_audit, PgStore};
use crate::domain::proofing::ProofingStatus;
use crate::store::{
    parse_status, pre_authorized_audit, CopyChange, CopyWithRecord, MsoIssuance, NewMsoIssuance,
    Provenance, StoreError, WalletCopy,
};

const COPY_COLUMNS: &str = "wallet_credential_id, credential_id, device_reference_id, status, provisioned_version_id, proven_version_id, pop_sha256, deleted_at, created_at";

#[derive(FromRow)]
struct CopyRow {
    wallet_credential_id: String,
    credential_id: Uuid,
    device_reference_id: String,
    status: String,
    provisioned_version_id: Option<Uuid>,
    proven_version_id: Option<Uuid>,
    pop_sha256: Option<Vec<u8>>,
    deleted_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<CopyRow> for WalletCopy {
    fn from(r: CopyRow) -> Self {
        WalletCopy {
            wallet_credential_id: r.wallet_credential_id,
            credential_id: r.credential_id,
            device_reference_id: r.device_reference_id,
            status: r.status,
            provisioned_version_id: r.provisioned_version_id,
            proven_version_id: r.proven_version_id,
            pop_sha256: r.pop_sha256,
            deleted_at: r.deleted_at,
            created_at: r.created_at,
        }
    }
}

#[derive(FromRow)]
struct CopyStatusRow {
    #[sqlx(flatten)]
    copy: CopyRow,
    record_status: String,
    current_version_id: Uuid,
    reverification_requested_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct MsoRow {
    mso_issuance_id: Uuid,
    credential_version_id: Uuid,
    version_number: i32,
    device_reference_id: String,
    auth_key_sha256: Vec<u8>,
    ds_key_id: String,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl PgStore {
    pub(super) async fn list_wallet_credentials_impl(
        &self,
        credential_id: Uuid,
    ) -> Result<Vec<WalletCopy>, StoreError> {
        let rows: Vec<CopyRow> = sqlx::query_as(&format!(
            "select {COPY_COLUMNS} from wallet_credentials where credential_id = $1 order by created_at, wallet_credential_id"
        ))
        .bind(credential_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(WalletCopy::from).collect())
    }

    pub(super) async fn get_wallet_credential_impl(
        &self,
        wallet_credential_id: &str,
    ) -> Result<Option<WalletCopy>, StoreError> {
        let row: Option<CopyRow> = sqlx::query_as(&format!(
            "select {COPY_COLUMNS} from wallet_credentials where wallet_credential_id = $1"
        ))
        .bind(wallet_credential_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(WalletCopy::from))
    }

    pub(super) async fn get_wallet_credential_status_impl(
        &self,
        wallet_credential_id: &str,
    ) -> Result<Option<CopyWithRecord>, StoreError> {
        let row: Option<CopyStatusRow> = sqlx::query_as(
            "select c.wallet_credential_id, c.credential_id, c.device_reference_id, c.status, c.provisioned_version_id, c.proven_version_id, c.pop_sha256, c.deleted_at, c.created_at, r.status as record_status, r.current_version_id, r.reverification_requested_at
             from wallet_credentials c join credentials r on r.credential_id = c.credential_id
             where c.wallet_credential_id = $1",
        )
        .bind(wallet_credential_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(CopyWithRecord {
            record_status: parse_status(&r.record_status)?,
            current_version_id: r.current_version_id,
            reverification_requested_at: r.reverification_requested_at,
            copy: WalletCopy::from(r.copy),
        }))
    }

    pub(super) async fn change_wallet_credential_impl(
        &self,
        wallet_credential_id: &str,
        change: &CopyChange<'_>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "update wallet_credentials
             set provisioned_version_id = $1, proven_version_id = $2, status = $3,
                 pop_sha256 = coalesce($4, pop_sha256),
                 deleted_at = case when $5 then coalesce(deleted_at, now()) else null end,
                 updated_at = now()
             where wallet_credential_id = $6 and provisioned_version_id is not distinct from $7
               and proven_version_id is not distinct from $8 and (deleted_at is not null) = $9",
        )
        .bind(change.next.provisioned)
        .bind(change.next.proven)
        .bind(change.status)
        .bind(change.pop_sha256)
        .bind(change.next.deleted)
        .bind(wallet_credential_id)
        .bind(change.expected.provisioned)
        .bind(change.expected.proven)
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
        let done = sqlx::query(
            "update devices
             set status = 'registered', identity_public_key = $1, attestation_chain = $2, registered_at = now(),
                 registration_nonce = null, nonce_expires_at = null, updated_at = now()
             where device_reference_id = $3 and registration_nonce = $4 and identity_public_key is null",
        )
        .bind(identity_public_key)
        .bind(attestation_chain)
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
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "insert into pre_authorized_codes (code_sha256, credential_id, expires_at) values ($1, $2, $3)",
        )
        .bind(code_sha256.as_slice())
        .bind(credential_id)
        .bind(expires_at)
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
        let row: Option<(Uuid,)> = sqlx::query_as(
            "update pre_authorized_codes set used_by_proofing = $2, updated_at = now()
             where code_sha256 = $1 and expires_at > now()
               and (used_by_proofing is null or used_by_proofing = $2)
             returning credential_id",
        )
        .bind(code_sha256.as_slice())
        .bind(proofing_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(id,)| id))
    }

    pub(super) async fn set_proofing_status_impl(
        &self,
        proofing_id: &str,
        from: ProofingStatus,
        to: ProofingStatus,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "update proofings set status = $1, status_detail = null, updated_at = now()
             where proofing_id = $2 and status = $3",
        )
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
        // One statement for the whole batch: a request certifies up to wallet.max_auth_keys keys.
        let mut insert = sqlx::QueryBuilder::new(
            "insert into mso_issuances (mso_issuance_id, credential_version_id, device_reference_id, auth_key_sha256, ds_key_id, valid_from, valid_until) ",
        );
        insert.push_values(msos, |mut row, mso| {
            row.push_bind(Uuid::now_v7())
                .push_bind(mso.credential_version_id)
                .push_bind(mso.device_reference_id)
                .push_bind(mso.auth_key_sha256.as_slice())
                .push_bind(mso.ds_key_id)
                .push_bind(mso.valid_from)
                .push_bind(mso.valid_until);
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
             where v.credential_id = $1 order by m.mso_issuance_id desc limit $2",
        )
        .bind(credential_id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| MsoIssuance {
                mso_issuance_id: r.mso_issuance_id,
                credential_version_id: r.credential_version_id,
                version_number: r.version_number,
                device_reference_id: r.device_reference_id,
                auth_key_sha256: r.auth_key_sha256,
                ds_key_id: r.ds_key_id,
                valid_from: r.valid_from,
                valid_until: r.valid_until,
                created_at: r.created_at,
            })
            .collect())
    }
}
