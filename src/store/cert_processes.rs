//! What the store keeps of Chrome certificate-provisioning processes. The row is both the
//! process's durable state (so a restarted worker resumes from the last recorded step) and its
//! lease (so replicas never drive one process at once).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

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
    /// Failed tries of the current step (reset when a step succeeds).
    pub attempts: i32,
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

/// Storage of certificate-provisioning processes.
#[async_trait]
pub trait CertProcessStore: Send + Sync {
    /// Records a process named in a Pub/Sub message if it is new; returns the stored row either
    /// way (a duplicate delivery finds the existing one).
    async fn receive_cert_process(
        &self,
        name: &str,
        customer_id: &str,
    ) -> Result<CertProcess, StoreError>;

    /// Takes the lease of one due, unfinished process nobody holds.
    async fn claim_cert_process(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<CertProcess>, StoreError>;

    /// Writes `process`'s mutable fields if `worker` still holds its lease; returns whether it did
    /// (false: the lease expired and another worker may have it).
    async fn save_cert_process(
        &self,
        process: &CertProcess,
        worker: &str,
        hold: Hold,
    ) -> Result<bool, StoreError>;

    /// One process by name.
    async fn get_cert_process(&self, name: &str) -> Result<Option<CertProcess>, StoreError>;

    /// How many processes are in each state (for metrics).
    async fn count_cert_processes_by_state(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// The newest processes first, optionally only those in `state`.
    async fn list_cert_processes(
        &self,
        state: Option<CertState>,
        limit: u32,
    ) -> Result<Vec<CertProcess>, StoreError>;
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
pub(super) const COLUMNS: &str = "cert_process_id, name, customer_id, state, attempts, next_attempt_at, process, sign_data, sign_requested_at, operation_name, signature, certificate_pem, certificate_serial, failure_message, last_error, created_at, updated_at";
