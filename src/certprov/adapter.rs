//! The adapter's flow for one process (spec §1, design.md "Chrome certificate"): get → skip if
//! not ours → claim → signData (once) → poll → verify the proof of possession → CA → upload, or
//! setFailure with a reason the user can read. Each step is recorded in the store before the
//! next call, so a restarted worker resumes where the last one stopped: signData is never sent
//! twice and an issued certificate is uploaded rather than issued again. Every call with an
//! effect outside is made under a confirmed lease (`lease.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use super::ca::{CaError, CertificateAuthority, IssueRequest};
use super::chrome::{ApiError, ChromeClient};
use super::lease::Lease;
use super::metrics::AdapterMetrics;
use super::pop::{self, DeviceKey};
use super::profile::{Profile, Rendered};
use super::wire::Process;
use crate::clock::Clock;
use crate::outbox::RetryPolicy;
use crate::pki::certs;
use crate::store::{
    cert_processes, revocations, settings, CertProcess, CertState, Hold, SharedStore, StoreError,
};

/// The deployment setting that holds the shared `callerInstanceId`.
pub const INSTANCE_ID_SETTING: &str = "certprov.instance_id";

/// The marker of a process Google has already failed itself (spec §4.1), in the message of a
/// signData operation's error.
const FAILED_BY_GOOGLE: &str = "CERTIFICATE_PROVISIONING_RESULT_ERROR_";

/// Timings and limits.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Lease on a process, renewed while a step runs.
    pub lease: Duration,
    /// First wait before polling for the signature.
    pub sign_poll_initial: Duration,
    /// Longest wait between polls.
    pub sign_poll_max: Duration,
    /// The device's time to sign.
    pub sign_deadline: Duration,
    /// Delays between retries of a failing call; `max_attempts` is the fewest tries before
    /// giving up.
    pub retry: RetryPolicy,
    /// How long a run of failures may last before the step gives up (any success resets it).
    pub retry_budget: Duration,
    /// Processes driven at once by one worker.
    pub concurrency: usize,
    /// How long finished processes are kept (`None`: for ever).
    pub retention: Option<Duration>,
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
    /// `callerInstanceId` from the configuration; `None`: the deployment's, from the store.
    configured_instance: Option<String>,
    instance: tokio::sync::OnceCell<String>,
    worker_id: String,
    profiles: BTreeMap<String, Profile>,
    cas: BTreeMap<String, Arc<dyn CertificateAuthority>>,
    timing: Timing,
    metrics: Arc<AdapterMetrics>,
    customers: Vec<String>,
}

/// What a step decided.
enum Next {
    /// Go on with the next step now.
    Continue,
    /// Come back at this delay (waiting for the device or after a transient failure).
    Wait(Duration),
    /// Nothing more to do.
    Stop,
    /// The lease could not be confirmed before a side effect: drop the process untouched.
    Lost,
}

/// What a look at the signing operation or the process found.
enum Seen {
    /// The device's signature.
    Signed(Vec<u8>),
    /// Not yet.
    Pending,
    /// Decided without a signature.
    Decided(Next),
}

/// What an adapter is made of.
pub struct Setup {
    /// Where processes are kept.
    pub store: SharedStore,
    /// Google's API.
    pub chrome: ChromeClient,
    /// `callerInstanceId`; `None`: the deployment's shared id, made once and kept in the store.
    pub instance_id: Option<String>,
    /// The lease owner name of this worker.
    pub worker_id: String,
    /// Profiles by `profileAdapterConfigReference`.
    pub profiles: BTreeMap<String, Profile>,
    /// CAs by `caConnectionAdapterConfigReference`.
    pub cas: BTreeMap<String, Arc<dyn CertificateAuthority>>,
    /// Timings and limits.
    pub timing: Timing,
    /// Where calls and retries are counted.
    pub metrics: Arc<AdapterMetrics>,
    /// Customer ids served (empty: all).
    pub customers: Vec<String>,
}

impl Adapter {
    /// An adapter made of `setup`.
    pub fn new(setup: Setup) -> Self {
        Self {
            store: setup.store,
            clock: Clock::system(),
            chrome: setup.chrome,
            configured_instance: setup.instance_id,
            instance: tokio::sync::OnceCell::new(),
            worker_id: setup.worker_id,
            profiles: setup.profiles,
            cas: setup.cas,
            timing: setup.timing,
            metrics: setup.metrics,
            customers: setup.customers,
        }
    }

