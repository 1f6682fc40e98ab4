//! Unanswered proofing challenges expire: a proofing left `challenged` for
//! `wallet.challenge_expiry_days` (30, spec §6.2 [G]) becomes `expired`, and Google is told
//! through the outbox. `brevet worker` runs the sweep (and `brevet serve` with
//! `outbox.dispatch_in_serve`); replicas may sweep at once, since each proofing is taken by one.

use std::time::Duration;

use crate::clock::Clock;
use crate::service::proofings::expire_challenges;
use crate::store::{SharedStore, StoreError};

/// Proofings expired per transaction.
const BATCH: u32 = 100;

/// The sweep.
pub struct ChallengeExpiry {
    store: SharedStore,
    clock: Clock,
    after: Duration,
}

impl ChallengeExpiry {
    /// Expires challenges older than `after` by `clock`.
    pub fn new(store: SharedStore, clock: Clock, after: Duration) -> Self {
        Self {
            store,
            clock,
            after,
        }
    }

    /// Expires every challenge that is due now; returns the proofing ids.
    pub async fn run_once(&self) -> Result<Vec<String>, StoreError> {
        let mut all = Vec::new();
        loop {
            let expired = expire_challenges(&self.store, &self.clock, self.after, BATCH).await?;
            let done = expired.len() < BATCH as usize;
            for id in &expired {
                tracing::info!(proofing.id = %id, "unanswered proofing challenge expired");
            }
            all.extend(expired);
            if done {
                return Ok(all);
            }
        }
    }

    /// Sweeps every `interval` until `stop`.
    pub async fn run(&self, interval: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(error) = self.run_once().await {
                tracing::error!(error = %error, "cannot expire proofing challenges");
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}
