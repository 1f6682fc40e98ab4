//! Persistence. One `Store` trait, two implementations (Postgres for production, SQLite for a
//! single node and development), chosen once from the URL scheme by [`connect`]. Both apply their
//! own embedded migrations (migrations/postgres, migrations/sqlite) when they connect.

pub mod cert_processes;
mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::{Backend, DatabaseUrl};
use crate::domain::admin_token::{Role, TokenHash};
use crate::domain::credential::{
    CredentialRecord, CredentialStatus, CredentialVersion, IllegalChange,
};
use crate::domain::proofing::{IllegalReview, ProofingRecord, ProofingStatus, Review};

pub use cert_processes::{CertProcess, CertProcessStore, CertState, Hold};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A store shared by every request and job of a process.
pub type SharedStore = Arc<dyn Store>;

/// Failures of the store. Callers map `Conflict` to a client error; `Busy` is worth retrying;
/// the rest are faults.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; the string names the constraint.
    #[error("conflict with an existing row ({0})")]
    Conflict(String),
    /// A row held a value this version of Brevet cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database is unreachable, overloaded or the write lost a race (serialization failure,
    /// deadlock, lock timeout, SQLite busy): the same request may well succeed in a moment.
    #[error("database busy or unreachable: {0}")]
    Busy(#[source] sqlx::Error),
    /// The database refused the statement for a reason retrying will not change (a foreign-key
    /// or check violation, a bad query): a bug or a damaged store.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Busy(_))
    }
}

/// Postgres SQLSTATEs of conditions that pass: serialization failure, deadlock, lock not
/// available, query cancelled (statement timeout), and the connection and resource classes.
fn transient_sqlstate(code: &str) -> bool {
    matches!(
        code,
        "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03"
    ) || code.starts_with("08")
        || code.starts_with("53")
}

/// SQLite result codes (primary code in the low byte of an extended one) of a busy or locked
/// database.
fn transient_sqlite_code(code: &str) -> bool {
    code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.constraint().unwrap_or("unique").to_owned())
            }
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if transient_sqlstate(&code) || transient_sqlite_code(&code) {
                    StoreError::Busy(error)
                } else {
                    StoreError::Database(error)
                }
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Busy(error),
            _ => StoreError::Database(error),
        }
    }
}

/// An admin token as stored (never its clear value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// Stable id, referenced by the audit log.
    pub admin_token_id: Uuid,
    /// Unique human label.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// When the token was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was; revoked tokens authenticate nobody.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewAdminToken {
    /// Unique human label.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// Hash of the clear token.
    pub token_hash: TokenHash,
}

/// A Wallet device (one per deviceReferenceId) as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Google's deviceReferenceId.
    pub device_reference_id: String,
    /// `nonceIssued` until registerDevice succeeds, then `registered`.
    pub status: String,
    /// The outstanding registration nonce, if any.
    pub registration_nonce: Option<Vec<u8>>,
    /// When it stops being usable.
    pub nonce_expires_at: Option<DateTime<Utc>>,
    /// DER SubjectPublicKeyInfo of the registered identity key.
    pub identity_public_key: Option<Vec<u8>>,
}

