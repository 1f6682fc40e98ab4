//! The adapter's flow for one process (spec §1, design.md "Chrome certificate"): get → skip if
//! not ours → claim → signData (once) → poll → verify the proof of possession → CA → upload, or
//! setFailure with a reason the user can read. Each step is recorded in the store before the
//! next call, so a restarted worker resumes where the last one stopped: signData is never sent
//! twice and an issued certificate is uploaded rather than issued again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::ca::{CaError, CertificateAuthority, IssueRequest};
use super::chrome::{ApiError, ChromeClient};
use super::pop::DeviceKey;
use super::profile::{Profile, Rendered};
use super::wire::Process;
use crate::clock::Clock;
use crate::outbox::RetryPolicy;
use crate::pki::certs;
use crate::store::{cert_processes, CertProcess, CertState, Hold, SharedStore, StoreError};

/// Timings and limits.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Lease held between two recorded steps.
    pub lease: Duration,
    /// First wait before polling for the signature.
    pub sign_poll_initial: Duration,
    /// Longest wait between polls.
    pub sign_poll_max: Duration,
    /// The device's time to sign.
    pub sign_deadline: Duration,
    /// Transient failures of one step before giving up, and the delays between them.
    pub retry: RetryPolicy,
}

/// What one call of [`Adapter::run_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing was due.
    Idle,
    /// A process was taken up; it now stands at this state.
    Worked(String, CertState),
    /// The lease was lost mid-way (another worker has the process now).
    LostLease(String),
}

/// Drives certificate-provisioning processes.
pub struct Adapter {
    store: SharedStore,
    clock: Clock,
    chrome: ChromeClient,
    instance_id: String,
    worker_id: String,
    profiles: BTreeMap<String, Profile>,
    cas: BTreeMap<String, Arc<dyn CertificateAuthority>>,
    timing: Timing,
}

/// What a step decided.
enum Next {
    /// Go on with the next step now.
    Continue,
    /// Come back at this delay (waiting for the device or after a transient failure).
    Wait(Duration),
    /// Nothing more to do.
    Stop,
}

impl Adapter {
    /// An adapter that claims as `instance_id` and leases as `worker_id`.
    pub fn new(
        store: SharedStore,
        chrome: ChromeClient,
        instance_id: String,
        worker_id: String,
        profiles: BTreeMap<String, Profile>,
        cas: BTreeMap<String, Arc<dyn CertificateAuthority>>,
        timing: Timing,
    ) -> Self {
        Self {
            store,
            clock: Clock::system(),
            chrome,
            instance_id,
            worker_id,
            profiles,
            cas,
            timing,
        }
    }

    /// The same adapter deciding deadlines and retry times by `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Takes up one due process and drives it as far as it can go now.
    pub async fn run_once(&self) -> Result<Step, StoreError> {
        let mut tx = self.store.begin().await?;
        let claimed = cert_processes::claim(
            &mut tx,
            &self.worker_id,
            self.timing.lease,
            self.clock.now(),
        )
        .await?;
        tx.commit().await?;
        let Some(mut process) = claimed else {
            return Ok(Step::Idle);
        };
        loop {
            let next = self.advance(&mut process).await?;
            let hold = match next {
                Next::Continue => Hold::Keep(self.timing.lease),
                Next::Wait(delay) => {
                    process.next_attempt_at = self.clock.after(delay);
                    Hold::Release
                }
                Next::Stop => Hold::Release,
            };
            if !cert_processes::save(&mut self.store.db(), &process, &self.worker_id, hold).await? {
                tracing::warn!(process = %process.name, "lease lost; another worker has the process");
                return Ok(Step::LostLease(process.name));
            }
            if !matches!(next, Next::Continue) {
                return Ok(Step::Worked(process.name, process.state));
            }
        }
    }

