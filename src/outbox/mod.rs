//! Delivering outbox jobs: claim one due job under a lease, perform it, then mark it done, schedule
//! a retry (exponential backoff with full jitter), or — after the last attempt or a permanent
//! refusal — mark it dead, where the admin API and metrics show it. A crashed worker's job comes
//! back when its lease expires, so every job is delivered at least once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use uuid::Uuid;

use crate::google::{Notifier, NotifyError};
use crate::store::{
    OutboxJob, SharedStore, StoreError, NOTIFY_CREDENTIAL_STATUS, NOTIFY_PROOFING_STATUS,
};

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
        let ceiling = self
            .base
            .saturating_mul(
                1u32.checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max);
        if ceiling.is_zero() {
            return ceiling;
        }
        Duration::from_nanos(
            rand::thread_rng().gen_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
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

/// Delivers outbox jobs.
pub struct Dispatcher {
    store: SharedStore,
    notifier: Arc<dyn Notifier>,
    worker_id: String,
    lease: Duration,
    policy: RetryPolicy,
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
            notifier,
            worker_id,
            lease,
            policy,
        }
    }

    async fn perform(&self, job: &OutboxJob) -> Result<(), NotifyError> {
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| NotifyError::Permanent(format!("payload lacks {name}")))
        };
        match job.kind.as_str() {
            NOTIFY_CREDENTIAL_STATUS => {
                self.notifier
                    .notify_credential_status(field("deviceReferenceId")?, field("credentialId")?)
                    .await
            }
            NOTIFY_PROOFING_STATUS => {
                self.notifier
                    .notify_proofing_status(field("deviceReferenceId")?, field("proofingId")?)
                    .await
            }
            other => Err(NotifyError::Permanent(format!(
                "unknown job kind {other:?}"
            ))),
        }
    }

    /// Claims and performs at most one due job.
    pub async fn run_once(&self) -> Result<Step, StoreError> {
        let Some(job) = self
            .store
            .claim_outbox_job(&self.worker_id, self.lease)
            .await?
        else {
            return Ok(Step::Idle);
        };
        let id = job.outbox_id;
        let outcome = self.perform(&job).await;
        let (held, step) = match outcome {
            Ok(()) => (
                self.store.complete_outbox_job(id, &self.worker_id).await?,
                Step::Delivered(id),
            ),
            Err(error) => {
                let retry_at = match &error {
                    NotifyError::Transient(_)
                        if (job.attempts as u32) < self.policy.max_attempts =>
                    {
                        chrono::Duration::from_std(self.policy.delay(job.attempts as u32))
                            .ok()
                            .map(|d| Utc::now() + d)
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
                (
                    self.store
                        .fail_outbox_job(id, &self.worker_id, &message, retry_at)
                        .await?,
                    step,
                )
            }
        };
        if !held {
            tracing::warn!(outbox.id = %id, "outbox lease expired during the attempt; another worker has the job");
            return Ok(Step::LostLease(id));
        }
        if let Step::Delivered(_) = step {
            tracing::info!(outbox.id = %id, outbox.kind = %job.kind, outbox.attempts = job.attempts, "outbox job delivered");
        }
        Ok(step)
    }

    /// Performs due jobs until none is due; returns what each step did.
    pub async fn drain(&self) -> Result<Vec<Step>, StoreError> {
        let mut steps = Vec::new();
        loop {
            match self.run_once().await? {
                Step::Idle => return Ok(steps),
                step => steps.push(step),
            }
        }
    }

    /// Runs until `shutdown` completes: drains, then waits `poll` before looking again. Store
    /// failures are logged and retried after the same wait.
    pub async fn run(&self, poll: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.drain().await {
                tracing::error!(%error, "outbox dispatch failed; retrying");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(poll) => {}
            }
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
