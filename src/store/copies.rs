//! Device copies of credentials (Google's credentialIds) and the MSOs issued for them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::sql::{insert_rows, query, Exec, Row};
use super::{parse_stored, StoreError};
use crate::domain::credential::CredentialStatus;
use crate::domain::wallet_credential::{Copy, CopyStatus};
use crate::protocol::ids::{DeviceReferenceId, WalletCredentialId};

/// A credential as provisioned to one device.
#[derive(Debug, Clone, PartialEq)]
pub struct WalletCopy {
    /// Google's credentialId.
    pub wallet_credential_id: String,
    /// The device.
    pub device_reference_id: String,
    /// The wire status last written (for listings; the Wallet API derives it afresh).
    pub status: CopyStatus,
    /// The version the device received last.
    pub provisioned_version_id: Option<Uuid>,
    /// Bound.
    pub created_at: DateTime<Utc>,
    /// The holder record.
    pub credential_id: Uuid,
    /// The version whose ProofOfProvisioning was accepted.
    pub proven_version_id: Option<Uuid>,
    /// SHA-256 of that ProofOfProvisioning.
    pub pop_sha256: Option<Vec<u8>>,
    /// When the wallet deleted it.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl WalletCopy {
    /// The lifecycle state of the copy.
    pub fn state(&self) -> Copy {
        Copy {
            provisioned: self.provisioned_version_id,
            proven: self.proven_version_id,
            deleted: self.deleted_at.is_some(),
        }
    }
}

/// A device copy with the parts of its record that its wire status depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyWithRecord {
    /// The copy.
    pub copy: WalletCopy,
    /// The record's status.
    pub record_status: CredentialStatus,
    /// The record's current version.
    pub current_version_id: Uuid,
    /// When staff asked for reverification, if the request is open.
    pub reverification_requested_at: Option<DateTime<Utc>>,
}

/// A change to a device copy, written only if the copy is still in `expected`.
#[derive(Debug, Clone)]
pub struct CopyChange<'a> {
    /// The state read before deciding.
    pub expected: Copy,
    /// The state to write.
    pub next: Copy,
    /// The wire status to record.
    pub status: CopyStatus,
    /// The ProofOfProvisioning digest to store, when one was accepted.
    pub pop_sha256: Option<&'a [u8]>,
}

/// An MSO to record.
#[derive(Debug, Clone)]
pub struct NewMsoIssuance<'a> {
    /// The version it certifies.
    pub credential_version_id: Uuid,
    /// The device copy's device.
    pub device_reference_id: &'a str,
    /// SHA-256 of the device auth key's COSE_Key bytes.
    pub auth_key_sha256: [u8; 32],
    /// Which DS key signed it.
    pub ds_key_id: &'a str,
    /// Validity start.
    pub valid_from: DateTime<Utc>,
    /// Validity end.
    pub valid_until: DateTime<Utc>,
    /// Its entry in a status list, when it names one.
    pub status: Option<super::status_lists::Entry>,
}