/// A credential as provisioned to one device.
#[derive(Debug, Clone, PartialEq)]
pub struct WalletCopy {
    /// Google's credentialId.
    pub wallet_credential_id: String,
    /// The device.
    pub device_reference_id: String,
    /// Wire status (provisionPending, active, revoked, deleted).
    pub status: String,
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
    pub fn state(&self) -> crate::domain::wallet_credential::Copy {
        crate::domain::wallet_credential::Copy {
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
    pub expected: crate::domain::wallet_credential::Copy,
    /// The state to write.
    pub next: crate::domain::wallet_credential::Copy,
    /// The wire status to record (for listings; the Wallet API derives it afresh).
    pub status: &'a str,
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

/// Outcome of recording a proofing (proofUser is retried by Google with the same proofingId).
#[derive(Debug, Clone, PartialEq)]
pub enum ProofingInsert {
    /// A new proofing.
    Created(ProofingRecord),
    /// The same proofingId and device were seen before; nothing changed.
    Existing(ProofingRecord),
    /// The proofingId exists for another device.
    OtherDevice,
}

/// Why a review was not recorded. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// No such proofing.
    #[error("no such proofing")]
    NotFound,
    /// The status does not allow the decision.
    #[error(transparent)]
    Illegal(#[from] IllegalReview),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ReviewError {
    fn from(error: sqlx::Error) -> Self {
        ReviewError::Store(error.into())
    }
}

/// Kind of the outbox job that tells Google a proofing's status changed.
pub const NOTIFY_PROOFING_STATUS: &str = "notify_proofing_status";

/// Outcome of a token revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRevocation {
    /// Revoked now.
    Revoked,
    /// No unrevoked token with this id.
    NotFound,
    /// It is the last unrevoked admin token.
    LastAdmin,
}

/// Who did something, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Brevet itself (bootstrap, workers).
    System,
    /// A holder of an admin token.
    Token {
        /// The token's id.
        admin_token_id: Uuid,
        /// The token's name at the time.
        name: String,
    },
}

impl Actor {
    fn token_id(&self) -> Option<Uuid> {
        match self {
            Actor::System => None,
            Actor::Token { admin_token_id, .. } => Some(*admin_token_id),
        }
    }

    fn label(&self) -> &str {
        match self {
            Actor::System => "system",
            Actor::Token { name, .. } => name,
        }
    }
}

/// An audit record: who did what to which record. Never holder data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Token of the actor, when a person acted.
    pub admin_token_id: Option<Uuid>,
    /// "system" or the token's name.
    pub actor: String,
    /// What was done, e.g. `admin_token.create`.
    pub action: String,
    /// Kind of record acted on, e.g. `admin_token`.
    pub target_kind: String,
    /// Id of the record acted on.
    pub target_id: String,
    /// The request that did it, when there was one.
    pub request_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What to write to the audit log (the store stamps the time).
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    /// Who.
    pub actor: &'a Actor,
    /// What, e.g. `admin_token.create`.
    pub action: &'a str,
    /// Kind of record.
    pub target_kind: &'a str,
    /// Id of the record.
    pub target_id: String,
    /// The request that did it.
    pub request_id: Option<&'a str>,
}

/// Who asked for a change, for its audit entry.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    /// Who.
    pub actor: &'a Actor,
    /// The request, when there was one.
    pub request_id: Option<&'a str>,
}

/// Which credential records to list.
#[derive(Debug, Clone, Default)]
pub struct CredentialFilter {
    /// Only records in this status.
    pub status: Option<CredentialStatus>,
    /// Only records of this doc type.
    pub doc_type: Option<String>,
    /// Only records created after this one (the cursor).
    pub after: Option<Uuid>,
    /// At most this many.
    pub limit: u32,
}

/// Why a change to a credential record was not made. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No such record.
    #[error("no such credential")]
    NotFound,
    /// Someone else changed the record since the caller read it.
    #[error("the credential is at version {current}, not the version given in If-Match")]
    VersionMismatch {
        /// The record's current version number.
        current: i32,
    },
    /// The record's status does not allow it.
    #[error(transparent)]
    Illegal(#[from] IllegalChange),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ChangeError {
    fn from(error: sqlx::Error) -> Self {
        ChangeError::Store(error.into())
    }
}

/// Kind of the outbox job that tells Google a credential's status may have changed.
pub const NOTIFY_CREDENTIAL_STATUS: &str = "notify_credential_status";

/// A durable job.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxJob {
    /// Id.
    pub outbox_id: Uuid,
    /// What to do, e.g. [`NOTIFY_CREDENTIAL_STATUS`].
    pub kind: String,
    /// Its parameters.
    pub payload: serde_json::Value,
    /// Pending jobs with the same key may be dispatched as one.
    pub coalesce_key: Option<String>,
    /// `pending`, `done` or `dead`.
    pub state: String,
    /// Dispatch attempts so far.
    pub attempts: i32,
    /// Not before.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Enqueued.
    pub created_at: DateTime<Utc>,
}