    /// The same adapter deciding deadlines and retry times by `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The `callerInstanceId` this adapter claims with: the configured one, else the one its
    /// deployment stored first, shared by every replica whatever its host name.
    pub async fn instance_id(&self) -> Result<&str, StoreError> {
        let id = self
            .instance
            .get_or_try_init(|| async {
                let id = match &self.configured_instance {
                    Some(id) => id.clone(),
                    None => {
                        let fresh = format!("brevet-{}", uuid::Uuid::new_v4().simple());
                        settings::get_or_init(&mut self.store.db(), INSTANCE_ID_SETTING, &fresh)
                            .await?
                    }
                };
                tracing::info!(instance_id = %id, worker = %self.worker_id, "certificate provisioning claims as this instance");
                Ok::<_, StoreError>(id)
            })
            .await?;
        Ok(id)
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
        let lease = Lease::hold(
            self.store.clone(),
            process.cert_process_id,
            self.worker_id.clone(),
            self.timing.lease,
        );
        loop {
            let next = self.advance(&mut process, &lease).await;
            let hold = match next {
                Next::Continue => Hold::Keep(self.timing.lease),
                Next::Wait(delay) => {
                    process.next_attempt_at = self.clock.after(delay);
                    Hold::Release
                }
                Next::Stop => Hold::Release,
                Next::Lost => {
                    tracing::warn!(process = %process.name, "lease lost before a call; left to the worker that holds it");
                    return Ok(Step::LostLease(process.name));
                }
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

    /// Runs until `stop` with `concurrency` processes in flight at most, each lane looking for
    /// a due process every `poll` when idle; purges finished processes hourly.
    pub async fn run(&self, poll: Duration, stop: impl std::future::Future<Output = ()>) {
        let stop = Box::pin(stop).shared();
        let lanes = (0..self.timing.concurrency.max(1)).map(|_| self.lane(poll, stop.clone()));
        tokio::join!(
            futures::future::join_all(lanes),
            self.housekeeping(stop.clone())
        );
    }

    /// Signs a fresh CRL for each built-in CA whose published one is missing, older than a
    /// revocation, or half-way to its nextUpdate; returns how many were published.
    pub async fn publish_crls(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut published = 0;
        for (name, ca) in &self.cas {
            let mut db = self.store.db();
            let revoked = revocations::list(&mut db, name).await?;
            let current = revocations::crl(&mut db, name).await?;
            let half = chrono::Duration::from_std(super::ca::CRL_VALIDITY / 2).unwrap_or_default();
            let fresh = current.as_ref().is_some_and(|crl| {
                now < crl.this_update + half
                    && revoked.iter().all(|r| r.revoked_at < crl.this_update)
            });
            if fresh {
                continue;
            }
            let entries: Vec<certs::RevokedEntry> = revoked
                .iter()
                .filter_map(|r| {
                    Some(certs::RevokedEntry {
                        serial: hex::decode(&r.serial).ok()?,
                        revoked_at: r.revoked_at.into(),
                        // Stored names were checked on revocation; anything else is unspecified.
                        reason: crate::service::device_certs::crl_reason(&r.reason)
                            .unwrap_or(x509_cert::ext::pkix::CrlReason::Unspecified),
                    })
                })
                .collect();
            let Some(signed) = ca.crl(&entries, now.into()) else {
                continue;
            };
            let der = match signed {
                Ok(der) => der,
                Err(error) => {
                    tracing::error!(ca = %name, error = %error, "cannot sign the device CA's CRL");
                    continue;
                }
            };
            let next_update =
                now + chrono::Duration::from_std(super::ca::CRL_VALIDITY).unwrap_or_default();
            let crl = revocations::StoredCrl {
                der,
                this_update: now,
                next_update,
            };
            revocations::publish_crl(&mut db, name, &crl).await?;
            tracing::info!(ca = %name, revoked = entries.len(), "device CA CRL published");
            published += 1;
        }
        Ok(published)
    }

    /// Deletes finished processes older than the retention, a batch at a time; returns how many.
    pub async fn purge_once(&self) -> Result<u64, StoreError> {
        let Some(retention) = self.timing.retention else {
            return Ok(0);
        };
        let before = self.clock.before(retention);
        let mut purged = 0;
        loop {
            let batch = cert_processes::purge_finished(&mut self.store.db(), before, 500).await?;
            purged += batch;
            if batch < 500 {
                break;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "finished certificate provisioning processes purged");
        }
        Ok(purged)
    }

    /// CRLs every minute, the retention purge every hour.
    async fn housekeeping(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut minutes = 0u32;
        loop {
            if let Err(error) = self.publish_crls().await {
                tracing::warn!(error = %error, "cannot publish device CA CRLs");
            }
            if minutes.is_multiple_of(60) {
                if let Err(error) = self.purge_once().await {
                    tracing::warn!(error = %error, "cannot purge finished certificate provisioning processes");
                }
            }
            minutes = minutes.wrapping_add(1);
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
    }

    async fn lane(&self, poll: Duration, stop: impl std::future::Future<Output = ()>) {
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

    async fn advance(&self, p: &mut CertProcess, lease: &Lease) -> Next {
        match p.state {
            CertState::Received => self.read_and_claim(p, lease).await,
            CertState::Claimed => self.request_signature(p),
            CertState::Signing => self.await_signature(p, lease).await,
            CertState::Issuing => self.issue(p, lease).await,
            CertState::Uploading => self.upload(p, lease).await,
            CertState::Failing => self.report_failure(p, lease).await,
            CertState::Done | CertState::Failed | CertState::Skipped => Next::Stop,
        }
    }

    fn move_to(p: &mut CertProcess, state: CertState) -> Next {
        tracing::info!(process = %p.name, from = p.state.as_str(), to = state.as_str(), "certificate provisioning step");
        p.state = state;
        Self::progressed(p);
        p.last_error = None;
        if state.is_final() {
            Next::Stop
        } else {
            Next::Continue
        }
    }

    /// A call succeeded: the run of failures (and its retry budget) starts over.
    fn progressed(p: &mut CertProcess) {
        p.attempts = 0;
        p.failing_since = None;
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

    /// Google failed the process itself: record why; there is nothing to report back.
    fn failed_by_google(p: &mut CertProcess, reason: String) -> Next {
        tracing::warn!(process = %p.name, reason = %reason, "certificate provisioning process failed by Google");
        p.failure_message = Some(reason);
        Self::move_to(p, CertState::Failed)
    }

    /// A transient failure: the wait before the next try (exponential, with jitter), or `None`
    /// when the run of failures has lasted the retry budget and at least `max_attempts` tries.
    fn retry(&self, p: &mut CertProcess, error: String) -> Option<Next> {
        let now = self.clock.now();
        p.attempts += 1;
        self.metrics.retried(p.state.as_str());
        let since = *p.failing_since.get_or_insert(now);
        tracing::warn!(process = %p.name, step = p.state.as_str(), attempt = p.attempts, error = %error, "certificate provisioning call failed; will retry");
        p.last_error = Some(error);
        let attempt = u32::try_from(p.attempts).unwrap_or(u32::MAX);
        let failing_for = (now - since).to_std().unwrap_or_default();
        if attempt >= self.timing.retry.max_attempts && failing_for >= self.timing.retry_budget {
            return None;
        }
        Some(Next::Wait(self.timing.retry.delay(attempt)))
    }

    fn process_of(p: &CertProcess) -> Option<Process> {
        serde_json::from_value(p.process.clone()?).ok()
    }

    async fn read_and_claim(&self, p: &mut CertProcess, lease: &Lease) -> Next {
        if !self.customers.is_empty() && !self.customers.contains(&p.customer_id) {
            let why = format!(
                "customer {} is not served here (certprov.customers)",
                p.customer_id
            );
            return Self::skip(p, &why);
        }
        let process = match self.chrome.get(&p.name).await {
            Ok(process) => process,
            Err(ApiError::NotFound(_)) => return Self::skip(p, "Google does not know the process"),
            Err(e) => {
                let message = match &e {
                    ApiError::Transient(_) => "Google kept failing; gave up",
                    _ => "Google refused to show the process; gave up",
                };
                return self
                    .retry(p, e.to_string())
                    .unwrap_or_else(|| Self::skip(p, message));
            }
        };
        Self::progressed(p);
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
        let customer = p.customer_id.as_str();
        if scoped(&self.cas, customer, ca).is_none()
            || scoped(&self.profiles, customer, profile).is_none()
        {
            return Self::skip(
                p,
                &format!("CA connection {ca:?} or profile {profile:?} is not configured here"),
            );
        }
        // Nothing of ours was sent yet (that is recorded before sending): someone else drives it.
        if process.sign_data.is_some() {
            return Self::skip(
                p,
                "another adapter already asked the device to sign; the process is not ours to drive",
            );
        }
        p.process = serde_json::to_value(&process).ok();
        let instance = match self.instance_id().await {
            Ok(id) => id,
            Err(e) => {
                return self
                    .retry(p, format!("cannot read the instance id: {e}"))
                    .unwrap_or_else(|| Self::skip(p, "the store kept failing; gave up"))
            }
        };
        if !lease.confirm().await {
            return Next::Lost;
        }
        match self.chrome.claim(&p.name, instance).await {
            Ok(()) => Self::move_to(p, CertState::Claimed),
            Err(ApiError::Transient(e)) => self
                .retry(p, e)
                .unwrap_or_else(|| Self::skip(p, "claim kept failing; gave up")),
            Err(ApiError::Refused {
                http: 401 | 403,
                message,
                ..
            }) => self
                .retry(p, format!("claim not authorised: {message}"))
                .unwrap_or_else(|| Self::skip(p, "claim not authorised; gave up")),
            Err(ApiError::NotFound(_)) => Self::skip(p, "the process vanished before the claim"),
            Err(ApiError::Refused {
                status, message, ..
            }) => {
                // Replicas of this deployment share one id, so this is another deployment.
                tracing::warn!(process = %p.name, instance_id = instance, google = %message, "process claimed by another deployment (another callerInstanceId); two adapters serve the same CA connection?");
                Self::skip(
                    p,
                    &format!("claimed by another deployment ({status}: {message})"),
                )
            }
        }
    }

    /// The device key of a claimed process.
    fn device_key(p: &CertProcess) -> Result<DeviceKey, String> {
        let process = Self::process_of(p).ok_or("the stored process cannot be read")?;
        let spki = process
            .subject_public_key_info
            .as_ref()
            .ok_or("the process carries no device key")?;
        DeviceKey::parse(&spki.0)
    }

    /// The profile and CA connection the process names, if still configured.
    fn profile_and_ca(
        &self,
        p: &CertProcess,
    ) -> Result<(Process, &Profile, Arc<dyn CertificateAuthority>), String> {
        let process = Self::process_of(p).ok_or("the stored process cannot be read")?;
        let customer = p.customer_id.as_str();
        let profile = process
            .profile_reference()
            .and_then(|r| scoped(&self.profiles, customer, r))
            .ok_or("the certificate profile is no longer configured")?;
        let ca = process
            .ca_reference()
            .and_then(|r| scoped(&self.cas, customer, r))
            .ok_or("the CA connection is no longer configured")?
            .clone();
        Ok((process, profile, ca))
    }

    fn request_signature(&self, p: &mut CertProcess) -> Next {
        let data = Self::device_key(p).and_then(|key| {
            let (process, profile, _) = self.profile_and_ca(p)?;
            key.request_info(&profile.render(&process)?)
        });
        let data = match data {
            Ok(data) => data,
            Err(reason) => return Self::fail(p, reason),
        };
        // Recorded before the call: from here on a restart looks at Google before asking again.
        p.sign_data = Some(data);
        p.sign_requested_at = Some(self.clock.now());
        Self::move_to(p, CertState::Signing)
    }

    /// Sends signData for a process in Signing whose request did not reach Google.
    async fn send_sign_data(&self, p: &mut CertProcess, lease: &Lease) -> Next {
        let (Some(data), Ok(key)) = (p.sign_data.clone(), Self::device_key(p)) else {
            return Self::fail(p, "the proof-of-possession request was lost".into());
        };
        if !lease.confirm().await {
            return Next::Lost;
        }
        match self
            .chrome
            .sign_data(&p.name, &data, key.kind.signature_algorithm())
            .await
        {
            Ok(operation) => {
                tracing::info!(process = %p.name, "proof of possession requested from the device");
                Self::progressed(p);
                p.operation_name = Some(operation.name);
                Next::Wait(self.timing.sign_poll_initial)
            }
            // Whether it arrived is unknown; the next look at the process tells.
            Err(ApiError::Transient(e)) => self.retry(p, e).unwrap_or_else(|| {
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

    async fn await_signature(&self, p: &mut CertProcess, lease: &Lease) -> Next {
        let started = p.sign_requested_at.unwrap_or(p.created_at);
        // Looked at before the deadline is judged: a worker that was down longer than the
        // deadline still finds a signature that arrived meanwhile.
        let seen = match p.operation_name.clone() {
            Some(operation) => match self.chrome.get_operation(&p.name, &operation).await {
                Ok(op) if op.done => {
                    Self::progressed(p);
                    match (op.signature(), op.error) {
                        (Some(signature), _) => Seen::Signed(signature),
                        (None, Some(status)) if status.message.contains(FAILED_BY_GOOGLE) => {
                            Seen::Decided(Self::failed_by_google(p, status.message))
                        }
                        (None, Some(status)) => Seen::Decided(Self::fail(
                            p,
                            format!(
                                "The device could not sign the proof-of-possession request: {}",
                                status.message
                            ),
                        )),
                        (None, None) => Seen::Decided(Self::fail(
                            p,
                            "The signing operation finished without a signature".into(),
                        )),
                    }
                }
                Ok(_) => {
                    Self::progressed(p);
                    Seen::Pending
                }
                // The operation is gone; the process itself still tells where signing stands.
                Err(ApiError::NotFound(_)) => {
                    tracing::info!(process = %p.name, "signing operation not found; looking at the process");
                    p.operation_name = None;
                    self.look_at_process(p, lease).await
                }
                Err(e) => Seen::Decided(self.polling_failed(p, e)),
            },
            None => self.look_at_process(p, lease).await,
        };
        let signature = match seen {
            Seen::Signed(signature) => signature,
            Seen::Decided(next) => return next,
            Seen::Pending => {
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
                return self.poll_later(elapsed);
            }
        };
        let Some(data) = p.sign_data.clone() else {
            return Self::fail(p, "the proof-of-possession request was lost".into());
        };
        let key = match Self::device_key(p) {
            Ok(key) => key,
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

    /// Where signing stands by the process resource (no operation to poll, or it vanished):
    /// sends signData if it never arrived.
    async fn look_at_process(&self, p: &mut CertProcess, lease: &Lease) -> Seen {
        let process = match self.chrome.get(&p.name).await {
            Ok(process) => process,
            Err(e) => return Seen::Decided(self.polling_failed(p, e)),
        };
        Self::progressed(p);
        if let Some(reason) = process.failure_message {
            return Seen::Decided(Self::failed_by_google(p, reason));
        }
        match (process.sign_data, process.signature) {
            // signData may have reached Google before a crash or a lost answer; if not, send it.
            (None, _) => Seen::Decided(self.send_sign_data(p, lease).await),
            (Some(sent), _) if Some(&sent.0) != p.sign_data.as_ref() => Seen::Decided(Self::skip(
                p,
                "the device was asked to sign data this adapter did not record; the process is not ours to drive",
            )),
            (Some(_), Some(signature)) => Seen::Signed(signature.0),
            (Some(_), None) => Seen::Pending,
        }
    }

    /// The next poll: the wait grows with the time already spent (×1.5 per poll in effect),
    /// between the initial and the longest interval.
    fn poll_later(&self, elapsed: Duration) -> Next {
        Next::Wait((self.timing.sign_poll_initial + elapsed / 2).min(self.timing.sign_poll_max))
    }

    fn polling_failed(&self, p: &mut CertProcess, error: ApiError) -> Next {
        match error {
            ApiError::Transient(e) => self.retry(p, e).unwrap_or_else(|| {
                Self::fail(p, "Google kept failing while the device was signing".into())
            }),
            ApiError::NotFound(_) => Self::skip(p, "Google no longer knows the process"),
            e => Self::fail(
                p,
                format!("Google refused to report the signing operation: {e}"),
            ),
        }
    }

    async fn issue(&self, p: &mut CertProcess, lease: &Lease) -> Next {
        let (Some(data), Some(signature)) = (p.sign_data.clone(), p.signature.clone()) else {
            return Self::fail(p, "the device's signature was lost".into());
        };
        // The certificate says what the device signed, whatever the profile says now.
        let parts = pop::signed_request(&data, &signature).and_then(|signed| {
            let key = Self::device_key(p)?;
            if signed.key.der != key.der {
                return Err("the recorded request is for another key".to_owned());
            }
            let (_, profile, ca) = self.profile_and_ca(p)?;
            Ok((signed, profile.lifetime(), ca))
        });
        let (signed, lifetime, ca) = match parts {
            Ok(parts) => parts,
            Err(reason) => return Self::fail(p, reason),
        };
        let rendered = Rendered {
            subject: signed.subject.clone(),
            extensions: signed.extensions.clone(),
            lifetime,
        };
        let request = IssueRequest {
            process: &p.name,
            key: &signed.key,
            rendered: &rendered,
            csr_pem: &signed.csr_pem,
        };
        if !lease.confirm().await {
            return Next::Lost;
        }
        let timer = self.metrics.start("ca", "issue");
        let issued = ca.issue(&request).await;
        timer.done(match &issued {
            Ok(_) => "ok",
            Err(CaError::Unavailable(_)) => "transient",
            Err(CaError::Refused(_)) => "refused",
        });
        match issued {
            Ok(issued) => {
                if let Err(reason) = check_issued(&issued.pem, &signed.key, &rendered) {
                    return Self::fail(p, reason);
                }
                tracing::info!(process = %p.name, serial = %issued.serial, "certificate issued");
                p.certificate_pem = Some(issued.pem);
                p.certificate_serial = Some(issued.serial);
                Self::move_to(p, CertState::Uploading)
            }
            Err(CaError::Refused(reason)) => Self::fail(p, reason),
            Err(CaError::Unavailable(e)) => self.retry(p, e).unwrap_or_else(|| {
                Self::fail(
                    p,
                    "The certificate authority is unavailable; try again later".into(),
                )
            }),
        }
    }

    async fn upload(&self, p: &mut CertProcess, lease: &Lease) -> Next {
        let Some(pem) = p.certificate_pem.clone() else {
            return Self::fail(p, "the issued certificate was lost".into());
        };
        if !lease.confirm().await {
            return Next::Lost;
        }
        let reason = match self.chrome.upload_certificate(&p.name, &pem).await {
            Ok(()) => return Self::move_to(p, CertState::Done),
            Err(ApiError::Transient(e)) => match self.retry(p, e) {
                Some(wait) => return wait,
                None => "Google kept failing to take the certificate".to_owned(),
            },
            Err(e) => format!("Google refused the certificate: {e}"),
        };
        // An earlier upload may have landed before its answer was lost.
        match self.chrome.get(&p.name).await {
            Ok(process) if same_certificate(process.issued_certificate.as_deref(), &pem) => {
                tracing::info!(process = %p.name, "an earlier upload had landed");
                Self::move_to(p, CertState::Done)
            }
            _ => Self::fail(p, reason),
        }
    }

    async fn report_failure(&self, p: &mut CertProcess, lease: &Lease) -> Next {
        let message = p
            .failure_message
            .clone()
            .unwrap_or_else(|| "Certificate provisioning failed".into());
        if !lease.confirm().await {
            return Next::Lost;
        }
        match self.chrome.set_failure(&p.name, &message).await {
            Ok(()) => Self::move_to(p, CertState::Failed),
            Err(ApiError::Transient(e)) => self.retry(p, e).unwrap_or_else(|| {
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

/// `customer`'s own setting for `reference` (kept as "{customer}:{reference}"), else the shared one.
fn scoped<'a, T>(
    settings: &'a BTreeMap<String, T>,
    customer: &str,
    reference: &str,
) -> Option<&'a T> {
    settings
        .get(&format!("{customer}:{reference}"))
        .or_else(|| settings.get(reference))
}

/// Whether Google holds `ours` as the process's certificate (compared as DER: Google may
/// re-encode the PEM).
fn same_certificate(held: Option<&str>, ours: &str) -> bool {
    let der = |pem: &str| {
        certs::from_pem(pem)
            .ok()
            .and_then(|c| x509_cert::der::Encode::to_der(&c).ok())
    };
    match (held.and_then(der), der(ours)) {
        (Some(held), Some(ours)) => held == ours,
        _ => false,
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

/// What the ChromeOS client will check on import (spec §1): one certificate, for its own key;
/// and what the profile promised: the subject, SANs, KeyUsage and ExtendedKeyUsage the device
/// signed, nothing more or less (a CA may add identifiers, CRL and AIA pointers).
fn check_issued(pem: &str, key: &DeviceKey, rendered: &Rendered) -> Result<(), String> {
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
    let differs = |what: &str| {
        format!("The certificate authority issued a certificate that does not match the profile: {what}")
    };
    if certificate.tbs_certificate.subject != rendered.subject {
        return Err(differs(&format!(
            "subject {} instead of {}",
            certificate.tbs_certificate.subject, rendered.subject
        )));
    }
    use x509_cert::der::oid::db::rfc5280::{
        ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME,
    };
    for (oid, name) in [
        (ID_CE_SUBJECT_ALT_NAME, "subject alternative names"),
        (ID_CE_KEY_USAGE, "key usage"),
        (ID_CE_EXT_KEY_USAGE, "extended key usage"),
    ] {
        let asked = rendered
            .extensions
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes());
        if certs::raw_extension_value(&certificate, oid) != asked {
            return Err(differs(&format!("{name} not as requested")));
        }
    }
    Ok(())
}
