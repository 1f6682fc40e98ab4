//! The embedded SQLite store: one file, one node, no setup. Ids are stored as hyphenated UUID text
//! and times as RFC 3339 UTC text so that the file stays readable with the sqlite3 shell.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};
use uuid::Uuid;

mod cert_processes;
mod copies;
mod credentials;
mod outbox;
mod proofings;

use super::{
    parse_role, Actor, AdminToken, AuditEntry, ChangeError, CredentialFilter, NewAdminToken,
    NewAuditEntry, OutboxJob, Provenance, Store, StoreError, TokenRevocation, BOOTSTRAP_TOKEN_NAME,
};
use crate::config::{Backend, DatabaseUrl};
use crate::domain::admin_token::TokenHash;
use crate::domain::credential::{CredentialRecord, CredentialVersion};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A time in the text format every timestamp column uses (RFC 3339, UTC, milliseconds), so that
/// text comparisons order times correctly.
pub(super) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reads a JSON text column.
pub(super) fn parse_json(raw: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("bad JSON column: {e}")))
}

/// SQL for "now" in the format every timestamp column uses.
pub(super) const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// A pool of connections to one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if the URL says `mode=rwc`) the database and applies pending migrations.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url.expose())?
            // WAL lets readers run beside the single writer. FULL syncs the WAL at every commit,
            // so a committed change (and its outbox row) survives a power loss, not only a crash.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        migrate(&options, &pool).await?;
        Ok(Self { pool })
    }

    /// The underlying pool, for tests and tools.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Applies pending migrations while holding an exclusive lock on `<database>.migrate.lock`.
/// sqlx's SQLite migrator takes no lock of its own, so two processes starting together on a new
/// file (`serve` and `worker`, say) would both try to create the tables.
async fn migrate(options: &SqliteConnectOptions, pool: &SqlitePool) -> Result<(), StoreError> {
    let database = options.get_filename();
    if database.as_os_str().is_empty() || database.to_string_lossy().starts_with(':') {
        // An in-memory database belongs to this process alone.
        MIGRATOR.run(pool).await?;
        return Ok(());
    }
    let mut lock_path = database.as_os_str().to_owned();
    lock_path.push(".migrate.lock");
    let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("migration lock task failed: {e}")))?
    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    let result = MIGRATOR.run(pool).await;
    drop(lock);
    Ok(result?)
}

pub(super) fn parse_uuid(raw: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(raw).map_err(|e| StoreError::Corrupt(format!("bad uuid {raw:?}: {e}")))
}

