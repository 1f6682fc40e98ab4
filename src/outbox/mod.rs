//! Delivering outbox jobs: claim due jobs under a lease, perform them, then mark each done,
//! schedule a retry (exponential backoff with full jitter), or — after the last attempt or a
//! permanent refusal — mark it dead, where the admin API and metrics show it. A crashed worker's
//! jobs come back when their lease expires, so every job is delivered at least once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use uuid::Uuid;

use crate::clock::Clock;
use crate::google::{Notifier, NotifyError};
use crate::service::outbox as jobs;
use crate::store::{Job, OutboxJob, SharedStore, StoreError};

/// When to try again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts before a job is dead.
    pub max_attempts: u32,
    /// Delay before the second attempt (before jitter).
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// Delay after failed attempt number `attempt` (1-based): uniformly random in
    /// [0, min(max, base·2^(attempt-1))], so that workers retrying together spread out.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        if ceiling.is_zero() {
            return ceiling;
        }
        Duration::from_nanos(
            rand::thread_rng().gen_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64),
        )
    }

    /// The longest delay after failed attempt number `attempt`: min(max, base·2^(attempt-1)).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(
                1u32.checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max)
    }
}

/// A performed job before its delivery is marked done.
enum Attempt {
    /// Google accepted it.
    Delivered,
    /// It failed; the step (retrying or dead) is stored, `held` whether the lease still was.
    Failed(Step, bool),
}

/// What one step of the dispatcher did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No job was due.
    Idle,
    /// The job was delivered.
    Delivered(Uuid),
    /// The attempt failed; the job waits for another.
    Retrying(Uuid),
    /// The job is dead.
    Dead(Uuid),
    /// The lease expired during the attempt; another worker owns the job now.
    LostLease(Uuid),
}

/// Told the outcome of every delivery attempt (a process's metrics).
pub trait DeliveryObserver: Send + Sync {
    /// One attempt ended in `step`.
    fn attempted(&self, step: &Step);
}

impl Step {
    /// The outcome's name in metrics: `delivered`, `retrying`, `dead`, `lost_lease` (or `idle`).
    pub fn outcome(&self) -> &'static str {
        match self {
            Step::Idle => "idle",
            Step::Delivered(_) => "delivered",
            Step::Retrying(_) => "retrying",
            Step::Dead(_) => "dead",
            Step::LostLease(_) => "lost_lease",
        }
    }
}

/// Delivers outbox jobs.
pub struct Dispatcher {
    store: SharedStore,
    clock: Clock,
    notifier: Arc<dyn Notifier>,
    worker_id: String,
    lease: Duration,
    policy: RetryPolicy,
    observer: Option<Arc<dyn DeliveryObserver>>,
    lanes: usize,
    batch: u32,
    call_timeout: Duration,
    tidy: Tidy,
}

/// When the dispatcher has the store tidy up after delivered jobs (see `service::outbox::tidy`).
#[derive(Default)]
struct Tidy {
    /// After this many completions; 0 never.
    every: u64,
    /// Completions since the last tidy-up began.
    since: AtomicU64,
    /// A tidy-up is running.
    running: Arc<AtomicBool>,
}