/// Everything Brevet keeps. Methods that change several rows do so in one transaction.
#[async_trait]
pub trait Store: cert_processes::CertProcessStore + Send + Sync + 'static {
    /// Which implementation this is.
    fn backend(&self) -> Backend;

    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Names of the tables the migrations created (for readiness checks and tests).
    async fn table_names(&self) -> Result<Vec<String>, StoreError>;

    /// Stores `token` as the bootstrap admin token if, and only if, no admin token exists yet.
    /// Returns whether it was stored. Safe when several processes start at once: at most one wins.
    async fn create_bootstrap_token(&self, token: &NewAdminToken) -> Result<bool, StoreError>;

    /// Stores a new token and audits its creation (`admin_token.create`), in one transaction.
    async fn create_admin_token(
        &self,
        token: &NewAdminToken,
        by: Provenance<'_>,
    ) -> Result<AdminToken, StoreError>;

    /// The unrevoked token with this hash, if any; records that it was used.
    async fn authenticate_admin_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AdminToken>, StoreError>;

    /// All tokens, oldest first.
    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError>;

    /// Revokes a token, audited. Refuses (`TokenRevocation::LastAdmin`) to revoke the last
    /// unrevoked admin token, which would lock every administrator out.
    async fn revoke_admin_token(
        &self,
        admin_token_id: Uuid,
        by: Provenance<'_>,
    ) -> Result<TokenRevocation, StoreError>;

    /// The newest audit entries, newest first.
    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    /// Creates a credential record with its first version, audited, in one transaction.
    async fn create_credential(
        &self,
        doc_type: &str,
        holder_data: &serde_json::Value,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, StoreError>;

    /// One record.
    async fn get_credential(
        &self,
        credential_id: Uuid,
    ) -> Result<Option<CredentialRecord>, StoreError>;

    /// Records in creation order, filtered, after the cursor.
    async fn list_credentials(
        &self,
        filter: &CredentialFilter,
    ) -> Result<Vec<CredentialRecord>, StoreError>;

    /// Every version of a record, oldest first (empty when there is no such record).
    async fn list_versions(
        &self,
        credential_id: Uuid,
    ) -> Result<Vec<CredentialVersion>, StoreError>;

    /// Writes a new version if the record is still at `expected_version` and may change; the
    /// version, the record, an outbox job and the audit entry commit together.
    async fn update_holder_data(
        &self,
        credential_id: Uuid,
        expected_version: i32,
        holder_data: &serde_json::Value,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, ChangeError>;

    /// Revokes the record; the status, an outbox job and the audit entry commit together.
    async fn revoke_credential(
        &self,
        credential_id: Uuid,
        reason: &str,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, ChangeError>;

    /// Asks the holder to verify their identity again: stamps the record and notifies every
    /// device copy, audited, in one transaction.
    async fn request_reverification(
        &self,
        credential_id: Uuid,
        by: Provenance<'_>,
    ) -> Result<CredentialRecord, ChangeError>;

    /// Outbox jobs, newest first, optionally in one state.
    async fn list_outbox(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxJob>, StoreError>;

    /// Records that Google's `wallet_credential_id` on `device_reference_id` is a copy of the
    /// record; a second call for the same id changes nothing. (provisionCredential's job.)
    async fn bind_wallet_credential(
        &self,
        wallet_credential_id: &str,
        credential_id: Uuid,
        device_reference_id: &str,
    ) -> Result<(), StoreError>;

    /// Claims the most overdue pending job for `worker` until `lease` has passed, counting the
    /// attempt; pending unclaimed jobs with the same coalescing key are folded into it (marked
    /// done), since one delivery after their commit announces them all.
    async fn claim_outbox_job(
        &self,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Option<OutboxJob>, StoreError>;

    /// Marks a claimed job done. False when `worker` no longer holds it (its lease expired).
    async fn complete_outbox_job(&self, outbox_id: Uuid, worker: &str) -> Result<bool, StoreError>;

    /// Records a failed attempt: the job waits until `retry_at`, or is dead when `retry_at` is
    /// `None`. False when `worker` no longer holds it.
    async fn fail_outbox_job(
        &self,
        outbox_id: Uuid,
        worker: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;

    /// Stores `nonce` as the device's outstanding registration nonce (getDeviceRegistrationNonce),
    /// replacing any earlier one; creates the device row on first contact.
    async fn issue_registration_nonce(
        &self,
        device_reference_id: &str,
        nonce: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Registers the identity key of a device whose outstanding nonce is `nonce`, consuming the
    /// nonce. False when that nonce is no longer outstanding (used or replaced meanwhile).
    async fn register_device(
        &self,
        device_reference_id: &str,
        nonce: &[u8],
        identity_public_key: &[u8],
        attestation_chain: &serde_json::Value,
    ) -> Result<bool, StoreError>;

    /// One device copy.
    async fn get_wallet_credential(
        &self,
        wallet_credential_id: &str,
    ) -> Result<Option<WalletCopy>, StoreError>;

    /// A device copy and its record's status, in one read (getCredentialStatus, the hottest
    /// Wallet method, needs no holder data).
    async fn get_wallet_credential_status(
        &self,
        wallet_credential_id: &str,
    ) -> Result<Option<CopyWithRecord>, StoreError>;

    /// Writes `change` if the copy is still as the caller read it; false otherwise.
    async fn change_wallet_credential(
        &self,
        wallet_credential_id: &str,
        change: &CopyChange<'_>,
    ) -> Result<bool, StoreError>;

    /// Stores a one-time pre-authorized code (its SHA-256) for a record, audited.
    async fn create_pre_authorized_code(
        &self,
        credential_id: Uuid,
        code_sha256: &[u8; 32],
        expires_at: DateTime<Utc>,
        by: Provenance<'_>,
    ) -> Result<(), StoreError>;

    /// Uses up the code for `proofing_id` if it is unused and unexpired, and returns its record;
    /// a code already used by this same proofing returns its record again (Google's retries).
    async fn redeem_pre_authorized_code(
        &self,
        code_sha256: &[u8; 32],
        proofing_id: &str,
    ) -> Result<Option<Uuid>, StoreError>;

    /// Moves a proofing from `from` to `to`; false when it was no longer in `from`.
    async fn set_proofing_status(
        &self,
        proofing_id: &str,
        from: ProofingStatus,
        to: ProofingStatus,
    ) -> Result<bool, StoreError>;

    /// One device.
    async fn get_device(&self, device_reference_id: &str) -> Result<Option<Device>, StoreError>;

    /// The device copies of a record, oldest first.
    async fn list_wallet_credentials(
        &self,
        credential_id: Uuid,
    ) -> Result<Vec<WalletCopy>, StoreError>;

    /// Records the MSOs one provisionMobileSecurityObjects call issued, in one statement.
    async fn record_mso_issuances(&self, msos: &[NewMsoIssuance<'_>]) -> Result<(), StoreError>;

    /// The MSOs issued for any version of a record, newest first.
    async fn list_mso_issuances(
        &self,
        credential_id: Uuid,
        limit: u32,
    ) -> Result<Vec<MsoIssuance>, StoreError>;

    /// Records a proofing (proofUser), idempotent on `proofing_id` for the same device.
    async fn record_proofing(
        &self,
        proofing_id: &str,
        device_reference_id: &str,
        evidence: &serde_json::Value,
    ) -> Result<ProofingInsert, StoreError>;

    /// One proofing.
    async fn get_proofing(&self, proofing_id: &str) -> Result<Option<ProofingRecord>, StoreError>;

    /// Proofings oldest first, optionally in one status.
    async fn list_proofings(
        &self,
        status: Option<ProofingStatus>,
        limit: u32,
    ) -> Result<Vec<ProofingRecord>, StoreError>;

    /// Records a staff decision (approval binds `credential_id`); the status, an outbox job
    /// telling Google and the audit entry commit together.
    async fn review_proofing(
        &self,
        proofing_id: &str,
        review: &Review,
        credential_id: Option<Uuid>,
        by: Provenance<'_>,
    ) -> Result<ProofingRecord, ReviewError>;

    /// Expires up to `limit` proofings challenged before `challenged_before` (the user did not
    /// answer in time), each with a notification to Google and an audit entry, in one
    /// transaction. Returns their ids.
    async fn expire_challenges(
        &self,
        challenged_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// How many outbox jobs are in each state.
    async fn count_outbox_by_state(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// Puts a dead job back in the queue, due now, audited. False when there is no such dead job.
    async fn retry_dead_job(&self, outbox_id: Uuid, by: Provenance<'_>)
        -> Result<bool, StoreError>;
}

/// The outbox job announcing a change to one device copy: the payload of
/// notifyCredentialStatusUpdateAvailable (spec/wallet-api.md §5.2) and its coalescing key.
fn notify_job(
    device_reference_id: &str,
    wallet_credential_id: &str,
) -> (serde_json::Value, String) {
    (
        serde_json::json!({ "deviceReferenceId": device_reference_id, "credentialId": wallet_credential_id }),
        format!("wallet_credential:{wallet_credential_id}"),
    )
}

/// The outbox job announcing a proofing's new status.
fn proofing_job(device_reference_id: &str, proofing_id: &str) -> (serde_json::Value, String) {
    (
        serde_json::json!({ "deviceReferenceId": device_reference_id, "proofingId": proofing_id }),
        format!("proofing:{proofing_id}"),
    )
}

/// The audit entry of a new pre-authorized code (never the code itself).
fn pre_authorized_audit(by: Provenance<'_>, credential_id: Uuid) -> NewAuditEntry<'_> {
    NewAuditEntry {
        actor: by.actor,
        action: "pre_authorized_code.create",
        target_kind: "credential",
        target_id: credential_id.to_string(),
        request_id: by.request_id,
    }
}

/// Whether a proofing's stored evidence says it re-proofs an existing credential
/// (proofUser with `reverificationContext`).
pub fn is_reverification(evidence: &serde_json::Value) -> bool {
    evidence.as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i.get("reverificationContext").is_some())
    })
}

fn parse_proofing_status(raw: &str) -> Result<ProofingStatus, StoreError> {
    raw.parse().map_err(StoreError::Corrupt)
}

fn parse_status(raw: &str) -> Result<CredentialStatus, StoreError> {
    raw.parse().map_err(StoreError::Corrupt)
}

/// Connects to the store the URL names and applies its migrations.
pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<SharedStore, StoreError> {
    Ok(match url.backend() {
        Backend::Sqlite => Arc::new(SqliteStore::connect(url, max_connections).await?),
        Backend::Postgres => Arc::new(PgStore::connect(url, max_connections).await?),
    })
}

fn parse_role(raw: &str) -> Result<Role, StoreError> {
    raw.parse().map_err(StoreError::Corrupt)
}

/// Name of the token [`Store::create_bootstrap_token`] creates.
pub const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_database_conditions_are_told_apart_from_faults() {
        for code in ["40001", "40P01", "55P03", "57014", "08006", "53300", "57P01"] {
            assert!(transient_sqlstate(code), "{code}");
        }
        for code in ["23503", "23514", "42P01", "22P02"] {
            assert!(!transient_sqlstate(code), "{code}");
        }
        // SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes, e.g. BUSY_SNAPSHOT (517).
        for code in ["5", "6", "517", "261", "262"] {
            assert!(transient_sqlite_code(code), "{code}");
        }
        for code in ["19", "787", "2067", "x"] {
            assert!(!transient_sqlite_code(code), "{code}");
        }
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_transient());
    }
}