/// An MSO that was issued.
#[derive(Debug, Clone, PartialEq)]
pub struct MsoIssuance {
    /// Id.
    pub mso_issuance_id: Uuid,
    /// Version certified.
    pub credential_version_id: Uuid,
    /// Its number.
    pub version_number: i32,
    /// Device.
    pub device_reference_id: String,
    /// SHA-256 of the auth key.
    pub auth_key_sha256: Vec<u8>,
    /// DS key.
    pub ds_key_id: String,
    /// Validity start.
    pub valid_from: DateTime<Utc>,
    /// Validity end.
    pub valid_until: DateTime<Utc>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "c.wallet_credential_id, c.credential_id, c.device_reference_id, c.status, \
     c.provisioned_version_id, c.proven_version_id, c.pop_sha256, c.deleted_at, c.created_at";

fn read(row: &Row) -> Result<WalletCopy, StoreError> {
    Ok(WalletCopy {
        wallet_credential_id: row.text("wallet_credential_id")?,
        credential_id: row.uuid("credential_id")?,
        device_reference_id: row.text("device_reference_id")?,
        status: parse_stored("wallet_credentials.status", &row.text("status")?)?,
        provisioned_version_id: row.opt_uuid("provisioned_version_id")?,
        proven_version_id: row.opt_uuid("proven_version_id")?,
        pop_sha256: row.opt_bytes("pop_sha256")?,
        deleted_at: row.opt_time("deleted_at")?,
        created_at: row.time("created_at")?,
    })
}

/// Records that Google's `id` on `device` is a copy of the record; a second call for the same
/// id changes nothing.
pub async fn bind(
    ex: &mut impl Exec,
    id: &WalletCredentialId,
    credential_id: Uuid,
    device: &DeviceReferenceId,
) -> Result<(), StoreError> {
    ex.execute(
        query(
            "insert into wallet_credentials (wallet_credential_id, credential_id, device_reference_id, status)
             values ($1, $2, $3, $4) on conflict (wallet_credential_id) do nothing",
        )
        .bind(id.as_str())
        .bind(credential_id)
        .bind(device.as_str())
        .bind(CopyStatus::ProvisionPending.as_str()),
    )
    .await?;
    Ok(())
}

/// One copy.
pub async fn get(
    ex: &mut impl Exec,
    id: &WalletCredentialId,
) -> Result<Option<WalletCopy>, StoreError> {
    let row = ex
        .fetch_optional(
            query(format!(
                "select {COLUMNS} from wallet_credentials c where c.wallet_credential_id = $1"
            ))
            .bind(id.as_str()),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// One copy, locked until the transaction ends.
pub async fn lock(
    tx: &mut impl Exec,
    id: &WalletCredentialId,
) -> Result<Option<WalletCopy>, StoreError> {
    let row = tx
        .fetch_optional(
            query(format!(
                "select {COLUMNS} from wallet_credentials c where c.wallet_credential_id = $1%for_update%"
            ))
            .bind(id.as_str()),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// A copy and its record's status, in one read (getCredentialStatus, the hottest Wallet method,
/// needs no holder data).
pub async fn get_with_record(
    ex: &mut impl Exec,
    id: &WalletCredentialId,
) -> Result<Option<CopyWithRecord>, StoreError> {
    let row = ex
        .fetch_optional(
            query(format!(
                "select {COLUMNS}, r.status as record_status, r.current_version_id, r.reverification_requested_at
                 from wallet_credentials c join credentials r on r.credential_id = c.credential_id
                 where c.wallet_credential_id = $1"
            ))
            .bind(id.as_str()),
        )
        .await?;
    row.map(|r| {
        Ok(CopyWithRecord {
            copy: read(&r)?,
            record_status: parse_stored("credentials.status", &r.text("record_status")?)?,
            current_version_id: r.uuid("current_version_id")?,
            reverification_requested_at: r.opt_time("reverification_requested_at")?,
        })
    })
    .transpose()
}

/// The copies of a record, oldest first.
pub async fn list(ex: &mut impl Exec, credential_id: Uuid) -> Result<Vec<WalletCopy>, StoreError> {
    let rows = ex
        .fetch_all(
            query(format!(
                "select {COLUMNS} from wallet_credentials c where c.credential_id = $1
                 order by c.created_at, c.wallet_credential_id"
            ))
            .bind(credential_id),
        )
        .await?;
    rows.iter().map(read).collect()
}

/// The copies of a record that the wallet still holds: (credentialId, deviceReferenceId), the
/// addressees of a change to the record.
pub async fn live(
    ex: &mut impl Exec,
    credential_id: Uuid,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(live_of(ex, &[credential_id])
        .await?
        .into_iter()
        .map(|(_, copy, device)| (copy, device))
        .collect())
}

/// [`live`] for several records in one query: (record, credentialId, deviceReferenceId), in
/// the records' order, then the copies'.
pub async fn live_of(
    ex: &mut impl Exec,
    credential_ids: &[Uuid],
) -> Result<Vec<(Uuid, String, String)>, StoreError> {
    if credential_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = query(
        "select credential_id, wallet_credential_id, device_reference_id from wallet_credentials
         where status <> $1 and credential_id in ",
    )
    .bind(CopyStatus::Deleted.as_str());
    q.push_list(credential_ids.iter().copied());
    q.push_sql(" order by credential_id, wallet_credential_id");
    let rows = ex.fetch_all(q).await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.uuid("credential_id")?,
                r.text("wallet_credential_id")?,
                r.text("device_reference_id")?,
            ))
        })
        .collect()
}

/// Writes `change` if the copy is still as the caller read it; false otherwise.
pub async fn change(
    ex: &mut impl Exec,
    id: &WalletCredentialId,
    change: &CopyChange<'_>,
) -> Result<bool, StoreError> {
    let done = ex
        .execute(
            query(
                "update wallet_credentials
                 set provisioned_version_id = $1, proven_version_id = $2, status = $3,
                     pop_sha256 = coalesce($4, pop_sha256),
                     deleted_at = case when $5 then coalesce(deleted_at, %now%) else null end,
                     updated_at = %now%
                 where wallet_credential_id = $6 and provisioned_version_id is not distinct from $7
                   and proven_version_id is not distinct from $8 and (deleted_at is not null) = $9",
            )
            .bind(change.next.provisioned)
            .bind(change.next.proven)
            .bind(change.status.as_str())
            .bind(change.pop_sha256)
            .bind(change.next.deleted)
            .bind(id.as_str())
            .bind(change.expected.provisioned)
            .bind(change.expected.proven)
            .bind(change.expected.deleted),
        )
        .await?;
    Ok(done == 1)
}

/// Records the MSOs one provisionMobileSecurityObjects call issued, in one statement.
pub async fn insert_msos(
    ex: &mut impl Exec,
    msos: &[NewMsoIssuance<'_>],
) -> Result<(), StoreError> {
    insert_rows(
        ex,
        "insert into mso_issuances (mso_issuance_id, credential_version_id, device_reference_id, auth_key_sha256, ds_key_id, valid_from, valid_until, status_list_id, status_index) values ",
        msos,
        |q, mso| {
            vec![
                q.push_param(Uuid::now_v7()),
                q.push_param(mso.credential_version_id),
                q.push_param(mso.device_reference_id),
                q.push_param(mso.auth_key_sha256.as_slice()),
                q.push_param(mso.ds_key_id),
                q.push_param(mso.valid_from),
                q.push_param(mso.valid_until),
                q.push_param(mso.status.map(|e| e.list_id)),
                q.push_param(mso.status.map(|e| e.index)),
            ]
        },
    )
    .await
}

/// The MSOs issued for any version of a record, newest first.
pub async fn list_msos(
    ex: &mut impl Exec,
    credential_id: Uuid,
    limit: u32,
) -> Result<Vec<MsoIssuance>, StoreError> {
    let rows = ex
        .fetch_all(
            query(
                "select m.mso_issuance_id, m.credential_version_id, v.version_number, m.device_reference_id, m.auth_key_sha256,
                        m.ds_key_id, m.valid_from, m.valid_until, m.created_at
                 from mso_issuances m join credential_versions v on v.credential_version_id = m.credential_version_id
                 where v.credential_id = $1 order by m.mso_issuance_id desc limit $2",
            )
            .bind(credential_id)
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(MsoIssuance {
                mso_issuance_id: r.uuid("mso_issuance_id")?,
                credential_version_id: r.uuid("credential_version_id")?,
                version_number: r.int32("version_number")?,
                device_reference_id: r.text("device_reference_id")?,
                auth_key_sha256: r.bytes("auth_key_sha256")?,
                ds_key_id: r.text("ds_key_id")?,
                valid_from: r.time("valid_from")?,
                valid_until: r.time("valid_until")?,
                created_at: r.time("created_at")?,
            })
        })
        .collect()
}