impl Dispatcher {
    /// A dispatcher named `worker_id` (unique per process).
    pub fn new(
        store: SharedStore,
        notifier: Arc<dyn Notifier>,
        worker_id: String,
        lease: Duration,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            store,
            clock: Clock::system(),
            notifier,
            worker_id,
            lease,
            policy,
            observer: None,
            lanes: 1,
            batch: 1,
            call_timeout: Duration::ZERO,
            tidy: Tidy::default(),
        }
    }

    /// The same dispatcher having the store tidy up after every `every` delivered jobs (0:
    /// never), in the background, one tidy-up at a time.
    pub fn with_tidy_every(mut self, every: u64) -> Self {
        self.tidy.every = every;
        self
    }

    /// Counts `completed` jobs and starts a tidy-up when enough have accumulated.
    fn count_completions(&self, completed: usize) {
        let every = self.tidy.every;
        if every == 0 || completed == 0 {
            return;
        }
        let since = self
            .tidy
            .since
            .fetch_add(completed as u64, Ordering::Relaxed)
            + completed as u64;
        if since < every || self.tidy.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.tidy.since.store(0, Ordering::Relaxed);
        let (store, running) = (self.store.clone(), self.tidy.running.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            match jobs::tidy(&store).await {
                Ok(()) => tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "outbox tidied after {since} deliveries"
                ),
                Err(error) => tracing::warn!(%error, "outbox tidy-up failed; trying again later"),
            }
            running.store(false, Ordering::Release);
        });
    }

    /// The same dispatcher claiming up to `batch` jobs per lane and transaction, and performing
    /// them one after the other; a job is started only while a call lasting `call_timeout` would
    /// still end within the batch's lease (the rest are given back unattempted), so that no
    /// call is made twice at once because a batch outlived its lease.
    pub fn with_batches(mut self, batch: u32, call_timeout: Duration) -> Self {
        self.batch = batch.max(1);
        self.call_timeout = call_timeout;
        self
    }

    /// The same dispatcher telling `observer` the outcome of each attempt.
    pub fn with_observer(mut self, observer: Arc<dyn DeliveryObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The same dispatcher deciding due times and backoff by `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    async fn perform(&self, job: &OutboxJob) -> Result<(), NotifyError> {
        let readable = Job::read(&job.kind, &job.payload);
        match readable.map_err(|e| NotifyError::Permanent(e.to_string()))? {
            Job::CredentialStatus {
                device_reference_id,
                credential_id,
            } => {
                self.notifier
                    .notify_credential_status(&device_reference_id, &credential_id)
                    .await
            }
            Job::ProofingStatus {
                device_reference_id,
                proofing_id,
            } => {
                self.notifier
                    .notify_proofing_status(&device_reference_id, &proofing_id)
                    .await
            }
        }
    }

    /// Claims and performs at most one due job.
    pub async fn run_once(&self) -> Result<Step, StoreError> {
        let Some(job) = jobs::claim(&self.store, &self.clock, &self.worker_id, self.lease).await?
        else {
            return Ok(Step::Idle);
        };
        Ok(match self.attempt(&job).await? {
            Attempt::Delivered => {
                let held = jobs::complete(&self.store, job.outbox_id, &self.worker_id).await?;
                self.settle(&job, Step::Delivered(job.outbox_id), held)
            }
            Attempt::Failed(step, held) => self.settle(&job, step, held),
        })
    }

    /// Performs due jobs until none is due; returns what each step did. Delivered jobs are marked
    /// done in the transaction that claims the next batch, so a lane that keeps delivering
    /// commits once per batch rather than twice per job (a crash in between redelivers them, as
    /// any crash before their completion does). A failure is stored at once.
    pub async fn drain(&self) -> Result<Vec<Step>, StoreError> {
        let mut steps = Vec::new();
        let mut delivered: Vec<OutboxJob> = Vec::new();
        let mut unattempted: Vec<Uuid> = Vec::new();
        loop {
            let done: Vec<Uuid> = delivered.iter().map(|job| job.outbox_id).collect();
            let turn = jobs::Turn {
                delivered: &done,
                unattempted: &unattempted,
                claim: self.batch,
            };
            let claimed_at = Instant::now();
            let (held, next) = jobs::complete_and_claim(
                &self.store,
                &self.clock,
                &self.worker_id,
                self.lease,
                turn,
            )
            .await?;
            self.count_completions(held.len());
            for job in delivered.drain(..) {
                let still_held = held.contains(&job.outbox_id);
                steps.push(self.settle(&job, Step::Delivered(job.outbox_id), still_held));
            }
            unattempted.clear();
            if next.is_empty() {
                return Ok(steps);
            }
            for (i, job) in next.into_iter().enumerate() {
                // The first job always fits (the configuration keeps calls shorter than leases).
                if i > 0 && claimed_at.elapsed() + self.call_timeout >= self.lease {
                    unattempted.push(job.outbox_id);
                    continue;
                }
                match self.attempt(&job).await? {
                    Attempt::Delivered => delivered.push(job),
                    Attempt::Failed(step, held) => steps.push(self.settle(&job, step, held)),
                }
            }
        }
    }

    /// Performs a claimed job; a failure is recorded at once (retry or dead), a delivery is left
    /// for the caller to mark done.
    async fn attempt(&self, job: &OutboxJob) -> Result<Attempt, StoreError> {
        let id = job.outbox_id;
        let Err(error) = self.perform(job).await else {
            return Ok(Attempt::Delivered);
        };
        let retry_at = match &error {
            NotifyError::Transient(_) if (job.attempts as u32) < self.policy.max_attempts => {
                Some(self.clock.after(self.policy.delay(job.attempts as u32)))
            }
            _ => None,
        };
        let step = if retry_at.is_some() {
            Step::Retrying(id)
        } else {
            Step::Dead(id)
        };
        let message = error.to_string();
        match &step {
            Step::Dead(_) => {
                tracing::error!(outbox.id = %id, outbox.attempts = job.attempts, error = %message, "outbox job is dead")
            }
            _ => {
                tracing::warn!(outbox.id = %id, outbox.attempts = job.attempts, error = %message, "outbox job failed; will retry")
            }
        }
        let held = jobs::fail(&self.store, id, &self.worker_id, &message, retry_at).await?;
        Ok(Attempt::Failed(step, held))
    }

    /// What an attempt came to once its outcome is stored: `step`, or a lost lease.
    fn settle(&self, job: &OutboxJob, step: Step, held: bool) -> Step {
        let id = job.outbox_id;
        let step = if held { step } else { Step::LostLease(id) };
        if let Some(observer) = &self.observer {
            observer.attempted(&step);
        }
        if !held {
            tracing::warn!(outbox.id = %id, "outbox lease expired during the attempt; another worker has the job");
        } else if let Step::Delivered(_) = step {
            tracing::info!(outbox.id = %id, outbox.kind = %job.kind, outbox.attempts = job.attempts, "outbox job delivered");
        }
        step
    }

    /// The same dispatcher delivering up to `lanes` jobs at once (each lane claims its own job, so
    /// a slow answer from Google holds up one lane, not the queue).
    pub fn with_lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes.max(1);
        self
    }

    /// Runs until `shutdown` completes, in each lane: drains, then waits until jobs are queued
    /// (where the store says so: Postgres) or `poll` has passed, and looks again. Store failures
    /// are logged and retried after the same wait. Listening starts before the first look, so
    /// that a job queued after it wakes the lanes.
    pub async fn run(&self, poll: Duration, shutdown: impl Future<Output = ()>) {
        use futures::FutureExt;
        let shutdown = shutdown.shared();
        let queued = Arc::new(tokio::sync::Notify::new());
        let listening = match jobs::listen(&self.store).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for queued jobs; looking every poll interval only");
                None
            }
        };
        let relay = async {
            if let Some(listener) = listening {
                relay_queued(listener, &queued, poll, shutdown.clone()).await;
            }
        };
        let lanes = futures::future::join_all(
            (0..self.lanes).map(|_| self.lane(poll, &queued, shutdown.clone())),
        );
        futures::future::join(relay, lanes).await;
    }

    async fn lane(
        &self,
        poll: Duration,
        queued: &tokio::sync::Notify,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.drain().await {
                tracing::error!(%error, "outbox dispatch failed; retrying");
            }
            // Idle until word that jobs were queued wakes this lane (one idle lane per word, or,
            // when every lane is at work, the next to fall idle: lanes at work find the jobs on
            // their own, having claimed after the commit the word follows) or the poll.
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(poll) => {}
                () = queued.notified() => {}
            }
        }
    }
}

/// Passes the store's word that jobs were queued to a waiting lane, until `shutdown`. A lost
/// connection is reported and listened on again after `poll` (the lanes poll meanwhile).
async fn relay_queued(
    mut listener: crate::store::outbox::Queued,
    lanes: &tokio::sync::Notify,
    poll: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            // One idle lane per word: it claims what is due and goes on until nothing is, and
            // words that come while it works wake others, so the lanes at work follow the flow
            // of jobs rather than all of them claiming after every commit.
            word = listener.next() => match word {
                Ok(()) => lanes.notify_one(),
                Err(error) => {
                    tracing::warn!(%error, "lost the word of queued jobs; listening again shortly");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(poll) => {}
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_below_the_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 1..=12 {
            let ceiling =
                Duration::from_millis(100 * 2u64.pow(attempt - 1)).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(policy.delay(attempt) <= ceiling, "attempt {attempt}");
            }
        }
        let spread: std::collections::HashSet<Duration> =
            (0..20).map(|_| policy.delay(5)).collect();
        assert!(spread.len() > 10, "delays are jittered");
        let none = RetryPolicy {
            base: Duration::ZERO,
            ..policy
        };
        assert_eq!(none.delay(3), Duration::ZERO);
    }
}
