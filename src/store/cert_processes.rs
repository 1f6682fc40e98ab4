//! What the store keeps of Chrome certificate-provisioning processes. The row is both the
//! process's durable state (so a restarted worker resumes from the last recorded step) and its
//! lease (so replicas never drive one process at once), timed by the database's clock like outbox
//! leases; when a process is due again is the application's clock's to say.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::sql::{query, Exec, Row};
use super::StoreError;

/// Where a process stands, from this adapter's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    /// Heard of through Pub/Sub; not yet read.
    Received,
    /// Read and claimed by this adapter; signData not yet sent.
    Claimed,
    /// signData recorded (and sent, or about to be); waiting for the device's signature.
    Signing,
    /// Proof of possession verified; the CA is to issue the certificate.
    Issuing,
    /// Certificate issued and recorded; it is to be uploaded.
    Uploading,
    /// A failure reason is recorded; setFailure is to be sent.
    Failing,
    /// The certificate was uploaded.
    Done,
    /// setFailure was sent.
    Failed,
    /// Not ours (unknown references, another adapter won the claim, or gone).
    Skipped,
}

impl CertState {
    /// The name stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Claimed => "claimed",
            Self::Signing => "signing",
            Self::Issuing => "issuing",
            Self::Uploading => "uploading",
            Self::Failing => "failing",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// Reads a stored name.
    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        Ok(match raw {
            "received" => Self::Received,
            "claimed" => Self::Claimed,
            "signing" => Self::Signing,
            "issuing" => Self::Issuing,
            "uploading" => Self::Uploading,
            "failing" => Self::Failing,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "skipped" => Self::Skipped,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown cert process state {other:?}"
                )))
            }
        })
    }

    /// Whether nothing more will happen to the process (its Pub/Sub message may be acknowledged).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Skipped)
    }
}

/// One process as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CertProcess {
    /// Our id.
    pub cert_process_id: Uuid,
    /// `customers/{customer}/certificateProvisioningProcesses/{id}`.
    pub name: String,
    /// The customer the process belongs to.
    pub customer_id: String,
    /// Where it stands.
    pub state: CertState,
    /// Failed calls in the current run of failures (reset by any progress).
    pub attempts: i32,
    /// When the current run of failures began (`None`: the last call succeeded).
    pub failing_since: Option<DateTime<Utc>>,
    /// Not to be taken up before.
    pub next_attempt_at: DateTime<Utc>,
    /// The process resource as read when it was claimed.
    pub process: Option<serde_json::Value>,
    /// The bytes sent to signData.
    pub sign_data: Option<Vec<u8>>,
    /// When signData was recorded (the start of the signing deadline).
    pub sign_requested_at: Option<DateTime<Utc>>,
    /// The long-running operation signData returned.
    pub operation_name: Option<String>,
    /// The device's verified signature over `sign_data`.
    pub signature: Option<Vec<u8>>,
    /// The issued certificate (one PEM block).
    pub certificate_pem: Option<String>,
    /// Its serial number, hex.
    pub certificate_serial: Option<String>,
    /// The reason given to setFailure.
    pub failure_message: Option<String>,
    /// Why the last attempt did not advance (for operators).
    pub last_error: Option<String>,
    /// First heard of.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// What holding on to a process after saving it means.
#[derive(Debug, Clone, Copy)]
pub enum Hold {
    /// Keep the lease for this long from now (the worker goes on with the next step).
    Keep(Duration),
    /// Release it; any worker may take it up at `next_attempt_at`.
    Release,
}

/// The states, in the order metrics list them.
pub const STATES: [CertState; 9] = [
    CertState::Received,
    CertState::Claimed,
    CertState::Signing,
    CertState::Issuing,
    CertState::Uploading,
    CertState::Failing,
    CertState::Done,
    CertState::Failed,
    CertState::Skipped,
];

/// The columns every query reads, in [`CertProcess`] order.
const COLUMNS: &str = "cert_process_id, name, customer_id, state, attempts, failing_since, next_attempt_at, process, sign_data, sign_requested_at, operation_name, signature, certificate_pem, certificate_serial, failure_message, last_error, created_at, updated_at";