#[derive(FromRow)]
struct AdminTokenRow {
    admin_token_id: String,
    name: String,
    role: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<AdminTokenRow> for AdminToken {
    type Error = StoreError;
    fn try_from(row: AdminTokenRow) -> Result<Self, StoreError> {
        Ok(AdminToken {
            admin_token_id: parse_uuid(&row.admin_token_id)?,
            name: row.name,
            role: parse_role(&row.role)?,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}

#[derive(FromRow)]
struct AuditRow {
    admin_token_id: Option<String>,
    actor: String,
    action: String,
    target_kind: String,
    target_id: String,
    request_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        Ok(AuditEntry {
            admin_token_id: row.admin_token_id.as_deref().map(parse_uuid).transpose()?,
            actor: row.actor,
            action: row.action,
            target_kind: row.target_kind,
            target_id: row.target_id,
            request_id: row.request_id,
            created_at: row.created_at,
        })
    }
}

const TOKEN_COLUMNS: &str = "admin_token_id, name, role, created_at, revoked_at";

/// Audit ids are UUIDv7, so that ordering by id is ordering by time, even within one millisecond.
pub(super) async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    entry: &NewAuditEntry<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "insert into audit_log (audit_id, admin_token_id, actor, action, target_kind, target_id, request_id)
         values (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(entry.actor.token_id().map(|id| id.to_string()))
    .bind(entry.actor.label())
    .bind(entry.action)
    .bind(entry.target_kind)
    .bind(&entry.target_id)
    .bind(entry.request_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn table_names(&self) -> Result<Vec<String>, StoreError> {
        let names = sqlx::query_scalar(
            "select name from sqlite_master where type = 'table'
             and name not like '\\_sqlx%' escape '\\' and name not like 'sqlite\\_%' escape '\\'
             order by name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(names)
    }

    async fn create_bootstrap_token(&self, token: &NewAdminToken) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = Uuid::new_v4().to_string();
        // One statement: SQLite runs it under the database's single write lock, so two processes
        // starting at once cannot both find the table empty.
        let inserted = sqlx::query(
            "insert into admin_tokens (admin_token_id, name, role, token_hash)
             select ?, ?, ?, ? where not exists (select 1 from admin_tokens)",
        )
        .bind(&id)
        .bind(BOOTSTRAP_TOKEN_NAME)
        .bind(token.role.as_str())
        .bind(token.token_hash.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            let entry = NewAuditEntry {
                actor: &Actor::System,
                action: "admin_token.bootstrap",
                target_kind: "admin_token",
                target_id: id,
                request_id: None,
            };
            insert_audit(&mut tx, &entry).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn create_admin_token(
        &self,
        token: &NewAdminToken,
        by: Provenance<'_>,
    ) -> Result<AdminToken, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row: AdminTokenRow = sqlx::query_as(&format!(
            "insert into admin_tokens (admin_token_id, name, role, token_hash)
             values (?, ?, ?, ?) returning {TOKEN_COLUMNS}"
        ))
        .bind(Uuid::new_v4().to_string())
        .bind(&token.name)
        .bind(token.role.as_str())
        .bind(token.token_hash.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let created = AdminToken::try_from(row)?;
        let entry = NewAuditEntry {
            actor: by.actor,
            action: "admin_token.create",
            target_kind: "admin_token",
            target_id: created.admin_token_id.to_string(),
            request_id: by.request_id,
        };
        insert_audit(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn authenticate_admin_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AdminToken>, StoreError> {
        let row: Option<AdminTokenRow> = sqlx::query_as(&format!(
            "update admin_tokens set last_used_at = {NOW}, updated_at = {NOW}
             where token_hash = ? and revoked_at is null returning {TOKEN_COLUMNS}"
        ))
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(AdminToken::try_from).transpose()
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        let rows: Vec<AdminTokenRow> = sqlx::query_as(&format!(
            "select {TOKEN_COLUMNS} from admin_tokens order by created_at, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AdminToken::try_from).collect()
    }

    async fn revoke_admin_token(
        &self,
        admin_token_id: Uuid,
        by: Provenance<'_>,
    ) -> Result<TokenRevocation, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Serialise revocations so that two cannot each leave the other as the "last" admin.
        let role: Option<String> = sqlx::query_scalar(
            "select role from admin_tokens where admin_token_id = ? and revoked_at is null",
        )
        .bind(admin_token_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(role) = role else {
            return Ok(TokenRevocation::NotFound);
        };
        if role == "admin" {
            let admins: i64 = sqlx::query_scalar(
                "select count(*) from admin_tokens where role = 'admin' and revoked_at is null",
            )
            .fetch_one(&mut *tx)
            .await?;
            if admins <= 1 {
                return Ok(TokenRevocation::LastAdmin);
            }
        }
        sqlx::query(&format!("update admin_tokens set revoked_at = {NOW}, updated_at = {NOW} where admin_token_id = ?")).bind(admin_token_id.to_string()).execute(&mut *tx).await?;
        let entry = NewAuditEntry {
            actor: by.actor,
            action: "admin_token.revoke",
            target_kind: "admin_token",
            target_id: admin_token_id.to_string(),
            request_id: by.request_id,
        };
        insert_audit(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(TokenRevocation::Revoked)
    }

    async fn create_credential(
        &self,
        doc_type: &str,
        holder_data: &serde_json::Value,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, StoreError> {
        self.create_credential_impl(doc_type, holder_data, by).await
    }

    async fn get_credential(
        &self,
        credential_id: Uuid,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        self.get_credential_impl(credential_id).await
    }

    async fn list_credentials(
        &self,
        filter: &CredentialFilter,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        self.list_credentials_impl(filter).await
    }

    async fn list_versions(
        &self,
        credential_id: Uuid,
    ) -> Result<Vec<CredentialVersion>, StoreError> {
        self.list_versions_impl(credential_id).await
    }

    async fn update_holder_data(
        &self,
        credential_id: Uuid,
        expected_version: i32,
        holder_data: &serde_json::Value,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, ChangeError> {
        self.update_holder_data_impl(credential_id, expected_version, holder_data, by)
            .await
    }

    async fn revoke_credential(
        &self,
        credential_id: Uuid,
        reason: &str,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, ChangeError> {
        self.revoke_credential_impl(credential_id, reason, by).await
    }

    async fn request_reverification(
        &self,
        credential_id: Uuid,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, ChangeError> {
        self.request_reverification_impl(credential_id, by).await
    }

    async fn list_outbox(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxJob>, StoreError> {
        self.list_outbox_impl(state, limit).await
    }

    async fn bind_wallet_credential(
        &self,
        wallet_credential_id: &str,
        credential_id: Uuid,
        device_reference_id: &str,
    ) -> Result<(), StoreError> {
        self.bind_wallet_credential_impl(wallet_credential_id, credential_id, device_reference_id)
            .await
    }

    async fn claim_outbox_job(
        &self,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Option<OutboxJob>, StoreError> {
        self.claim_outbox_job_impl(worker, lease).await
    }

    async fn complete_outbox_job(&self, outbox_id: Uuid, worker: &str) -> Result<bool, StoreError> {
        self.complete_outbox_job_impl(outbox_id, worker).await
    }

    async fn fail_outbox_job(
        &self,
        outbox_id: Uuid,
        worker: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        self.fail_outbox_job_impl(outbox_id, worker, error, retry_at)
            .await
    }

    async fn issue_registration_nonce(
        &self,
        device_reference_id: &str,
        nonce: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "insert into devices (device_reference_id, status, registration_nonce, nonce_expires_at)
             values (?, 'nonceIssued', ?, ?)
             on conflict (device_reference_id) do update
             set registration_nonce = excluded.registration_nonce, nonce_expires_at = excluded.nonce_expires_at, updated_at = {NOW}"
        ))
        .bind(device_reference_id)
        .bind(nonce)
        .bind(stamp(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_device(
        &self,
        device_reference_id: &str,
    ) -> Result<Option<crate::store::Device>, StoreError> {
        type Row = (
            String,
            String,
            Option<Vec<u8>>,
            Option<DateTime<Utc>>,
            Option<Vec<u8>>,
        );
        let row: Option<Row> = sqlx::query_as(
            "select device_reference_id, status, registration_nonce, nonce_expires_at, identity_public_key from devices where device_reference_id = ?",
        )
        .bind(device_reference_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(
                device_reference_id,
                status,
                registration_nonce,
                nonce_expires_at,
                identity_public_key,
            )| {
                crate::store::Device {
                    device_reference_id,
                    status,
                    registration_nonce,
                    nonce_expires_at,
                    identity_public_key,
                }
            },
        ))
    }

    async fn register_device(
        &self,
        device_reference_id: &str,
        nonce: &[u8],
        identity_public_key: &[u8],
        attestation_chain: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        self.register_device_impl(
            device_reference_id,
            nonce,
            identity_public_key,
            attestation_chain,
        )
        .await
    }

    async fn get_wallet_credential(
        &self,
        wallet_credential_id: &str,
    ) -> Result<Option<crate::store::WalletCopy>, StoreError> {
        self.get_wallet_credential_impl(wallet_credential_id).await
    }

    async fn get_wallet_credential_status(
        &self,
        wallet_credential_id: &str,
    ) -> Result<Option<crate::store::CopyWithRecord>, StoreError> {
        self.get_wallet_credential_status_impl(wallet_credential_id)
            .await
    }

    async fn change_wallet_credential(
        &self,
        wallet_credential_id: &str,
        change: &crate::store::CopyChange<'_>,
    ) -> Result<bool, StoreError> {
        self.change_wallet_credential_impl(wallet_credential_id, change)
            .await
    }

    async fn create_pre_authorized_code(
        &self,
        credential_id: Uuid,
        code_sha256: &[u8; 32],
        expires_at: DateTime<Utc>,
        by: Provenance<'_>,
    ) -> Result<(), StoreError> {
        self.create_pre_authorized_code_impl(credential_id, code_sha256, expires_at, by)
            .await
    }

    async fn redeem_pre_authorized_code(
        &self,
        code_sha256: &[u8; 32],
        proofing_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        self.redeem_pre_authorized_code_impl(code_sha256, proofing_id)
            .await
    }

    async fn set_proofing_status(
        &self,
        proofing_id: &str,
        from: crate::domain::proofing::ProofingStatus,
        to: crate::domain::proofing::ProofingStatus,
    ) -> Result<bool, StoreError> {
        self.set_proofing_status_impl(proofing_id, from, to).await
    }

    async fn list_wallet_credentials(
        &self,
        credential_id: Uuid,
    ) -> Result<Vec<crate::store::WalletCopy>, StoreError> {
        self.list_wallet_credentials_impl(credential_id).await
    }

    async fn record_mso_issuances(
        &self,
        msos: &[crate::store::NewMsoIssuance<'_>],
    ) -> Result<(), StoreError> {
        self.record_mso_issuances_impl(msos).await
    }

    async fn list_mso_issuances(
        &self,
        credential_id: Uuid,
        limit: u32,
    ) -> Result<Vec<crate::store::MsoIssuance>, StoreError> {
        self.list_mso_issuances_impl(credential_id, limit).await
    }

    async fn record_proofing(
        &self,
        proofing_id: &str,
        device_reference_id: &str,
        evidence: &serde_json::Value,
    ) -> Result<crate::store::ProofingInsert, StoreError> {
        self.record_proofing_impl(proofing_id, device_reference_id, evidence)
            .await
    }

    async fn get_proofing(
        &self,
        proofing_id: &str,
    ) -> Result<Option<crate::domain::proofing::ProofingRecord>, StoreError> {
        self.get_proofing_impl(proofing_id).await
    }

    async fn list_proofings(
        &self,
        status: Option<crate::domain::proofing::ProofingStatus>,
        limit: u32,
    ) -> Result<Vec<crate::domain::proofing::ProofingRecord>, StoreError> {
        self.list_proofings_impl(status, limit).await
    }

    async fn review_proofing(
        &self,
        proofing_id: &str,
        review: &crate::domain::proofing::Review,
        credential_id: Option<Uuid>,
        by: Provenance<'_>,
    ) -> Result<crate::domain::proofing::ProofingRecord, crate::store::ReviewError> {
        self.review_proofing_impl(proofing_id, review, credential_id, by)
            .await
    }

    async fn expire_challenges(
        &self,
        challenged_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.expire_challenges_impl(challenged_before, limit).await
    }

    async fn count_outbox_by_state(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("select state, count(*) from outbox group by state order by state")
                .fetch_all(self.pool())
                .await?,
        )
    }

    async fn retry_dead_job(
        &self,
        outbox_id: Uuid,
        by: Provenance<'_>,
    ) -> Result<bool, StoreError> {
        self.retry_dead_job_impl(outbox_id, by).await
    }

    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "select admin_token_id, actor, action, target_kind, target_id, request_id, created_at
             from audit_log order by audit_id desc limit ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AuditEntry::try_from).collect()
    }
}