    /// Runs until `stop`, looking for due processes every `poll` when idle.
    pub async fn run(&self, poll: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            // A step in flight is finished before stopping: its effects are recorded.
            tokio::select! {
                biased;
                _ = &mut stop => return,
                _ = std::future::ready(()) => {}
            }
            let idle = match self.run_once().await {
                Ok(Step::Idle) => true,
                Ok(_) => false,
                Err(error) => {
                    tracing::error!(error = %error, "certificate provisioning: store unavailable");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        }
    }

    async fn advance(&self, p: &mut CertProcess) -> Result<Next, StoreError> {
        Ok(match p.state {
            CertState::Received => self.read_and_claim(p).await,
            CertState::Claimed => self.request_signature(p).await,
            CertState::Signing => self.await_signature(p).await,
            CertState::Issuing => self.issue(p).await,
            CertState::Uploading => self.upload(p).await,
            CertState::Failing => self.report_failure(p).await,
            CertState::Done | CertState::Failed | CertState::Skipped => Next::Stop,
        })
    }

    fn move_to(p: &mut CertProcess, state: CertState) -> Next {
        tracing::info!(process = %p.name, from = p.state.as_str(), to = state.as_str(), "certificate provisioning step");
        p.state = state;
        p.attempts = 0;
        p.last_error = None;
        if state.is_final() {
            Next::Stop
        } else {
            Next::Continue
        }
    }

    fn skip(p: &mut CertProcess, why: &str) -> Next {
        tracing::info!(process = %p.name, reason = why, "certificate provisioning process skipped");
        let next = Self::move_to(p, CertState::Skipped);
        p.last_error = Some(why.to_owned());
        next
    }

    fn fail(p: &mut CertProcess, reason: String) -> Next {
        tracing::warn!(process = %p.name, reason = %reason, "certificate provisioning process failing");
        p.failure_message = Some(reason);
        Self::move_to(p, CertState::Failing)
    }

    /// A transient failure: retry later with exponential backoff and jitter, or give up after
    /// `max_attempts` by `give_up`.
    fn retry(
        &self,
        p: &mut CertProcess,
        error: String,
        give_up: impl FnOnce(&mut CertProcess) -> Next,
    ) -> Next {
        p.attempts += 1;
        tracing::warn!(process = %p.name, step = p.state.as_str(), attempt = p.attempts, error = %error, "certificate provisioning step failed; will retry");
        p.last_error = Some(error);
        let attempt = u32::try_from(p.attempts).unwrap_or(u32::MAX);
        if attempt >= self.timing.retry.max_attempts {
            return give_up(p);
        }
        Next::Wait(self.timing.retry.delay(attempt))
    }

    fn process_of(p: &CertProcess) -> Option<Process> {
        serde_json::from_value(p.process.clone()?).ok()
    }

    async fn read_and_claim(&self, p: &mut CertProcess) -> Next {
        let process = match self.chrome.get(&p.name).await {
            Ok(process) => process,
            Err(ApiError::NotFound(_)) => return Self::skip(p, "Google does not know the process"),
            Err(ApiError::Transient(e)) => {
                return self.retry(p, e, |p| Self::skip(p, "Google kept failing; gave up"))
            }
            Err(e) => {
                return self.retry(p, e.to_string(), |p| {
                    Self::skip(p, "Google refused to show the process; gave up")
                })
            }
        };
        // The read succeeded: the claim gets its own retries.
        p.attempts = 0;
        if process.failure_message.is_some() || process.issued_certificate.is_some() {
            return Self::skip(p, "the process is already finished");
        }
        let (Some(ca), Some(profile)) = (process.ca_reference(), process.profile_reference())
        else {
            return Self::skip(
                p,
                "not a generic CA connection and profile (SCEP is not served here)",
            );
        };
        if !self.cas.contains_key(ca) || !self.profiles.contains_key(profile) {
            return Self::skip(
                p,
                &format!("CA connection {ca:?} or profile {profile:?} is not configured here"),
            );
        }
        p.process = serde_json::to_value(&process).ok();
        match self.chrome.claim(&p.name, &self.instance_id).await {
            Ok(()) => Self::move_to(p, CertState::Claimed),
            Err(ApiError::Transient(e)) => {
                self.retry(p, e, |p| Self::skip(p, "claim kept failing; gave up"))
            }
            Err(ApiError::Refused {
                http: 401 | 403,
                message,
                ..
            }) => self.retry(p, format!("claim not authorised: {message}"), |p| {
                Self::skip(p, "claim not authorised; gave up")
            }),
            Err(ApiError::NotFound(_)) => Self::skip(p, "the process vanished before the claim"),
            Err(ApiError::Refused {
                status, message, ..
            }) => Self::skip(
                p,
                &format!("another adapter holds the claim ({status}: {message})"),
            ),
        }
    }

    /// The device key, profile and CA of a claimed process, or the reason they are unusable.
    fn parts(
        &self,
        p: &CertProcess,
    ) -> Result<(DeviceKey, Rendered, Arc<dyn CertificateAuthority>), String> {
        let process = Self::process_of(p).ok_or("the stored process cannot be read")?;
        let spki = process
            .subject_public_key_info
            .as_ref()
            .ok_or("the process carries no device key")?;
        let key = DeviceKey::parse(&spki.0)?;
        let profile = process
            .profile_reference()
            .and_then(|r| self.profiles.get(r))
            .ok_or("the certificate profile is no longer configured")?;
        let ca = process
            .ca_reference()
            .and_then(|r| self.cas.get(r))
            .ok_or("the CA connection is no longer configured")?;
        let rendered = profile.render(&process)?;
        Ok((key, rendered, ca.clone()))
    }

    async fn request_signature(&self, p: &mut CertProcess) -> Next {
        let (key, rendered, _) = match self.parts(p) {
            Ok(parts) => parts,
            Err(reason) => return Self::fail(p, reason),
        };
        let data = match key.request_info(&rendered) {
            Ok(data) => data,
            Err(reason) => return Self::fail(p, reason),
        };
        // Recorded before the call: from here on a restart looks at Google before asking again.
        p.sign_data = Some(data);
        p.sign_requested_at = Some(self.clock.now());
        Self::move_to(p, CertState::Signing)
    }

    /// Sends signData for a process in Signing whose request did not reach Google.
    async fn send_sign_data(&self, p: &mut CertProcess) -> Next {
        let (Some(data), Ok((key, _, _))) = (p.sign_data.clone(), self.parts(p)) else {
            return Self::fail(p, "the proof-of-possession request was lost".into());
        };
        match self
            .chrome
            .sign_data(&p.name, &data, key.kind.signature_algorithm())
            .await
        {
            Ok(operation) => {
                tracing::info!(process = %p.name, "proof of possession requested from the device");
                p.operation_name = Some(operation.name);
                Next::Wait(self.timing.sign_poll_initial)
            }
            // Whether it arrived is unknown; the next look at the process tells.
            Err(ApiError::Transient(e)) => self.retry(p, e, |p| {
                Self::fail(
                    p,
                    "Google did not accept the proof-of-possession request".into(),
                )
            }),
            Err(e) => Self::fail(
                p,
                format!("Google refused the proof-of-possession request: {e}"),
            ),
        }
    }

    async fn await_signature(&self, p: &mut CertProcess) -> Next {
        let started = p.sign_requested_at.unwrap_or(p.created_at);
        let elapsed = (self.clock.now() - started).to_std().unwrap_or_default();
        if elapsed > self.timing.sign_deadline {
            return Self::fail(
                p,
                format!(
                    "The device did not answer the proof-of-possession request within {}",
                    human(self.timing.sign_deadline)
                ),
            );
        }
        let signature = match &p.operation_name {
            Some(operation) => match self.chrome.get_operation(&p.name, operation).await {
                Ok(op) if op.done => match (op.signature(), op.error) {
                    (Some(signature), _) => signature,
                    (None, Some(status)) => {
                        return Self::fail(
                            p,
                            format!(
                                "The device could not sign the proof-of-possession request: {}",
                                status.message
                            ),
                        )
                    }
                    (None, None) => {
                        return Self::fail(
                            p,
                            "The signing operation finished without a signature".into(),
                        )
                    }
                },
                Ok(_) => return self.poll_later(elapsed),
                Err(e) => return self.polling_failed(p, e),
            },
            None => match self.chrome.get(&p.name).await {
                // signData may have reached Google before a crash or a lost answer.
                Ok(process) => match (process.sign_data, process.signature) {
                    (None, _) => return self.send_sign_data(p).await,
                    (Some(sent), _) if Some(&sent.0) != p.sign_data.as_ref() => {
                        return Self::fail(p, "The process was asked to sign other data".into())
                    }
                    (Some(_), Some(signature)) => signature.0,
                    (Some(_), None) => return self.poll_later(elapsed),
                },
                Err(e) => return self.polling_failed(p, e),
            },
        };
        let Some(data) = p.sign_data.clone() else {
            return Self::fail(p, "the proof-of-possession request was lost".into());
        };
        let key = match self.parts(p) {
            Ok((key, _, _)) => key,
            Err(reason) => return Self::fail(p, reason),
        };
        match key.verify(&data, &signature) {
            Ok(normalised) => {
                p.signature = Some(normalised);
                Self::move_to(p, CertState::Issuing)
            }
            Err(e) => Self::fail(p, e.to_string()),
        }
    }

    /// The next poll: the wait grows with the time already spent (×1.5 per poll in effect),
    /// between the initial and the longest interval.
    fn poll_later(&self, elapsed: Duration) -> Next {
        Next::Wait((self.timing.sign_poll_initial + elapsed / 2).min(self.timing.sign_poll_max))
    }

    fn polling_failed(&self, p: &mut CertProcess, error: ApiError) -> Next {
        match error {
            ApiError::Transient(e) => self.retry(p, e, |p| {
                Self::fail(p, "Google kept failing while the device was signing".into())
            }),
            ApiError::NotFound(_) => Self::fail(p, "The signing operation disappeared".into()),
            e => Self::fail(
                p,
                format!("Google refused to report the signing operation: {e}"),
            ),
        }
    }

    async fn issue(&self, p: &mut CertProcess) -> Next {
        let (key, rendered, ca) = match self.parts(p) {
            Ok(parts) => parts,
            Err(reason) => return Self::fail(p, reason),
        };
        let Some(signature) = p.signature.clone() else {
            return Self::fail(p, "the device's signature was lost".into());
        };
        let csr_pem = match key.csr_pem(&rendered, &signature) {
            Ok(csr) => csr,
            Err(reason) => return Self::fail(p, reason),
        };
        let request = IssueRequest {
            key: &key,
            rendered: &rendered,
            csr_pem: &csr_pem,
        };
        match ca.issue(&request).await {
            Ok(issued) => {
                if let Err(reason) = check_issued(&issued.pem, &key) {
                    return Self::fail(p, reason);
                }
                tracing::info!(process = %p.name, serial = %issued.serial, "certificate issued");
                p.certificate_pem = Some(issued.pem);
                p.certificate_serial = Some(issued.serial);
                Self::move_to(p, CertState::Uploading)
            }
            Err(CaError::Refused(reason)) => Self::fail(p, reason),
            Err(CaError::Unavailable(e)) => self.retry(p, e, |p| {
                Self::fail(
                    p,
                    "The certificate authority is unavailable; try again later".into(),
                )
            }),
        }
    }

    async fn upload(&self, p: &mut CertProcess) -> Next {
        let Some(pem) = p.certificate_pem.clone() else {
            return Self::fail(p, "the issued certificate was lost".into());
        };
        match self.chrome.upload_certificate(&p.name, &pem).await {
            Ok(()) => Self::move_to(p, CertState::Done),
            Err(ApiError::Transient(e)) => self.retry(p, e, |p| {
                Self::fail(p, "Google kept failing to take the certificate".into())
            }),
            Err(e) => {
                // An earlier upload may have landed before its answer was lost.
                if let Ok(process) = self.chrome.get(&p.name).await {
                    if process.issued_certificate.as_deref() == Some(pem.as_str()) {
                        return Self::move_to(p, CertState::Done);
                    }
                }
                Self::fail(p, format!("Google refused the certificate: {e}"))
            }
        }
    }

    async fn report_failure(&self, p: &mut CertProcess) -> Next {
        let message = p
            .failure_message
            .clone()
            .unwrap_or_else(|| "Certificate provisioning failed".into());
        match self.chrome.set_failure(&p.name, &message).await {
            Ok(()) => Self::move_to(p, CertState::Failed),
            Err(ApiError::Transient(e)) => self.retry(p, e, |p| {
                let next = Self::move_to(p, CertState::Failed);
                p.last_error = Some("setFailure could not be delivered".into());
                next
            }),
            Err(e) => {
                let next = Self::move_to(p, CertState::Failed);
                p.last_error = Some(format!("setFailure refused: {e}"));
                next
            }
        }
    }
}

/// "15 minutes", "90 seconds".
fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        60 => "1 minute".into(),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        1 => "1 second".into(),
        s => format!("{s} seconds"),
    }
}

/// What the ChromeOS client will check on import (spec §1): one certificate, for its own key.
fn check_issued(pem: &str, key: &DeviceKey) -> Result<(), String> {
    if pem.matches("-----BEGIN").count() != 1 {
        return Err("The certificate authority returned more than one certificate".into());
    }
    let certificate = certs::from_pem(pem)
        .map_err(|e| format!("The certificate authority returned no valid certificate: {e}"))?;
    use x509_cert::der::Encode;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("The issued certificate's key cannot be read: {e}"))?;
    if spki != key.der {
        return Err("The certificate authority certified a different key".into());
    }
    Ok(())
}