fn read(r: &Row) -> Result<CertProcess, StoreError> {
    Ok(CertProcess {
        cert_process_id: r.uuid("cert_process_id")?,
        name: r.text("name")?,
        customer_id: r.text("customer_id")?,
        state: CertState::parse(&r.text("state")?)?,
        attempts: r.int32("attempts")?,
        failing_since: r.opt_time("failing_since")?,
        next_attempt_at: r.time("next_attempt_at")?,
        process: r.opt_json("process")?,
        sign_data: r.opt_bytes("sign_data")?,
        sign_requested_at: r.opt_time("sign_requested_at")?,
        operation_name: r.opt_text("operation_name")?,
        signature: r.opt_bytes("signature")?,
        certificate_pem: r.opt_text("certificate_pem")?,
        certificate_serial: r.opt_text("certificate_serial")?,
        failure_message: r.opt_text("failure_message")?,
        last_error: r.opt_text("last_error")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// Records a process named in a Pub/Sub message if it is new, due at `now`; returns the stored
/// row either way (a duplicate delivery finds the existing one).
pub async fn receive(
    ex: &mut impl Exec,
    name: &str,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<CertProcess, StoreError> {
    ex.execute(
        query(
            "insert into cert_processes (cert_process_id, name, customer_id, state, next_attempt_at)
             values ($1, $2, $3, 'received', $4) on conflict (name) do nothing",
        )
        .bind(Uuid::now_v7())
        .bind(name)
        .bind(customer_id)
        .bind(now),
    )
    .await?;
    get(ex, name)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("cert process {name} vanished")))
}

/// Takes the lease of one due, unfinished process nobody holds (run it in a transaction).
pub async fn claim(
    tx: &mut impl Exec,
    worker: &str,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Option<CertProcess>, StoreError> {
    let row = tx
        .fetch_optional(
            query(format!(
                "update cert_processes set lease_owner = $1, lease_expires_at = %now+$2%, updated_at = %now%
                 where cert_process_id = (
                     select cert_process_id from cert_processes
                     where state not in ('done', 'failed', 'skipped') and next_attempt_at <= $3
                       and (lease_expires_at is null or lease_expires_at < %now%)
                     order by next_attempt_at, cert_process_id
                     limit 1%for_update%%skip_locked%)
                 returning {COLUMNS}"
            ))
            .bind(worker)
            .bind(lease)
            .bind(now),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// Writes `process`'s mutable fields if `worker` still holds its lease; returns whether it did
/// (false: the lease expired and another worker may have it).
pub async fn save(
    ex: &mut impl Exec,
    p: &CertProcess,
    worker: &str,
    hold: Hold,
) -> Result<bool, StoreError> {
    let (owner, lease) = match hold {
        Hold::Keep(lease) => (Some(worker), Some(lease)),
        Hold::Release => (None, None),
    };
    let saved = ex
        .execute(
            query(
                "update cert_processes set state = $3, next_attempt_at = $4, process = $5, sign_data = $6,
                     sign_requested_at = $7, operation_name = $8, signature = $9, certificate_pem = $10,
                     certificate_serial = $11, failure_message = $12, last_error = $13, attempts = $16,
                     failing_since = $17,
                     lease_owner = $14, lease_expires_at = %now+$15%, updated_at = %now%
                 where cert_process_id = $1 and lease_owner = $2 and lease_expires_at > %now%",
            )
            .bind(p.cert_process_id)
            .bind(worker)
            .bind(p.state.as_str())
            .bind(p.next_attempt_at)
            .bind(p.process.as_ref())
            .bind(p.sign_data.as_deref())
            .bind(p.sign_requested_at)
            .bind(p.operation_name.as_deref())
            .bind(p.signature.as_deref())
            .bind(p.certificate_pem.as_deref())
            .bind(p.certificate_serial.as_deref())
            .bind(p.failure_message.as_deref())
            .bind(p.last_error.as_deref())
            .bind(owner)
            .bind(lease)
            .bind(p.attempts)
            .bind(p.failing_since),
        )
        .await?;
    Ok(saved == 1)
}

/// Extends `worker`'s lease on a process to `lease` from now; returns whether `worker` still held
/// it (false: it expired or another worker took it, and `worker` must not act on the process).
pub async fn renew(
    ex: &mut impl Exec,
    cert_process_id: Uuid,
    worker: &str,
    lease: Duration,
) -> Result<bool, StoreError> {
    let renewed = ex
        .execute(
            query(
                "update cert_processes set lease_expires_at = %now+$3%
                 where cert_process_id = $1 and lease_owner = $2 and lease_expires_at > %now%",
            )
            .bind(cert_process_id)
            .bind(worker)
            .bind(lease),
        )
        .await?;
    Ok(renewed == 1)
}

/// Deletes finished processes (done, failed, skipped) last changed before `before`, at most
/// `limit` of them; returns how many went. Their rows hold device serials and user e-mails.
pub async fn purge_finished(
    ex: &mut impl Exec,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    ex.execute(
        query(
            "delete from cert_processes where cert_process_id in (
                 select cert_process_id from cert_processes
                 where state in ('done', 'failed', 'skipped') and updated_at < $1
                 order by updated_at limit $2)",
        )
        .bind(before)
        .bind(i64::from(limit)),
    )
    .await
}

/// The process whose certificate has serial `serial` (upper-case hex).
pub async fn by_serial(
    ex: &mut impl Exec,
    serial: &str,
) -> Result<Option<CertProcess>, StoreError> {
    let row = ex
        .fetch_optional(
            query(format!(
                "select {COLUMNS} from cert_processes where certificate_serial = $1"
            ))
            .bind(serial),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// One process by name.
pub async fn get(ex: &mut impl Exec, name: &str) -> Result<Option<CertProcess>, StoreError> {
    let row = ex
        .fetch_optional(
            query(format!(
                "select {COLUMNS} from cert_processes where name = $1"
            ))
            .bind(name),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// When the oldest process not yet final was first heard of (for metrics).
pub async fn oldest_unfinished(ex: &mut impl Exec) -> Result<Option<DateTime<Utc>>, StoreError> {
    let row = ex
        .fetch_optional(query(
            "select created_at from cert_processes where state not in ('done', 'failed', 'skipped')
             order by created_at limit 1",
        ))
        .await?;
    row.map(|r| r.time("created_at")).transpose()
}

/// How many processes are in each state (for metrics).
pub async fn count_by_state(ex: &mut impl Exec) -> Result<Vec<(String, i64)>, StoreError> {
    super::count_by_state(ex, "cert_processes").await
}

/// The newest processes first, optionally only those in `state`.
pub async fn list(
    ex: &mut impl Exec,
    state: Option<CertState>,
    limit: u32,
) -> Result<Vec<CertProcess>, StoreError> {
    let rows = ex
        .fetch_all(
            query(format!(
                "select {COLUMNS} from cert_processes where ($1 is null or state = $1)
                 order by cert_process_id desc limit $2"
            ))
            .bind(state.map(CertState::as_str))
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter().map(read).collect()
}
