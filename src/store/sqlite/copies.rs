//! Device copies of credentials and the MSOs issued for them (SQLite).

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{parse_uuid, stamp, SqliteStore};
use crate::store::{MsoIssuance, NewMsoIssuance, StoreError, WalletCopy};

#[derive(FromRow)]
struct CopyRow {
    wallet_credential_id: String,
    device_reference_id: String,
    status: String,
    provisioned_version_id: Option<String>,
    created_at: DateTime<Utc>,
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
        let rows: Vec<CopyRow> = sqlx::query_as(
            "select wallet_credential_id, device_reference_id, status, provisioned_version_id, created_at
             from wallet_credentials where credential_id = ? order by created_at, wallet_credential_id",
        )
        .bind(credential_id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(WalletCopy {
                    provisioned_version_id: r
                        .provisioned_version_id
                        .as_deref()
                        .map(parse_uuid)
                        .transpose()?,
                    wallet_credential_id: r.wallet_credential_id,
                    device_reference_id: r.device_reference_id,
                    status: r.status,
                    created_at: r.created_at,
                })
            })
            .collect()
    }

    pub(super) async fn record_mso_issuance_impl(
        &self,
        mso: &NewMsoIssuance<'_>,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        sqlx::query(
            "insert into mso_issuances (mso_issuance_id, credential_version_id, device_reference_id, auth_key_sha256, ds_key_id, valid_from, valid_until)
             values (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(mso.credential_version_id.to_string())
        .bind(mso.device_reference_id)
        .bind(mso.auth_key_sha256.as_slice())
        .bind(mso.ds_key_id)
        .bind(stamp(mso.valid_from))
        .bind(stamp(mso.valid_until))
        .execute(self.pool())
        .await?;
        Ok(id)
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
